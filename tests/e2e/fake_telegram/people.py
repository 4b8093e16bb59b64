"""The people and chats on the user's side: users, groups, members posting in groups.

Also the ``forward_origin`` objects of messages a user forwards from elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .protocol import now


@dataclass(frozen=True)
class FakeUser:
    """A Telegram user; the private chat with the bot has the same id."""

    id: int
    first_name: str
    language_code: str | None = None
    username: str | None = None
    last_name: str | None = None

    @property
    def chat_id(self) -> int:
        return self.id

    def api(self) -> dict[str, Any]:
        """The ``User`` object as it appears in updates."""
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    def chat(self) -> dict[str, Any]:
        """The private ``Chat`` object."""
        chat: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            chat["last_name"] = self.last_name
        if self.username:
            chat["username"] = self.username
        return chat


@dataclass(frozen=True)
class FakeGroup:
    """A group chat the bot is a member of (ids of groups are negative).

    ``privacy``: the bot's privacy mode applies here (the default: getMe answers
    ``can_read_all_group_messages: false`` and the bot is not an admin). Telegram then keeps
    from the bot every message except commands (``/cmd`` or ``/cmd@this_bot``, not
    ``/cmd@other_bot``), messages that mention it by @username, replies to its messages and
    messages sent via it; the fake does the same (the message exists, no update is pushed).
    """

    id: int
    title: str
    type: Literal["group", "supergroup"] = "supergroup"
    privacy: bool = True
    admins: frozenset[int] = frozenset()  # user ids getChatMember calls administrators

    @property
    def chat_id(self) -> int:
        return self.id

    def chat(self) -> dict[str, Any]:
        """The group ``Chat`` object."""
        return {"id": self.id, "type": self.type, "title": self.title}


@dataclass(frozen=True)
class FakeMember(FakeUser):
    """A user posting in a group: pass it to any user-side builder instead of the user."""

    group: FakeGroup | None = None

    @property
    def chat_id(self) -> int:
        return self.group.id if self.group is not None else self.id

    @property
    def person(self) -> FakeUser:
        """The user alone (their private chat with the bot)."""
        return FakeUser(self.id, self.first_name, self.language_code, self.username, self.last_name)


def origin_user(user: FakeUser, date: int | None = None) -> dict[str, Any]:
    """``forward_origin`` of a message forwarded from a user."""
    return {"type": "user", "date": date or now() - 3600, "sender_user": user.api()}


def origin_hidden_user(name: str, date: int | None = None) -> dict[str, Any]:
    """``forward_origin`` of a user who hides their account in forwards."""
    return {"type": "hidden_user", "date": date or now() - 3600, "sender_user_name": name}


def origin_channel(
    chat_id: int, title: str, message_id: int, date: int | None = None
) -> dict[str, Any]:
    """``forward_origin`` of a channel post."""
    return {
        "type": "channel",
        "date": date or now() - 3600,
        "chat": {"id": chat_id, "type": "channel", "title": title},
        "message_id": message_id,
    }
