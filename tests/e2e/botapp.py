"""The whole bot, in-process, against the fake Telegram server: the production wiring
(:func:`bot.app.open_bot_app`: engine, outcome listener, services, dispatcher) and the real
polling loop, plus helpers to fill a collection and read the bot's answers.

    async with running_bot(telegram, tmp_path) as app:
        telegram.send_command(alice, "start")
        reply = await telegram.next_message(alice.chat_id)

:func:`running_search_bot` is the same bot with the settings of :mod:`tests.e2e.search_support`
(fixture models chosen by ``quality``). Items are put into a collection the way the bot's ingest
would, minus the chat message: the file is registered with the fake (so its ``file_id`` is real
there and can be downloaded and sent back) and submitted to the engine's ingest pipeline, whose
fetch downloads it from the fake.

The settings builders take DATABASE_URL from :mod:`tests.e2e.backends`: the in-process bot of a
test runs on SQLite and again on PostgreSQL (``tests/e2e/conftest.py`` decides which tests).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher

from bot.app import open_bot_app, set_commands
from bot.config import BotAppSettings
from bot.services import BotServices
from core.engine.engine import Engine
from core.ingest.pipeline import Fetch, IngestOutcome, IngestRequest
from tests.e2e.backends import database_url
from tests.e2e.fake_telegram import FakeTelegramServer, FakeUser, StoredFile
from tests.e2e.harness import PollingRun, polling
from tests.e2e.search_support import SHAPES, Answer, Seeded, make_settings, shape_jpeg

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


def photo_request(owner_id: int, stored: StoredFile) -> IngestRequest:
    """The request a handler makes of a photo the fake server stores."""
    return IngestRequest.of(
        owner_id,
        "photo",
        stored.file_unique_id,
        file_id=stored.file_id,
        size=stored.file_size,
        width=stored.width,
        height=stored.height,
    )


def bot_settings(server: FakeTelegramServer, data_dir: Path, **overrides: Any) -> BotAppSettings:
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
    values.setdefault("database_url", database_url(Path(values["data_dir"])))
    return BotAppSettings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class BotApp:
    """A bot polling the fake: its parts, and helpers for collections and answers."""

    server: FakeTelegramServer
    settings: BotAppSettings
    bot: Bot
    engine: Engine
    services: BotServices
    dispatcher: Dispatcher
    run: PollingRun
    _cursor: dict[int, int] = field(default_factory=dict)

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

    async def handled(self, update: Any) -> None:
        """Wait until the bot took ``update`` (a builder's return value) and every handler
        running has finished: after this, whatever the bot was going to say directly is said."""
        await self.settle(update, self.server)

    # --- collections ----------------------------------------------------------------------------

    async def owner_id(self, user: FakeUser) -> int:
        return (await self.engine.db.owners.ensure("user", user.id)).id

    async def count(self, user: FakeUser) -> int:
        return (await self.engine.db.owner(await self.owner_id(user)).stats()).media_total

    async def submit(self, request: IngestRequest) -> IngestOutcome:
        """Ingest one item as a handler would: a live job, so the outcome listener does not
        report it as work finished after a restart."""
        ticket = await self.engine.library.submit(request)
        self.services.live_jobs.add(ticket.job_id)
        return await ticket.result()

    def register_photo(self, data: bytes) -> StoredFile:
        """Make the fake know a photo (all its sizes); returns the largest size."""
        return self.server._register_photo(data)[-1]

    async def seed_photo(self, user: FakeUser | int, data: bytes) -> Seeded:
        """Put a photo into a user's collection (or an owner id's) straight through the engine."""
        stored = self.register_photo(data)
        owner = user if isinstance(user, int) else await self.owner_id(user)
        outcome = await self.submit(photo_request(owner, stored))
        assert outcome.status == "saved", outcome
        assert outcome.media_id is not None
        return Seeded(stored, outcome.media_id)

    async def seed_shapes(
        self, user: FakeUser, shapes: Iterable[tuple[str, str]] = SHAPES, *, seed: int = 100
    ) -> dict[tuple[str, str], Seeded]:
        out = {}
        for i, (colour, shape) in enumerate(shapes):
            out[(colour, shape)] = await self.seed_photo(
                user, shape_jpeg(colour, shape, seed=seed + i)
            )
        return out

    async def seed_video(
        self, user: FakeUser, data: bytes, *, duration: int, width: int, height: int
    ) -> Seeded:
        stored = self.server._register_file(
            "video",
            data,
            duration=duration,
            width=width,
            height=height,
            file_name="clip.mp4",
            mime_type="video/mp4",
        )
        outcome = await self.submit(
            IngestRequest.of(
                await self.owner_id(user),
                "video",
                stored.file_unique_id,
                file_id=stored.file_id,
                size=stored.file_size,
                width=width,
                height=height,
                duration=float(duration),
                mime="video/mp4",
            )
        )
        assert outcome.status == "saved", outcome
        assert outcome.media_id is not None
        return Seeded(stored, outcome.media_id)

    async def set_owner(self, user: FakeUser, **settings: Any) -> None:
        await self.engine.db.owner(await self.owner_id(user)).profile.update_settings(settings)

    # --- answers --------------------------------------------------------------------------------

    async def answer(self, user: FakeUser, *, timeout: float = 20.0) -> Answer:
        """The bot's next answer in the user's chat: media messages up to a text message."""
        return await self.answer_in(user.chat_id, timeout=timeout)

    def skip_sent(self, user: FakeUser) -> None:
        """Forget what was sent so far: the next :meth:`answer` starts after it."""
        self.skip_sent_in(user.chat_id)

    async def ask(self, user: FakeUser, text: str) -> Answer:
        self.skip_sent(user)
        self.server.send_text(user, text)
        return await self.answer(user)

    # --- any chat (groups) ----------------------------------------------------------------------

    async def chat_owner_id(self, chat_id: int) -> int:
        """The collection of a group: the chat's owner, whoever posted."""
        return (await self.engine.db.owners.ensure("chat", chat_id)).id

    async def chat_count(self, chat_id: int) -> int:
        owner = await self.chat_owner_id(chat_id)
        return (await self.engine.db.owner(owner).stats()).media_total

    async def answer_in(self, chat_id: int, *, timeout: float = 20.0) -> Answer:
        """Like :meth:`answer`, in any chat: a group's, or a user's private one (same cursor)."""
        start = self._cursor.get(chat_id, 0)

        def ready(server: FakeTelegramServer) -> Answer | None:
            sent = server.messages(chat_id, include_deleted=True)[start:]
            for i, message in enumerate(sent):
                if message.kind == "text":
                    self._cursor[chat_id] = start + i + 1
                    return Answer(sent[:i], message)
            return None

        return await self.server.wait_for(ready, timeout=timeout, what=f"an answer in {chat_id}")

    def skip_sent_in(self, chat_id: int) -> None:
        self._cursor[chat_id] = len(self.server.messages(chat_id, include_deleted=True))


@contextlib.asynccontextmanager
async def running(
    server: FakeTelegramServer,
    settings: BotAppSettings,
    *,
    fetch: Fetch | None = None,
    commands: bool = False,
    allow_log_errors: Iterable[str] = (),
) -> AsyncIterator[BotApp]:
    """The bot as ``python -m bot`` wires it (:func:`~bot.app.open_bot_app`), polling the fake
    for the duration of the block; ``commands``: also set the command menu, as start-up does."""
    async with open_bot_app(settings, fetch=fetch) as app:
        if commands:
            await set_commands(app.bot)
        async with polling(
            app.dispatcher, app.bot, server, allow_log_errors=allow_log_errors
        ) as run:
            yield BotApp(server, settings, app.bot, app.engine, app.services, app.dispatcher, run)


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
    """:func:`running` with :func:`bot_settings` (data and models under ``tmp_path``)."""
    settings = bot_settings(server, tmp_path, **overrides)
    async with running(
        server, settings, fetch=fetch, commands=commands, allow_log_errors=allow_log_errors
    ) as app:
        yield app


@contextlib.asynccontextmanager
async def running_search_bot(
    server: FakeTelegramServer,
    data_dir: Path,
    *,
    quality: bool = True,
    allow_log_errors: Iterable[str] = (),
    **overrides: Any,
) -> AsyncIterator[BotApp]:
    """:func:`running` with the search tests' settings (:func:`~tests.e2e.search_support.
    make_settings`). ``quality``: the test judges ranking, so it needs the trained fixture
    models."""
    settings = make_settings(server, data_dir, quality=quality, **overrides)
    async with running(server, settings, allow_log_errors=allow_log_errors) as app:
        yield app
