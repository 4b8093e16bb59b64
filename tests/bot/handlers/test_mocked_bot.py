"""The mocked Bot API itself: what handler tests rely on when they script Telegram."""

from __future__ import annotations

import pytest
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.methods import EditMessageText, GetChatMember, SendMessage
from aiogram.types import Message

from tests.bot.mocked_bot import MockedBot


async def test_a_send_gets_a_fresh_message_bound_to_the_bot(mocked_bot: MockedBot) -> None:
    first = await mocked_bot.send_message(7, "one")
    second = await mocked_bot.send_message(7, "two")

    assert isinstance(first, Message) and first.text == "one"
    assert second.message_id == first.message_id + 1
    edited = await second.edit_text("two!")  # a shortcut works: the message knows its bot
    assert isinstance(edited, Message) and edited.message_id == second.message_id
    edit = mocked_bot.session.calls(EditMessageText)[0]
    assert (edit.chat_id, edit.message_id, edit.text) == (7, second.message_id, "two!")
    assert mocked_bot.session.sent_texts(7) == ["one", "two"]


async def test_a_queued_error_is_raised_once_as_telegram_would(mocked_bot: MockedBot) -> None:
    session = mocked_bot.session
    session.add_error_for(SendMessage, 400, "Bad Request: chat not found")
    session.add_error_for(SendMessage, 429, "Too Many Requests: retry after 3", retry_after=3)

    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await mocked_bot.send_message(7, "lost")
    with pytest.raises(TelegramRetryAfter) as retry:
        await mocked_bot.send_message(7, "later")
    assert retry.value.retry_after == 3
    assert (await mocked_bot.send_message(7, "fine")).text == "fine"
    assert len(session.calls(SendMessage)) == 3  # failed calls are recorded too


async def test_a_call_without_a_default_answer_says_what_to_queue(mocked_bot: MockedBot) -> None:
    with pytest.raises(AssertionError, match="add_result_for"):
        await mocked_bot.get_chat_member(-100, 1001)
    assert len(mocked_bot.session.calls(GetChatMember)) == 1
