"""/start and /help through the dispatcher, in each language, against the locale catalogue."""

from __future__ import annotations

from aiogram.methods import SendMessage
from aiogram.types import User

from bot.i18n import t
from tests.bot.handlers.harness import HandlerApp
from tests.bot.mocked_bot import BOT_USERNAME


async def test_start_greets_by_name_in_english(app: HandlerApp, alice: User) -> None:
    await app.feed(app.updates.text(alice, "/start"))

    (sent,) = app.telegram.visible()
    assert isinstance(sent, SendMessage)
    assert sent.chat_id == alice.id
    assert sent.text == t("commands-start", "en", name="Alice")
