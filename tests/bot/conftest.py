"""Fixtures shared by the bot tests: a Bot whose API calls are recorded, never sent."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.bot.mocked_bot import MockedBot


@pytest.fixture
async def mocked_bot() -> AsyncIterator[MockedBot]:
    """A :class:`~tests.bot.mocked_bot.MockedBot`; ``mocked_bot.session`` holds its calls."""
    bot = MockedBot()
    try:
        yield bot
    finally:
        await bot.session.close()
