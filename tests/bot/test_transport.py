"""Flood control and retries on the Bot's HTTP session, against the fake server's faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import (
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import EditMessageText, SendChatAction, SendMessage

from bot.app import create_bot, transport_of
from bot.config import BotAppSettings
from bot.middlewares import TelegramTransportMiddleware, at_most_once
from tests.e2e.fake_telegram import FakeTelegramServer, FakeUser


class Sleeps:
    """Records requested delays instead of sleeping them, and moves its clock on by them."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.now += delay
        await asyncio.sleep(0)


def with_sleeps(bot: Bot) -> Sleeps:
    """Backoff and 429 waits of the bot's transport go to a :class:`Sleeps`."""
    transport = transport_of(bot)
    assert transport is not None and transport.limits is not None
    sleeps = Sleeps()
    transport._sleep = sleeps
    transport.limits.sleep, transport.limits.clock = sleeps, sleeps.clock
    return sleeps


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as fake:
        yield fake
        fake.assert_clean()


@pytest.fixture
def alice(server: FakeTelegramServer) -> FakeUser:
    return server.user(1001, "Alice", "en")


def settings_for(server: FakeTelegramServer, **overrides: Any) -> BotAppSettings:
    values: dict[str, Any] = {
        "bot_token": server.token,
        "telegram_api_base": server.url,
        "telegram_retry_attempts": 3,
        "telegram_retry_backoff_s": 0.5,
        "telegram_retry_after_max_s": 60,
        "send_pace_per_chat_s": 0,
    }
    values.update(overrides)
    return BotAppSettings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def bot_and_sleeps(server: FakeTelegramServer) -> AsyncIterator[tuple[Bot, Sleeps]]:
    bot = create_bot(settings_for(server))
    sleeps = with_sleeps(bot)
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


@pytest.mark.parametrize("after", [False, True])
async def test_a_send_whose_connection_dropped_is_not_repeated(
    server: FakeTelegramServer, alice: FakeUser, bot_and_sleeps: tuple[Bot, Sleeps], after: bool
) -> None:
    """The bot cannot tell whether Telegram got it: a second try could be a second message."""
    bot, sleeps = bot_and_sleeps
    server.drop_connection("sendMessage", after=after)
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(alice.id, "hello")
    assert sleeps.delays == []
    assert len(server.calls_of("sendMessage")) == 1
    assert len(server.messages(alice.id)) == (1 if after else 0)
    assert server.duplicates == []


async def test_a_dropped_call_that_may_run_twice_is_retried(
    server: FakeTelegramServer, alice: FakeUser, bot_and_sleeps: tuple[Bot, Sleeps]
) -> None:
    bot, sleeps = bot_and_sleeps
    sent = await bot.send_message(alice.id, "hello")
    server.drop_connection("editMessageText")
    await bot.edit_message_text("hello again", chat_id=alice.id, message_id=sent.message_id)
    assert sleeps.delays == [0.5]
    assert server.messages(alice.id)[0].text == "hello again"


async def test_a_send_that_never_left_is_retried(server: FakeTelegramServer) -> None:
    """Connection refused: nothing reached Telegram, so trying again cannot duplicate."""
    async with FakeTelegramServer() as gone:
        url = gone.url
    bot = create_bot(settings_for(server, telegram_api_base=url))
    sleeps = with_sleeps(bot)
    try:
        with pytest.raises(TelegramNetworkError, match="ClientConnectorError"):
            await bot.send_message(1001, "hello")
        assert sleeps.delays == [0.5, 1.0]
    finally:
        await bot.session.close()


async def test_a_429_holds_back_the_rest_of_that_chat_only(
    server: FakeTelegramServer, alice: FakeUser, bot_and_sleeps: tuple[Bot, Sleeps]
) -> None:
    bot, sleeps = bot_and_sleeps
    boris = server.user(1002, "Boris", "ru")
    server.fail_retry_after("sendMessage", retry_after=7, when=lambda c: c.chat_id == alice.id)
    await bot.send_message(alice.id, "first")
    assert sleeps.delays == [7.0]
    transport = transport_of(bot)
    assert transport is not None and transport.limits is not None
    transport.limits.close(alice.id, 3)  # as if another 429 had just come
    await bot.send_message(boris.id, "not held")
    assert sleeps.delays == [7.0]
    await bot.send_message(alice.id, "second")
    assert sleeps.delays == [7.0, 3.0]
    assert [m.text for m in server.messages(alice.id)] == ["first", "second"]


async def test_a_chat_closed_for_longer_than_the_cap_fails_at_once(
    server: FakeTelegramServer, alice: FakeUser, bot_and_sleeps: tuple[Bot, Sleeps]
) -> None:
    bot, sleeps = bot_and_sleeps
    transport = transport_of(bot)
    assert transport is not None and transport.limits is not None
    transport.limits.close(alice.id, 3600)
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(alice.id, "hello")
    assert sleeps.delays == [] and server.calls_of("sendMessage") == []


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


def test_what_must_not_run_twice() -> None:
    assert at_most_once(SendMessage(chat_id=1, text="x"))
    assert not at_most_once(EditMessageText(chat_id=1, message_id=2, text="x"))
    assert not at_most_once(SendChatAction(chat_id=1, action="typing"))


def test_transport_middleware_defaults() -> None:
    middleware = TelegramTransportMiddleware(attempts=0)
    assert middleware.attempts == 1
