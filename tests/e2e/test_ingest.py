"""End to end: items sent to the bot through the fake Bot API become the user's collection, and
the user is told, in one message per item or album, what happened.

The real polling loop runs in-process against the fake server with real model bundles; the
restart case runs ``python -m bot`` as a process and kills it in the middle of an album.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiogram import Bot
from PIL import Image

from bot.albums import AlbumCollector
from bot.config import BotAppSettings
from bot.fetch import make_fetch
from bot.progress import ProgressMessage
from bot.reports import ItemResult
from bot.services import BotServices
from core.engine.engine import Engine
from core.errors import FetchError, FileGoneError, FileTooLargeError
from core.ingest.pipeline import IngestOutcome, IngestRequest, Ticket
from storage.db import default_database_path
from storage.records import Media
from tests.e2e import botapp
from tests.e2e.botapp import model_dirs
from tests.e2e.fake_telegram import (
    DOWNLOAD_LIMIT,
    FakeTelegramServer,
    FakeUser,
    SentMessage,
    origin_channel,
)
from tests.e2e.harness import BotProcess, bot_env

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- media builders


def picture(color: tuple[int, int, int], size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A coloured field with a contrasting square: distinct colours embed far apart."""
    img = Image.new("RGB", size, color)
    w, h = size
    img.paste(tuple(255 - c for c in color), (w // 4, h // 4, w // 2, h // 2))
    return img


def jpeg(img: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


RED, GREEN, BLUE, YELLOW = (220, 30, 30), (30, 200, 40), (30, 40, 220), (240, 220, 20)


def mp4(path: Path, colors: list[tuple[int, int, int]], *, seconds_each: float = 2.0,
        size: tuple[int, int] = (96, 64), fps: float = 10.0) -> bytes:  # fmt: skip
    """A small MP4 with one solid scene per colour (RGB), written with OpenCV."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    try:
        for r, g, b in colors:
            frame = np.full((size[1], size[0], 3), (b, g, r), np.uint8)
            h, w = size[1], size[0]
            frame[h // 4 : h // 2, w // 4 : w // 2] = (255 - b, 255 - g, 255 - r)
            for _ in range(round(seconds_each * fps)):
                writer.write(frame)
    finally:
        writer.release()
    return path.read_bytes()


# --------------------------------------------------------------------------- the running bot


@dataclass
class Running:
    server: FakeTelegramServer
    settings: BotAppSettings
    engine: Engine
    services: BotServices

    async def media(self, user: FakeUser) -> list[Media]:
        """The user's collection, oldest first."""
        owner = await self.engine.db.owners.find("user", user.id)
        if owner is None:
            return []
        items = await self.engine.db.owner(owner.id).media.page(limit=1000)
        return sorted(items, key=lambda m: m.id)

    async def reply_to(self, user: FakeUser, sent: dict[str, Any]) -> SentMessage:
        """The bot's answer to one of the user's messages."""
        return await self.server.wait_message(
            user.id, lambda m: m.reply_to_message_id == sent["message_id"]
        )

    async def final_reply(
        self, user: FakeUser, sent: dict[str, Any], done: Callable[[str], bool]
    ) -> SentMessage:
        """The answer to ``sent`` once its text satisfies ``done`` (progress edits before)."""
        reply = await self.reply_to(user, sent)
        await self.server.wait_for(
            lambda _: done(reply.text or ""), what=f"a final answer, last seen {reply.text!r}"
        )
        return reply


@contextlib.asynccontextmanager
async def running_bot(
    server: FakeTelegramServer, tmp_path: Path, **overrides: Any
) -> AsyncIterator[Running]:
    """The bot as ``python -m bot`` wires it, polling the fake in this event loop.

    Near-duplicate detection is off unless a test asks for it: whether two different test
    pictures look alike depends on the model, and only the near-duplicate test is about that.
    """
    overrides.setdefault("near_duplicate_threshold", 1.0)
    async with botapp.running_bot(server, tmp_path, **overrides) as app:
        yield Running(server, app.settings, app.engine, app.services)


# --------------------------------------------------------------------------- single items


async def test_photo_then_the_same_photo_again(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path) as run:
        data = jpeg(picture(RED))
        first = telegram.send_photo(alice, data, caption="  red  ")
        reply = await run.reply_to(alice, first)
        assert reply.text == "✅ Saved."
        (item,) = await run.media(alice)
        largest = first["photo"][-1]
        assert item.kind == "photo" and item.file_unique_id == largest["file_unique_id"]
        assert item.file_id == largest["file_id"] and item.caption == "red"
        assert item.message_id == first["message_id"] and item.message_date == first["date"]
        assert (item.width, item.height) == (320, 240)

        again = telegram.send_photo(alice, data)  # Telegram keeps file_unique_id for equal files
        reply = await run.reply_to(alice, again)
        assert "already in your collection" in (reply.text or "")
        assert len(await run.media(alice)) == 1
        # Replying /delete to the bot's "Saved" deletes the item it answered.
        answer = telegram.messages(alice.id)[0]
        deleted = telegram.send_command(alice, "delete", reply_to=answer)
        reply = await run.reply_to(alice, deleted)
        assert (reply.text or "").startswith("Deleted from your collection")
        assert await run.media(alice) == []
    assert [m.text for m in telegram.messages(alice.id)][:2] == [
        "✅ Saved.",
        "This is already in your collection.",
    ]


async def test_forwarded_photo_keeps_its_origin_and_date(
    telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path) as run:
        origin = origin_channel(-100123, "Trips", 77, date=1_600_000_000)
        origin["chat"]["username"] = "trips"
        sent = telegram.send_photo(alice, jpeg(picture(GREEN)), forward_origin=origin)
        await run.reply_to(alice, sent)
        from_user = telegram.send_photo(boris, jpeg(picture(BLUE)), forward_origin=alice)
        reply = await run.reply_to(boris, from_user)
        assert reply.text == "✅ Сохранено."  # Boris's Telegram is in Russian
        (item,) = await run.media(alice)
        assert item.forward_origin == "Trips (@trips)" and item.message_date == 1_600_000_000
        (boris_item,) = await run.media(boris)
        assert boris_item.forward_origin == "Alice (@alice)"


async def test_image_sent_as_a_file(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path) as run:
        sent = telegram.send_document(alice, png(picture(YELLOW)), file_name="scan.png")
        assert (await run.reply_to(alice, sent)).text == "✅ Saved."
        # No mime type from the client: the file name tells it is a picture.
        raw = telegram.send_document(
            alice,
            jpeg(picture(BLUE)),
            file_name="IMG_0001.JPG",
            mime_type="application/octet-stream",
        )
        assert (await run.reply_to(alice, raw)).text == "✅ Saved."
        items = await run.media(alice)
        assert [m.kind for m in items] == ["document", "document"]
        assert items[0].file_unique_id == sent["document"]["file_unique_id"]


async def test_near_duplicate_is_saved_with_a_hint(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path, near_duplicate_threshold=0.95) as run:
        original = picture(RED, (640, 480))
        first = telegram.send_photo(alice, jpeg(original, 95))
        assert (await run.reply_to(alice, first)).text == "✅ Saved."
        copy = telegram.send_photo(alice, jpeg(original.resize((480, 360)), 60))
        reply = await run.reply_to(alice, copy)
        assert reply.text is not None
        assert (
            reply.text.startswith("✅ Saved.") and "looks like one you already have" in reply.text
        )
        assert "/delete" in reply.text
        assert len(await run.media(alice)) == 2  # kept: only the user knows if both matter


# --------------------------------------------------------------------------- albums


async def test_album_split_across_polling_batches_gets_one_acknowledgement(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path) as run:
        items = [("photo", jpeg(picture(c))) for c in (RED, GREEN, BLUE)]
        sent = await telegram.send_album(alice, items, caption="trip", batches=[2, 1])
        ack = await run.final_reply(alice, sent[0], lambda t: t.startswith("✅"))
        assert ack.text == "✅ Album saved: 3 items."
        album = sent[0]["media_group_id"]

        # A straggler of the same album edits the acknowledgement instead of a new message.
        edits = len(ack.history)
        straggler = telegram.send_photo(alice, jpeg(picture(YELLOW)), media_group_id=album)
        await telegram.wait_for(
            lambda _: ack.text == "✅ Album saved: 4 items.", what=f"the edit, at {ack.text!r}"
        )
        assert len(ack.history) > edits
        # ... and a photo already in the collection, sent again inside the same album.
        telegram.send_photo(alice, items[0][1], media_group_id=album)
        await telegram.wait_for(
            lambda _: "already in your collection: 1" in (ack.text or ""),
            what=f"the duplicate counted, at {ack.text!r}",
        )
        media = sorted(await run.media(alice), key=lambda m: m.message_id or 0)
        assert len(media) == 4 and {m.album_id for m in media} == {album}
        assert [m.caption for m in media] == ["trip", None, None, None]
        assert straggler["message_id"] in {m.message_id for m in media}
    assert telegram.messages(alice.id) == [ack]  # one message for the whole album
    assert ack.text == "Saved 4 of 5 from the album.\n• already in your collection: 1"


async def test_album_with_a_broken_item_and_a_pdf_names_each_problem(
    telegram: FakeTelegramServer, boris: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path) as run:
        broken = jpeg(picture(GREEN))[:600]
        items = [
            {"kind": "document", "data": png(picture(RED)), "file_name": "a.png"},
            {"kind": "document", "data": broken, "file_name": "b.jpg"},
            {"kind": "document", "data": b"%PDF-1.4 notes", "file_name": "c.pdf"},
        ]
        sent = await telegram.send_album(boris, items)
        ack = await run.final_reply(boris, sent[0], lambda t: "из 3" in t and "⏳" not in t)
        assert ack.text == (
            "Из альбома сохранено 1 из 3.\n"
            "• не сохранено (файл повреждён): 1\n"
            "• не сохранено (не картинка и не видео): 1"
        )
        assert len(await run.media(boris)) == 1
    assert telegram.messages(boris.id) == [ack]


async def test_photos_sent_one_by_one_in_a_burst_get_one_answer(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    """Thirty photos picked in a chat and forwarded arrive as separate messages: one answer."""
    async with running_bot(telegram, tmp_path) as run:
        colors = [RED, GREEN, BLUE, YELLOW, (128, 0, 128)]
        sent = [telegram.send_photo(alice, jpeg(picture(c)), forward_origin=alice) for c in colors]
        sent.append(telegram.send_document(alice, b"%PDF-1.4", file_name="notes.pdf"))
        answer = await run.final_reply(alice, sent[0], lambda t: "⏳" not in t)
        assert answer.text == "Saved 5 of 6.\n• not saved (not a picture or video): 1"
        assert len(await run.media(alice)) == 5
    assert telegram.messages(alice.id) == [answer]


# --------------------------------------------------------------------------- videos


async def test_video_is_sampled_with_one_progress_message(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    data = mp4(tmp_path / "two-scenes.mp4", [RED, BLUE], seconds_each=3.0)
    async with running_bot(telegram, tmp_path) as run:
        download = telegram.hold("getFile")  # a slow download: the user sees work going on
        sent = telegram.send_video(alice, data, duration=6, width=96, height=64)
        reply = await run.reply_to(alice, sent)
        assert reply.text == "⏳ Processing the video…"
        download.release()
        await telegram.wait_for(lambda _: (reply.text or "").startswith("✅"), what="the result")
        assert reply.text is not None and reply.text.startswith("✅ Video saved: ")
        assert len(reply.history) <= 2  # maybe one throttled percentage, then the result
        (item,) = await run.media(alice)
        assert item.kind == "video" and item.duration == pytest.approx(6, abs=0.5)
        units = await run.engine.db.owner(item.owner_id).units.of_media(item.id)
        times = sorted(u.timestamp or 0.0 for u in units)
        assert len(times) >= 2 and times[0] < 3.0 <= times[-1]  # both scenes
        assert reply.text == f"✅ Video saved: {len(units)} moments to search by."
    assert telegram.messages(alice.id) == [reply]


async def test_animation_and_video_note(
    telegram: FakeTelegramServer, boris: FakeUser, tmp_path: Path
) -> None:
    gif = mp4(tmp_path / "anim.mp4", [GREEN, YELLOW], seconds_each=1.0)
    note = mp4(tmp_path / "note.mp4", [BLUE], seconds_each=2.0, size=(64, 64))
    async with running_bot(telegram, tmp_path) as run:
        a = telegram.send_animation(boris, gif, duration=2, width=96, height=64)
        reply = await run.final_reply(boris, a, lambda t: t.startswith("✅"))
        assert reply.text is not None and reply.text.startswith("✅ GIF сохранён: ")
        n = telegram.send_video_note(boris, note, duration=2, length=64)
        reply = await run.final_reply(boris, n, lambda t: t.startswith("✅"))
        assert reply.text == "✅ Видеосообщение сохранено: 1 кадр для поиска."
        kinds = [m.kind for m in await run.media(boris)]
        assert kinds == ["animation", "video_note"]


async def test_oversized_video_indexes_its_cover_and_names_the_local_server(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path) as run:
        cover = jpeg(picture(BLUE, (320, 180)))
        big = telegram.send_video(
            alice, b"\x00" * 64, thumbnail=cover, file_size=DOWNLOAD_LIMIT + 1, duration=600
        )
        reply = await run.final_reply(alice, big, lambda t: "✅" in t)
        assert reply.text is not None and reply.text.startswith("✅ Saved the cover only")
        assert "local Bot API server" in reply.text and "TELEGRAM_API_BASE" in reply.text
        (item,) = await run.media(alice)
        assert item.status == "thumbnail"
        assert item.thumbnail_file_id == big["video"]["thumbnail"]["file_id"]
        assert big["video"]["file_id"] not in telegram.downloads  # never tried the 20+ MB file

        bare = telegram.send_video(alice, b"\x00" * 64, file_size=DOWNLOAD_LIMIT + 1)
        reply = await run.reply_to(alice, bare)
        assert reply.text is not None and reply.text.startswith("❌ Not saved: the file is over 20")
        assert "local Bot API server" in reply.text


async def test_local_bot_api_server_downloads_big_videos_whole(
    alice: FakeUser, tmp_path: Path
) -> None:
    data = mp4(tmp_path / "big.mp4", [RED, GREEN], seconds_each=2.0)
    async with FakeTelegramServer(local_dir=tmp_path / "tg-files") as local:
        async with running_bot(local, tmp_path) as run:
            sent = local.send_video(alice, data, file_size=DOWNLOAD_LIMIT * 3, duration=4)
            reply = await run.final_reply(alice, sent, lambda t: t.startswith("✅"))
            assert reply.text is not None and reply.text.startswith("✅ Video saved")
            (item,) = await run.media(alice)
            assert item.status != "thumbnail"
        local.assert_clean()


# --------------------------------------------------------------------------- bad input


async def test_unreadable_files_get_a_reason(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path) as run:
        truncated = jpeg(picture(RED, (800, 600)))
        corrupt = telegram.send_photo(alice, truncated[: len(truncated) // 2])
        reply = await run.reply_to(alice, corrupt)
        assert reply.text == (
            "❌ Not saved: the picture is damaged or cut off. Try sending it again."
        )
        empty = telegram.send_document(alice, b"", file_name="empty.jpg")
        reply = await run.reply_to(alice, empty)
        assert reply.text == "❌ Not saved: the file is empty."
        pdf = telegram.send_document(alice, b"%PDF-1.4 minutes", file_name="minutes.pdf")
        reply = await run.reply_to(alice, pdf)
        assert reply.text is not None and "“minutes.pdf” is neither a picture nor a video" in (
            reply.text
        )
        video = telegram.send_video(alice, b"not a video at all")
        reply = await run.final_reply(alice, video, lambda t: t.startswith("❌"))
        assert reply.text == (
            "❌ Not saved: I couldn't read this video: unknown format or damaged file."
        )
        assert await run.media(alice) == []


async def test_quota_refuses_politely(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path, quota_items_per_user=1) as run:
        first = telegram.send_photo(alice, jpeg(picture(RED)))
        assert (await run.reply_to(alice, first)).text == "✅ Saved."
        second = telegram.send_photo(alice, jpeg(picture(GREEN)))
        reply = await run.reply_to(alice, second)
        assert reply.text is not None and reply.text.startswith("Your collection is full")
        assert len(await run.media(alice)) == 1


# --------------------------------------------------------------------------- building blocks


async def test_progress_message_is_one_message_edited_sparingly(
    telegram: FakeTelegramServer, telegram_bot: Bot, alice: FakeUser
) -> None:
    asked = telegram.send_text(alice, "a long video")
    progress = ProgressMessage(
        telegram_bot, alice.id, reply_to_message_id=asked["message_id"], interval=3600
    )
    for percent in range(0, 100, 10):
        progress.set(f"{percent}%")
    assert progress.pending is not None
    await progress.pending  # the first text goes out at once: the newest one
    (sent,) = telegram.messages(alice.id)
    assert sent.text == "90%" and sent.reply_to_message_id == asked["message_id"]
    progress.set("95%")  # within the interval: held back ...
    assert progress.pending is not None and not sent.history
    await progress.show("done")  # ... and replaced by the result, which goes out now
    assert sent.text == "done" and [h["text"] for h in sent.history] == ["90%"]
    await progress.show("done")  # unchanged: not sent again (Telegram would refuse it)
    assert len(sent.history) == 1

    telegram.fail_not_modified()
    await progress.show("done, really")  # refused as unchanged: nothing to do, no error
    await telegram_bot.delete_message(alice.id, sent.message_id)
    await progress.show("after the user deleted it")  # comes back as a new message
    assert [m.text for m in telegram.messages(alice.id)] == ["after the user deleted it"]
    telegram.block(alice)
    await progress.finish("blocked")  # the user blocked the bot: quietly given up
    progress.set("ignored after finish")
    assert progress.pending is None
    telegram.allowed_errors += ["message to edit not found", "blocked"]


async def test_fetch_turns_telegram_answers_into_typed_errors(
    telegram: FakeTelegramServer, telegram_bot: Bot, alice: FakeUser
) -> None:
    fetch = make_fetch(telegram_bot, BotAppSettings(_env_file=None))  # type: ignore[call-arg]
    data = jpeg(picture(RED))
    photo = telegram.send_photo(alice, data)["photo"][-1]
    request = IngestRequest.of(1, "photo", photo["file_unique_id"], file_id=photo["file_id"])
    assert await fetch(request, False) == data

    telegram.fail("getFile", 502)
    with pytest.raises(FetchError) as transient:
        await fetch(request, False)
    assert transient.value.retryable and type(transient.value) is FetchError

    gone = IngestRequest.of(1, "photo", "AQADgone", file_id=photo["file_id"][:-4] + "AAAA")
    with pytest.raises(FileGoneError):
        await fetch(gone, False)

    cover = jpeg(picture(BLUE, (320, 180)))
    video = telegram.send_video(alice, b"\x00" * 32, thumbnail=cover)["video"]
    telegram.set_file_size(video["file_id"], DOWNLOAD_LIMIT + 1)  # the message did not say
    big = IngestRequest.of(
        1,
        "video",
        video["file_unique_id"],
        file_id=video["file_id"],
        thumbnail_file_id=video["thumbnail"]["file_id"],
    )
    with pytest.raises(FileTooLargeError):
        await fetch(big, False)
    assert await fetch(big, True) == cover
    telegram.allowed_errors += ["file is too big", "wrong file_id"]


async def test_album_collector_hooks_flush_and_settle_without_waiting(
    telegram: FakeTelegramServer, telegram_bot: Bot, alice: FakeUser
) -> None:
    first = telegram.send_text(alice, "one")  # stand-ins for the album's messages
    second = telegram.send_text(alice, "two")
    collector = AlbumCollector(telegram_bot, wait_s=3600, interval=3600)
    loop = asyncio.get_running_loop()
    futures = []
    for job_id, sent in enumerate((first, second), 1):
        request = IngestRequest.of(1, "photo", f"AQAD{job_id}", album_id="g1")
        future: asyncio.Future[IngestOutcome] = loop.create_future()
        futures.append((future, request))
        ticket = Ticket(job_id, request, future, None)
        collector.add(alice.id, "g1", sent["message_id"], lang="en", ticket=ticket)
    assert telegram.messages(alice.id) == []  # the quiet time (an hour) has not passed
    await collector.flush()
    (answer,) = telegram.messages(alice.id)
    assert answer.text == "⏳ Saving the album: 0 of 2…"
    assert answer.reply_to_message_id == first["message_id"]
    for job_id, (future, request) in enumerate(futures, 1):
        future.set_result(IngestOutcome("saved", job_id, request, media_id=job_id))
    assert await collector.settled(timeout=10)
    assert answer.text == "✅ Album saved: 2 items."
    straggler = telegram.send_text(alice, "three")
    collector.add(alice.id, "g1", straggler["message_id"], lang="en",
                  result=ItemResult.refused("image_truncated"))  # fmt: skip
    assert await collector.settled(timeout=10)
    assert answer.text == "Saved 2 of 3 from the album.\n• not saved (damaged file): 1"
    assert telegram.messages(alice.id) == [answer]
    await collector.close()
    assert len(collector) == 0


# --------------------------------------------------------------------------- restart


def _jobs(data_dir: Path) -> list[tuple[str, str]]:
    """(state, payload) of every ingest job, read from the bot's database file."""
    conn = sqlite3.connect(default_database_path(data_dir))
    try:
        return list(conn.execute("SELECT state, payload FROM jobs ORDER BY id"))
    finally:
        conn.close()


async def test_killed_in_the_middle_of_an_album_loses_nothing(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    """The process dies after the album's updates were acknowledged to Telegram but before any
    item was downloaded or answered; the next start saves every item and says so."""
    dirs = ",".join(str(d) for d in model_dirs(tmp_path))
    data_dir = tmp_path / "data"
    env = bot_env(
        telegram,
        DATA_DIR=str(data_dir),
        MODEL_DIRS=dirs,
        ALBUM_WAIT_S="30",  # the acknowledgement would come long after the crash
        INGEST_WORKERS="3",
        NEAR_DUPLICATE_THRESHOLD="1",
        SEND_PACE_PER_CHAT_S="0",
        EMBED_THREADS="1",
        PYTHONPATH=str(ROOT),
    )
    items = [("photo", jpeg(picture(c))) for c in (RED, GREEN, BLUE)]
    # Downloads wait here: the kill comes while all three jobs are claimed, none finished.
    gate = telegram.hold("getFile")
    async with BotProcess(["-m", "bot"], env=env, cwd=tmp_path) as process:
        await process.wait_output(r"ready", timeout=120)
        sent = await telegram.send_album(alice, items, batches=[2, 1])
        for message in sent:
            await telegram.wait_confirmed(message)  # Telegram would never send these again
        await gate.arrived(3, timeout=30)  # every item is a durable job, being fetched
        assert await process.kill() != 0
    gate.release()
    await telegram.wait_for(lambda s: not s.polls_in_flight(), what="the dead bot's poll to end")
    assert telegram.messages(alice.id) == []  # the crash came before any answer
    assert len(_jobs(data_dir)) == 3

    async with running_bot(telegram, tmp_path) as run:
        report = await telegram.wait_message(
            alice.id, lambda m: (m.text or "").startswith("After a restart"), timeout=30
        )
        assert report.text == "After a restart I finished saving what you sent earlier: 3 of 3."
        assert report.reply_to_message_id == sent[0]["message_id"]
        media = await run.media(alice)
        assert sorted(m.message_id or 0 for m in media) == [m["message_id"] for m in sent]
    assert [state for state, _ in _jobs(data_dir)] == ["done", "done", "done"]
    assert all(json.loads(p)["album_id"] == sent[0]["media_group_id"] for _, p in _jobs(data_dir))
    assert telegram.messages(alice.id) == [report]


async def test_a_photo_is_confirmed_to_telegram_only_once_its_job_is_durable(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiogram asks for the next updates (confirming these) while their handlers still run;
    the next getUpdates waits until the photo is a durable job, so a crash in between cannot
    lose it."""
    from bot.app import transport_of

    async with running_bot(telegram, tmp_path) as run:
        pipeline = run.engine.pipeline
        assert pipeline is not None
        submit, entered, gate = pipeline.submit, asyncio.Event(), asyncio.Event()

        async def held_submit(*args: Any, **kwargs: Any) -> Ticket:
            entered.set()
            await gate.wait()
            return await submit(*args, **kwargs)

        monkeypatch.setattr(pipeline, "submit", held_submit)
        transport = transport_of(run.services.bot)
        assert transport is not None and transport.ledger is not None
        sent = telegram.send_photo(alice, jpeg(picture(RED)))
        await entered.wait()
        await transport.ledger.held.wait()  # the next poll waits for the photo's job
        assert not telegram.update_record(sent).confirmed
        gate.set()
        await telegram.wait_confirmed(sent)
        assert (await run.reply_to(alice, sent)).text == "✅ Saved."


@pytest.fixture(autouse=True)
def _no_dotenv(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own .env or environment must not leak into the bot under test."""
    for key in list(os.environ):
        if key in {"BOT_TOKEN", "TELEGRAM_API_BASE", "TELEGRAM_API_LOCAL", "ALLOWED_USERS"}:
            monkeypatch.delenv(key, raising=False)


# --------------------------------------------------------------------------- metadata is a hint


async def test_zero_sizes_and_duration_from_the_message_are_measured_from_the_file(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    video = mp4(tmp_path / "zero.mp4", [RED, BLUE], seconds_each=1.0)
    gif = mp4(tmp_path / "zero-anim.mp4", [GREEN], seconds_each=1.0)
    async with running_bot(telegram, tmp_path) as run:
        sent = telegram.send_video(alice, video, duration=0, width=0, height=0)
        reply = await run.final_reply(alice, sent, lambda t: t[:1] in "✅❌")
        assert reply.text is not None and reply.text.startswith("✅ Video saved"), reply.text
        anim = telegram.send_animation(alice, gif, duration=0, width=0, height=0)
        reply = await run.final_reply(alice, anim, lambda t: t[:1] in "✅❌")
        assert reply.text is not None and reply.text.startswith("✅"), reply.text
        first, second = await run.media(alice)
        assert (first.width, first.height) == (96, 64)
        assert first.duration == pytest.approx(2, abs=0.5)
        assert (second.width, second.height) == (96, 64) and (second.duration or 0) > 0


async def test_lying_mime_types_and_a_broken_cover_get_a_precise_answer(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path) as run:
        as_png = telegram.send_document(
            alice, jpeg(picture(RED)), file_name="photo.png", mime_type="image/png"
        )
        assert (await run.reply_to(alice, as_png)).text == "✅ Saved."
        as_mp4 = telegram.send_document(
            alice, jpeg(picture(GREEN)), file_name="clip.mp4", mime_type="video/mp4"
        )
        reply = await run.final_reply(alice, as_mp4, lambda t: t[:1] in "✅❌")
        assert reply.text is not None and reply.text.startswith("✅"), reply.text
        still = (await run.media(alice))[-1]
        (unit,) = await run.engine.db.owner(still.owner_id).units.of_media(still.id)
        assert unit.timestamp is None  # decoded as the picture it is, not as a "video" frame
        big = telegram.send_video(
            alice, b"\x00" * 64, thumbnail=b"not a jpeg", file_size=DOWNLOAD_LIMIT + 1
        )
        reply = await run.final_reply(alice, big, lambda t: t[:1] in "✅❌")
        assert reply.text is not None and reply.text.startswith("❌ Not saved"), reply.text
        assert "went wrong" not in reply.text and "cover" in reply.text, reply.text
        assert len(await run.media(alice)) == 2


async def test_a_file_of_no_known_type_is_judged_by_its_bytes(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    """Clients label files whose names they do not know application/octet-stream."""
    async with running_bot(telegram, tmp_path) as run:
        picture_file = telegram.send_document(
            alice, png(picture(BLUE)), file_name="export.dat", mime_type="application/octet-stream"
        )
        assert (await run.reply_to(alice, picture_file)).text == "✅ Saved."
        junk = telegram.send_document(
            alice,
            b"PK\x03\x04" + bytes(300),
            file_name="backup.dat",
            mime_type="application/octet-stream",
        )
        reply = await run.reply_to(alice, junk)
        assert reply.text is not None and reply.text.startswith("❌ Not saved"), reply.text
        assert "went wrong" not in reply.text
        assert [m.kind for m in await run.media(alice)] == ["document"]
