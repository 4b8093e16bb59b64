"""The path ``make run`` takes after installing, offline: a folder with a ``.env`` made from
``.env.example``, ``python -m bot prepare`` fetching the default models from a stand-in hub
(tests/hub_standin.py), then ``python -m bot`` up to its "ready" line against the fake Telegram
server. And the two ways a first run most often stops: no token, no network."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from dotenv import dotenv_values

from bot.config import (
    BotAppSettings,
    StartupError,
    prepare_models,
    pull_name_for,
    ruclip_commands,
)
from core.models.bundle import load_bundle
from core.models.pull import resolve_repo
from core.settings import PASS_THROUGH_KEYS, DataSettings
from tests.core.onnx_builders import open_clip_config, write_immich_bundle
from tests.e2e.fake_telegram import FakeTelegramServer
from tests.e2e.harness import BotProcess
from tests.hub_standin import HubStandin, read_tree, unused_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / ".env.example"
NO_TOKEN = "error: BOT_TOKEN is not set: get one from @BotFather and put it in .env"


def example_model_dirs() -> list[Path]:
    """The bundle directories ``.env.example`` configures, as written there."""
    value = dotenv_values(EXAMPLE)["MODEL_DIRS"] or ""
    return [Path(part.strip()) for part in value.split(",") if part.strip()]


def example_repos() -> dict[Path, str]:
    """The hub repository ``prepare`` pulls for each of them."""
    repos = {}
    for path in example_model_dirs():
        name = pull_name_for(path)
        assert name is not None, f".env.example names {path}, which prepare cannot download"
        repos[path] = resolve_repo(name)
    return repos


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bot processes see only the .env of their folder, not this machine's settings."""
    keys = set(BotAppSettings.env_keys()) | PASS_THROUGH_KEYS
    for key in [*keys, "HUGGING_FACE_HUB_TOKEN", "TRANSFORMERS_OFFLINE", "IMAGE_FINDER_ENV_FILE"]:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="module")
def siglip_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A tiny model in Immich's layout whose open_clip config reads like SigLIP 2's: a Gemma
    tokenizer name (multilingual) and a logit bias (sigmoid loss)."""
    config = open_clip_config(
        hf_tokenizer_name="timm/ViT-B-16-SigLIP2", tokenizer_kwargs={"clean": "canonicalize"}
    )
    config["init_logit_bias"] = -10
    root = tmp_path_factory.mktemp("siglip") / "tiny"
    files = read_tree(write_immich_bundle(root, model_config=config))
    files["README.md"] = b"# tiny SigLIP 2\n"
    files["visual/fp16/model.armnn"] = b"\x00" * 64
    return files


@pytest.fixture
def hub(siglip_files: dict[str, bytes]) -> Iterator[HubStandin]:
    """The stand-in hub serving a bundle for every repository .env.example names."""
    with HubStandin() as standin:
        for repo in example_repos().values():
            standin.add_repo(repo, siglip_files)
        yield standin


def make_home(tmp_path: Path, **values: str) -> Path:
    """A folder as ``make run`` leaves it: ``.env`` copied from ``.env.example``, then edited."""
    home = tmp_path / "app"
    home.mkdir()
    text = EXAMPLE.read_text(encoding="utf-8")
    for key, value in values.items():
        text, count = re.subn(rf"(?m)^{key}=.*$", f"{key}={value}", text)
        assert count == 1, f"{key} is not a line of .env.example"
    (home / ".env").write_text(text, encoding="utf-8")
    return home


def process_env(tmp_path: Path) -> dict[str, str]:
    """What the processes need besides their .env: this source tree, a private HF_HOME."""
    return {
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "HF_HOME": str(tmp_path / "hf-home"),
    }


async def run_to_exit(args: list[str], home: Path, tmp_path: Path) -> tuple[int, list[str]]:
    async with BotProcess(args, env=process_env(tmp_path), cwd=home) as process:
        assert process.process is not None
        code = await process.process.wait()
        await process.stop()  # collects the rest of the output
    return code, [line for line in process.lines if line.strip()]


def test_env_example_models_can_all_be_pulled() -> None:
    repos = example_repos()
    assert repos, ".env.example configures no model"
    assert repos == {
        Path("models/ViT-B-32-SigLIP2-256__webli"): "immich-app/ViT-B-32-SigLIP2-256__webli"
    }


async def test_prepare_then_run_reaches_ready(
    telegram: FakeTelegramServer, hub: HubStandin, tmp_path: Path
) -> None:
    home = make_home(
        tmp_path,
        BOT_TOKEN=telegram.token,
        TELEGRAM_API_BASE=telegram.url,
        MODEL_HUB_URL=hub.url,
        EMBED_THREADS="1",
    )
    code, lines = await run_to_exit(["-m", "bot", "prepare"], home, tmp_path)
    assert code == 0, "\n".join(lines)
    assert lines[-1] == "configuration ok"
    for path, repo in example_repos().items():
        assert f"fetching {repo} from {hub.url}: 7 files, " in "\n".join(lines)
        bundle = load_bundle(home / path)
        assert bundle.layout == "immich" and bundle.config.multilingual  # ru and en
    assert not telegram.calls  # prepare never talks to Telegram
    fetched = len(hub.requests)

    async with BotProcess(["-m", "bot"], env=process_env(tmp_path), cwd=home) as process:
        ready = await process.wait_output(r"bot @(\w+) ready \(models: (.+)\)", timeout=60)
        assert ready.group(1) == "image_finder_test_bot"
        assert all(path.name in ready.group(2) for path in example_model_dirs())
        code = await process.stop()
    assert code == 0, process.output
    assert "Traceback" not in process.output
    assert len(hub.requests) == fetched  # the bot itself never goes to the hub


async def test_prepare_without_token_is_one_line(hub: HubStandin, tmp_path: Path) -> None:
    home = make_home(tmp_path, MODEL_HUB_URL=hub.url)  # BOT_TOKEN= as in .env.example
    code, lines = await run_to_exit(["-m", "bot", "prepare"], home, tmp_path)
    assert (code, lines) == (2, [NO_TOKEN])
    assert hub.requests == []  # nothing is downloaded for a bot that cannot start


async def test_prepare_with_the_hub_unreachable_names_the_model(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{unused_port()}"
    home = make_home(tmp_path, BOT_TOKEN="123456:secret", MODEL_HUB_URL=base)
    code, lines = await run_to_exit(["-m", "bot", "prepare"], home, tmp_path)
    assert code == 2, lines
    (path, repo), *_ = example_repos().items()
    assert lines[-1].startswith(f"error: could not download model {repo} from {base} (")
    assert lines[-1].endswith(
        "): check the connection, HF_ENDPOINT/MODEL_HUB_URL and proxies, or copy the bundle "
        f"into {home / path} (see README, section Models)"
    )
    assert [line for line in lines[:-1] if not line.startswith("fetching model ")] == []
    output = "\n".join(lines)
    assert "Traceback" not in output and "cannot be downloaded" not in output
    models = home / path.parent
    assert not models.exists() or list(models.iterdir()) == []  # no half bundle, no leftovers


def test_ruclip_is_not_downloadable_and_says_how_to_build_it(tmp_path: Path) -> None:
    target = tmp_path / "models" / "ruclip-vit-base-patch32-384-int8"
    data = DataSettings(model_dirs=[target])
    with pytest.raises(StartupError) as info:
        prepare_models(data, pull=lambda name, out: pytest.fail("pulled"), say=print)
    message = str(info.value)
    assert "\n" not in message and "ruCLIP has no published ONNX export" in message
    assert ruclip_commands(target) in message


@pytest.mark.parametrize(
    "directory", ["models/ruclip-vit-base-patch32-384", "models/ruclip-vit-base-patch32-384-int8"]
)
def test_ruclip_commands_are_the_readmes(directory: str) -> None:
    readme = re.sub(r"\s*\\\n\s*", " ", (ROOT / "README.md").read_text(encoding="utf-8"))
    for command in ruclip_commands(Path(directory)).split("; "):
        assert command in readme, command
