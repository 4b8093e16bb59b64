"""Fixtures of the handler tests: the bot under test and the people who talk to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram.types import User

from tests.bot.handlers.harness import HandlerApp, handler_app
from tests.bot.handlers.updates import person


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[HandlerApp]:
    """The production dispatcher on a mocked Bot API and a scripted engine."""
    async with handler_app(tmp_path) as running:
        yield running


@pytest.fixture
def alice() -> User:
    return person(1001, "Alice", "en")


@pytest.fixture
def boris() -> User:
    return person(1002, "Борис", "ru")
