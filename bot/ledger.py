"""Updates are confirmed to Telegram only once losing the process would lose nothing.

Telegram forgets an update when the next getUpdates names a higher offset, and aiogram asks
for the next batch as soon as it has started tasks for the last one. A bot killed in between
lost a photo it had received but not yet queued. The ledger closes that window: the
transport registers the ids every getUpdates answer carries, the outer middleware settles each
one (a media message once its handler has made it a durable job, anything else as soon as its
handler starts: it holds no data), and the next getUpdates waits until every update below its
offset is settled, for at most ``max_wait_s`` so a stuck handler cannot stop polling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

_MEDIA = ("photo", "video", "animation", "document", "video_note")


class UpdateLedger:
    """Update ids received but not yet settled, and a wait for "all settled below offset"."""

    def __init__(self, max_wait_s: float = 10.0) -> None:
        self.max_wait_s = max_wait_s
        self._pending: set[int] = set()
        self._changed = asyncio.Event()
        self.held = asyncio.Event()  # set whenever a getUpdates had to wait (tests await it)

    @property
    def pending(self) -> frozenset[int]:
        return frozenset(self._pending)

    def received(self, update_ids: Iterable[int]) -> None:
        self._pending.update(update_ids)

    def settle(self, update_id: int) -> None:
        if update_id in self._pending:
            self._pending.discard(update_id)
            self._changed.set()

    async def confirmable(self, offset: int) -> None:
        """Return once no update below ``offset`` is unsettled (or the wait ran out)."""
        if not self._blocking(offset):
            return
        self.held.set()
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as the wait ends, and then polling would not stop
            async with asyncio.timeout(self.max_wait_s):
                await self._until_settled(offset)
        except TimeoutError:
            stuck = sorted(self._blocking(offset))
            log.warning("confirming updates %s before their handlers made them durable", stuck)
            self._pending.difference_update(stuck)

    def _blocking(self, offset: int) -> set[int]:
        return {u for u in self._pending if u < offset}

    async def _until_settled(self, offset: int) -> None:
        while True:
            self._changed.clear()  # before the check: a settle after it wakes the wait
            if not self._blocking(offset):
                return
            await self._changed.wait()


def holds_data(update: Update) -> bool:
    """A message or channel post with media: it is lost unless its job is durable."""
    message = update.message or update.channel_post
    return message is not None and any(getattr(message, kind) for kind in _MEDIA)


class SettleMiddleware(BaseMiddleware):
    """Outer update middleware: settles each update in the ledger at the right moment."""

    def __init__(self, ledger: UpdateLedger) -> None:
        self.ledger = ledger

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        if not holds_data(event):
            self.ledger.settle(event.update_id)
            return await handler(event, data)
        try:
            return await handler(event, data)
        finally:
            self.ledger.settle(event.update_id)
