"""Flood control and retries on the Bot's HTTP session, against the fake server's faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import (
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageText,
    SendChatAction,
    SendMediaGroup,
    SendMessage,
)
from aiogram.types import InputMediaPhoto

from bot.app import create_bot, transport_of
from bot.middlewares import ChatPacer, TelegramTransportMiddleware, message_cost
from core.settings import Settings
from tests.e2e.fake_telegram import FakeTelegramServer, FakeUser


class Sleeps:
    """Records requested delays instead of sleeping them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as fake:
        yield fake
        fake.assert_clean()


@pytest.fixture
def alice(server: FakeTelegramServer) -> FakeUser:
    return server.user(1001, "Alice", "en")


def settings_for(server: FakeTelegramServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "bot_token": server.token,
        "telegram_api_base": server.url,
        "telegram_retry_attempts": 3,
        "telegram_retry_backoff_s": 0.5,
        "telegram_retry_after_max_s": 60,
        "send_pace_per_chat_s": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def bot_and_sleeps(server: FakeTelegramServer) -> AsyncIterator[tuple[Bot, Sleeps]]:
    bot = create_bot(settings_for(server))
    transport = transport_of(bot)
    assert transport is not None
    sleeps = Sleeps()
    transport._sleep = sleeps
    try:
        yield bot, sleeps
    finally:
        await bot.session.close()


def sends(server: FakeTelegramServer) -> list[int | None]:
    return [call.status for call in server.calls_of("sendMessage")]


async def test_429_waits_the_retry_after_then_sends_once(
    server: FakeTelegramServer, alice: FakeUser, bot_and_sleeps: tuple[Bot, Sleeps]
) -> None:
    bot, sleeps = bot_and_sleeps
    server.fail_retry_after("sendMessage", retry_after=7)
    message = await bot.send_message(alice.id, "hello")
    assert message.text == "hello"
    assert sleeps.delays == [7.0]
    assert sends(server) == [429, 200]
    assert len(server.messages(alice.id)) == 1


async def test_429_beyond_the_cap_is_raised_without_waiting(
    server: FakeTelegramServer, alice: FakeUser, bot_and_sleeps: tuple[Bot, Sleeps]
) -> None:
    bot, sleeps = bot_and_sleeps
    server.fail_retry_after("sendMessage", retry_after=3600)
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(alice.id, "hello")
    assert sleeps.delays == []
    server.allowed_errors.append("Too Many Requests")


async def test_5xx_is_retried_with_growing_backoff(
    server: FakeTelegramServer, alice: FakeUser, bot_and_sleeps: tuple[Bot, Sleeps]
) -> None:
    bot, sleeps = bot_and_sleeps
    server.fail("sendMessage", 502, times=2)
    await bot.send_message(alice.id, "hello")
    assert sleeps.delays == [0.5, 1.0]
    assert sends(server) == [502, 502, 200]


async def test_5xx_gives_up_after_the_attempts(
    server: FakeTelegramServer, alice: FakeUser, bot_and_sleeps: tuple[Bot, Sleeps]
) -> None:
    bot, sleeps = bot_and_sleeps
    server.fail("sendMessage", 503, times=None)
    with pytest.raises(TelegramServerError):
        await bot.send_message(alice.id, "hello")
    assert sends(server) == [503, 503, 503]
    assert sleeps.delays == [0.5, 1.0]
    server.allowed_errors.append("Service Unavailable")


async def test_dropped_connection_is_retried(
    server: FakeTelegramServer, alice: FakeUser, bot_and_sleeps: tuple[Bot, Sleeps]
) -> None:
    bot, sleeps = bot_and_sleeps
    server.drop_connection("sendMessage")
    await bot.send_message(alice.id, "hello")
    assert sleeps.delays == [0.5]
    assert len(server.messages(alice.id)) == 1


async def test_blocked_chat_is_reported_and_not_retried(
    server: FakeTelegramServer, alice: FakeUser, bot_and_sleeps: tuple[Bot, Sleeps]
) -> None:
    bot, sleeps = bot_and_sleeps
    blocked: list[int | str] = []

    async def on_blocked(chat_id: int | str) -> None:
        blocked.append(chat_id)

    transport = transport_of(bot)
    assert transport is not None
    transport.on_blocked = on_blocked
    server.block(alice)
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(alice.id, "hello")
    assert blocked == [alice.id]
    assert sends(server) == [403]
    assert sleeps.delays == []
    server.allowed_errors.append("blocked by the user")


async def test_a_failing_blocked_callback_does_not_hide_the_403(
    server: FakeTelegramServer, alice: FakeUser, bot_and_sleeps: tuple[Bot, Sleeps]
) -> None:
    bot, _ = bot_and_sleeps

    async def broken(chat_id: int | str) -> None:
        raise RuntimeError("database is gone")

    transport = transport_of(bot)
    assert transport is not None
    transport.on_blocked = broken
    server.block(alice)
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(alice.id, "hello")
    server.allowed_errors.append("blocked by the user")


async def test_get_updates_is_left_to_the_polling_loop(
    server: FakeTelegramServer, bot_and_sleeps: tuple[Bot, Sleeps]
) -> None:
    bot, sleeps = bot_and_sleeps
    server.fail("getUpdates", 502)
    with pytest.raises(TelegramServerError):
        await bot.get_updates(timeout=0)
    assert sleeps.delays == []
    server.allowed_errors.append("Bad Gateway")


async def test_messages_to_one_chat_are_paced(server: FakeTelegramServer, alice: FakeUser) -> None:
    boris = server.user(1002, "Boris", "ru")
    bot = create_bot(settings_for(server, send_pace_per_chat_s=1.0, send_burst_per_chat=2))
    transport = transport_of(bot)
    assert transport is not None and transport.pacer is not None
    sleeps = Sleeps()
    transport.pacer._sleep = sleeps
    try:
        for n in range(3):
            await bot.send_message(alice.id, f"m{n}")
        assert len(sleeps.delays) == 1 and 0 < sleeps.delays[0] <= 1.0  # the third one waits
        await bot.send_message(boris.id, "other chat")
        await bot.send_chat_action(alice.id, "typing")  # not a message: not paced
        assert len(sleeps.delays) == 1
    finally:
        await bot.session.close()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_pacer_bucket() -> None:
    clock = Clock()
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        clock.now += delay

    pacer = ChatPacer(1.0, burst=3, clock=clock, sleep=sleep)
    assert [await pacer.acquire(1) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await pacer.acquire(1) == pytest.approx(1.0)
    assert await pacer.acquire(2, cost=3) == 0.0  # another chat has its own bucket
    clock.now += 0.5
    assert await pacer.acquire(1) == pytest.approx(0.5)
    clock.now += 10
    assert await pacer.acquire(1, cost=10) == 0.0  # refilled, and a cost is capped at the burst
    assert await pacer.acquire(1) == pytest.approx(1.0)
    assert await ChatPacer(0).acquire(1, cost=100) == 0.0  # pacing off


async def test_pacer_forgets_idle_chats() -> None:
    clock = Clock()
    pacer = ChatPacer(1.0, burst=1, clock=clock, max_chats=3)
    for chat in range(5):
        await pacer.acquire(chat)
        clock.now += 5
    assert len(pacer._locks) <= 3


def test_message_cost() -> None:
    photos = [InputMediaPhoto(media=f"id{n}") for n in range(3)]
    assert message_cost(SendMediaGroup(chat_id=1, media=photos)) == 3
    assert message_cost(SendMessage(chat_id=1, text="x")) == 1
    assert message_cost(EditMessageText(chat_id=1, message_id=2, text="x")) == 1
    assert message_cost(SendChatAction(chat_id=1, action="typing")) == 0
    assert message_cost(AnswerCallbackQuery(callback_query_id="1")) == 0


def test_transport_middleware_defaults() -> None:
    middleware = TelegramTransportMiddleware(attempts=0)
    assert middleware.attempts == 1
