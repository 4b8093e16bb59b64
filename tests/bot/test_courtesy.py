"""The courtesies without Telegram: chat actions repeat and never fail the work, the operator
warnings read getMe, and a "video" kept as a still picture is acknowledged as a photo."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest
from aiogram import Bot
from aiogram.enums import ChatAction
from aiogram.types import User

from bot.courtesy import chat_action, warn_about_me
from bot.reports import ItemResult, item_text
from core.ingest.pipeline import IngestOutcome, IngestRequest


class ActionBot:
    """Records chat actions; the second one fails; wakes the test after ``wanted`` calls."""

    id = 42

    def __init__(self, wanted: int) -> None:
        self.actions: list[tuple[int | str, str]] = []
        self.wanted = wanted
        self.enough = asyncio.Event()

    async def send_chat_action(self, *, chat_id: int | str, action: str, **_: Any) -> bool:
        self.actions.append((chat_id, action))
        if len(self.actions) >= self.wanted:
            self.enough.set()
        if len(self.actions) == 2:
            raise RuntimeError("Telegram said no")
        return True


async def test_chat_action_repeats_while_the_work_lasts_and_swallows_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = ActionBot(wanted=3)
    caplog.set_level(logging.DEBUG, logger="bot.courtesy")
    async with chat_action(cast(Bot, bot), 7, ChatAction.UPLOAD_PHOTO, interval=0.01):
        await asyncio.wait_for(bot.enough.wait(), 5)  # the work: lasts until 3 actions went out
    assert len(bot.actions) >= 3 and set(bot.actions) == {(7, "upload_photo")}
    assert any("chat action not sent" in r.getMessage() for r in caplog.records)


def me(*, inline: bool | None, reads_all: bool | None) -> User:
    return User(
        id=1,
        is_bot=True,
        first_name="Finder",
        username="finder_bot",
        supports_inline_queries=inline,
        can_read_all_group_messages=reads_all,
    )


def test_operator_warnings_follow_get_me(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.courtesy")
    both = warn_about_me(me(inline=False, reads_all=False))
    assert len(both) == 2
    assert "inline mode is off" in both[0] and "/setinline" in both[0]
    assert "privacy mode is on" in both[1] and "/setprivacy" in both[1]
    assert [r.getMessage() for r in caplog.records] == both
    assert warn_about_me(me(inline=True, reads_all=True)) == []
    assert warn_about_me(me(inline=None, reads_all=None)) == []  # not from getMe: unknown
    (only,) = warn_about_me(me(inline=True, reads_all=False))
    assert only.startswith("privacy mode is on")


def outcome(kind: str, timestamps: tuple[float | None, ...], **fields: Any) -> IngestOutcome:
    request = IngestRequest.of(1, kind, "u1", file_id="f1", mime="video/mp4")  # type: ignore[arg-type]
    units = tuple(range(1, len(timestamps) + 1))
    return IngestOutcome(
        "saved", 1, request, media_id=5, unit_ids=units, timestamps=timestamps, **fields
    )


def test_a_video_kept_as_a_still_picture_is_acknowledged_as_a_photo() -> None:
    still = outcome("video", (None,))
    assert still.stored_as_picture
    result = ItemResult.from_outcome(still)
    assert item_text(result, "en", is_video=True) == "✅ Saved."
    assert item_text(result, "ru", is_video=True) == "✅ Сохранено."
    frames = ItemResult.from_outcome(outcome("video", (0.0, 4.0)))
    assert not frames.still
    assert item_text(frames, "en", is_video=True).startswith("✅ Video saved: 2 moments")
    one_frame = ItemResult.from_outcome(outcome("video", (0.0,)))
    assert item_text(one_frame, "en", is_video=True).startswith("✅ Video saved: 1 moment")
    cover = outcome("video", (None,), thumbnail_only=True)
    assert not cover.stored_as_picture
    assert not outcome("photo", (None,)).stored_as_picture
