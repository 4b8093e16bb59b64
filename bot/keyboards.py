"""Small helpers for inline keyboards and for answering button presses safely.

A button press may come from a message Telegram no longer lets the bot see (too old or deleted:
``InaccessibleMessage``, which cannot be edited), and editing a message to what it already shows
is an error. These helpers absorb both so handlers stay short.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from aiogram.exceptions import TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

log = logging.getLogger(__name__)

Button = tuple[str, CallbackData | str]

CHECK = "✓ "


def keyboard(rows: Sequence[Sequence[Button]]) -> InlineKeyboardMarkup:
    """An inline keyboard from rows of ``(label, callback data)``."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=label,
                    callback_data=data.pack() if isinstance(data, CallbackData) else data,
                )
                for label, data in row
            ]
            for row in rows
            if row
        ]
    )


def mark(label: str, selected: bool) -> str:
    """``"✓ label"`` for the current choice, so a settings keyboard shows the state."""
    return CHECK + label if selected else label


def accessible(query: CallbackQuery) -> Message | None:
    """The message a button belongs to, or None when it is too old or deleted."""
    return query.message if isinstance(query.message, Message) else None


async def answer(query: CallbackQuery, text: str | None = None, *, alert: bool = False) -> None:
    """Answer a button press; a late answer ("query is too old") is not an error."""
    try:
        await query.answer(text[:200] if text else None, show_alert=alert)
    except TelegramBadRequest as exc:
        log.info("callback answer dropped: %s", exc.message)


async def edit(
    message: Message, text: str, markup: InlineKeyboardMarkup | None = None
) -> Message | None:
    """Edit a bot message's text and keyboard; unchanged content or a vanished message is fine."""
    try:
        result = await message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as exc:
        if "not modified" in exc.message or "not found" in exc.message:
            return None
        raise
    return result if isinstance(result, Message) else None


async def drop_keyboard(message: Message) -> None:
    """Remove a message's buttons (they no longer do anything)."""
    with contextlib.suppress(TelegramBadRequest):
        await message.edit_reply_markup(reply_markup=None)
