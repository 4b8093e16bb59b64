"""The built wheel, installed outside the checkout, indexes and searches a folder.

The wheel is built from this checkout without build isolation and installed with ``--no-deps``
into a fresh venv; the dependencies come from the test venv through a path file, because tests
never reach a package registry (``.ci/wheel-smoke`` also installs it with real dependencies).
What this proves is what the wheel itself must carry: the packages, the SQL migrations, the
tokenizer data and working console commands, none of them reachable from the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.core.test_cli import MODELS, shape_jpeg
from tests.test_runtime_imports import RUNTIME_PACKAGES, banned_imports

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ("image-finder", "image-finder-bot", "image-finder-models")
# Top-level folders of a checkout that are no part of the package's sources.
NOT_SOURCES = (
    ".git",
    ".venv*",
    "build",
    "*.egg-info",
    "data",
    "models",
    "bench",
    "tests",
    ".*_cache",
)

pytestmark = pytest.mark.skipif(
    not all((m / "config.json").exists() for m in MODELS), reason="fixture bundles missing"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # setuptools builds in the source tree's build/, where a stale module of an earlier build
    # would slip into the wheel and litter the checkout: build a copy of the sources instead.
    src = tmp_path_factory.mktemp("src") / "image-finder"
    top_level = shutil.ignore_patterns(*NOT_SOURCES)

    def ignore(folder: str, names: list[str]) -> set[str]:
        return (top_level(folder, names) if Path(folder) == ROOT else set()) | {
            n for n in names if n == "__pycache__"
        }

    shutil.copytree(ROOT, src, ignore=ignore)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(out), str(src)],
        check=True,
        env={**os.environ, "PIP_NO_CACHE_DIR": "1"},
    )  # fmt: skip
    (found,) = out.glob("image_finder-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding only the wheel; returns its bin directory."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(env_dir)
    bin_dir = env_dir / "bin"
    purelib = Path(
        sysconfig.get_path("purelib", vars={"base": str(env_dir), "platbase": str(env_dir)})
    )
    # Dependencies from the test venv; its editable path hook for this checkout is a .pth
    # inside that directory, which a path entry does not run, so the checkout stays invisible.
    (purelib / "borrowed-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "-q",
         "--no-deps", "--no-index", str(wheel)],
        check=True,
    )  # fmt: skip
    return bin_dir


def test_wheel_carries_migrations_and_data_but_no_tests(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n for n in names if n.startswith("migrations/") and n.endswith(".sql"))
    assert shipped == sorted(f"migrations/{p.name}" for p in (ROOT / "migrations").glob("*.sql"))
    assert any(n.startswith("core/models/text/data/") for n in names)
    assert not any(n.startswith(("tests/", "bench/", "tools/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert all(f"{c} =" in text for c in COMMANDS)


def test_wheel_holds_only_runtime_modules_free_of_torch_and_tooling(wheel: Path) -> None:
    """The offline tooling stays in the checkout: no shipped module imports torch, open_clip,
    ruclip, onnx, ``tools`` or ``tests``, wherever the import statement sits."""
    with zipfile.ZipFile(wheel) as whl:
        modules = [n for n in whl.namelist() if n.endswith(".py")]
        assert {n.split("/")[0] for n in modules} <= set(RUNTIME_PACKAGES)
        assert banned_imports((n, whl.read(n).decode("utf-8")) for n in modules) == {}


def test_installed_cli_indexes_and_searches_a_folder(installed: Path, tmp_path: Path) -> None:
    photos, work = tmp_path / "photos", tmp_path / "work"
    work.mkdir()
    blue = shape_jpeg(photos / "blue-square.jpg", "blue", "square")
    shape_jpeg(photos / "red-circle.jpg", "red", "circle")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(DATA_DIR=str(work / "data"), MODEL_DIRS=",".join(map(str, MODELS)))

    def cli(*argv: str) -> str:
        done = subprocess.run(
            [str(installed / "image-finder"), *argv], cwd=work, env=env,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    where = subprocess.run(
        [str(installed / "python"), "-c", "import storage, migrations; print(storage.__file__)"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert str(ROOT) not in where, "the venv imported the checkout, not the wheel"

    assert "2 added" in cli("index", str(photos))
    hits = json.loads(cli("search", "a blue square", "--json"))["hits"]
    assert hits[0]["path"] == str(blue.resolve())
    assert (work / "data" / "image-finder.db").is_file()


def test_installed_bot_command_explains_a_missing_token(installed: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BOT_TOKEN"}
    env["MODEL_DIRS"] = str(MODELS[0])
    done = subprocess.run(
        [str(installed / "image-finder-bot"), "check"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: BOT_TOKEN is not set: get one from @BotFather and put it in .env"
    ]
