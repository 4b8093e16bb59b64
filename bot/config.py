"""Start-up checks of bot-only settings, kept light so a bad ``.env`` fails in a blink.

Importing aiogram takes seconds (it builds hundreds of pydantic models), so nothing here does.
"""

from __future__ import annotations

import re

from core.settings import Settings

# What aiogram's validate_token accepts: digits, a colon, a secret without whitespace.
_TOKEN = re.compile(r"\d+:\S+")


class StartupError(Exception):
    """A problem that stops start-up; its message is the one line the user sees."""


def check_token(settings: Settings) -> str:
    """The bot token, or a :class:`StartupError` saying how to get one."""
    if settings.bot_token is None:
        raise StartupError("BOT_TOKEN is not set: get one from @BotFather and put it in .env")
    token = settings.bot_token.get_secret_value().strip()
    if not _TOKEN.fullmatch(token):
        raise StartupError(
            "BOT_TOKEN is malformed: expected digits, a colon and a secret, as @BotFather gives it"
        )
    return token
