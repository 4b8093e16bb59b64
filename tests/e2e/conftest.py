"""Fixtures for end-to-end tests: a fake Telegram server, a Bot wired to it, two users."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.e2e.fake_telegram import FakeTelegramServer, FakeUser


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramServer]:
    """A running fake; at teardown it fails on unknown methods and unexpected API errors.

    A test that provokes errors on purpose lists them in ``telegram.allowed_errors``.
    """
    async with FakeTelegramServer() as server:
        yield server
        server.assert_clean()


@pytest.fixture
async def telegram_bot(telegram: FakeTelegramServer) -> AsyncIterator[Any]:
    """An ``aiogram.Bot`` talking to the fake through aiogram's real aiohttp session."""
    bot = telegram.make_bot()
    try:
        yield bot
    finally:
        await bot.session.close()


@pytest.fixture
def alice(telegram: FakeTelegramServer) -> FakeUser:
    return telegram.user(1001, "Alice", "en", username="alice")


@pytest.fixture
def boris(telegram: FakeTelegramServer) -> FakeUser:
    return telegram.user(1002, "Борис", "ru", username="boris")
