"""What counts as a search query, private and in groups: the filters of the search routers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiogram.types import Message, User

from bot.identity import BotIdentity, strip_mention
from bot.query_filters import (
    group_photo_query,
    group_text_query,
    private_photo_query,
    private_text_query,
)

BOT = {"id": 42, "is_bot": True, "first_name": "Finder", "username": "finder_bot"}
ALICE = {"id": 1001, "is_bot": False, "first_name": "Alice"}
PHOTO = [{"file_id": "p1", "file_unique_id": "u1", "width": 640, "height": 480}]


class FakeBot:
    """Just enough of a Bot for :class:`BotIdentity`: getMe, counted."""

    def __init__(self) -> None:
        self.calls = 0

    async def me(self) -> User:
        self.calls += 1
        return User.model_validate(BOT)


def message(chat_id: int = ALICE["id"], **fields: Any) -> Message:
    chat = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
    data = {"message_id": 7, "date": datetime.now(UTC), "chat": chat, "from": ALICE, **fields}
    return Message.model_validate(data)


def reply_from(author: dict[str, Any], chat_id: int) -> dict[str, Any]:
    chat = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
    return {"message_id": 3, "date": datetime.now(UTC), "chat": chat, "from": author, "text": "x"}


def identity() -> BotIdentity:
    return BotIdentity(FakeBot())  # type: ignore[arg-type]


def test_a_mention_must_be_the_whole_username() -> None:
    assert strip_mention("@Finder_Bot red", "finder_bot") == " red"
    assert strip_mention("@finder_bot_backup red", "finder_bot") is None
    assert strip_mention("red", None) is None


async def test_any_typed_text_is_a_query_in_private() -> None:
    assert await private_text_query(message(text="red car")) == {"query_text": "red car"}
    assert await private_text_query(message(text="/stats")) is False
    assert await private_text_query(message(text="   ")) is False


async def test_a_group_text_must_address_the_bot() -> None:
    me = identity()
    group = -100
    assert await group_text_query(message(group, text="red car"), me) is False
    named = message(group, text="@finder_bot red car")
    assert await group_text_query(named, me) == {"query_text": " red car"}
    replied = message(group, text="red car", reply_to_message=reply_from(BOT, group))
    assert await group_text_query(replied, me) == {"query_text": "red car"}


async def test_a_private_photo_is_a_query_when_it_asks() -> None:
    assert await private_photo_query(message(photo=PHOTO)) is False
    asked = message(photo=PHOTO, caption="? on a beach")
    assert await private_photo_query(asked) == {"query_caption": "on a beach"}
    replied = message(photo=PHOTO, reply_to_message=reply_from(ALICE, ALICE["id"]))
    assert await private_photo_query(replied) == {"query_caption": ""}


async def test_a_group_photo_must_ask_and_name_the_bot() -> None:
    me = identity()
    group = -100
    assert await group_photo_query(message(group, photo=PHOTO, caption="?red"), me) is False
    assert await group_photo_query(message(group, photo=PHOTO, caption="@finder_bot"), me) is False
    for caption in ("?@finder_bot red", "@finder_bot ?red"):
        asked = message(group, photo=PHOTO, caption=caption)
        assert await group_photo_query(asked, me) == {"query_caption": "red"}


async def test_the_identity_asks_telegram_once() -> None:
    bot = FakeBot()
    me = BotIdentity(bot)  # type: ignore[arg-type]
    assert await me.get() == (42, "finder_bot")
    assert await me.is_replied_to(message(text="x", reply_to_message=reply_from(BOT, 1001)))
    assert bot.calls == 1
