"""The buffer between the fetch/decode workers and the embedder, bounded by a number of images
(so a few long videos cannot fill the memory) and drained in batches across owners."""

from __future__ import annotations

import asyncio
from collections import deque

from core.ingest.decode import PreparedItem

__all__ = ["READY_BATCHES", "ReadyBuffer"]

# Decoded images waiting for the embedder, in batches: bounds memory, keeps the embedder fed.
READY_BATCHES = 4


class ReadyBuffer:
    """Decoded items waiting for the embedder: at most ``READY_BATCHES * batch_size`` images
    (one item larger than that still gets in alone)."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.limit = READY_BATCHES * batch_size
        self._items: deque[PreparedItem] = deque()
        self._images = 0
        self._changed = asyncio.Condition()

    @property
    def images(self) -> int:
        """Images waiting right now."""
        return self._images

    def reset(self) -> None:
        """Forget what a stopped run left (its jobs resume from SQLite)."""
        self._items.clear()
        self._images = 0
        self._changed = asyncio.Condition()

    async def put(self, item: PreparedItem) -> None:
        """Add ``item`` once there is room for its images."""
        async with self._changed:
            await self._changed.wait_for(
                lambda: not self._items or self._images + item.size <= self.limit
            )
            self._items.append(item)
            self._images += item.size
            self._changed.notify_all()

    async def take_batch(self) -> list[PreparedItem]:
        """Everything ready, across owners, up to ``batch_size`` images (one long video may
        exceed it alone)."""
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._items))
            batch = [self._items.popleft()]
            count = batch[0].size
            while self._items and count + self._items[0].size <= self.batch_size:
                item = self._items.popleft()
                batch.append(item)
                count += item.size
            self._images -= count
            self._changed.notify_all()
        return batch

    async def wait_holding(self, images: int) -> None:
        """Return once exactly ``images`` images wait (tests and benchmarks hold the embedder
        and watch the workers fill the buffer)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._images == images)
