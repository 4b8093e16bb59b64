"""Telegram updates as a user's client would cause them, for ``Dispatcher.feed_update``.

One :class:`Updates` per test numbers updates and messages, so ids never collide and a test can
reply to a message it built earlier (``reply_to=``).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from aiogram.types import (
    CallbackQuery,
    Chat,
    Message,
    PhotoSize,
    Sticker,
    Update,
    User,
)

GROUP_ID = -1001234567890


def person(user_id: int, first_name: str, lang: str | None = "en") -> User:
    return User(id=user_id, is_bot=False, first_name=first_name, language_code=lang)


def private_chat(user: User) -> Chat:
    return Chat(id=user.id, type="private", first_name=user.first_name)


def group_chat(chat_id: int = GROUP_ID) -> Chat:
    return Chat(id=chat_id, type="supergroup", title="Friends")


class Updates:
    """Builds updates with fresh ids; the messages it built are kept in :attr:`messages`."""

    def __init__(self) -> None:
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(100)
        self.messages: list[Message] = []

    def message(
        self,
        sender: User,
        *,
        chat: Chat | None = None,
        reply_to: Message | None = None,
        **content: Any,
    ) -> Update:
        """A message from ``sender`` (in their private chat unless ``chat``) with ``content``
        (``text=``, ``photo=``, ``caption=``, ``sticker=``...)."""
        message = Message(
            message_id=next(self._message_ids),
            date=datetime.now(UTC),
            chat=chat or private_chat(sender),
            from_user=sender,
            reply_to_message=reply_to,
            **content,
        )
        self.messages.append(message)
        return Update(update_id=next(self._update_ids), message=message)

    def text(self, sender: User, text: str, **kwargs: Any) -> Update:
        return self.message(sender, text=text, **kwargs)

    def photo(self, sender: User, name: str = "cat", **kwargs: Any) -> Update:
        """A photo in Telegram's usual three sizes (file ids ``<name>-s/-m/-x``)."""
        sizes = [
            PhotoSize(
                file_id=f"{name}-{suffix}",
                file_unique_id=f"uniq-{name}-{suffix}",
                width=side,
                height=side * 3 // 4,
                file_size=side * 100,
            )
            for suffix, side in (("s", 90), ("m", 320), ("x", 1280))
        ]
        return self.message(sender, photo=sizes, **kwargs)

    def sticker(self, sender: User, **kwargs: Any) -> Update:
        sticker = Sticker(
            file_id="sticker-1",
            file_unique_id="uniq-sticker-1",
            type="regular",
            width=512,
            height=512,
            is_animated=False,
            is_video=False,
        )
        return self.message(sender, sticker=sticker, **kwargs)

    def button(self, sender: User, data: str, message: Message) -> Update:
        """``sender`` pressed a button with callback ``data`` under ``message``."""
        query = CallbackQuery(
            id=f"cb-{next(self._update_ids)}",
            from_user=sender,
            chat_instance="ci-1",
            message=message,
            data=data,
        )
        return Update(update_id=next(self._update_ids), callback_query=query)
