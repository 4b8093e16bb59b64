"""The user's side: people and groups, and the builders of what they send the bot
(text, commands, button presses, inline queries).

Every builder creates the message as Telegram would and queues its update; in groups with
privacy mode on, the bot only gets what Telegram would hand it.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterable
from typing import Any, Literal

from .chats import ChatLog, inaccessible
from .people import FakeGroup, FakeMember, FakeUser, origin_user
from .protocol import utf16_len
from .records import SentMessage
from .state import ServerState
from .updates import UpdateQueue


class UserSide:
    """What tests call to act as users: register them, post, press buttons, query inline."""

    def __init__(self, state: ServerState, chats: ChatLog, updates: UpdateQueue) -> None:
        self._state = state
        self._chats = chats
        self._updates = updates
        self._query_counter = itertools.count(4_000_000_001)

    # ------------------------------------------------------------------ people and groups

    def user(
        self,
        id: int | None = None,
        first_name: str = "Alice",
        language_code: str | None = "en",
        *,
        username: str | None = None,
        last_name: str | None = None,
    ) -> FakeUser:
        """Register a user (and their private chat with the bot)."""
        if id is None:
            id = 1000 + len(self._state.users) + 1
        person = FakeUser(id, first_name, language_code, username, last_name)
        self._state.users[id] = person
        return person

    def group(
        self,
        id: int | None = None,
        title: str = "Family",
        *,
        type: Literal["group", "supergroup"] = "supergroup",
        privacy: bool = True,
        admins: Iterable[FakeUser] = (),
    ) -> FakeGroup:
        """Register a group with the bot as a member (see :class:`FakeGroup` for ``privacy``)."""
        if id is None:
            id = -1_001_000_000_000 - len(self._state.groups) - 1
        if id >= 0:
            raise ValueError("group ids are negative")
        chat = FakeGroup(id, title, type, privacy, frozenset(u.id for u in admins))
        self._state.groups[id] = chat
        return chat

    def member(self, user: FakeUser, group: FakeGroup) -> FakeMember:
        """``user`` as the author of messages in ``group``: ``send_text(member, ...)``."""
        if user.id not in self._state.users:
            self._state.users[user.id] = user
        return FakeMember(
            user.id, user.first_name, user.language_code, user.username, user.last_name, group
        )

    def service_message(self, group: FakeGroup, user: FakeUser) -> dict[str, Any]:
        """A bare message in ``group`` from ``user``, to add a service field to (e.g.
        ``migrate_to_chat_id``) and queue with :meth:`push_update`."""
        if user.id not in self._state.users:
            self._state.users[user.id] = user
        return self._chats.new_message(group.id, from_bot=False, sender=user)

    # ------------------------------------------------------------------ messages

    def post(
        self,
        user: FakeUser,
        content: dict[str, Any],
        *,
        reply_to: Any = None,
        forward_origin: dict[str, Any] | FakeUser | None = None,
        media_group_id: str | None = None,
        date: int | None = None,
    ) -> dict[str, Any]:
        """Post ``content`` as ``user`` (in their group, for a member) and queue its update."""
        if user.id not in self._state.users:
            self._state.users[user.id] = user.person if isinstance(user, FakeMember) else user
        group = self._state.groups.get(user.chat_id) if isinstance(user, FakeMember) else None
        if group is not None:
            message = self._chats.new_message(group.id, from_bot=False, date=date, sender=user)
        else:
            message = self._chats.new_message(user.id, from_bot=False, date=date)
        message.update(content)
        if media_group_id is not None:
            message["media_group_id"] = media_group_id
        if forward_origin is not None:
            if isinstance(forward_origin, FakeUser):
                forward_origin = origin_user(forward_origin)
            message["forward_origin"] = forward_origin
        if reply_to is not None:
            message["reply_to_message"] = self._chats.reply_copy(user.chat_id, reply_to)
        if group is not None and not self._bot_receives(group, message):
            return message  # privacy mode: the message is in the group, the bot never sees it
        self._updates.push({"message": message})
        return message

    def send_text(
        self,
        user: FakeUser,
        text: str,
        *,
        reply_to: Any = None,
        forward_origin: dict[str, Any] | FakeUser | None = None,
    ) -> dict[str, Any]:
        """The user sends a text message (a leading "/word" becomes a bot_command entity)."""
        content: dict[str, Any] = {"text": text}
        command = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
        if command:
            content["entities"] = [
                {"type": "bot_command", "offset": 0, "length": utf16_len(command.group())}
            ]
        return self.post(user, content, reply_to=reply_to, forward_origin=forward_origin)

    def send_command(
        self, user: FakeUser, command: str, args: str = "", *, reply_to: Any = None
    ) -> dict[str, Any]:
        """The user sends ``/command args``."""
        text = "/" + command.lstrip("/") + (f" {args}" if args else "")
        return self.send_text(user, text, reply_to=reply_to)

    def _bot_receives(self, group: FakeGroup, message: dict[str, Any]) -> bool:
        """Whether Telegram hands this group message to the bot (privacy mode rules)."""
        if not group.privacy:
            return True
        me = str(self._state.bot_user["username"]).lower()
        text = str(message.get("text") or message.get("caption") or "")
        command = re.match(r"/[A-Za-z0-9_]+(?:@([A-Za-z0-9_]+))?", text)
        if command:
            return command.group(1) is None or command.group(1).lower() == me
        if re.search(rf"@{re.escape(me)}(?![A-Za-z0-9_])", text, re.IGNORECASE):
            return True
        reply = message.get("reply_to_message") or {}
        if (reply.get("from") or {}).get("id") == self._state.bot_id:
            return True
        return (message.get("via_bot") or {}).get("id") == self._state.bot_id

    # ------------------------------------------------------------------ queries

    def press_button(
        self,
        user: FakeUser,
        message: SentMessage | dict[str, Any],
        callback_data: str | None = None,
        *,
        text: str | None = None,
        stale: bool = False,
    ) -> str:
        """The user presses an inline button of a bot message; returns the callback query id.

        Give ``callback_data`` (any string, so tampered data can be tested) or the button's
        ``text``. The update carries the message's current state; a deleted message, or any
        with ``stale=True`` (too old), arrives as an inaccessible one (``date: 0``).
        """
        if isinstance(message, SentMessage):
            chat_id, message_id = message.chat_id, message.message_id
        else:
            chat_id, message_id = int(message["chat"]["id"]), int(message["message_id"])
        current = self._chats.current((chat_id, message_id))
        if callback_data is None:
            if text is None:
                raise ValueError("give callback_data or the button text")
            sent = self._chats.bot_message((chat_id, message_id))
            if sent is None:
                raise ValueError("only bot messages have buttons")
            callback_data = sent.button(text).get("callback_data")
            if callback_data is None:
                raise ValueError(f"button {text!r} has no callback_data")
        if stale or current is None or self._chats.was_deleted((chat_id, message_id)):
            return self.press_stale(user, chat_id, message_id, callback_data)
        return self._push_callback(user, copy.deepcopy(current), callback_data)

    def press_stale(self, user: FakeUser, chat_id: int, message_id: int, callback_data: str) -> str:
        """A press on a button whose message the bot can no longer access."""
        chat = self._state.users[chat_id].chat() if chat_id in self._state.users else user.chat()
        return self._push_callback(user, inaccessible(chat, message_id), callback_data)

    def _push_callback(self, user: FakeUser, message: dict[str, Any], data: str) -> str:
        """Queue a callback query for a press on ``message``; returns its id."""
        query_id = str(next(self._query_counter))
        query = {
            "id": query_id,
            "from": user.api(),
            "chat_instance": str(-(10**18) - int(message["chat"]["id"])),
            "message": message,
            "data": data,
        }
        self._state.callback_queries[query_id] = query
        self._updates.push({"callback_query": query})
        return query_id

    def inline_query(
        self, user: FakeUser, query: str, offset: str = "", *, chat_type: str = "sender"
    ) -> str:
        """The user types ``@bot query``; returns the inline query id."""
        query_id = str(next(self._query_counter))
        inline = {
            "id": query_id,
            "from": user.api(),
            "query": query,
            "offset": offset,
            "chat_type": chat_type,
        }
        self._state.inline_queries[query_id] = inline
        self._updates.push({"inline_query": inline})
        return query_id
