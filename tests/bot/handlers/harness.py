"""The production dispatcher on a mocked Bot API and a scripted engine: updates go in through
``Dispatcher.feed_update``, and what the bot did is read back from the mocked session.

    async with handler_app(tmp_path) as app:
        await app.feed(app.updates.text(alice, "/start"))
        assert app.telegram.sent_texts(alice.id) == [t("commands-start", "en", name="Alice")]

The Bot, the services and the Dispatcher come from the same factories as in production
(:func:`bot.app.create_bot`, :func:`bot.app.create_dispatcher`), so the middlewares (owners,
languages, ALLOWED_USERS), the router order and the error handler are the real ones. There is
no HTTP, no polling and no model: see :mod:`tests.bot.handlers.fakes`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.types import Update

from bot.app import create_bot, create_dispatcher
from bot.config import BotAppSettings
from bot.services import BotServices
from core.engine.engine import Engine
from storage.records import Owner, OwnerKind
from tests.bot.handlers.fakes import ScriptedPipeline, ScriptedSearch, open_engine
from tests.bot.handlers.updates import Updates
from tests.bot.mocked_bot import BOT_USERNAME, TOKEN, MockedSession


def handler_settings(data_dir: Path, **overrides: Any) -> BotAppSettings:
    """No .env, no send pacing, albums answered after 10 ms of quiet, fast retries."""
    values: dict[str, Any] = {
        "bot_token": TOKEN,
        "data_dir": data_dir,
        "album_wait_s": 0.01,
        "send_pace_per_chat_s": 0.0,
        "send_group_limit": 0,
        "telegram_retry_backoff_s": 0.01,
    }
    values.update(overrides)
    return BotAppSettings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class HandlerApp:
    """One bot under test: feed it updates, then look at :attr:`telegram`."""

    settings: BotAppSettings
    bot: Bot
    telegram: MockedSession
    engine: Engine
    search: ScriptedSearch
    pipeline: ScriptedPipeline
    dispatcher: Dispatcher
    updates: Updates = field(default_factory=Updates)
    stopped: bool = False

    async def feed(self, update: Update) -> Any:
        """Handle one update to the end, as polling would (errors propagate to the test)."""
        return await self.dispatcher.feed_update(self.bot, update)

    async def owner(self, kind: OwnerKind, external_id: int) -> Owner:
        """The owner of a user (``"user"``) or a group (``"chat"``), created if need be."""
        return await self.engine.owners.ensure(kind, external_id)

    async def shutdown(self) -> None:
        """What stopping the bot runs: answers still waiting are sent, background work ends.
        Runs once; the fixture's teardown calls it too."""
        if self.stopped:
            return
        self.stopped = True
        dp = self.dispatcher
        # what Dispatcher.start_polling passes its shutdown hooks
        await dp.emit_shutdown(bot=self.bot, dispatcher=dp, bots=[self.bot], **dp.workflow_data)


@contextlib.asynccontextmanager
async def handler_app(data_dir: Path, **overrides: Any) -> AsyncIterator[HandlerApp]:
    """A :class:`HandlerApp` over a fresh database in ``data_dir`` (``overrides``: settings)."""
    settings = handler_settings(data_dir, **overrides)
    session = MockedSession()
    bot = create_bot(settings, session=session)  # type: ignore[arg-type]
    search = ScriptedSearch()
    engine, pipeline = await open_engine(settings, search)
    try:
        services = BotServices(settings, engine, bot, bot_username=BOT_USERNAME)
        dispatcher = create_dispatcher(settings, services)
        app = HandlerApp(settings, bot, session, engine, search, pipeline, dispatcher)
        try:
            yield app
        finally:
            await app.shutdown()
    finally:
        await engine.close()
        await bot.session.close()
