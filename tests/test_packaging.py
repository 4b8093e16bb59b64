"""What pyproject.toml, requirements.lock and the Makefile promise a new user."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
# Built from source or test-only: never part of what running the bot installs.
NOT_AT_RUN_TIME = {"youtokentome", "torch", "torchvision", "open-clip-torch", "ruclip", "onnx"}


def locked() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "requirements.lock").read_text("utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = Version(version)
    return pins


def requirements(group: str | None = None) -> list[Requirement]:
    deps = PROJECT["dependencies"] if group is None else PROJECT["optional-dependencies"][group]
    return [Requirement(d) for d in deps]


def test_lock_pins_every_runtime_and_dev_dependency_within_its_range() -> None:
    pins = locked()
    for req in requirements() + requirements("dev"):
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements.lock (make lock)"
        assert req.specifier.contains(pins[name]), f"lock has {name}=={pins[name]}, needs {req}"


def test_runtime_needs_nothing_compiled_or_test_only() -> None:
    names = {canonicalize_name(r.name) for r in requirements()}
    assert not names & NOT_AT_RUN_TIME
    assert not set(locked()) & (NOT_AT_RUN_TIME - {"onnx"})  # onnx: the tests' model builders


def test_aiogram_floor_has_start_timestamp() -> None:
    (aiogram,) = [r for r in requirements() if r.name == "aiogram"]
    assert not aiogram.specifier.contains("3.17.9") and aiogram.specifier.contains("3.18.0")


def test_make_run_installs_the_runtime_only_and_every_install_uses_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text("utf-8")
    runtime = re.search(r"^\$\(VENV\)/\.runtime:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert runtime is not None
    assert re.search(r"\s-e \.\s*$", runtime.group(1), re.M), "run must install no extras"
    assert re.search(r"^run: install$", makefile, re.M)
    for line in makefile.splitlines():
        if re.search(r"pip\b.*\binstall\b.*-e ", line):
            assert "$(PIP_FLAGS)" in line, f"install without the lock: {line.strip()}"
    assert "-c requirements.lock" in makefile


def test_offline_tooling_runs_from_tools_and_ships_in_no_package() -> None:
    """export, quantize and train-fixture are ``python -m tools`` commands of a checkout."""
    makefile = (ROOT / "Makefile").read_text("utf-8")
    assert re.search(r"^fixtures:.*\n\t\$\(EBIN\)/python -m tools train-fixture ", makefile, re.M)
    moved = re.compile(r"-m core\.models (export|quantize|train-fixture)\b")
    for name in ("Makefile", "README.md", "bot/config.py"):
        assert not moved.search((ROOT / name).read_text("utf-8")), name
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]
    assert {"tools*", "tests*"} <= set(setuptools["packages"]["find"]["exclude"])
    assert all(not v.startswith("tools") for v in PROJECT["scripts"].values())


def test_postgresql_driver_is_the_prebuilt_wheel_pinned_with_its_pool() -> None:
    """CI hides the compiler: psycopg must come with its bundled libpq (the binary extra), and
    the extra's package must be pinned at the driver's own version."""
    (driver,) = [r for r in requirements() if canonicalize_name(r.name) == "psycopg"]
    assert "binary" in driver.extras
    assert "psycopg-pool" in {canonicalize_name(r.name) for r in requirements()}
    pins = locked()
    assert pins["psycopg-binary"] == pins["psycopg"]
    assert "psycopg-pool" in pins
