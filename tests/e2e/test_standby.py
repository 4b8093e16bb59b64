"""Two ``python -m bot`` processes polling one bot on one PostgreSQL schema: one polls, the other
waits as a hot standby; killed with SIGKILL, the active one is replaced within seconds and no
message is answered twice."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.fake_telegram import FakeTelegramServer, FakeUser
from tests.e2e.harness import BotProcess
from tests.e2e.test_commands import process_env
from tests.postgres_support import fresh_schema

RETRY_S = "0.3"


def replica_env(
    telegram: FakeTelegramServer, tmp_path: Path, url: str, name: str
) -> dict[str, str]:
    base = tmp_path / name
    base.mkdir()
    env = process_env(
        telegram,
        tmp_path,
        DATABASE_URL=url,
        INGEST_REMOTE="false",
        BOT_STANDBY_RETRY_S=RETRY_S,
        POLLING_TIMEOUT_S="1",
        IMAGE_FINDER_ENV_FILE="",
    )
    env["DATA_DIR"] = str(base / "data")  # its own heartbeat and index cache
    return env


async def test_the_standby_takes_over_when_the_active_replica_is_killed(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    with fresh_schema() as url:
        first = BotProcess(
            ["-m", "bot"], env=replica_env(telegram, tmp_path, url, "a"), cwd=tmp_path
        )
        second = BotProcess(
            ["-m", "bot"], env=replica_env(telegram, tmp_path, url, "b"), cwd=tmp_path
        )
        async with first:
            await first.wait_output(r"active: polling", timeout=120)
            async with second:
                await second.wait_output(r"standby: waiting for the active replica", timeout=120)
                await second.wait_output(r"bot @\w+ ready", timeout=30)

                asked = telegram.send_command(alice, "start")
                answer = await telegram.next_message(alice.chat_id, timeout=30)
                assert "Alice" in (answer.text or "")
                await telegram.wait_confirmed(asked)  # Telegram would not send it again
                assert "active: polling" not in second.output  # only one replica polls

                assert await first.kill() != 0
                await second.wait_output(r"active: polling", timeout=10)
                again = telegram.send_command(alice, "start")
                reply = await telegram.next_message(alice.chat_id, timeout=30)
                assert reply.text == answer.text
                await telegram.wait_confirmed(again)
                assert await second.stop() == 0, second.output

    assert len(telegram.messages(alice.chat_id)) == 2  # one answer each, none twice
    assert "Traceback" not in first.output + second.output
