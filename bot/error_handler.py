"""The dispatcher's error handler: what a user sees when a handler fails.

Benign Telegram answers are dropped quietly; a failure of Telegram itself is not answered (one
more message would fail or duplicate); anything else gets a polite answer and is then left to
aiogram, which logs it with its traceback.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.enums import ChatType
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import ErrorEvent, User

from bot.i18n import pick_lang, t

log = logging.getLogger(__name__)

# Telegram answers that mean "nothing to do", not a bug: the user blocked the bot, a button of
# a deleted message, an edit identical to the current text, a callback answered too late.
_BENIGN_BAD_REQUESTS = (
    "message is not modified",
    "query is too old",
    "message to edit not found",
    "message to delete not found",
    "message can't be edited",
)


async def on_error(event: ErrorEvent, **data: Any) -> bool:
    """Benign Telegram errors are logged and dropped. Anything else gets a polite answer to the
    user and is then left unhandled, so aiogram logs it with its traceback."""
    exc = event.exception
    if isinstance(exc, TelegramForbiddenError):
        log.info("update %s: %s", event.update.update_id, exc.message)
        return True
    if isinstance(exc, TelegramBadRequest | TelegramNotFound) and any(
        s in exc.message.lower() for s in _BENIGN_BAD_REQUESTS
    ):
        log.info("update %s: %s", event.update.update_id, exc.message)
        return True
    if isinstance(exc, TelegramNetworkError | TelegramServerError | TelegramRetryAfter):
        # Telegram itself failed after the transport's retries (or a send's outcome is unknown
        # and it must not be repeated): one more message to it would fail or duplicate.
        log.warning("update %s: Telegram failed: %s", event.update.update_id, exc)
        return True
    user: User | None = data.get("event_from_user")
    lang = data.get("lang") or pick_lang(None, user.language_code if user else None)
    update = event.update
    with contextlib.suppress(Exception):
        if update.message is not None and update.message.chat.type == ChatType.PRIVATE:
            await update.message.answer(t("app-error", lang))
        elif update.callback_query is not None:
            await update.callback_query.answer(t("app-error-short", lang))
    raise SkipHandler  # unhandled: aiogram logs the original exception
