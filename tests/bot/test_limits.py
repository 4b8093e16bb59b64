"""Telegram's limits (bot/limits.py) on a hand-moved clock: the event loop's own, so aiolimiter's
timers and the 429 gates' sleeps run on it and nothing really sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageText,
    SendChatAction,
    SendMediaGroup,
    SendMessage,
    TelegramMethod,
)
from aiogram.types import InputMediaPhoto

from bot.config import BotSettings
from bot.limits import LimitsConfig, Rate, TelegramLimits, is_group, message_cost

ALICE, BORIS, GROUP = 1001, 1002, -100500


class LoopClock:
    """Replaces the running loop's ``time()``; ``advance`` moves it and lets due timers run."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        loop = asyncio.get_running_loop()
        self.now = loop.time()
        monkeypatch.setattr(loop, "time", lambda: self.now)

    async def advance(self, seconds: float, *, step: float = 0.05) -> None:
        """In small steps, so a timer set by a timer that fired starts from when that fired."""
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            await settle()


async def settle() -> None:
    """Let every task that can run, run (a bounded number of loop turns)."""
    for _ in range(50):
        await asyncio.sleep(0)


@pytest.fixture
async def clock(monkeypatch: pytest.MonkeyPatch) -> LoopClock:
    return LoopClock(monkeypatch)


PRIVATE, GROUP_RATE, BOT = Rate(3, 3.0), Rate(20, 60.0), Rate(30, 1.0)


def limits(
    private: Rate = PRIVATE, group: Rate = GROUP_RATE, bot: Rate = BOT, **kwargs: Any
) -> TelegramLimits:
    """Bursts of 3 then one a second in private, 20 a minute in groups, 30 a second in all."""
    return TelegramLimits(LimitsConfig(private, group, bot, max_wait_s=60.0), **kwargs)


def send(chat_id: int | str, n: int = 1) -> TelegramMethod[Any]:
    if n == 1:
        return SendMessage(chat_id=chat_id, text="x")
    return SendMediaGroup(chat_id=chat_id, media=[InputMediaPhoto(media=f"p{i}") for i in range(n)])


async def through(lim: TelegramLimits, method: TelegramMethod[Any]) -> None:
    async with lim.slot(method):
        pass


def start(awaitable: Awaitable[None]) -> asyncio.Task[None]:
    return asyncio.ensure_future(awaitable)


async def test_a_private_chat_gets_its_burst_then_one_a_second(clock: LoopClock) -> None:
    lim = limits()
    tasks = [start(through(lim, send(ALICE))) for _ in range(5)]
    await settle()
    assert [t.done() for t in tasks] == [True, True, True, False, False]
    await clock.advance(0.9)
    assert not tasks[3].done()
    await clock.advance(0.2)
    assert tasks[3].done() and not tasks[4].done()
    await through(lim, send(BORIS))  # another chat has its own bucket
    await clock.advance(1.0)
    assert tasks[4].done()


async def test_a_group_gets_twenty_a_minute_and_an_album_counts_each_item(
    clock: LoopClock,
) -> None:
    lim = limits()
    await through(lim, send(GROUP, 10))
    await through(lim, send(GROUP, 10))
    summary = start(through(lim, send(GROUP)))
    await settle()
    assert not summary.done()  # 20 items already: one more waits for the bucket to drain
    await clock.advance(2.9)
    assert not summary.done()
    await clock.advance(0.2)  # a minute / 20
    assert summary.done()


async def test_the_whole_bot_gets_thirty_a_second(clock: LoopClock) -> None:
    lim = limits(private=Rate(0, 0))  # private chats unpaced: only the bot's limit holds
    for chat in range(30):
        await through(lim, send(chat + 1))
    late = start(through(lim, send(99)))
    await settle()
    assert not late.done()
    await clock.advance(1 / 30 + 0.001)
    assert late.done()


async def test_an_album_bigger_than_the_burst_waits_for_the_pace(clock: LoopClock) -> None:
    lim = limits()  # bursts of 3, one a second
    album = start(through(lim, send(ALICE, 10)))
    await clock.advance(6.9)
    assert not album.done()
    await clock.advance(0.5)  # each piece's timer fires at the next step of the clock
    assert album.done()


async def test_a_429_closes_the_chat_not_the_others(clock: LoopClock) -> None:
    lim = limits()
    lim.close(ALICE, 5)
    held = start(through(lim, send(ALICE)))
    chat_action = start(through(lim, SendChatAction(chat_id=ALICE, action="typing")))
    await through(lim, send(BORIS))  # not held up
    await clock.advance(4.9)
    assert not held.done() and not chat_action.done()  # nothing at all goes to the chat
    await clock.advance(0.2)
    assert held.done() and chat_action.done()


async def test_a_429_without_a_chat_closes_the_whole_bot(clock: LoopClock) -> None:
    lim = limits()
    lim.close(None, 2)
    held = [
        start(through(lim, m)) for m in (send(ALICE), AnswerCallbackQuery(callback_query_id="q"))
    ]
    await clock.advance(1.9)
    assert not any(t.done() for t in held)
    await clock.advance(0.2)
    assert all(t.done() for t in held)


async def test_a_429_inside_a_slot_closes_the_gate_before_the_next_call_for_that_chat(
    clock: LoopClock,
) -> None:
    lim = limits(private=Rate(0, 0))
    method = send(ALICE)
    entered: list[str] = []

    async def call(name: str, fail: bool) -> None:
        async with lim.slot(method):
            entered.append(name)
            await asyncio.sleep(0)
            if fail:
                raise TelegramRetryAfter(method=method, message="Too Many Requests", retry_after=3)

    first = start(call("first", fail=True))
    second = start(call("second", fail=False))  # queued behind the first on the chat's lock
    await settle()
    assert entered == ["first"] and isinstance(first.exception(), TelegramRetryAfter)
    await clock.advance(2.9)
    assert entered == ["first"]
    await clock.advance(0.2)
    assert entered == ["first", "second"] and second.done()


async def test_a_chat_closed_past_the_cap_fails_at_once(clock: LoopClock) -> None:
    lim = limits()
    lim.close(ALICE, 600)
    with pytest.raises(TelegramRetryAfter) as raised:
        await through(lim, send(ALICE))
    assert raised.value.retry_after == 600


async def test_idle_chats_are_forgotten(clock: LoopClock) -> None:
    lim = limits(max_chats=3)
    for chat in range(1, 6):
        await through(lim, send(chat))
        await clock.advance(5)  # its bucket drains: the chat is idle again
    assert lim.chats <= 3
    busy = [start(through(lim, send(ALICE))) for _ in range(5)]  # 2 wait for the pace
    await settle()
    for chat in range(10, 20):
        await through(lim, send(chat))
    assert ALICE in lim._locks  # a chat with calls waiting is kept
    await clock.advance(3)
    assert all(t.done() for t in busy)


def test_message_cost() -> None:
    photos = [InputMediaPhoto(media=f"id{n}") for n in range(3)]
    assert message_cost(SendMediaGroup(chat_id=1, media=photos)) == 3
    assert message_cost(SendMessage(chat_id=1, text="x")) == 1
    assert message_cost(EditMessageText(chat_id=1, message_id=2, text="x")) == 1
    assert message_cost(SendChatAction(chat_id=1, action="typing")) == 0
    assert message_cost(AnswerCallbackQuery(callback_query_id="1")) == 0


def test_groups_and_channels_are_told_from_private_chats() -> None:
    assert is_group(-100123) and is_group(-42) and is_group("@channel")
    assert not is_group(1001)


def test_config_comes_from_the_settings() -> None:
    settings = BotSettings(
        send_pace_per_chat_s=0.5,
        send_burst_per_chat=4,
        send_group_limit=10,
        send_group_period_s=30,
        send_bot_limit=25,
        telegram_retry_after_max_s=42,
    )
    config = LimitsConfig.from_settings(settings)
    assert config.private == Rate(4, 2.0)  # 4 at once, then one every 0.5 s
    assert config.group == Rate(10, 30.0) and config.bot == Rate(25, 1.0)
    assert config.max_wait_s == 42
    off = LimitsConfig.from_settings(BotSettings(send_pace_per_chat_s=0, send_group_limit=0))
    assert not off.private.on and not off.group.on and off.bot.on


async def test_a_closed_chat_names_its_whole_seconds_whatever_the_clock_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A monotonic clock far from zero makes ``deadline - now`` a hair above the seconds set."""
    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "time", lambda: 3631.626946558053)  # (t + 600) - t > 600
    lim = limits()
    lim.close(ALICE, 600)
    with pytest.raises(TelegramRetryAfter) as raised:
        await through(lim, send(ALICE))
    assert raised.value.retry_after == 600
