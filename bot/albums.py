"""One acknowledgement per album, however its items arrive.

Telegram has no "album" update: each item is its own message sharing a ``media_group_id``, with
no count, possibly split across polling batches. Items are submitted to the ingest pipeline the
moment they arrive (the job row is durable at once; polling acknowledges updates before their
handlers finish, so an album held only in memory would be lost by a crash). Only the *reply*
waits here:

* items are collected per ``(chat_id, media_group_id)``; each new item restarts a timer of
  ``wait_s`` (a debounce), and when the album has been quiet that long, ONE message answers it,
  as a reply to its first item;
* that message is a :class:`~bot.progress.ProgressMessage`: while items are still being
  processed it shows "n of N" (edited at most every couple of seconds), and once every item has
  ended it shows the summary: saved, already in the collection, near-duplicates, failures with
  their reasons;
* a straggler arriving after the acknowledgement edits the same message (the album entry is
  kept ``keep_s`` seconds after its last item ended), so an album never gets two answers.

Nothing here sleeps in tests: :meth:`AlbumCollector.flush` sends pending acknowledgements now
and :meth:`AlbumCollector.settled` waits until every known item has ended and been shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.progress import EDIT_INTERVAL_S, ProgressMessage
from bot.reports import ItemResult, album_text
from core.errors import IngestInterruptedError
from core.ingest import Ticket

if TYPE_CHECKING:
    from aiogram import Bot

log = logging.getLogger(__name__)

AlbumKey = tuple[int, str]
KEEP_S = 120.0  # how long a finished album still takes stragglers into its acknowledgement
Render = Callable[[list[ItemResult], int, str], str]


@dataclass(eq=False)
class _Album:
    key: AlbumKey
    lang: str
    quiet: bool  # only speak up when something went wrong (group chats)
    items: dict[int, ItemResult | None] = field(default_factory=dict)  # message id -> result
    message: ProgressMessage | None = None
    timer: asyncio.Task[None] | None = None
    expiry: asyncio.Task[None] | None = None
    watchers: set[asyncio.Task[None]] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one render-and-show at a time

    @property
    def acknowledged(self) -> bool:
        return self.message is not None

    @property
    def done(self) -> bool:
        return all(r is not None for r in self.items.values())

    def results(self) -> list[ItemResult]:
        """Ended items in message order (arrival order varies with concurrent handlers)."""
        return [r for _, r in sorted(self.items.items()) if r is not None]


class AlbumCollector:
    """Debounced album acknowledgements (see the module docstring)."""

    def __init__(
        self,
        bot: Bot,
        wait_s: float,
        *,
        keep_s: float = KEEP_S,
        interval: float = EDIT_INTERVAL_S,
        render: Render = album_text,
    ) -> None:
        self.bot = bot
        self.wait_s = wait_s
        self.keep_s = keep_s
        self.interval = interval
        self.render = render
        self._albums: dict[AlbumKey, _Album] = {}
        self._closed = False

    def __len__(self) -> int:
        return len(self._albums)

    def acknowledgement(self, chat_id: int, media_group_id: str) -> ProgressMessage | None:
        """The message answering this album, once sent."""
        album = self._albums.get((chat_id, media_group_id))
        return album.message if album is not None else None

    # --- adding items ---------------------------------------------------------------------------

    def add(
        self,
        chat_id: int,
        media_group_id: str,
        message_id: int,
        *,
        lang: str,
        ticket: Ticket | None = None,
        result: ItemResult | None = None,
        quiet: bool = False,
    ) -> None:
        """Count one album item: ``ticket`` for a submitted job, or ``result`` for an item that
        ended before the pipeline (refused, unusable). A redelivered item (same message id)
        is counted once."""
        if self._closed:
            return
        key = (chat_id, media_group_id)
        album = self._albums.get(key)
        if album is None:
            album = self._albums[key] = _Album(key, lang, quiet)
        if album.expiry is not None:
            album.expiry.cancel()
            album.expiry = None
        if message_id in album.items:
            return
        album.items[message_id] = result
        if ticket is not None:
            watcher = asyncio.create_task(self._watch(album, message_id, ticket))
            album.watchers.add(watcher)
            watcher.add_done_callback(album.watchers.discard)
        if album.acknowledged:
            self._refresh(album)  # a straggler: the acknowledgement shows it
        else:
            if album.timer is not None:
                album.timer.cancel()
            album.timer = asyncio.create_task(self._debounce(album))

    async def _watch(self, album: _Album, message_id: int, ticket: Ticket) -> None:
        try:
            outcome = await ticket.result()
        except IngestInterruptedError:
            return  # shutting down: the job resumes at the next start, which reports it
        except Exception:
            log.exception("album item %d: waiting for job %d failed", message_id, ticket.job_id)
            result = ItemResult.refused("internal", ticket.request.kind)
        else:
            result = ItemResult.from_outcome(outcome)
        album.items[message_id] = result
        if album.acknowledged:
            await self._show(album)

    async def _debounce(self, album: _Album) -> None:
        await asyncio.sleep(self.wait_s)
        album.timer = None
        await self._acknowledge(album)

    # --- answering ------------------------------------------------------------------------------

    async def _acknowledge(self, album: _Album) -> None:
        if album.acknowledged or self._closed:
            return
        chat_id = album.key[0]
        album.message = ProgressMessage(
            self.bot, chat_id, reply_to_message_id=min(album.items), interval=self.interval
        )
        await self._show(album)

    def _refresh(self, album: _Album) -> None:
        task = asyncio.create_task(self._show(album))
        album.watchers.add(task)
        task.add_done_callback(album.watchers.discard)

    async def _show(self, album: _Album) -> None:
        # Rendered under the album's lock, so a slower call can never put up an older state.
        async with album.lock:
            message = album.message
            if message is None:
                return
            if album.quiet and not self._worth_saying(album):
                self._finished(album)
                return
            text = self.render(album.results(), len(album.items), album.lang)
            if album.done or not message.sent:
                await message.show(text)
            else:
                message.set(text)  # progress: throttled
            self._finished(album)

    @staticmethod
    def _worth_saying(album: _Album) -> bool:
        """In a group, an album that saved cleanly needs no answer; problems do."""
        if album.message is not None and album.message.sent:
            return True
        results = album.results()
        return album.done and any(
            r.status == "failed" or r.near_duplicate or r.thumbnail_only for r in results
        )

    def _finished(self, album: _Album) -> None:
        """Once every item has ended, keep the album a while for stragglers, then forget it."""
        if album.done and album.expiry is None and not self._closed:
            album.expiry = asyncio.create_task(self._expire(album))

    async def _expire(self, album: _Album) -> None:
        await asyncio.sleep(self.keep_s)
        if self._albums.get(album.key) is album and album.done:
            del self._albums[album.key]

    # --- hooks for shutdown and tests -----------------------------------------------------------

    async def flush(self) -> None:
        """Acknowledge every album now instead of after its quiet time."""
        for album in list(self._albums.values()):
            if album.timer is not None:
                album.timer.cancel()
                album.timer = None
            await self._acknowledge(album)

    async def settled(self, timeout: float | None = None) -> bool:
        """Wait until every album is acknowledged and each item's end has been shown; False
        on timeout."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            pending: list[asyncio.Task[None]] = []
            for album in self._albums.values():
                pending += [w for w in album.watchers if not w.done()]
                if album.timer is not None and not album.timer.done():
                    pending.append(album.timer)
                task = album.message.pending if album.message is not None else None
                if task is not None:
                    pending.append(task)
            if not pending:
                return True
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            await asyncio.wait(pending, timeout=left)

    async def close(self, *, drain_s: float = 0.0) -> None:
        """Shutdown: with ``drain_s``, acknowledge waiting albums and let items that end within
        that time show; then cancel what is left."""
        if drain_s > 0:
            with contextlib.suppress(Exception):
                await self.flush()
                await self.settled(drain_s)
        self._closed = True
        tasks: list[asyncio.Task[None]] = []
        for album in self._albums.values():
            for task in (album.timer, album.expiry, *album.watchers):
                if task is not None and not task.done():
                    task.cancel()
                    tasks.append(task)
            if album.message is not None:
                await album.message.close()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._albums.clear()
