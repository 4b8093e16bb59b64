"""The whole bot, in-process, against the fake Telegram server: settings, engine, dispatcher and
the real polling loop, built with the production factories.

    async with running_bot(telegram, tmp_path) as app:
        telegram.send_command(alice, "start")
        reply = await telegram.next_message(alice.chat_id)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher

from bot.app import (
    LateOutcomeListener,
    create_bot,
    create_dispatcher,
    make_fetch,
    make_outcome_listener,
    set_commands,
)
from bot.services import BotServices
from core.engine.engine import Engine
from core.ingest.pipeline import Fetch
from core.settings import Settings
from tests.e2e.fake_telegram import FakeTelegramServer
from tests.e2e.harness import PollingRun, polling

FIXTURE_MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def model_dirs(tmp_path: Path) -> list[Path]:
    """The trained fixture bundles (English CLIP + Russian ruCLIP) when present; otherwise one
    tiny generated bundle, enough for everything that does not judge search quality."""
    dirs = [FIXTURE_MODELS / "clip-fixture", FIXTURE_MODELS / "ruclip-fixture"]
    if all((d / "config.json").is_file() for d in dirs):
        return dirs
    from tests.core.onnx_builders import write_bundle

    tiny = tmp_path / "models" / "tiny"
    if not (tiny / "config.json").is_file():
        write_bundle(tiny, languages=("en", "ru"))
    return [tiny]


def bot_settings(server: FakeTelegramServer, data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a bot on the fake: no .env, fast retries, no send pacing, short albums."""
    values: dict[str, Any] = {
        "bot_token": server.token,
        "telegram_api_base": server.url,
        "telegram_api_local": server.local_dir is not None,
        "data_dir": data_dir / "data",
        "model_dirs": model_dirs(data_dir),
        "embed_threads": 1,
        "album_wait_s": 0.2,
        "send_pace_per_chat_s": 0.0,
        "telegram_retry_backoff_s": 0.01,
        "ingest_retry_backoff_s": 0.01,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class BotApp:
    settings: Settings
    bot: Bot
    engine: Engine
    services: BotServices
    dispatcher: Dispatcher
    run: PollingRun

    async def settle(self, update: Any = None, server: FakeTelegramServer | None = None) -> None:
        """Wait until every update handed to the dispatcher has been handled (given ``update``
        and ``server``, first until that update was acknowledged, i.e. handed over)."""
        if update is not None and server is not None:
            await server.wait_confirmed(update)
        while True:
            tasks = [
                t for t in getattr(self.dispatcher, "_handle_update_tasks", ()) if not t.done()
            ]
            if not tasks:
                return
            await asyncio.wait(tasks)


@contextlib.asynccontextmanager
async def running_bot(
    server: FakeTelegramServer,
    tmp_path: Path,
    *,
    fetch: Fetch | None = None,
    commands: bool = False,
    allow_log_errors: Iterable[str] = (),
    **overrides: Any,
) -> AsyncIterator[BotApp]:
    """Engine + bot + dispatcher polling the fake for the duration of the block."""
    settings = bot_settings(server, tmp_path, **overrides)
    bot = create_bot(settings)
    listener = LateOutcomeListener()
    try:
        engine = await Engine.open(
            settings, fetch=fetch or make_fetch(bot, settings), on_outcome=listener
        )
        try:
            services = BotServices(settings, engine, bot)
            listener.bind(make_outcome_listener(services))
            dispatcher = create_dispatcher(settings, services)
            if commands:
                await set_commands(bot)
            async with polling(dispatcher, bot, server, allow_log_errors=allow_log_errors) as run:
                yield BotApp(settings, bot, engine, services, dispatcher, run)
        finally:
            listener.bind(None)
            await engine.close()
    finally:
        await bot.session.close()
