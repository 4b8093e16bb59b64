"""The bot's profile and small courtesies: getMe, getChatMember, commands, descriptions,
settings, chat actions and reactions.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .chats import ChatLog
from .dispatch import Handler
from .protocol import CHAT_ACTIONS, DESCRIPTION_LIMITS, REACTION_EMOJI, bad
from .records import ApiCall
from .state import ServerState

COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")


def commands_key(call: ApiCall) -> tuple[str, str]:
    """Commands are kept per scope and language, as setMyCommands sets them."""
    scope = call.params.get("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), str(call.params.get("language_code") or "")


class BotProfile:
    """What the bot says about itself, and what it does to messages besides sending."""

    def __init__(self, state: ServerState, chats: ChatLog) -> None:
        self._state = state
        self._chats = chats

    def handlers(self) -> dict[str, Handler]:
        return {
            "getMe": self.get_me,
            "getChatMember": self.get_chat_member,
            "logOut": self.true,
            "close": self.true,
            "sendChatAction": self.send_chat_action,
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
            "setMessageReaction": self.set_message_reaction,
            "setMyDescription": self._set_description("description"),
            "setMyShortDescription": self._set_description("short_description"),
            "getMyDescription": self._get_description("description"),
            "getMyShortDescription": self._get_description("short_description"),
            "setMyName": self._store_setting("name"),
            "setChatMenuButton": self._store_setting("menu_button"),
        }

    async def true(self, call: ApiCall) -> bool:
        """Methods that only need to succeed (logOut, close)."""
        return True

    async def get_chat_member(self, call: ApiCall) -> dict[str, Any]:
        """The admins ``group()`` was told of (as its creator); everyone else a member."""
        chat_id, user_id = call.chat_id, call.int_param("user_id")
        group = self._state.groups.get(chat_id) if chat_id is not None else None
        if group is None or user_id is None or user_id not in self._state.users:
            raise bad("Bad Request: member not found")
        user = self._state.users[user_id].api()
        if user_id in group.admins:  # the owner: the admin kind with the fewest fields
            return {"status": "creator", "user": user, "is_anonymous": False}
        return {"status": "member", "user": user}

    async def get_me(self, call: ApiCall) -> dict[str, Any]:
        return {
            **self._state.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": self._state.can_read_all_group_messages,
            "supports_inline_queries": self._state.supports_inline_queries,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _store_setting(self, name: str) -> Handler:
        async def handler(call: ApiCall) -> bool:
            self._state.bot_settings[name] = dict(call.params)
            return True

        return handler

    def _set_description(self, name: str) -> Handler:
        """setMyDescription / setMyShortDescription: per language, within Telegram's limits."""
        store = self._store_setting(name)

        async def handler(call: ApiCall) -> bool:
            text = str(call.params.get(name) or "")
            language = str(call.params.get("language_code") or "")
            if language and not re.fullmatch(r"[a-z]{2}", language):
                raise bad("Bad Request: LANG_CODE_INVALID")
            if len(text) > DESCRIPTION_LIMITS[name]:
                raise bad(f"Bad Request: {name} is too long")
            self._state.descriptions[(name, language)] = text
            return await store(call)

        return handler

    def _get_description(self, name: str) -> Handler:
        async def handler(call: ApiCall) -> dict[str, Any]:
            language = str(call.params.get("language_code") or "")
            return {name: self._state.descriptions.get((name, language), "")}

        return handler

    async def send_chat_action(self, call: ApiCall) -> bool:
        chat_id = self._chats.resolve_chat(call)
        action = str(call.params.get("action") or "")
        if action not in CHAT_ACTIONS:
            raise bad("Bad Request: wrong parameter action in request")
        self._state.chat_actions.append((chat_id, action))
        return True

    async def set_message_reaction(self, call: ApiCall) -> bool:
        """A bot may set one emoji reaction (of Telegram's list) on a message it can see."""
        chat_id = self._chats.resolve_chat(call)
        message_id = call.int_param("message_id")
        if message_id is None or not self._chats.knows((chat_id, message_id)):
            raise bad("Bad Request: message to react not found")
        raw = call.params.get("reaction") or "[]"
        try:
            reaction = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError as exc:
            raise bad("Bad Request: can't parse reaction JSON object") from exc
        if not isinstance(reaction, list) or len(reaction) > 1:
            raise bad("Bad Request: REACTIONS_TOO_MANY")
        emoji = []
        for item in reaction:
            if not isinstance(item, dict) or item.get("type") != "emoji":
                raise bad("Bad Request: REACTION_INVALID")
            if item.get("emoji") not in REACTION_EMOJI:
                raise bad("Bad Request: REACTION_INVALID")
            emoji.append(str(item["emoji"]))
        self._state.reactions[(chat_id, message_id)] = emoji
        return True

    async def set_my_commands(self, call: ApiCall) -> bool:
        commands = call.params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad("Bad Request: can't parse commands JSON object")
        for item in commands:
            if not isinstance(item, dict) or not COMMAND_RE.fullmatch(str(item.get("command"))):
                raise bad("Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(item.get("description") or "")) <= 256:
                raise bad("Bad Request: command description must be 1-256 characters")
        language = str(call.params.get("language_code") or "")
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise bad("Bad Request: LANG_CODE_INVALID")
        self._state.commands[commands_key(call)] = commands
        return True

    async def get_my_commands(self, call: ApiCall) -> list[dict[str, Any]]:
        return self._state.commands.get(commands_key(call), [])

    async def delete_my_commands(self, call: ApiCall) -> bool:
        self._state.commands.pop(commands_key(call), None)
        return True

    def commands_for(
        self, language_code: str = "", scope: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Commands the bot set for a scope (default) and language ("" = all languages)."""
        key = (json.dumps(scope or {"type": "default"}, sort_keys=True), language_code)
        return self._state.commands.get(key, [])
