"""The fake Telegram server, checked through aiogram's real HTTP client.

Each answer is parsed by aiogram (pydantic), so a payload Telegram would never send fails here;
each validation rule is shown to fire, so the bot's bugs will surface in end-to-end tests.
"""

from __future__ import annotations

import asyncio
import datetime
import io
import textwrap
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InaccessibleMessage,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InlineQueryResultCachedPhoto,
    InputMediaDocument,
    InputMediaPhoto,
    InputMediaVideo,
    InputTextMessageContent,
    Message,
)
from PIL import Image

from tests.e2e.fake_telegram import (
    DOWNLOAD_LIMIT,
    FakeTelegramServer,
    FakeUser,
    make_jpeg,
    origin_channel,
)
from tests.e2e.fake_telegram.dispatch import MethodTable
from tests.e2e.fake_telegram.records import ApiCall
from tests.e2e.harness import BotProcess, bot_env, polling

MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(200)  # the fake never decodes videos


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d) for t, d in buttons]]
    )


async def poll_once(bot: Bot, **kwargs: Any) -> list[Any]:
    return await bot.get_updates(timeout=0, **kwargs)


# --------------------------------------------------------------------------- wire format


async def test_get_me_and_raw_http_forms(telegram: FakeTelegramServer) -> None:
    bot = telegram.make_bot()
    try:
        me = await bot.get_me()
    finally:
        await bot.session.close()
    assert me.is_bot and me.username == "image_finder_test_bot" and me.id == telegram.bot_id
    call = telegram.calls_of("getMe")[0]
    assert call.ok

    base = f"{telegram.url}/bot{telegram.token}"
    telegram.user(5, "Eve")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/GETME") as resp:  # methods are case-insensitive
            assert resp.status == 200 and (await resp.json())["result"]["is_bot"] is True
        async with http.post(f"{base}/sendMessage", json={"chat_id": 5, "text": "json"}) as resp:
            assert (await resp.json())["result"]["text"] == "json"
        async with http.post(f"{base}/noSuchMethod", data={"a": "1"}) as resp:
            assert resp.status == 404
        async with http.post(f"{telegram.url}/bot1:wrong/getMe") as resp:
            assert resp.status == 401
    assert telegram.unknown_methods == ["noSuchMethod"]
    with pytest.raises(AssertionError, match="noSuchMethod"):
        telegram.assert_clean()
    telegram.unknown_methods.clear()


def test_a_method_is_served_by_one_part_only() -> None:
    """Parts declare their methods separately; a name claimed twice would hide a handler."""

    async def served(call: ApiCall) -> bool:
        return True

    methods = MethodTable(FakeTelegramServer())
    methods.register({"getMe": served})
    with pytest.raises(ValueError, match="getme"):
        methods.register({"getme": served})
    assert methods.canonical("GETME") == "getMe" and methods.canonical("noSuchMethod") is None


async def test_server_re_exports_its_parts(telegram: FakeTelegramServer, alice: FakeUser) -> None:
    """The builders, fault controls and waits composed into the server share its records."""
    pushed = telegram.send_text(alice, "hello")
    assert telegram.update_record(pushed).update["message"] is pushed
    assert telegram.pending_updates() == [telegram.update_record(pushed).update]
    assert telegram.chat_history(alice.id) == [pushed]
    fault = telegram.fail("sendMessage")
    assert telegram.faults == [fault]
    assert len(FakeTelegramServer.new_media_group_id()) == 17


async def test_wrong_token_is_unauthorized(telegram: FakeTelegramServer) -> None:
    bot = Bot("99:other", session=telegram.make_bot().session)
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await bot.get_me()
    finally:
        await bot.session.close()


async def test_send_message_is_recorded_and_awaitable(
    telegram: FakeTelegramServer, telegram_bot: Bot, alice: FakeUser
) -> None:
    question = telegram.send_text(alice, "hello")
    sent = await telegram_bot.send_message(
        alice.id,
        "<b>Hi</b> &lt;there&gt;",
        parse_mode="HTML",
        reply_markup=keyboard(("More", "more:1")),
        reply_parameters={"message_id": question["message_id"]},
    )
    assert isinstance(sent, Message) and sent.text == "Hi <there>"
    assert sent.reply_to_message is not None and sent.reply_to_message.text == "hello"
    assert sent.message_id == question["message_id"] + 1  # one id sequence per chat

    message = await telegram.next_message(alice.id)
    assert message.text == "Hi <there>" and message.raw_text == "<b>Hi</b> &lt;there&gt;"
    assert message.button("More")["callback_data"] == "more:1"
    assert message.reply_to_message_id == question["message_id"]
    call = message.call
    assert call.content_type == "application/x-www-form-urlencoded"
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["text"] == "More"


async def test_text_rules(telegram: FakeTelegramServer, telegram_bot: Bot, alice: FakeUser) -> None:
    cases = [
        ({"text": "x" * 4097}, "message is too long"),
        ({"text": "a < b", "parse_mode": "HTML"}, "can't parse entities"),
        ({"text": "<b>bold", "parse_mode": "HTML"}, "Can't find end tag"),
        ({"text": "<br>", "parse_mode": "HTML"}, "Unsupported start tag"),
        ({"text": "ok", "reply_markup": keyboard(("Go", "x" * 65))}, "BUTTON_DATA_INVALID"),
        ({"text": "ok", "reply_parameters": {"message_id": 999}}, "message to be replied"),
    ]
    for kwargs, error in cases:
        with pytest.raises(TelegramBadRequest, match=error):
            await telegram_bot.send_message(alice.id, **kwargs)
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await telegram_bot.send_message(424242, "who?")
    # 4096 UTF-16 units is the limit: 2048 emoji are 4096 units.
    await telegram_bot.send_message(alice.id, "😀" * 2048)
    with pytest.raises(TelegramBadRequest, match="too long"):
        await telegram_bot.send_message(alice.id, "😀" * 2049)
    assert len(telegram.errors) == len(cases) + 2
    telegram.errors.clear()


# --------------------------------------------------------------------------- files


async def test_photo_upload_multipart_and_reuse_by_file_id(
    telegram: FakeTelegramServer, telegram_bot: Bot, alice: FakeUser
) -> None:
    jpeg = make_jpeg(1000, 700)
    first = await telegram_bot.send_photo(alice.id, BufferedInputFile(jpeg, "a.jpg"), caption="cap")
    call = telegram.calls_of("sendPhoto")[0]
    assert call.content_type == "multipart/form-data"
    assert call.params["photo"].startswith("attach://")
    (part,) = call.files.values()
    assert part.data == jpeg and part.filename == "a.jpg"

    sizes = first.photo
    assert sizes is not None and len(sizes) == 4  # 90, 320, 800 and the original
    assert (sizes[-1].width, sizes[-1].height) == (1000, 700)
    assert [max(s.width, s.height) for s in sizes[:-1]] == [90, 320, 800]

    again = await telegram_bot.send_photo(alice.id, sizes[-1].file_id)
    assert again.photo is not None and again.photo[-1].file_id == sizes[-1].file_id
    reupload = await telegram_bot.send_photo(alice.id, BufferedInputFile(jpeg, "b.jpg"))
    assert reupload.photo is not None
    assert reupload.photo[-1].file_id != sizes[-1].file_id  # new upload, new file_id
    assert reupload.photo[-1].file_unique_id == sizes[-1].file_unique_id  # same content
    assert len(sizes[-1].file_id) > 64  # as long as real ids: no room in callback_data

    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await telegram_bot.send_photo(alice.id, "AgACAgIAAxkBAAnope")
    video = telegram.send_video(alice, MP4)
    with pytest.raises(TelegramBadRequest, match="type of file mismatch"):
        await telegram_bot.send_photo(alice.id, video["video"]["file_id"])
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await telegram_bot.send_photo(alice.id, BufferedInputFile(b"not a jpeg", "x.jpg"))
    telegram.errors.clear()


async def test_user_photo_download_round_trip(
    telegram: FakeTelegramServer, telegram_bot: Bot, alice: FakeUser
) -> None:
    jpeg = make_jpeg(640, 480)
    message = telegram.send_photo(
        alice, jpeg, caption="sea", forward_origin=origin_channel(-100, "Trips", 7)
    )
    (update,) = await poll_once(telegram_bot)
    photo = update.message.photo
    assert update.message.caption == "sea" and update.message.forward_origin.chat.title == "Trips"
    assert len(photo) == 3 and photo[-1].file_id == message["photo"][-1]["file_id"]

    file = await telegram_bot.get_file(photo[-1].file_id)
    assert file.file_size == len(jpeg) and file.file_path
    buffer = await telegram_bot.download(file)
    assert isinstance(buffer, io.BytesIO) and buffer.getvalue() == jpeg
    thumb = await telegram_bot.download(photo[0].file_id)
    assert isinstance(thumb, io.BytesIO)
    assert max(Image.open(thumb).size) == 90  # smaller sizes are real images
    assert telegram.downloads == [photo[-1].file_id, photo[0].file_id]


async def test_oversized_file_and_local_mode(
    telegram: FakeTelegramServer, telegram_bot: Bot, alice: FakeUser, tmp_path: Path
) -> None:
    big = telegram.send_video(
        alice, MP4, duration=90, thumbnail=make_jpeg(320, 180), file_size=DOWNLOAD_LIMIT + 1
    )
    video = big["video"]
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await telegram_bot.get_file(video["file_id"])
    thumb = await telegram_bot.get_file(video["thumbnail"]["file_id"])  # thumbnails still work
    assert thumb.file_size and thumb.file_size < DOWNLOAD_LIMIT
    telegram.allowed_errors.append("file is too big")

    async with FakeTelegramServer(token=telegram.token, local_dir=tmp_path) as local:
        person = local.user(alice.id, "Alice")
        message = local.send_video(person, MP4, file_size=DOWNLOAD_LIMIT * 5)
        bot = local.make_bot()
        try:
            file = await bot.get_file(message["video"]["file_id"])
            assert file.file_path and Path(file.file_path).is_absolute()
            assert (await bot.download(file)).getvalue() == MP4  # read from disk, no limit
        finally:
            await bot.session.close()
        local.assert_clean()


async def test_document_animation_video_note_shapes(
    telegram: FakeTelegramServer, telegram_bot: Bot, alice: FakeUser
) -> None:
    telegram.send_document(alice, b"%PDF-1.4 ...", file_name="paper.pdf")
    telegram.send_document(alice, make_jpeg(), file_name="raw.jpg")
    telegram.send_animation(alice, MP4, thumbnail=make_jpeg(90, 60))
    telegram.send_video_note(alice, MP4, duration=4)
    updates = await poll_once(telegram_bot)
    kinds = [u.message.content_type for u in updates]
    assert kinds == ["document", "document", "animation", "video_note"]
    assert updates[0].message.document.mime_type == "application/pdf"
    assert updates[1].message.document.mime_type == "image/jpeg"
    assert updates[2].message.document is not None  # Telegram sets both for animations
    assert updates[3].message.video_note.duration == 4


# --------------------------------------------------------------------------- albums, video hits


async def test_media_group_with_start_timestamp(
    telegram: FakeTelegramServer, telegram_bot: Bot, alice: FakeUser
) -> None:
    photo = telegram.send_photo(alice, make_jpeg())["photo"][-1]["file_id"]
    video = telegram.send_video(alice, MP4, duration=60)["video"]["file_id"]
    cover = BufferedInputFile(make_jpeg(320, 180), "cover.jpg")
    messages = await telegram_bot.send_media_group(
        alice.id,
        [
            InputMediaPhoto(media=photo, caption="best match"),
            InputMediaVideo(media=video, start_timestamp=42, cover=cover),
        ],
    )
    assert len({m.media_group_id for m in messages}) == 1
    assert messages[1].video is not None
    # aiogram types Video.start_timestamp as a datetime: seconds since the epoch.
    assert messages[1].video.start_timestamp == datetime.datetime.fromtimestamp(42, tz=datetime.UTC)
    first, second = await telegram.next_messages(alice.id, 2)
    assert first.kind == "photo" and first.caption == "best match"
    assert second.kind == "video" and second.start_timestamp == 42
    assert second.params["item"]["start_timestamp"] == 42
    assert second.message["video"]["cover"]  # uploaded cover became photo sizes

    single = await telegram_bot.send_video(alice.id, video, start_timestamp=7)
    assert (await telegram.next_message(alice.id)).start_timestamp == 7
    assert single.video is not None

    # A timedelta is turned into "now + delta" by aiogram: far past the video's end.
    with pytest.raises(TelegramBadRequest, match="start_timestamp"):
        await telegram_bot.send_video(
            alice.id, video, start_timestamp=datetime.timedelta(seconds=7)
        )
    with pytest.raises(TelegramBadRequest, match="2-10"):
        await telegram_bot.send_media_group(alice.id, [InputMediaPhoto(media=photo)])
    with pytest.raises(TelegramBadRequest, match="too much messages"):
        await telegram_bot.send_media_group(alice.id, [InputMediaPhoto(media=photo)] * 11)
    document = telegram.send_document(alice, make_jpeg(), file_name="a.jpg")["document"]
    with pytest.raises(TelegramBadRequest, match="can't be mixed"):
        await telegram_bot.send_media_group(
            alice.id,
            [InputMediaPhoto(media=photo), InputMediaDocument(media=document["file_id"])],
        )
    telegram.errors.clear()


async def test_media_group_uploads_and_copy_with_video_start(
    telegram: FakeTelegramServer, telegram_bot: Bot, alice: FakeUser
) -> None:
    messages = await telegram_bot.send_media_group(
        alice.id,
        [
            InputMediaPhoto(media=BufferedInputFile(make_jpeg(), "1.jpg")),
            InputMediaVideo(
                media=BufferedInputFile(MP4, "2.mp4"),
                duration=30,
                width=640,
                height=360,
                thumbnail=BufferedInputFile(make_jpeg(320, 180), "t.jpg"),
            ),
        ],
    )
    assert messages[1].video is not None and messages[1].video.duration == 30
    assert messages[1].video.thumbnail is not None
    assert len(telegram.calls_of("sendMediaGroup")[0].files) == 3

    user_video = telegram.send_video(alice, MP4, duration=20)
    copied = await telegram_bot.copy_message(
        alice.id, alice.id, user_video["message_id"], video_start_timestamp=12
    )
    sent = telegram.messages(alice.id)[-1]
    assert sent.message_id == copied.message_id and sent.start_timestamp == 12


async def test_album_builder_splits_batches_deterministically(
    telegram: FakeTelegramServer, telegram_bot: Bot, alice: FakeUser
) -> None:
    async def consume() -> list[list[int]]:
        batches, offset = [], None
        while sum(map(len, batches)) < 3:
            updates = await telegram_bot.get_updates(offset=offset, timeout=5)
            batches.append([u.update_id for u in updates])
            offset = updates[-1].update_id + 1
        return batches

    reader = asyncio.create_task(consume())
    items = await telegram.send_album(
        alice,
        [("photo", make_jpeg()), ("video", MP4), ("photo", make_jpeg(300, 300))],
        caption="trip",
        batches=[2, 1],
    )
    batches = await reader
    assert [len(b) for b in batches] == [2, 1]
    assert len({m["media_group_id"] for m in items}) == 1
    assert [m["message_id"] for m in items] == [1, 2, 3]
    assert "caption" in items[0] and "caption" not in items[1]


# --------------------------------------------------------------------------- polling semantics


async def test_long_poll_wakes_on_update_and_offset_confirms(
    telegram: FakeTelegramServer, telegram_bot: Bot, alice: FakeUser
) -> None:
    assert await poll_once(telegram_bot) == []  # timeout 0 answers at once
    mark = telegram.mark()
    waiting = asyncio.create_task(telegram_bot.get_updates(timeout=30))
    await telegram.wait_poll(since=mark)
    assert not waiting.done()
    pushed = telegram.send_text(alice, "late")
    (update,) = await waiting  # answered by the push, long before 30 s
    assert update.message.text == "late"

    # Not confirmed yet: delivered again.
    assert [u.update_id for u in await poll_once(telegram_bot)] == [update.update_id]
    assert telegram.updates[update.update_id].delivered == 2
    assert await poll_once(telegram_bot, offset=update.update_id + 1) == []
    await telegram.wait_confirmed(pushed)
    assert telegram.pending_updates() == []


async def test_allowed_updates_and_conflict(
    telegram: FakeTelegramServer, telegram_bot: Bot, alice: FakeUser
) -> None:
    telegram.inline_query(alice, "cats")
    telegram.send_text(alice, "hi")
    updates = await poll_once(telegram_bot, allowed_updates=["message"])
    assert [u.event_type for u in updates] == ["message"]
    assert [r.dropped for r in telegram.updates.values()] == [True, False]

    first = asyncio.create_task(
        telegram_bot.get_updates(offset=updates[-1].update_id + 1, timeout=30)
    )
    await telegram.wait_poll()
    second = asyncio.create_task(telegram_bot.get_updates(timeout=30))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await first
    telegram.send_text(alice, "for the survivor")
    assert [u.message.text for u in await second] == ["for the survivor"]
    telegram.allowed_errors.append("terminated by other getUpdates")


async def test_push_update_rejects_what_aiogram_cannot_parse(telegram: FakeTelegramServer) -> None:
    with pytest.raises(ValueError, match="would not validate"):
        telegram.push_update({"message": {"message_id": 1, "text": "no chat, no date"}})
    assert telegram.pending_updates() == []


# --------------------------------------------------------------------------- faults


async def test_fault_injection_maps_to_aiogram_errors(
    telegram: FakeTelegramServer, telegram_bot: Bot, alice: FakeUser
) -> None:
    telegram.fail_retry_after("sendMessage", 3)
    with pytest.raises(TelegramRetryAfter) as retry:
        await telegram_bot.send_message(alice.id, "one")
    assert retry.value.retry_after == 3
    telegram.fail("sendMessage", 502, times=2)
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await telegram_bot.send_message(alice.id, "two")
    telegram.fail_blocked("sendPhoto")
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await telegram_bot.send_photo(alice.id, "whatever")
    await telegram_bot.send_message(alice.id, "finally")  # faults were one-shot
    assert [m.text for m in telegram.messages(alice.id)] == ["finally"]
    assert all(c.injected for c in telegram.calls[:4])

    telegram.block(alice)
    with pytest.raises(TelegramForbiddenError):
        await telegram_bot.send_message(alice.id, "blocked")
    telegram.unblock(alice)

    telegram.drop_connection("sendMessage")
    with pytest.raises(TelegramNetworkError):
        await telegram_bot.send_message(alice.id, "lost")
    telegram.drop_connection("sendMessage", after=True)
    with pytest.raises(TelegramNetworkError):
        await telegram_bot.send_message(alice.id, "sent but unseen")
    assert [m.text for m in telegram.messages(alice.id)] == ["finally", "sent but unseen"]

    with pytest.raises(TelegramEntityTooLarge):
        await telegram_bot.send_document(
            alice.id, BufferedInputFile(bytes(51 * 1024 * 1024), "huge.bin")
        )
    telegram.errors.clear()


async def test_hold_gate_delays_a_call_until_released(
    telegram: FakeTelegramServer, telegram_bot: Bot, alice: FakeUser
) -> None:
    gate = telegram.hold("sendMessage")
    sending = asyncio.create_task(telegram_bot.send_message(alice.id, "slow"))
    held = await gate.arrived()
    assert held.params["text"] == "slow" and telegram.messages(alice.id) == []
    gate.release()
    await sending
    assert [m.text for m in telegram.messages(alice.id)] == ["slow"]


# --------------------------------------------------------------------------- buttons, edits


async def test_edits_callbacks_and_stale_buttons(
    telegram: FakeTelegramServer, telegram_bot: Bot, alice: FakeUser
) -> None:
    sent = await telegram_bot.send_message(
        alice.id, "page 1", reply_markup=keyboard(("More", "p:2"))
    )
    record = await telegram.next_message(alice.id)

    query_id = telegram.press_button(alice, record, text="More")
    (update,) = await poll_once(telegram_bot)
    callback = update.callback_query
    assert isinstance(callback, CallbackQuery) and callback.id == query_id
    assert callback.data == "p:2" and isinstance(callback.message, Message)
    assert await telegram_bot.answer_callback_query(callback.id, text="Loading")
    assert (await telegram.wait_callback_answer(query_id))["text"] == "Loading"
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await telegram_bot.answer_callback_query(callback.id)

    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await telegram_bot.edit_message_text(
            "page 1",
            chat_id=alice.id,
            message_id=sent.message_id,
            reply_markup=keyboard(("More", "p:2")),
        )
    edited = await telegram_bot.edit_message_text(
        "page 2", chat_id=alice.id, message_id=sent.message_id
    )
    assert isinstance(edited, Message) and edited.edit_date is not None
    await telegram.wait_edit(record)
    assert record.text == "page 2" and record.reply_markup is None  # keyboard dropped
    assert record.history[0]["text"] == "page 1"
    await telegram_bot.edit_message_reply_markup(
        chat_id=alice.id, message_id=sent.message_id, reply_markup=keyboard(("Back", "p:1"))
    )
    assert record.button("Back")["callback_data"] == "p:1"
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await telegram_bot.edit_message_text("x", chat_id=alice.id, message_id=999)

    assert await telegram_bot.delete_message(alice.id, sent.message_id)
    assert telegram.is_deleted(record)
    stale_id = telegram.press_button(alice, record, "p:1")
    (update,) = await poll_once(telegram_bot, offset=update.update_id + 1)
    assert update.callback_query.id == stale_id
    assert isinstance(update.callback_query.message, InaccessibleMessage)
    old_message = await telegram_bot.send_message(
        alice.id, "old", reply_markup=keyboard(("Hi", "h"))
    )
    too_old = telegram.press_button(alice, telegram.messages(alice.id)[-1], "h", stale=True)
    (update,) = await poll_once(telegram_bot, offset=update.update_id + 1)
    assert isinstance(update.callback_query.message, InaccessibleMessage)
    assert update.callback_query.message.message_id == old_message.message_id
    tampered = telegram.press_stale(alice, alice.id, 12345, "owner:9999")
    (update,) = await poll_once(telegram_bot, offset=update.update_id + 1)
    assert update.callback_query.data == "owner:9999" and update.callback_query.id == tampered
    assert telegram.unanswered_callbacks() == [stale_id, too_old, tampered]
    telegram.allowed_errors.extend(["query is too old", "not modified", "to edit not found"])


async def test_media_caption_edits(
    telegram: FakeTelegramServer, telegram_bot: Bot, alice: FakeUser
) -> None:
    photo = telegram.send_photo(alice, make_jpeg())["photo"][-1]["file_id"]
    sent = await telegram_bot.send_photo(alice.id, photo, caption="1 of 3")
    await telegram_bot.edit_message_caption(
        chat_id=alice.id, message_id=sent.message_id, caption="2 of 3"
    )
    record = telegram.messages(alice.id)[-1]
    assert record.caption == "2 of 3" and record.edit_methods == ["editMessageCaption"]
    with pytest.raises(TelegramBadRequest, match="no text in the message"):
        await telegram_bot.edit_message_text("x", chat_id=alice.id, message_id=sent.message_id)

    video = telegram.send_video(alice, MP4, duration=30)["video"]["file_id"]
    swapped = await telegram_bot.edit_message_media(
        InputMediaVideo(media=video, caption="at 0:05", start_timestamp=5),
        chat_id=alice.id,
        message_id=sent.message_id,
    )
    assert isinstance(swapped, Message) and swapped.video is not None and not swapped.photo
    assert record.kind == "video" and record.start_timestamp == 5
    assert record.history[-1]["caption"] == "2 of 3"

    forwarded = await telegram_bot.forward_message(alice.id, alice.id, sent.message_id)
    assert forwarded.forward_origin is not None and forwarded.video is not None
    assert await telegram_bot.delete_messages(alice.id, [sent.message_id, 999])
    assert record.deleted and not telegram.messages(alice.id)[-1].deleted
    with pytest.raises(TelegramBadRequest, match="wrong file_id"):
        await telegram_bot.get_file("unknown")
    telegram.errors.clear()


# --------------------------------------------------------------------------- inline, commands


async def test_inline_query_answers(
    telegram: FakeTelegramServer, telegram_bot: Bot, alice: FakeUser
) -> None:
    photo = telegram.send_photo(alice, make_jpeg())["photo"][-1]["file_id"]
    query_id = telegram.inline_query(alice, "red car", offset="")
    updates = await poll_once(telegram_bot)
    inline = updates[-1].inline_query
    assert inline is not None and inline.query == "red car" and inline.id == query_id
    results = [InlineQueryResultCachedPhoto(id="r1", photo_file_id=photo)]
    assert await telegram_bot.answer_inline_query(
        inline.id, results, cache_time=5, is_personal=True, next_offset="10"
    )
    answer = await telegram.wait_inline_answer(query_id)
    assert answer["is_personal"] is True and answer["next_offset"] == "10"
    assert answer["results"][0]["photo_file_id"] == photo

    def article(i: int) -> InlineQueryResultArticle:
        content = InputTextMessageContent(message_text="t")
        return InlineQueryResultArticle(id=str(i), title="t", input_message_content=content)

    for bad, error in [
        ([article(i) for i in range(51)], "RESULTS_TOO_MUCH"),
        ([article(1), article(1)], "RESULT_ID_DUPLICATE"),
        ([InlineQueryResultCachedPhoto(id="x", photo_file_id="nope")], "wrong file identifier"),
    ]:
        again = telegram.inline_query(alice, "again")
        with pytest.raises(TelegramBadRequest, match=error):
            await telegram_bot.answer_inline_query(again, bad)
    telegram.errors.clear()


async def test_set_my_commands_per_language(
    telegram: FakeTelegramServer, telegram_bot: Bot
) -> None:
    await telegram_bot.set_my_commands([BotCommand(command="help", description="Help")])
    await telegram_bot.set_my_commands(
        [BotCommand(command="help", description="Помощь")], language_code="ru"
    )
    assert [c.description for c in await telegram_bot.get_my_commands(language_code="ru")] == [
        "Помощь"
    ]
    assert telegram.commands_for()[0]["command"] == "help"
    assert telegram.commands_for("ru")[0]["description"] == "Помощь"
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await telegram_bot.set_my_commands([BotCommand(command="Start!", description="x")])
    alice = telegram.user(1001, "Alice")
    await telegram_bot.send_chat_action(alice.id, "upload_photo")
    assert telegram.chat_actions == [(alice.id, "upload_photo")]
    telegram.errors.clear()


# --------------------------------------------------------------------------- real polling loop


def echo_router(seen: list[Message]) -> Router:
    router = Router()

    @router.message(F.text)
    async def echo(message: Message) -> None:
        seen.append(message)
        await message.answer(f"echo: {message.text}")

    @router.message(F.photo)
    async def photo(message: Message, album_seen: list[str]) -> None:
        album_seen.append(message.media_group_id or "")

    return router


async def test_dispatcher_polling_echo_and_album_batches(
    telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser
) -> None:
    seen: list[Message] = []
    album_seen: list[str] = []
    dp = Dispatcher(album_seen=album_seen)
    dp.include_router(echo_router(seen))
    bot = telegram.make_bot()
    async with polling(dp, bot, telegram):
        telegram.send_text(alice, "hello")
        telegram.send_text(boris, "привет")
        assert (await telegram.next_message(alice.id)).text == "echo: hello"
        assert (await telegram.next_message(boris.id)).text == "echo: привет"
        await telegram.send_album(
            alice, [("photo", make_jpeg()), ("photo", make_jpeg(200, 200))], batches=[1, 1]
        )
        await telegram.wait_for(lambda _: len(album_seen) == 2, what="both album items")
    assert len(set(album_seen)) == 1
    # stop_polling hung up the long poll; the fake sees the disconnect.
    await telegram.wait_for(lambda s: not s.polls_in_flight(), what="the poll to end")
    calls = telegram.calls_of("getUpdates")
    assert calls[0].params["allowed_updates"] == ["message"]  # resolved from the handlers
    assert all(r.confirmed for r in telegram.updates.values())  # offset acknowledged all


async def test_polling_surfaces_handler_exceptions(
    telegram: FakeTelegramServer, alice: FakeUser
) -> None:
    router = Router()

    @router.message()
    async def broken(message: Message) -> None:
        raise RuntimeError("boom in handler")

    dp = Dispatcher()
    dp.include_router(router)
    with pytest.raises(AssertionError, match="boom in handler"):
        async with polling(dp, telegram.make_bot(), telegram) as run:
            telegram.send_text(alice, "crash please")
            await telegram.wait_for(lambda _: run.log.records, what="the handler's error log")


async def test_webhook_delivery_to_aiogram_handler(
    telegram: FakeTelegramServer, alice: FakeUser
) -> None:
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler
    from aiohttp import web

    seen: list[Message] = []
    dp = Dispatcher(album_seen=[])
    dp.include_router(echo_router(seen))
    bot = telegram.make_bot()
    app = web.Application()
    SimpleRequestHandler(dp, bot, secret_token="s3cret").register(app, path="/hook")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        telegram.send_text(alice, "via webhook")
        assert (await telegram.next_message(alice.id)).text == "echo: via webhook"
        assert telegram.webhook_errors == []
        with pytest.raises(TelegramConflictError):
            await bot.get_updates(timeout=0)
        await bot.delete_webhook()
    finally:
        await runner.cleanup()
        await bot.session.close()
    telegram.allowed_errors.append("while webhook is active")


# --------------------------------------------------------------------------- a bot process

ECHO_BOT = textwrap.dedent(
    """
    import asyncio, os
    from aiogram import Bot, Dispatcher, Router, F
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    async def main():
        router = Router()

        @router.message(F.text)
        async def echo(message):
            await message.answer("echo: " + message.text)

        dp = Dispatcher()
        dp.include_router(router)
        api = TelegramAPIServer.from_base(os.environ["TELEGRAM_API_BASE"])
        bot = Bot(os.environ["BOT_TOKEN"], session=AiohttpSession(api=api))
        print("started", flush=True)
        await dp.start_polling(bot, polling_timeout=1)

    asyncio.run(main())
    """
)


async def test_bot_process_killed_before_ack_gets_the_update_again(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    script = tmp_path / "echo_bot.py"
    script.write_text(ECHO_BOT)
    async with BotProcess([str(script)], env=bot_env(telegram)) as process:
        await process.wait_output("started", timeout=60)  # importing aiogram takes seconds
        await telegram.wait_poll(timeout=60)
        telegram.send_text(alice, "hi")
        assert (await telegram.next_message(alice.id)).text == "echo: hi"
        pushed = telegram.send_text(alice, "one")
        # Hold the getUpdates whose offset would acknowledge "one", then crash the bot.
        gate = telegram.hold("getUpdates", when=lambda c: c.int_param("offset") is not None)
        assert (await telegram.next_message(alice.id)).text == "echo: one"
        await gate.arrived()
        assert await process.kill() != 0
        await telegram.wait_for(lambda s: not s.polls_in_flight(), what="the dead bot's poll")
        assert gate.held[0].status == 499  # it hung up: the offset never took effect
        gate.release()
    assert not telegram.update_record(pushed).confirmed

    # The restarted bot (here in-process) is handed the unacknowledged update again.
    seen: list[Message] = []
    dp = Dispatcher(album_seen=[])
    dp.include_router(echo_router(seen))
    async with polling(dp, telegram.make_bot(), telegram):
        assert (await telegram.next_message(alice.id)).text == "echo: one"
        await telegram.wait_confirmed(pushed)
    assert telegram.update_record(pushed).delivered == 2


async def test_bot_process_output_and_stop() -> None:
    code = "import time; print('ready', flush=True); time.sleep(60)"
    async with BotProcess(["-c", code]) as process:
        assert (await process.wait_output(r"rea(dy)")).group(1) == "dy"
        assert await process.stop() == -15  # SIGTERM
    assert process.output == "ready"
