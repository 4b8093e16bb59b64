"""Start-up checks of bot-only settings, kept light so a bad ``.env`` fails in a blink."""

from __future__ import annotations

from aiogram.utils.token import TokenValidationError, validate_token

from core.settings import Settings


class StartupError(Exception):
    """A problem that stops start-up; its message is the one line the user sees."""


def check_token(settings: Settings) -> str:
    """The bot token, or a :class:`StartupError` saying how to get one."""
    if settings.bot_token is None:
        raise StartupError("BOT_TOKEN is not set: get one from @BotFather and put it in .env")
    token = settings.bot_token.get_secret_value().strip()
    try:
        validate_token(token)
    except TokenValidationError:
        raise StartupError(
            "BOT_TOKEN is malformed: expected digits, a colon and a secret, as @BotFather gives it"
        ) from None
    return token
