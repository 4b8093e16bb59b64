"""The real bot (engine with the fixture models, dispatcher, polling) against the fake server,
plus helpers to fill a collection and read the bot's answers.

Items are put into a collection the way the bot's ingest would, minus the chat message: the
file is registered with the fake (so its ``file_id`` is real there and can be downloaded and
sent back) and submitted to the engine's ingest pipeline, whose fetch downloads it from the fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiogram import Bot, Dispatcher
from PIL import Image

from bot.app import create_bot, create_dispatcher, make_fetch
from bot.services import BotServices
from core.engine.engine import Engine
from core.ingest.pipeline import IngestOutcome, IngestRequest
from core.settings import Settings
from tests.e2e.fake_telegram import FakeTelegramServer, FakeUser, SentMessage, StoredFile
from tests.e2e.harness import polling

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models"
BUNDLES = ("clip-fixture", "ruclip-fixture")

# What the collections hold in most tests: (colour, shape) rendered by the fixture trainer. One
# blue item only: the small fixture models tell colours apart far better than shapes.
SHAPES: tuple[tuple[str, str], ...] = (
    ("blue", "square"),
    ("red", "square"),
    ("green", "square"),
    ("yellow", "circle"),
    ("red", "circle"),
    ("green", "triangle"),
    ("red", "star"),
    ("purple", "star"),
)


def fixture_models_present() -> bool:
    return all((FIXTURES / n / "config.json").is_file() for n in BUNDLES)


def model_dirs(work: Path, *, quality: bool) -> list[Path]:
    """A test that judges ranking (``quality``) gets the trained fixture bundles, and skips
    without them. Any other runs on a small generated model whose every score passes the
    relevance floor, so its answers always have hits (their order means nothing) whatever the
    fixture models' calibration."""
    if quality:
        if not fixture_models_present():
            pytest.skip(
                f"fixture models missing in {FIXTURES} (python -m tools train-fixture)"
            )
        return [FIXTURES / name for name in BUNDLES]
    from tests.core.onnx_builders import write_bundle

    tiny = work / "tiny-model"
    if not (tiny / "config.json").is_file():
        write_bundle(tiny, languages=("en", "ru"), relevance_floor=-1.0)
    return [tiny]


def shape_jpeg(
    colour: str, shape: str, *, seed: int = 0, size: tuple[int, int] = (320, 240)
) -> bytes:
    """A photo of one coloured shape, as a camera (or Telegram) would deliver it: JPEG."""
    from tests.fixtures.tooling.shapes import render_shape_photo

    buf = io.BytesIO()
    render_shape_photo(colour, shape, seed=seed, size=size).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def scenes_mp4(path: Path, scenes: Iterable[tuple[float, Image.Image]], *, fps: int = 10) -> bytes:
    """An MP4 (mp4v) of still scenes: ``(seconds, picture)`` one after the other."""
    import cv2

    scenes = list(scenes)
    w, h = scenes[0][1].size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened(), "cannot write mp4v video here"
    try:
        for seconds, picture in scenes:
            frame = cv2.cvtColor(np.asarray(picture.convert("RGB")), cv2.COLOR_RGB2BGR)
            for _ in range(round(seconds * fps)):
                writer.write(frame)
    finally:
        writer.release()
    return path.read_bytes()


@dataclass(frozen=True)
class Seeded:
    """One item put into a collection: the file the fake knows and the stored media id."""

    file: StoredFile
    media_id: int

    @property
    def file_id(self) -> str:
        return self.file.file_id


@dataclass
class Answer:
    """What the bot sent for one query: the media messages, then the closing text message."""

    media: list[SentMessage]
    text: SentMessage

    @property
    def file_ids(self) -> list[str]:
        return [m.file_id for m in self.media if m.file_id]


@dataclass
class BotApp:
    server: FakeTelegramServer
    settings: Settings
    engine: Engine
    services: BotServices
    bot: Bot
    dp: Dispatcher
    _cursor: dict[int, int] = field(default_factory=dict)

    # --- collections ----------------------------------------------------------------------------

    async def owner_id(self, user: FakeUser) -> int:
        return (await self.engine.db.owners.ensure("user", user.id)).id

    async def count(self, user: FakeUser) -> int:
        return (await self.engine.db.owner(await self.owner_id(user)).stats()).media_total

    async def submit(self, request: IngestRequest) -> IngestOutcome:
        assert self.engine.pipeline is not None
        ticket = await self.engine.pipeline.submit(request)
        return await ticket.result()

    def register_photo(self, data: bytes) -> StoredFile:
        """Make the fake know a photo (all its sizes); returns the largest size."""
        return self.server._register_photo(data)[-1]

    async def seed_photo(self, user: FakeUser | int, data: bytes) -> Seeded:
        """Put a photo into a user's collection (or an owner id's) straight through the engine."""
        stored = self.register_photo(data)
        owner = user if isinstance(user, int) else await self.owner_id(user)
        outcome = await self.submit(
            IngestRequest.of(
                owner,
                "photo",
                stored.file_unique_id,
                file_id=stored.file_id,
                size=stored.file_size,
                width=stored.width,
                height=stored.height,
            )
        )
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

    async def handled(self, update: Any) -> None:
        """Wait until the bot took ``update`` (a builder's return value) and every handler
        running has finished: after this, whatever the bot was going to say directly is said."""
        await self.server.wait_confirmed(update)
        while True:
            tasks = [t for t in getattr(self.dp, "_handle_update_tasks", ()) if not t.done()]
            if not tasks:
                return
            await asyncio.wait(tasks)


def make_settings(
    server: FakeTelegramServer, data_dir: Path, *, quality: bool = True, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "bot_token": server.token,
        "telegram_api_base": server.url,
        "data_dir": data_dir,
        "model_dirs": model_dirs(data_dir.parent, quality=quality),
        "embed_threads": 1,
        "send_pace_per_chat_s": 0.0,
        "album_wait_s": 0.1,
        "telegram_retry_backoff_s": 0.0,
        "ingest_retry_backoff_s": 0.0,
        "index_memory_budget_mb": 64,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def running_bot(
    server: FakeTelegramServer,
    data_dir: Path,
    *,
    quality: bool = True,
    allow_log_errors: Iterable[str] = (),
    **overrides: Any,
) -> AsyncIterator[BotApp]:
    """The bot as ``python -m bot`` wires it, polling the fake for the duration of the block.
    ``quality``: the test judges ranking, so it needs the trained fixture models."""
    settings = make_settings(server, data_dir, quality=quality, **overrides)
    bot = create_bot(settings)
    try:
        engine = await Engine.open(settings, fetch=make_fetch(bot, settings))
        try:
            me = await bot.me()
            services = BotServices(settings, engine, bot, bot_username=me.username)
            dp = create_dispatcher(settings, services)
            app = BotApp(server, settings, engine, services, bot, dp)
            async with polling(dp, bot, server, allow_log_errors=allow_log_errors):
                yield app
        finally:
            await engine.close()
    finally:
        await bot.session.close()


def file_ids(items: Mapping[Any, Seeded]) -> set[str]:
    return {s.file_id for s in items.values()}
