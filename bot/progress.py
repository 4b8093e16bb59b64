"""One message that shows how a long job is going, edited in place instead of sending many.

Telegram allows about one message a second per chat and rejects an edit that changes nothing
("message is not modified"), so:

* :meth:`ProgressMessage.set` is for frequent updates (a video's sampling fraction, an album's
  n of N): it only remembers the newest text and edits at most once per ``interval``;
* :meth:`ProgressMessage.show` puts a text up now (the first text, a final result);
* an unchanged text is never sent again.

The first text is sent as a reply to the user's message (still sent when that message is gone).
If the user deleted the progress message, the next text arrives as a new message. A user who
blocked the bot just stops getting updates; nothing here raises into the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.types import ReplyParameters

if TYPE_CHECKING:
    from aiogram import Bot

log = logging.getLogger(__name__)

EDIT_INTERVAL_S = 2.0  # at most one intermediate edit per message this often
FINAL_RETRIES = 3  # a final text is worth waiting for a flood-control pause
_GONE = ("message to edit not found", "message can't be edited", "message_id_invalid")


def reply_to(message_id: int | None) -> ReplyParameters | None:
    """Reply parameters that still send when the user deleted the original message."""
    if message_id is None:
        return None
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True)


class ProgressMessage:
    """A single bot message that follows one job (see the module docstring)."""

    def __init__(
        self,
        bot: Bot,
        chat_id: int,
        *,
        reply_to_message_id: int | None = None,
        interval: float = EDIT_INTERVAL_S,
    ) -> None:
        self.bot = bot
        self.chat_id = chat_id
        self.reply_to_message_id = reply_to_message_id
        self.interval = interval
        self.message_id: int | None = None
        self.shown: str | None = None  # the text the user sees now
        self.edits = 0
        self._wanted: str | None = None
        self._last = float("-inf")  # loop time of the last send or edit
        self._lock = asyncio.Lock()
        self._pending: asyncio.Task[None] | None = None
        self._applying = False
        self._finished = False
        self._blocked = False

    @property
    def sent(self) -> bool:
        return self.message_id is not None

    @property
    def pending(self) -> asyncio.Task[None] | None:
        """The throttled update still to be shown, if any (tests and shutdown wait on it)."""
        task = self._pending
        return task if task is not None and not task.done() else None

    def set(self, text: str) -> None:
        """Show ``text`` soon: the first text at once, later ones at most every ``interval``
        (only the newest survives). Safe to call from sync callbacks on the event loop."""
        if self._finished or self._blocked:
            return
        self._wanted = text
        if self._pending is None or self._pending.done():
            self._pending = asyncio.create_task(self._flush_later())

    async def show(self, text: str) -> None:
        """Put ``text`` up now (a pending throttled update is dropped: this one is newer)."""
        self._wanted = text
        await self._cancel_waiting()
        async with self._lock:
            await self._apply(text, final=True)

    async def finish(self, text: str) -> None:
        """The last text: shown now, and later :meth:`set` calls are ignored."""
        self._finished = True
        await self.show(text)

    async def close(self) -> None:
        """Drop a pending update (shutdown)."""
        self._finished = True
        task = self._pending
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _cancel_waiting(self) -> None:
        """Drop a throttled update that has not started talking to Telegram (an update in
        flight is left to finish: cutting a request short could half-apply it)."""
        task = self._pending
        if task is not None and not task.done() and not self._applying:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _flush_later(self) -> None:
        loop = asyncio.get_running_loop()
        delay = 0.0 if self.message_id is None else self._last + self.interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        async with self._lock:
            self._applying = True
            try:
                if self._wanted is not None and not self._finished:
                    await self._apply(self._wanted, final=False)
            finally:
                self._applying = False

    async def _apply(self, text: str, *, final: bool) -> None:
        """Send or edit to ``text`` (call with the lock held)."""
        if self._blocked or text == self.shown:
            return
        attempts = FINAL_RETRIES if final else 1
        for attempt in range(1, attempts + 1):
            try:
                if self.message_id is None:
                    sent = await self.bot.send_message(
                        self.chat_id, text, reply_parameters=reply_to(self.reply_to_message_id)
                    )
                    self.message_id = sent.message_id
                else:
                    await self.bot.edit_message_text(
                        text=text, chat_id=self.chat_id, message_id=self.message_id
                    )
                    self.edits += 1
                self.shown = text
                self._last = asyncio.get_running_loop().time()
                return
            except TelegramRetryAfter as exc:
                if attempt >= attempts:
                    log.warning("progress update dropped: flood control (%s s)", exc.retry_after)
                    return
                await asyncio.sleep(exc.retry_after)
            except TelegramForbiddenError:
                self._blocked = True  # blocked by the user, or removed from the group
                return
            except TelegramBadRequest as exc:
                description = exc.message.lower()
                if "not modified" in description:
                    self.shown = text
                    return
                if self.message_id is not None and any(g in description for g in _GONE):
                    self.message_id = None  # deleted by the user: the next try sends anew
                    self.shown = None
                    continue
                log.warning("progress update rejected: %s", exc.message)
                return
            except TelegramAPIError as exc:
                if attempt >= attempts:
                    log.warning("progress update failed: %s", exc)
                    return
                await asyncio.sleep(min(2.0**attempt, 10.0))
