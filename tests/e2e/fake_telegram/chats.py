"""Every message of every chat, the users' and the bot's, and how requests address them.

Message ids count per chat, as on Telegram; deleted messages stay known (a button press on one
arrives as an inaccessible message) but can no longer be replied to, copied or edited.
"""

from __future__ import annotations

import copy
import secrets
from typing import Any

from .people import FakeUser
from .protocol import BLOCKED, CHAT_NOT_FOUND, ApiError, as_bool, bad, now
from .records import ApiCall, SentMessage
from .state import ServerState

MessageKey = tuple[int, int]  # (chat_id, message_id)


def new_media_group_id() -> str:
    """A fresh ``media_group_id``, for albums built item by item with ``send_photo``."""
    return str(13_000_000_000_000_000 + secrets.randbelow(10**15))


def inaccessible(chat: dict[str, Any], message_id: int) -> dict[str, Any]:
    """An ``InaccessibleMessage``: what a press on a deleted or too old message carries."""
    return {"chat": chat, "message_id": message_id, "date": 0}


class ChatLog:
    """The messages of all chats by ``(chat_id, message_id)``, as they stand now."""

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._messages: dict[MessageKey, dict[str, Any]] = {}
        self._bot_messages: dict[MessageKey, SentMessage] = {}
        self._deleted: set[MessageKey] = set()
        self._next_message_id: dict[int, int] = {}

    # ------------------------------------------------------------------ lookups

    def current(self, key: MessageKey) -> dict[str, Any] | None:
        """A message's current state, deleted or not; None when it never existed."""
        return self._messages.get(key)

    def exists(self, key: MessageKey) -> bool:
        """Whether the message exists and was not deleted."""
        return key in self._messages and key not in self._deleted

    def knows(self, key: MessageKey) -> bool:
        """Whether the message ever existed (deleted ones included)."""
        return key in self._messages

    def bot_message(self, key: MessageKey) -> SentMessage | None:
        """The record of a message the bot sent, deleted or not."""
        return self._bot_messages.get(key)

    def is_deleted(self, message: SentMessage | dict[str, Any]) -> bool:
        """Whether the bot (or user) deleted this message."""
        if isinstance(message, SentMessage):
            return message.deleted
        return (int(message["chat"]["id"]), int(message["message_id"])) in self._deleted

    def was_deleted(self, key: MessageKey) -> bool:
        return key in self._deleted

    def chat_history(self, chat_id: int) -> list[dict[str, Any]]:
        """Every message of a chat, the users' and the bot's, in order, as they stand now
        (edits applied, deleted ones left out): what the people in the chat see."""
        keys = sorted(k for k in self._messages if k[0] == chat_id and k not in self._deleted)
        return [self._messages[k] for k in keys]

    # ------------------------------------------------------------------ changes

    def new_message(
        self,
        chat_id: int,
        *,
        from_bot: bool,
        date: int | None = None,
        sender: FakeUser | None = None,
    ) -> dict[str, Any]:
        """A new message in a chat with the next message id, from the bot or a user."""
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        group = self._state.groups.get(chat_id)
        bot_user = self._state.bot_user
        if group is not None:
            if not from_bot and sender is None:
                raise ValueError("a user message in a group needs its sender")
            author = dict(bot_user) if from_bot or sender is None else sender.api()
            posted: dict[str, Any] = {
                "message_id": message_id,
                "from": author,
                "chat": group.chat(),
                "date": date or now(),
            }
            self._messages[(chat_id, message_id)] = posted
            return posted
        person = self._state.users[chat_id]
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": dict(bot_user) if from_bot else person.api(),
            "chat": person.chat(),
            "date": date or now(),
        }
        self._messages[(chat_id, message_id)] = message
        return message

    def record_sent(
        self,
        call: ApiCall,
        message: dict[str, Any],
        *,
        params: dict[str, Any] | None = None,
        raw_text: str | None = None,
        parse_mode: str | None = None,
        start_timestamp: int | None = None,
    ) -> SentMessage:
        """Remember a message the bot sent, for tests and for later edits."""
        sent = SentMessage(
            method=call.method,
            call=call,
            message=message,
            params=params if params is not None else call.params,
            raw_text=raw_text,
            parse_mode=parse_mode,
            start_timestamp=start_timestamp,
        )
        self._state.sent.append(sent)
        self._bot_messages[(sent.chat_id, sent.message_id)] = sent
        return sent

    def mark_deleted(self, key: MessageKey) -> None:
        self._deleted.add(key)
        sent = self._bot_messages.get(key)
        if sent is not None:
            sent.deleted = True

    # ------------------------------------------------------------------ addressing

    def resolve_chat(self, call: ApiCall, name: str = "chat_id", *, sending: bool = True) -> int:
        """The chat a request names (an id or a user's @username); 403 to a blocked user."""
        value = call.params.get(name)
        if value is None or value == "":
            raise bad(f"Bad Request: {name} is empty")
        state = self._state
        chat_id: int | None
        try:
            chat_id = int(value)
        except (TypeError, ValueError):
            username = str(value).lstrip("@")
            chat_id = next((u.id for u in state.users.values() if u.username == username), None)
        if chat_id is None or (chat_id not in state.users and chat_id not in state.groups):
            raise bad(CHAT_NOT_FOUND)
        if sending and chat_id in state.blocked:
            raise ApiError(403, BLOCKED)
        return chat_id

    def reply_target(self, call: ApiCall, chat_id: int) -> dict[str, Any] | None:
        """The message a send replies to (``reply_parameters`` or the old fields), copied."""
        params = call.params.get("reply_parameters")
        allow_missing = as_bool(call.params.get("allow_sending_without_reply", False))
        if isinstance(params, dict):
            message_id = params.get("message_id")
            allow_missing = allow_missing or as_bool(
                params.get("allow_sending_without_reply", False)
            )
            target_chat = int(params.get("chat_id", chat_id))
        else:
            message_id = call.params.get("reply_to_message_id")
            target_chat = chat_id
        if message_id is None:
            return None
        key = (target_chat, int(message_id))
        if not self.exists(key):
            if allow_missing:
                return None
            raise bad("Bad Request: message to be replied not found")
        replied = copy.deepcopy(self._messages[key])
        replied.pop("reply_to_message", None)
        return replied

    def reply_copy(self, chat_id: int, target: Any) -> dict[str, Any]:
        """The ``reply_to_message`` of a user's reply to ``target`` (a message or its id)."""
        if isinstance(target, SentMessage):
            key = (target.chat_id, target.message_id)
        elif isinstance(target, dict):
            key = (int(target["chat"]["id"]), int(target["message_id"]))
        else:
            key = (chat_id, int(target))
        if key not in self._messages:
            raise ValueError(f"no message {key} to reply to")
        replied = copy.deepcopy(self._messages[key])
        replied.pop("reply_to_message", None)  # one level deep, as Telegram sends it
        return replied
