"""The container and service files: the Dockerfile, .dockerignore, compose.yaml and the systemd
unit hold what the README promises, the entry point runs what it should, and (opt-in, with an
image built by deploy/build-local-image.sh) the image polls a fake Telegram and passes its own
health check."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "deploy" / "docker-entrypoint.sh"
UNIT = ROOT / "deploy" / "image-finder.service"
BOT_API_DIR = "/var/lib/telegram-bot-api"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def args_of(instruction: str) -> list[str]:
    return [rest for word, rest in instructions() if word == instruction]


def test_dockerfile_builds_on_a_parameterised_python_base() -> None:
    steps = instructions()
    assert steps[0] == ("ARG", "BASE=python:3.11-slim-bookworm")
    assert all(rest.split()[0] == "${BASE}" for rest in args_of("FROM"))
    assert any("pip install -c requirements.lock ." in rest for rest in args_of("RUN"))


def test_dockerfile_runs_the_bot_as_a_user_with_data_and_models_in_volumes() -> None:
    assert args_of("USER") == ["image-finder"]
    env = " ".join(args_of("ENV"))
    assert "DATA_DIR=/data" in env
    dirs = re.search(r"MODEL_DIRS=(\S+)", env)
    assert dirs is not None and all(d.startswith("/models/") for d in dirs.group(1).split(","))
    assert args_of("VOLUME") == ['["/data", "/models"]']
    [health] = args_of("HEALTHCHECK")
    assert health.endswith('CMD ["image-finder-bot", "health"]')
    assert args_of("ENTRYPOINT") == ['["image-finder-entrypoint"]']
    assert "deploy/docker-entrypoint.sh /usr/local/bin/image-finder-entrypoint" in args_of("COPY")


def test_what_the_dockerfile_copies_is_in_the_build_context() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv*", "data", "models", ".env", ".pytest_cache", ".ruff_cache"} <= ignored
    for rest in args_of("COPY"):
        if rest.startswith("--from"):
            continue
        for source in rest.split()[:-1]:
            assert (ROOT / source).exists(), source
            assert source.split("/")[0] not in ignored, source
    assert os.access(ENTRYPOINT, os.X_OK)


def fake_bot(tmp_path: Path, code: int = 0) -> dict[str, str]:
    """An ``image-finder-bot`` that records its arguments: the environment to find it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "image-finder-bot"
    script.write_text(f'#!/bin/sh\necho "$*" >> "{tmp_path}/calls"\nexit {code}\n')
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def entrypoint(tmp_path: Path, *args: str, code: int = 0) -> tuple[int, list[str], str]:
    """Run the entry point with the fake bot: exit code, the bot's calls, stdout."""
    env = fake_bot(tmp_path, code)
    done = subprocess.run(
        ["sh", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=30
    )
    calls = tmp_path / "calls"
    lines = calls.read_text().splitlines() if calls.exists() else []
    calls.unlink(missing_ok=True)
    return done.returncode, lines, done.stdout


def test_entrypoint_fetches_models_then_runs_the_bot(tmp_path: Path) -> None:
    assert entrypoint(tmp_path) == (0, ["prepare", "run"], "")
    assert entrypoint(tmp_path, "run", "--env-file", "/c/bot.env")[1] == [
        "prepare --env-file /c/bot.env",
        "run --env-file /c/bot.env",
    ]


def test_entrypoint_runs_a_worker_after_fetching_its_models(tmp_path: Path) -> None:
    assert entrypoint(tmp_path, "worker") == (0, ["prepare", "worker"], "")


def test_entrypoint_does_not_start_the_bot_when_prepare_fails(tmp_path: Path) -> None:
    assert entrypoint(tmp_path, code=2) == (2, ["prepare"], "")


def test_entrypoint_passes_bot_commands_and_runs_anything_else(tmp_path: Path) -> None:
    assert entrypoint(tmp_path, "health") == (0, ["health"], "")
    assert entrypoint(tmp_path, "check") == (0, ["check"], "")
    assert entrypoint(tmp_path, "echo", "indexing") == (0, [], "indexing\n")


def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_runs_the_bot_with_its_volumes_settings_and_health_check() -> None:
    bot = compose()["services"]["bot"]
    assert bot["build"]["context"] == "."
    assert bot["env_file"] == ".env"
    assert {"data:/data", "models:/models"} <= set(bot["volumes"])
    assert bot["healthcheck"]["test"] == ["CMD", "image-finder-bot", "health"]
    assert bot["restart"] == "unless-stopped"
    assert "profiles" not in bot  # it always runs


def test_compose_local_api_profile_shares_the_bot_api_files_at_the_same_path() -> None:
    spec = compose()
    api = spec["services"]["telegram-bot-api"]
    bot = spec["services"]["bot"]
    assert api["profiles"] == ["local-api"]
    assert api["environment"]["TELEGRAM_LOCAL"] == "1"
    assert {"TELEGRAM_API_ID", "TELEGRAM_API_HASH"} <= set(api["environment"])
    assert f"telegram-bot-api:{BOT_API_DIR}" in api["volumes"]
    assert f"telegram-bot-api:{BOT_API_DIR}:ro" in bot["volumes"]
    assert bot["depends_on"]["telegram-bot-api"]["required"] is False  # optional without it
    assert api["restart"] == "unless-stopped" and "test" in api["healthcheck"]
    assert set(spec["volumes"]) == {"data", "models", "telegram-bot-api", "postgres"}


def test_compose_scale_profile_runs_postgres_and_workers_from_the_bot_image() -> None:
    spec = compose()
    pg, worker, bot = (spec["services"][k] for k in ("postgres", "worker", "bot"))
    assert pg["profiles"] == worker["profiles"] == ["scale"]
    assert worker["image"] == bot["image"] and worker["command"] == ["worker"]
    assert worker["env_file"] == ".env" and "models:/models" in worker["volumes"]
    assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "C.UTF-8" in pg["environment"]["POSTGRES_INITDB_ARGS"]  # Cyrillic case folding
    assert "postgres:/var/lib/postgresql/data" in pg["volumes"]


def unit() -> dict[str, list[str]]:
    """Key -> values of the systemd unit (keys may repeat)."""
    keys: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def test_unit_runs_prepare_then_the_bot_as_its_own_user_hardened() -> None:
    keys = unit()
    assert keys["User"] == ["image-finder"]
    assert keys["WorkingDirectory"] == ["/var/lib/image-finder"]
    bot = "/opt/image-finder/bin/image-finder-bot --env-file /etc/image-finder/bot.env"
    assert keys["ExecStartPre"] == [f"{bot} prepare"]
    assert keys["ExecStart"] == [bot]
    assert keys["Restart"] == ["on-failure"]
    assert keys["ProtectSystem"] == ["strict"] and keys["NoNewPrivileges"] == ["yes"]
    writable = keys["ReadWritePaths"][0].split()
    assert writable == ["-/var/lib/image-finder/data", "-/var/lib/image-finder/models"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """``verify`` wants the commands to exist: they point at /bin/true here, the rest as is."""
    text = UNIT.read_text(encoding="utf-8").replace(
        "/opt/image-finder/bin/image-finder-bot", "/bin/true"
    )
    copy = tmp_path / UNIT.name
    copy.write_text(text, encoding="utf-8")
    done = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert not done.stderr.strip(), done.stderr


# --- the built image (opt-in) -----------------------------------------------------------------

IMAGE = os.environ.get("IMAGE_FINDER_IMAGE")
# e.g. "--runtime runc" before `run`, and "--ulimit nofile=20000:20000" after it, where the
# sandbox needs them (deploy/build-local-image.sh passes what it found).
PODMAN = shlex.split(os.environ.get("IMAGE_FINDER_PODMAN", "podman"))
RUN_FLAGS = shlex.split(os.environ.get("IMAGE_FINDER_RUN_FLAGS", ""))


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not IMAGE, reason="set IMAGE_FINDER_IMAGE to a built image")
async def test_image_polls_telegram_and_passes_its_health_check(tmp_path: Path) -> None:
    from tests.e2e.fake_telegram import FakeTelegramServer
    from tests.e2e.harness import BotProcess, bot_env

    name = f"image-finder-test-{uuid.uuid4().hex[:8]}"
    models = ROOT / "tests" / "fixtures" / "models"
    async with FakeTelegramServer() as telegram:
        env = bot_env(
            telegram,
            MODEL_DIRS="/models/clip-fixture,/models/ruclip-fixture",
            POLLING_TIMEOUT_S="1",
        )
        run = [*PODMAN[1:], "run", "--rm", "--name", name, "--network", "host", *RUN_FLAGS]
        run += ["-v", f"{models}:/models:ro"]
        for key, value in env.items():
            run += ["-e", f"{key}={value}"]
        container = BotProcess([*run, str(IMAGE)], python=PODMAN[0])
        async with container:
            await container.wait_output(r"bot @\w+ ready", timeout=180)
            alice = telegram.user(1001, "Alice", "en")
            telegram.send_command(alice, "start")
            assert "Alice" in ((await telegram.next_message(alice.chat_id)).text or "")
            checked = await asyncio.to_thread(podman, "healthcheck", "run", name)
            assert checked.returncode == 0, checked.stdout + checked.stderr
            said = await asyncio.to_thread(podman, "exec", name, "image-finder-bot", "health")
            assert said.stdout.startswith("healthy: polling"), said.stdout + said.stderr
            stopped = await asyncio.to_thread(podman, "stop", "-t", "30", name)
            assert stopped.returncode == 0, stopped.stderr
            assert container.process is not None
            assert await container.process.wait() == 0, container.output
        assert "bot stopped" in container.output
