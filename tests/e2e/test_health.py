"""``python -m bot health`` end to end: the real ``python -m bot`` process against the fake
Telegram server is healthy while it polls or serves its webhook, and unhealthy when polling
hangs, after a crash and after a stop; plus the heartbeat's own rules, in-process."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config import BotAppSettings
from bot.health import Heartbeat, check, healthz_url, heartbeat_path
from tests.e2e.fake_telegram import FakeTelegramServer
from tests.e2e.harness import BotProcess
from tests.e2e.test_commands import process_env as commands_process_env

# The bot's long-poll wait in these tests: staleness (three of them) comes in seconds.
POLLING_TIMEOUT_S = "1"


def process_env(telegram: FakeTelegramServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The real process's environment of the command tests, with a short long-poll wait."""
    values = {"POLLING_TIMEOUT_S": POLLING_TIMEOUT_S, "IMAGE_FINDER_ENV_FILE": "", **extra}
    return commands_process_env(telegram, tmp_path, **values)


async def health(env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run ``python -m bot health`` with the bot's environment: its exit code and output."""
    async with BotProcess(["-m", "bot", "health"], env=env, cwd=cwd) as process:
        assert process.process is not None
        code = await process.process.wait()
    await process.stop()  # joins the output reader
    return code, process.output


def heartbeat(tmp_path: Path) -> dict[str, Any]:
    return json.loads(heartbeat_path(tmp_path / "data").read_text(encoding="utf-8"))


async def until_stale(tmp_path: Path) -> None:
    """Wait out the heartbeat's own bound. Staleness is the passing of time, not an event, so
    this is a sleep: as long as the record says, and a little more."""
    record = heartbeat(tmp_path)
    await asyncio.sleep(max(0.0, record["at"] + record["stale_after_s"] - time.time()) + 0.3)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_polling_bot_is_healthy_until_polling_hangs_or_the_process_dies(
    telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    env = process_env(telegram, tmp_path)
    assert (await health(env, tmp_path))[0] == 1  # nothing runs yet
    async with BotProcess(["-m", "bot"], env=env, cwd=tmp_path) as bot:
        await bot.wait_output(r"bot @\w+ ready", timeout=60)
        code, out = await health(env, tmp_path)
        assert (code, out.startswith("healthy: polling, last getUpdates")) == (0, True), out
        record = heartbeat(tmp_path)
        assert record["mode"] == "polling" and record["pid"] == bot.process.pid  # type: ignore[union-attr]

        # The Bot API stops answering getUpdates while the process lives on: a hung bot.
        gate = telegram.hold("getUpdates")
        await gate.arrived(1, timeout=30)
        await until_stale(tmp_path)
        code, out = await health(env, tmp_path)
        assert code == 1 and "unhealthy: stale heartbeat: last getUpdates" in out, out
        assert len(out.splitlines()) == 1

        mark = len(telegram.calls)
        gate.release()
        await telegram.wait_poll(since=mark, timeout=30)  # the held one returned and beat
        code, out = await health(env, tmp_path)
        assert code == 0, out

        assert await bot.kill() != 0  # a crash: nothing cleans up
    await until_stale(tmp_path)
    code, out = await health(env, tmp_path)
    assert code == 1 and "stale heartbeat" in out, out


async def test_webhook_bot_answers_healthz_and_clears_its_heartbeat_on_stop(
    telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    port = free_port()
    env = process_env(
        telegram,
        tmp_path,
        WEBHOOK_URL=f"http://127.0.0.1:{port}",
        WEBHOOK_PATH="/tg",
        WEBHOOK_HOST="127.0.0.1",
        WEBHOOK_PORT=str(port),
    )
    async with BotProcess(["-m", "bot"], env=env, cwd=tmp_path) as bot:
        await bot.wait_output(r"bot @\w+ ready", timeout=60)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            assert (response.status, await response.text()) == (200, "ok\n")
        code, out = await health(env, tmp_path)
        assert code == 0 and out.startswith("healthy: webhook"), out
        assert heartbeat(tmp_path)["url"] == f"http://127.0.0.1:{port}/healthz"
        assert await bot.stop() == 0, bot.output
    code, out = await health(env, tmp_path)
    assert code == 1 and out.startswith("unhealthy: no heartbeat at"), out


# --- the heartbeat's rules, in-process ------------------------------------------------------


def test_a_webhook_that_does_not_answer_is_unhealthy(tmp_path: Path) -> None:
    """A fresh heartbeat is not enough in webhook mode: the server must answer /healthz."""
    settings = BotAppSettings(
        _env_file=None,
        data_dir=tmp_path,
        webhook_url="https://example.org",
        webhook_port=free_port(),
    )
    beat = Heartbeat.for_settings(settings)
    beat.beat()
    verdict = check(tmp_path)
    assert not verdict.healthy
    assert verdict.reason.startswith(f"webhook server at {beat.url} is not answering")


def test_heartbeats_are_throttled_and_written_whole(tmp_path: Path) -> None:
    now = [1000.0]
    beat = Heartbeat(tmp_path, mode="polling", period=10, clock=lambda: now[0])
    beat.beat()
    now[0] += 0.5
    beat.beat()  # a busy bot: not written again within a second
    assert heartbeat_path(tmp_path).read_text(encoding="utf-8").count("{") == 1
    assert json.loads(heartbeat_path(tmp_path).read_text())["at"] == 1000.0
    assert not list(tmp_path.glob("*.tmp"))
    assert check(tmp_path, now=1000.0 + 30).healthy
    assert not check(tmp_path, now=1000.0 + 31).healthy  # three polling timeouts
    beat.clear()
    assert check(tmp_path).reason.startswith("no heartbeat")


def test_an_unreadable_heartbeat_is_unhealthy(tmp_path: Path) -> None:
    heartbeat_path(tmp_path).write_text("{half a fi", encoding="utf-8")
    verdict = check(tmp_path)
    assert not verdict.healthy and verdict.reason.startswith("unreadable heartbeat")


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:8080/healthz"),
        ("::", "http://[::1]:8080/healthz"),
        ("127.0.0.2", "http://127.0.0.2:8080/healthz"),
        ("bot.internal", "http://bot.internal:8080/healthz"),
    ],
)
def test_healthz_is_probed_on_this_machine(host: str, url: str) -> None:
    assert healthz_url(BotAppSettings(_env_file=None, webhook_host=host, webhook_port=8080)) == url
