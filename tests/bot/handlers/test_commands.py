"""/start, /help and what the bot cannot keep, through the dispatcher, in each language.

Expected texts come from the locale catalogue (``t``), so a test checks which message was
chosen and with which values, not the wording of the day.
"""

from __future__ import annotations

import pytest
from aiogram.methods import AnswerCallbackQuery, GetChatMember, SendMessage
from aiogram.types import ChatMemberMember, User

from bot.i18n import t
from tests.bot.handlers.harness import HandlerApp
from tests.bot.handlers.updates import group_chat, person
from tests.bot.mocked_bot import BOT_USERNAME


def only_message(app: HandlerApp) -> SendMessage:
    """The one thing the user saw: a single sendMessage."""
    (sent,) = app.telegram.visible()
    assert isinstance(sent, SendMessage), sent
    return sent


@pytest.mark.parametrize(("lang", "name"), [("en", "Alice"), ("ru", "Борис")], ids=["en", "ru"])
async def test_start_greets_by_name_in_the_users_language(
    app: HandlerApp, lang: str, name: str
) -> None:
    user = person(1001, name, lang)
    await app.feed(app.updates.text(user, "/start"))

    sent = only_message(app)
    assert sent.chat_id == user.id
    assert sent.text == t("commands-start", lang, name=name)


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_help_names_the_bot_in_the_users_language(app: HandlerApp, lang: str) -> None:
    user = person(1003, "Vera", lang)
    await app.feed(app.updates.text(user, "/help"))

    sent = only_message(app)
    assert sent.chat_id == user.id
    assert sent.text == t("commands-help", lang, bot=BOT_USERNAME)


async def test_a_language_the_bot_lacks_falls_back_to_english(app: HandlerApp) -> None:
    user = person(1004, "Hans", "de")
    await app.feed(app.updates.text(user, "/start"))

    assert only_message(app).text == t("commands-start", "en", name="Hans")


async def test_a_chosen_language_wins_over_the_clients(app: HandlerApp, alice: User) -> None:
    owner = await app.owner("user", alice.id)
    await app.engine.owners.update_settings(owner.id, {"lang": "ru"})

    await app.feed(app.updates.text(alice, "/help"))

    assert only_message(app).text == t("commands-help", "ru", bot=BOT_USERNAME)


async def test_a_sticker_is_explained_not_kept(app: HandlerApp, boris: User) -> None:
    await app.feed(app.updates.sticker(boris))

    sent = only_message(app)
    assert (sent.chat_id, sent.text) == (boris.id, t("commands-unsupported-sticker", "ru"))
    assert app.pipeline.submitted == []


async def test_an_unknown_command_points_to_help(app: HandlerApp, alice: User) -> None:
    await app.feed(app.updates.text(alice, "/frobnicate"))

    assert only_message(app).text == t("commands-unsupported-command", "en")
    assert app.search.asked == []


async def test_an_unknown_button_is_answered_so_the_client_stops_spinning(
    app: HandlerApp, alice: User
) -> None:
    summary = app.updates.text(alice, "old message").message
    assert summary is not None
    await app.feed(app.updates.button(alice, "nobody-knows-this", summary))

    (answer,) = app.telegram.visible()
    assert isinstance(answer, AnswerCallbackQuery)
    assert answer.text == t("commands-button-invalid", "en")


async def test_forget_in_a_group_asks_telegram_who_is_admin(app: HandlerApp, alice: User) -> None:
    chat = group_chat()
    app.telegram.add_result_for(GetChatMember, ChatMemberMember(status="member", user=alice))
    await app.feed(app.updates.text(alice, "/forget", chat=chat))

    check, sent = app.telegram.visible()
    assert isinstance(check, GetChatMember)
    assert (check.chat_id, check.user_id) == (chat.id, alice.id)
    assert isinstance(sent, SendMessage)
    assert (sent.chat_id, sent.text) == (chat.id, t("commands-forget-admins-only", "en"))
