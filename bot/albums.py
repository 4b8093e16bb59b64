"""One answer per album, and per burst of items, however they arrive.

Telegram has no "album" update: each item is its own message sharing a ``media_group_id``, with
no count, possibly split across polling batches. And forwarding thirty photos picked in a chat
arrives as thirty separate messages with no group id at all. Answering each message would flood
the chat, so answers are collected here. Items themselves are submitted to the ingest pipeline
the moment they arrive (the job row is durable at once; polling acknowledges updates before
their handlers finish, so work held only in memory would be lost by a crash); only the *answer*
waits:

* items are grouped per ``(chat_id, media_group_id)``, and items without a group id per chat
  into a *burst*; each new item restarts a timer of ``wait_s`` (a debounce), and when the group
  has been quiet that long, ONE message answers it, as a reply to its first item;
* that message is a :class:`~bot.progress.ProgressMessage`: while items are still being
  processed it shows "n of N" (edited at most every couple of seconds), and once every item has
  ended it shows the summary: saved, already in the collection, near-duplicates, failures with
  their reasons;
* a burst of one item is answered like a single item: a photo's answer waits for its result (no
  progress message for a second's work), a video shows its sampling progress, then the result;
* a straggler arriving after an album's answer edits the same message (the album is kept
  ``keep_s`` seconds after its last item ended), so an album never gets two answers; an item
  arriving after a burst was answered starts a new burst.

Nothing here sleeps in tests: :meth:`AlbumCollector.flush` answers pending groups now and
:meth:`AlbumCollector.settled` waits until every known item has ended and been shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.i18n import t
from bot.progress import EDIT_INTERVAL_S, ProgressMessage
from bot.reports import ItemResult, album_text, item_text, worth_saying
from core.errors import IngestInterruptedError
from core.ingest.pipeline import Ticket

if TYPE_CHECKING:
    from aiogram import Bot

log = logging.getLogger(__name__)

GroupKey = tuple[int, str]
KEEP_S = 120.0  # how long a finished album still takes stragglers into its answer
# Called with (chat id, answer message id, result) once a single saved item's answer is final.
OnAnswer = Callable[[int, int, ItemResult], Awaitable[None]]


@dataclass(eq=False)
class _Group:
    key: GroupKey
    lang: str
    burst: bool  # separate messages grouped by time, not a Telegram album
    quiet: bool  # only speak up when something went wrong (group chats)
    items: dict[int, ItemResult | None] = field(default_factory=dict)  # message id -> result
    videos: set[int] = field(default_factory=set)  # message ids of items sampled as videos
    progress: dict[int, float] = field(default_factory=dict)  # message id -> fraction
    message: ProgressMessage | None = None
    timer: asyncio.Task[None] | None = None
    flushed: bool = False  # the quiet time is over (the answer may still wait for a result)
    expiry: asyncio.Task[None] | None = None
    watchers: set[asyncio.Task[None]] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one render-and-show at a time

    @property
    def answered(self) -> bool:
        return self.message is not None

    @property
    def done(self) -> bool:
        return all(r is not None for r in self.items.values())

    @property
    def single(self) -> bool:
        return self.burst and len(self.items) == 1

    def results(self) -> list[ItemResult]:
        """Ended items in message order (arrival order varies with concurrent handlers)."""
        return [r for _, r in sorted(self.items.items()) if r is not None]


class AlbumCollector:
    """Debounced answers for albums and bursts (see the module docstring)."""

    def __init__(
        self,
        bot: Bot,
        wait_s: float,
        *,
        keep_s: float = KEEP_S,
        interval: float = EDIT_INTERVAL_S,
        on_answer: OnAnswer | None = None,
    ) -> None:
        self.bot = bot
        self.wait_s = wait_s
        self.keep_s = keep_s
        self.interval = interval
        self.on_answer = on_answer
        self._groups: dict[GroupKey, _Group] = {}
        self._open_bursts: dict[int, GroupKey] = {}  # chat id -> its unanswered burst
        self._burst_ids = itertools.count(1)
        self._closed = False

    def __len__(self) -> int:
        return len(self._groups)

    # --- adding items ---------------------------------------------------------------------------

    def add(
        self,
        chat_id: int,
        media_group_id: str | None,
        message_id: int,
        *,
        lang: str,
        ticket: Ticket | None = None,
        result: ItemResult | None = None,
        video: bool = False,
        quiet: bool = False,
    ) -> GroupKey:
        """Count one item: ``ticket`` for a submitted job, or ``result`` for an item that ended
        before the pipeline (refused, unusable). Without ``media_group_id`` the item joins the
        chat's current burst. A redelivered item (same message id) is counted once. Returns
        the group's key (for :meth:`progress`)."""
        key = self._key(chat_id, media_group_id)
        if self._closed:
            return key
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(key, lang, media_group_id is None, quiet)
        if group.expiry is not None:
            group.expiry.cancel()
            group.expiry = None
        if message_id in group.items:
            return key
        group.items[message_id] = result
        if video:
            group.videos.add(message_id)
        if ticket is not None:
            watcher = asyncio.create_task(self._watch(group, message_id, ticket))
            group.watchers.add(watcher)
            watcher.add_done_callback(group.watchers.discard)
        if group.answered:
            self._spawn(group, self._show(group))  # an album's straggler: its answer shows it
        else:
            group.flushed = False
            if group.timer is not None:
                group.timer.cancel()
            group.timer = asyncio.create_task(self._debounce(group))
        return key

    def _key(self, chat_id: int, media_group_id: str | None) -> GroupKey:
        if media_group_id is not None:
            return (chat_id, media_group_id)
        key = self._open_bursts.get(chat_id)
        if key is None or key not in self._groups or self._groups[key].answered:
            key = self._open_bursts[chat_id] = (chat_id, f"burst-{next(self._burst_ids)}")
        return key

    def progress(self, key: GroupKey, message_id: int, fraction: float) -> None:
        """A video's sampling progress (0..1); shown while it is the only item of a burst."""
        group = self._groups.get(key)
        if group is None or fraction >= 1.0:
            return
        group.progress[message_id] = fraction
        if group.single and group.answered and group.message is not None:
            text = self._render(group)
            if text is not None:
                group.message.set(text)

    def _spawn(self, group: _Group, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        group.watchers.add(task)
        task.add_done_callback(group.watchers.discard)

    async def _watch(self, group: _Group, message_id: int, ticket: Ticket) -> None:
        try:
            outcome = await ticket.result()
        except IngestInterruptedError:
            return  # shutting down: the job resumes at the next start, which reports it
        except Exception:
            log.exception("item %d: waiting for job %d failed", message_id, ticket.job_id)
            result = ItemResult.refused("internal", ticket.request.kind)
        else:
            result = ItemResult.from_outcome(outcome)
        group.items[message_id] = result
        if group.answered:
            await self._show(group)
        elif group.flushed:
            await self._answer(group)  # a single item waited for its result

    async def _debounce(self, group: _Group) -> None:
        await asyncio.sleep(self.wait_s)
        group.timer = None
        group.flushed = True
        await self._answer(group)

    # --- answering ------------------------------------------------------------------------------

    def _render(self, group: _Group) -> str | None:
        """The answer's text now; None when a single photo's result is still to come."""
        results = group.results()
        if group.single:
            if results:
                (result,) = results
                return item_text(result, group.lang, is_video=bool(group.videos))
            if not group.videos:
                return None
            fraction = max(group.progress.values(), default=None)
            if fraction is None:
                return t("reports-video-started", group.lang)
            return t("reports-video-progress", group.lang, percent=int(fraction * 10) * 10)
        return album_text(results, len(group.items), group.lang, burst=group.burst)

    async def _answer(self, group: _Group) -> None:
        async with group.lock:
            if group.answered or self._closed:
                return
            if group.quiet and not self._worth_saying(group):
                self._finished(group)
                return
            text = self._render(group)
            if text is None:
                return  # a photo alone: its result comes first
            group.message = ProgressMessage(
                self.bot, group.key[0], reply_to_message_id=min(group.items), interval=self.interval
            )
            if self._open_bursts.get(group.key[0]) == group.key:
                del self._open_bursts[group.key[0]]  # later items start a new burst
            await self._put_up(group, text)

    async def _show(self, group: _Group) -> None:
        # Rendered under the group's lock, so a slower call can never put up an older state.
        async with group.lock:
            if group.message is None:
                return
            text = self._render(group)
            if text is not None:
                await self._put_up(group, text)

    async def _put_up(self, group: _Group, text: str) -> None:
        message = group.message
        assert message is not None
        if group.done or not message.sent:
            await message.show(text)
        else:
            message.set(text)  # progress: throttled
        if group.done and group.single and message.message_id is not None:
            (result,) = group.results()
            if self.on_answer is not None and result.media_id is not None:
                try:
                    await self.on_answer(group.key[0], message.message_id, result)
                except Exception:
                    log.exception("answer hook failed for message %d", message.message_id)
        self._finished(group)

    @staticmethod
    def _worth_saying(group: _Group) -> bool:
        return group.done and worth_saying(group.results())

    def _finished(self, group: _Group) -> None:
        """Once every item has ended, keep the group a while for stragglers, then forget it."""
        if group.done and group.expiry is None and not self._closed:
            group.expiry = asyncio.create_task(self._expire(group))

    async def _expire(self, group: _Group) -> None:
        await asyncio.sleep(self.keep_s if not group.burst else 0.0)
        if self._groups.get(group.key) is group and group.done:
            del self._groups[group.key]
            if self._open_bursts.get(group.key[0]) == group.key:
                del self._open_bursts[group.key[0]]

    # --- hooks for shutdown and tests -----------------------------------------------------------

    async def flush(self) -> None:
        """Answer every waiting group now instead of after its quiet time."""
        for group in list(self._groups.values()):
            if group.timer is not None:
                group.timer.cancel()
                group.timer = None
            group.flushed = True
            await self._answer(group)

    async def settled(self, timeout: float | None = None) -> bool:
        """Wait until every group is answered and each item's end has been shown; False on
        timeout."""
        return await wait_settled(self._pending, timeout)

    def _pending(self) -> list[asyncio.Future[None]]:
        pending: list[asyncio.Future[None]] = []
        for group in self._groups.values():
            pending += [w for w in group.watchers if not w.done()]
            if group.timer is not None and not group.timer.done():
                pending.append(group.timer)
            task = group.message.pending if group.message is not None else None
            if task is not None:
                pending.append(task)
        return pending

    async def close(self, *, drain_s: float = 0.0) -> None:
        """Shutdown: with ``drain_s``, answer waiting groups and let items that end within that
        time show; then cancel what is left."""
        if drain_s > 0:
            with contextlib.suppress(Exception):
                await self.flush()
                await self.settled(drain_s)
        self._closed = True
        tasks: list[asyncio.Future[None]] = []
        for group in self._groups.values():
            for task in (group.timer, group.expiry, *group.watchers):
                if task is not None and not task.done():
                    task.cancel()
                    tasks.append(task)
            if group.message is not None:
                await group.message.close()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._groups.clear()
        self._open_bursts.clear()


async def wait_settled(
    pending: Callable[[], list[asyncio.Future[None]]], timeout: float | None
) -> bool:
    """Wait until ``pending()`` (asked again after each wake, as work spawns work) is empty;
    False on timeout."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while True:
        waiting = pending()
        if not waiting:
            return True
        left = None if deadline is None else deadline - loop.time()
        if left is not None and left <= 0:
            return False
        await asyncio.wait(waiting, timeout=left)
