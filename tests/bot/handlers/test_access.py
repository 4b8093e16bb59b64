"""ALLOWED_USERS: strangers get one polite refusal where they look, and nothing else happens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram.methods import AnswerCallbackQuery, SendMessage
from aiogram.types import User

from bot.i18n import t
from tests.bot.handlers.harness import HandlerApp, handler_app
from tests.bot.handlers.updates import group_chat


@pytest.fixture
async def private_app(tmp_path: Path, alice: User) -> AsyncIterator[HandlerApp]:
    """A bot only Alice may use."""
    async with handler_app(tmp_path, allowed_users=frozenset({alice.id})) as running:
        yield running


async def test_a_stranger_is_refused_in_their_language(
    private_app: HandlerApp, boris: User
) -> None:
    app = private_app
    await app.feed(app.updates.text(boris, "кошки на диване"))

    (sent,) = app.telegram.visible()
    assert isinstance(sent, SendMessage)
    assert (sent.chat_id, sent.text) == (boris.id, t("middlewares-not-allowed", "ru", uid=boris.id))
    assert app.search.asked == []
    assert await app.engine.owners.find("user", boris.id) is None  # no collection made


async def test_a_strangers_button_gets_an_alert(private_app: HandlerApp, boris: User) -> None:
    app = private_app
    message = app.updates.text(boris, "anything").message
    assert message is not None
    await app.feed(app.updates.button(boris, "res:1:n:10", message))

    (answer,) = app.telegram.visible()
    assert isinstance(answer, AnswerCallbackQuery)
    assert answer.show_alert is True
    assert answer.text == t("middlewares-not-allowed", "ru", uid=boris.id)[:200]


async def test_a_stranger_in_a_group_is_not_answered_there(
    private_app: HandlerApp, boris: User
) -> None:
    app = private_app
    await app.feed(app.updates.text(boris, "/start", chat=group_chat()))

    assert app.telegram.visible() == []


async def test_the_listed_user_is_served(private_app: HandlerApp, alice: User) -> None:
    app = private_app
    await app.feed(app.updates.text(alice, "/start"))

    assert app.telegram.sent_texts(alice.id) == [t("commands-start", "en", name="Alice")]
