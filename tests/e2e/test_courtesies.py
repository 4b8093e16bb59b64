"""The courtesies of a native bot, end to end against the fake Telegram: "sending photo…" while
a search runs and "typing…" while a video is processed, a reaction on photos saved quietly in a
group, descriptions in both languages set only when they changed, the inline button's
``/start inline``, and start-up warnings about inline mode and privacy mode."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from aiogram.types import ReactionTypeEmoji
from PIL import Image

from bot.app import run
from bot.courtesy import publish_profile
from bot.i18n import t
from tests.e2e.botapp import BotApp, bot_settings, running_search_bot
from tests.e2e.fake_telegram import ApiCall, FakeTelegramServer, FakeUser
from tests.e2e.search_support import scenes_mp4, shape_jpeg

FAST_ACTIONS = {"chat_action_interval_s": 0.05, "near_duplicate_threshold": 1.0}


def jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), colour).save(out, "JPEG")
    return out.getvalue()


def action_in(chat_id: int, action: str) -> Callable[[ApiCall], bool]:
    return lambda c: c.chat_id == chat_id and c.params.get("action") == action


@pytest.fixture
async def app(telegram: FakeTelegramServer, tmp_path: Path):  # type: ignore[no-untyped-def]
    async with running_search_bot(
        telegram, tmp_path / "data", quality=False, **FAST_ACTIONS
    ) as bot:
        yield bot


# --- chat actions ---------------------------------------------------------------------------


async def test_a_search_shows_sending_photo_while_it_lasts(
    app: BotApp, telegram: FakeTelegramServer, alice: FakeUser
) -> None:
    await app.seed_photo(alice, shape_jpeg("red", "square"))
    await app.seed_photo(alice, shape_jpeg("blue", "circle"))
    mark = telegram.mark()
    slow = telegram.hold("getFile")  # the query photo takes a while to download
    telegram.send_photo(alice, shape_jpeg("red", "square", seed=9), caption="?")
    await telegram.wait_call(
        "sendChatAction", n=3, since=mark, where=action_in(alice.id, "upload_photo")
    )
    slow.release()
    answer = await app.answer(alice)
    assert answer.file_ids and "Found" in (answer.text.text or "")
    first_action = telegram.calls_of("sendChatAction", since=mark)[0]
    assert first_action.index < answer.media[0].call.index  # shown before the first hit

    mark = telegram.mark()
    await app.ask(alice, "red square")  # a text query too
    assert telegram.calls_of("sendChatAction", since=mark)


async def test_a_refused_chat_action_does_not_break_the_search(
    app: BotApp, telegram: FakeTelegramServer, alice: FakeUser
) -> None:
    await app.seed_photo(alice, shape_jpeg("green", "triangle"))
    telegram.fail("sendChatAction", 400, "Bad Request: not enough rights", times=None)
    answer = await app.ask(alice, "green triangle")
    assert len(answer.file_ids) == 1 and "Found" in (answer.text.text or "")
    assert telegram.calls_of("sendChatAction")  # tried, refused, and nobody minded


async def test_a_video_being_processed_shows_typing(
    app: BotApp, telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    scenes = [(2.0, Image.new("RGB", (96, 64), c)) for c in ((220, 30, 30), (30, 40, 220))]
    data = scenes_mp4(tmp_path / "clip.mp4", scenes)
    download = telegram.hold("getFile")  # the ingest lasts while the download is held
    mark = telegram.mark()
    sent = telegram.send_video(alice, data, duration=4, width=96, height=64)
    await telegram.wait_call("sendChatAction", n=3, since=mark, where=action_in(alice.id, "typing"))
    download.release()
    reply = await telegram.wait_message(
        alice.id, lambda m: m.reply_to_message_id == sent["message_id"]
    )
    await telegram.wait_for(lambda _: (reply.text or "").startswith("✅"), what="the result")
    assert (reply.text or "").startswith("✅ Video saved: ")


async def test_a_video_that_is_a_still_picture_is_acknowledged_as_a_photo(
    app: BotApp, telegram: FakeTelegramServer, alice: FakeUser
) -> None:
    sent = telegram.send_video(alice, jpeg((200, 40, 40)), duration=3, width=320, height=240)
    reply = await telegram.wait_message(
        alice.id, lambda m: m.reply_to_message_id == sent["message_id"]
    )
    await telegram.wait_for(lambda _: (reply.text or "")[:1] in "✅❌", what="the result")
    assert reply.text == "✅ Saved."


# --- reactions ------------------------------------------------------------------------------


async def test_a_photo_saved_quietly_in_a_group_gets_a_reaction(
    app: BotApp, telegram: FakeTelegramServer, alice: FakeUser
) -> None:
    family = telegram.group(privacy=False)
    posted = telegram.send_photo(telegram.member(alice, family), shape_jpeg("red", "star"))
    await telegram.wait_call("setMessageReaction")
    assert telegram.reactions == {(family.id, posted["message_id"]): ["👌"]}
    assert await app.chat_count(family.id) == 1
    assert telegram.messages(family.id) == []  # the reaction is the whole acknowledgement

    private = telegram.send_photo(alice, shape_jpeg("blue", "square"))
    reply = await telegram.wait_message(
        alice.id, lambda m: m.reply_to_message_id == private["message_id"]
    )
    assert reply.text == "✅ Saved."
    assert (alice.id, private["message_id"]) not in telegram.reactions  # a reply says it


async def test_a_refused_reaction_is_logged_at_debug_and_nothing_else_happens(
    app: BotApp, telegram: FakeTelegramServer, alice: FakeUser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.courtesy")
    family = telegram.group(privacy=False)
    telegram.fail("setMessageReaction", 400, "Bad Request: REACTION_INVALID", times=None)
    telegram.send_photo(telegram.member(alice, family), shape_jpeg("red", "star"))
    await telegram.wait_call("setMessageReaction")
    await telegram.wait_for(
        lambda _: any("no reaction on message" in r.getMessage() for r in caplog.records),
        what="the debug line",
    )
    assert await app.chat_count(family.id) == 1
    assert telegram.messages(family.id) == [] and telegram.reactions == {}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_the_fake_accepts_only_telegrams_reaction_emoji(
    telegram: FakeTelegramServer, telegram_bot: object, alice: FakeUser
) -> None:
    from aiogram import Bot
    from aiogram.exceptions import TelegramBadRequest

    assert isinstance(telegram_bot, Bot)
    message = telegram.send_text(alice, "hello")
    with pytest.raises(TelegramBadRequest, match="REACTION_INVALID"):
        await telegram_bot.set_message_reaction(
            alice.id, message["message_id"], reaction=[ReactionTypeEmoji(emoji="🦆")]
        )
    telegram.allowed_errors.append("REACTION_INVALID")
    await telegram_bot.set_message_reaction(
        alice.id, message["message_id"], reaction=[ReactionTypeEmoji(emoji="👍")]
    )
    assert telegram.reactions == {(alice.id, message["message_id"]): ["👍"]}


# --- /start payloads ------------------------------------------------------------------------


async def test_start_inline_explains_inline_mode_in_the_users_language(
    app: BotApp, telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser
) -> None:
    telegram.send_command(alice, "start", "inline")
    english = (await telegram.next_message(alice.chat_id)).text or ""
    telegram.send_command(boris, "start", "inline")
    russian = (await telegram.next_message(boris.chat_id)).text or ""
    telegram.send_command(alice, "start", "somewhere-else")
    unknown = (await telegram.next_message(alice.chat_id)).text or ""
    assert "any chat" in english and "@image_finder_test_bot cat on a sofa" in english
    assert "любом чате" in russian and "@image_finder_test_bot" in russian
    assert unknown.startswith("Hi Alice!") and "any chat" not in unknown


# --- start-up -------------------------------------------------------------------------------


async def test_descriptions_are_set_per_language_only_when_they_changed(
    telegram: FakeTelegramServer, telegram_bot: object
) -> None:
    from aiogram import Bot

    assert isinstance(telegram_bot, Bot)
    assert await publish_profile(telegram_bot, "finder_bot") == 6
    texts = telegram.descriptions
    assert texts[("description", "")] == texts[("description", "en")]
    assert "@finder_bot" in texts[("description", "en")]
    assert texts[("short_description", "ru")] == t("courtesy-short-description", "ru")
    assert "картинки" in texts[("description", "ru")]
    assert all(len(t) <= 512 for t in texts.values())
    assert all(len(texts[("short_description", c)]) <= 120 for c in ("", "en", "ru"))

    mark = telegram.mark()
    assert await publish_profile(telegram_bot, "finder_bot") == 0  # a restart: nothing to set
    assert not telegram.calls_of("setMyDescription", since=mark)
    assert not telegram.calls_of("setMyShortDescription", since=mark)
    assert await publish_profile(telegram_bot, "renamed_bot") == 3  # long descriptions only


async def start_and_stop(telegram: FakeTelegramServer, tmp_path: Path) -> None:
    """``run`` until it is ready, then stop it."""
    ready = asyncio.Event()
    stop = asyncio.Event()
    settings = bot_settings(telegram, tmp_path)
    task = asyncio.create_task(run(settings, ready=lambda _: ready.set(), stop=stop))
    try:
        await asyncio.wait_for(ready.wait(), 30)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def courtesy_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "bot.courtesy" and r.levelno == logging.WARNING
    ]


async def test_start_up_warns_about_inline_mode_off_and_privacy_mode_on(
    telegram: FakeTelegramServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    telegram.supports_inline_queries = False
    telegram.can_read_all_group_messages = False
    await start_and_stop(telegram, tmp_path)
    inline, privacy = courtesy_warnings(caplog)
    assert inline.startswith("inline mode is off: enable it with @BotFather /setinline")
    assert privacy.startswith("privacy mode is on: in groups the bot only sees commands")
    assert ("description", "ru") in telegram.descriptions  # and the profile was published


async def test_start_up_is_quiet_when_inline_mode_is_on_and_privacy_mode_off(
    telegram: FakeTelegramServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    telegram.supports_inline_queries = True
    telegram.can_read_all_group_messages = True
    await start_and_stop(telegram, tmp_path)
    assert courtesy_warnings(caplog) == []
    assert ("short_description", "") in telegram.descriptions
