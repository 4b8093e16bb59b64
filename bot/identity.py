"""Who the bot is (its user id and @username), asked of Telegram once per running bot.

Group messages are addressed to the bot by a reply to it or by its @username, and a reply to
one of its results is told apart from a reply to a user's message by its author: both need
the bot's own identity, which only ``getMe`` knows.
"""

from __future__ import annotations

import re

from aiogram import Bot
from aiogram.types import Message


def strip_mention(text: str, username: str | None) -> str | None:
    """``text`` without a leading "@username" of this bot (any case), or None when it does not
    start with it. "@ourname_backup_bot" is another bot, not a mention of "@ourname"."""
    if not username:
        return None
    mention = f"@{username}"
    if not text.lower().startswith(mention.lower()):
        return None
    rest = text[len(mention) :]
    return None if re.match(r"\w", rest, re.ASCII) else rest


class BotIdentity:
    """The bot's id and username, looked up lazily (``bot.me()`` caches the answer)."""

    def __init__(self, bot: Bot, username: str | None = None) -> None:
        self.bot = bot
        self._id: int | None = None
        self._username = username

    async def get(self) -> tuple[int, str | None]:
        """(bot user id, username); the username given at start-up wins over getMe's."""
        if self._id is None:
            me = await self.bot.me()
            self._id = me.id
            self._username = self._username or me.username
        return self._id, self._username

    async def username(self) -> str | None:
        return (await self.get())[1]

    async def wrote(self, message: Message) -> bool:
        """Whether the bot itself sent ``message``."""
        if message.from_user is None:
            return False
        bot_id, _ = await self.get()
        return message.from_user.id == bot_id

    async def is_replied_to(self, message: Message) -> bool:
        """Whether ``message`` replies to one of the bot's own messages."""
        reply = message.reply_to_message
        return reply is not None and await self.wrote(reply)
