"""Fixtures for end-to-end tests: a fake Telegram server, a Bot wired to it, two users, and
the database backend of the in-process bot (both, for every test that starts one)."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterable, Iterator
from types import CodeType, ModuleType
from typing import Any

import pytest

from tests.e2e import backends, botapp
from tests.e2e.fake_telegram import FakeTelegramServer, FakeUser
from tests.e2e.harness import BotProcess
from tests.e2e.search_support import make_settings
from tests.postgres_support import BACKENDS, server_url


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


# --- the backend of the in-process bot ---------------------------------------------------------

# What a test reaches the in-process bot app through (tests/e2e/botapp.py).
_APP_ENTRIES = frozenset(
    {botapp.running, botapp.running_bot, botapp.running_search_bot, botapp.bot_settings,
     make_settings, botapp}
)  # fmt: skip


def reaches(module: ModuleType, names: Iterable[str], targets: Iterable[object]) -> bool:
    """Whether code of ``module`` starting from ``names`` (a test function and its fixtures)
    uses one of ``targets``, following the module's own helpers and fixtures."""
    targets = tuple(targets)
    seen: set[CodeType] = set()
    todo = [getattr(module, n, None) for n in names]
    while todo:
        obj = todo.pop()
        if any(obj is target for target in targets):
            return True
        if not inspect.isfunction(obj) and hasattr(obj, "_get_wrapped_function"):
            obj = obj._get_wrapped_function()  # a fixture: the function it wraps
        if inspect.isfunction(obj):
            obj = inspect.unwrap(obj)  # a context manager's or decorator's own code
        code = getattr(obj, "__code__", None)
        if not isinstance(code, CodeType) or getattr(obj, "__module__", None) != module.__name__:
            continue
        stack = [code]
        while stack:
            c = stack.pop()
            if c in seen:
                continue
            seen.add(c)
            todo.extend(getattr(module, n, None) for n in c.co_names)
            stack.extend(k for k in c.co_consts if isinstance(k, CodeType))
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test whose code reaches the in-process bot runs on both backends; the others (the
    fake server's own tests, tests of a bot subprocess) once, on SQLite."""
    if "e2e_backend" not in metafunc.fixturenames or "backend" in metafunc.fixturenames:
        return
    names = [metafunc.function.__name__, *metafunc.fixturenames]
    module = metafunc.module
    if reaches(module, names, _APP_ENTRIES) and not reaches(module, names, [BotProcess]):
        metafunc.parametrize("e2e_backend", BACKENDS, indirect=True)


@pytest.fixture(autouse=True)
def e2e_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The database of this test's in-process bots (see tests/e2e/backends.py)."""
    backend = str(getattr(request, "param", "sqlite"))
    if backend == "postgresql":
        server_url()  # skips, or fails when PostgreSQL is required
    with backends.use(backend):
        yield backend
