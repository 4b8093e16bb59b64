"""One answer per Telegram album when several front ends share the database (PostgreSQL).

Webhook replicas behind a load balancer each get some items of an album. Every replica submits
its items as jobs (durable first, as always) and records the arrival in the album's row
(:class:`~storage.album_answers.AlbumAnswers`); the row names ONE replica, the holder, which
answers: it waits for the album's quiet time (the newest arrival on any replica), reads the
album's items from the jobs table (whoever submitted them) and their states, shows "n of N"
while they are processed and then the summary, as a reply to the first item. It re-reads on a
short interval, and at once when one of its own tickets resolves.

A holder renews its lease while it works. If it dies, the lease runs out and the next item's
replica, or the periodic sweep of any replica, takes the album over and edits the answer
already sent. A straggler after the summary reopens the album the same way (kept ``keep_s``).

Only albums are shared: bursts of items sent without a ``media_group_id`` stay with the replica
that got them (:mod:`bot.albums`), as they have no key other replicas could know.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bot.albums import KEEP_S, wait_settled
from bot.progress import EDIT_INTERVAL_S, ProgressMessage
from bot.reports import ItemResult, album_text, worth_saying
from core.ingest.remote import outcome_of, request_of
from core.ingest.tickets import Ticket
from storage.album_answers import AlbumAnswer, AlbumAnswers, AlbumKey
from storage.records import Job

if TYPE_CHECKING:
    from aiogram import Bot

    from bot.services import BotServices

log = logging.getLogger(__name__)

POLL_S = 0.5  # how often a holder re-reads its album's jobs
PUT_UP_TIMEOUT_S = 5.0  # how long a stopping replica lets an answer being sent finish
OwnerOf = Callable[[int], Awaitable[int | None]]  # chat id -> owner id


class SharedAlbums:
    """The album answers of one replica (``replica``: its holder name, unique per process)."""

    def __init__(
        self,
        bot: Bot,
        answers: AlbumAnswers,
        owner_of: OwnerOf,
        *,
        replica: str,
        wait_s: float,
        lease_s: float,
        keep_s: float = KEEP_S,
        poll_s: float = POLL_S,
        interval: float = EDIT_INTERVAL_S,
    ) -> None:
        self.bot = bot
        self.answers = answers
        self.owner_of = owner_of
        self.replica = replica
        self.wait_ms = int(wait_s * 1000)
        self.lease_ms = int(lease_s * 1000)
        self.keep_s = keep_s
        self.poll_s = poll_s
        self.interval = interval
        self._holding: dict[AlbumKey, asyncio.Task[None]] = {}
        self._wakes: dict[AlbumKey, asyncio.Event] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self._putting: set[asyncio.Future[None]] = set()  # answers being sent or edited
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False

    # --- arrivals -------------------------------------------------------------------------------

    def add(
        self,
        chat_id: int,
        album_id: str,
        message_id: int,
        *,
        lang: str,
        quiet: bool,
        ticket: Ticket | None = None,
        result: ItemResult | None = None,
    ) -> None:
        """Record one item of an album: a submitted job (``ticket``) or an item refused before
        the pipeline (``result``). The answer comes from whichever replica holds the album."""
        if self._closed:
            return
        self.start()
        self._spawn(self._arrive(chat_id, album_id, message_id, lang, quiet, ticket, result))

    def start(self) -> None:
        """Sweep for albums whose holder died, also on a replica that gets no item of them."""
        if self._sweeper is None and not self._closed:
            self._sweeper = asyncio.create_task(self._sweep_forever())

    async def _arrive(
        self,
        chat_id: int,
        album_id: str,
        message_id: int,
        lang: str,
        quiet: bool,
        ticket: Ticket | None,
        result: ItemResult | None,
    ) -> None:
        owner_id = ticket.request.owner_id if ticket is not None else await self.owner_of(chat_id)
        if owner_id is None:
            log.warning("album %s: no owner for chat %d", album_id, chat_id)
            return
        key: AlbumKey = (owner_id, chat_id, album_id)
        refused = None
        if result is not None:
            refused = (message_id, result.reason or "internal", result.kind)
        row = await self.answers.arrive(
            key, self.replica, lease_ms=self.lease_ms, lang=lang, quiet=quiet, refused=refused
        )
        if ticket is not None:
            self._spawn(self._wake_when_done(key, ticket))
        self._hold(row)

    async def _wake_when_done(self, key: AlbumKey, ticket: Ticket) -> None:
        with contextlib.suppress(Exception):
            await ticket.result()
        self._wake(key)

    def _hold(self, row: AlbumAnswer) -> None:
        """Answer ``row``'s album here if this replica holds it (once: a running answer is
        woken instead)."""
        if row.holder != self.replica or self._closed:
            return
        task = self._holding.get(row.key)
        if task is not None and not task.done():
            self._wake(row.key)
            return
        task = asyncio.create_task(self._answer(row.key))
        self._holding[row.key] = task
        key = row.key
        task.add_done_callback(lambda t: self._forget(key, t))

    def _forget(self, key: AlbumKey, task: asyncio.Task[None]) -> None:
        if self._holding.get(key) is task:
            del self._holding[key]
            self._wakes.pop(key, None)

    def _wake(self, key: AlbumKey) -> None:
        event = self._wakes.get(key)
        if event is not None:
            event.set()

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- answering ------------------------------------------------------------------------------

    async def _answer(self, key: AlbumKey) -> None:
        try:
            await self._answer_until_done(key)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("album %s: answering failed (its lease lets another replica answer)", key)

    async def _answer_until_done(self, key: AlbumKey) -> None:
        """Renew the lease, wait out the quiet time, show progress, then the summary."""
        wake = self._wakes.setdefault(key, asyncio.Event())
        message: ProgressMessage | None = None
        taken_over = False
        while True:
            wake.clear()
            row = await self.answers.renew(key, self.replica, lease_ms=self.lease_ms)
            if row is None:
                log.info("album %s of chat %d: another replica answers it now", key[2], key[1])
                return
            quiet_left = row.last_item_ms + self.wait_ms - self.answers.now_ms()
            if quiet_left > 0 and row.message_id is None and message is None:
                await self._nap(wake, quiet_left / 1000)
                continue
            results = await self._results(row)
            done = all(r is not None for r in results.values())
            if not results or (row.quiet and not done):
                if not results and quiet_left <= 0 and await self._finish(row):
                    return
                await self._nap(wake, self.poll_s)
                continue
            if row.quiet and not worth_saying(results.values()) and row.message_id is None:
                if await self._finish(row):
                    return
                continue
            if message is None:
                message = ProgressMessage(
                    self.bot, key[1], reply_to_message_id=min(results), interval=self.interval
                )
                message.message_id = row.message_id  # taken over: edit the answer already sent
                taken_over = row.message_id is not None
            if taken_over and not done:
                # What the answer shows now is unknown here; only the summary is surely news.
                await self._nap(wake, self.poll_s)
                continue
            # Shielded: a message sent must get its id recorded, even when stopping now.
            putting = asyncio.ensure_future(self._put_up(row, message, results, done))
            self._putting.add(putting)
            putting.add_done_callback(self._putting.discard)
            await asyncio.shield(putting)
            if done:
                if await self._finish(row) and not wake.is_set():  # set: a straggler came
                    return
                continue
            await self._nap(wake, self.poll_s)

    async def _put_up(
        self,
        row: AlbumAnswer,
        message: ProgressMessage,
        results: dict[int, ItemResult | None],
        done: bool,
    ) -> None:
        ended = [r for _, r in sorted(results.items()) if r is not None]
        text = album_text(ended, len(results), row.lang)
        if done or not message.sent:
            await message.show(text)
        else:
            message.set(text)  # progress: throttled
        if message.message_id is not None and message.message_id != row.message_id:
            await self.answers.set_message(row.key, self.replica, message.message_id)

    async def _finish(self, row: AlbumAnswer) -> bool:
        return await self.answers.finish(row.key, self.replica, last_item_ms=row.last_item_ms)

    async def _results(self, row: AlbumAnswer) -> dict[int, ItemResult | None]:
        """Message id -> how the item ended (None while its job runs), from every replica."""
        results: dict[int, ItemResult | None] = {}
        for job in await self.answers.jobs(row.owner_id, row.album_id):
            message_id = job.payload.get("message_id")
            results[int(message_id) if message_id else -job.id] = _result_of(job)
        for message_id, (reason, kind) in row.refused.items():
            results.setdefault(message_id, ItemResult.refused(reason, kind))
        return results

    @staticmethod
    async def _nap(wake: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), max(seconds, 0.0))

    # --- the sweep, shutdown and tests ----------------------------------------------------------

    async def sweep(self) -> int:
        """Take over the albums whose holder stopped renewing, and forget old finished ones;
        returns how many were taken over."""
        taken = await self.answers.take_over(self.replica, lease_ms=self.lease_ms)
        for row in taken:
            log.info("album %s of chat %d: taken over from its silent holder", *row.key[2:0:-1])
            self._hold(row)
        await self.answers.purge(quiet_for_s=self.keep_s)
        return len(taken)

    async def _sweep_forever(self) -> None:
        period = max(self.lease_ms / 2000, self.poll_s)
        while not self._closed:
            await asyncio.sleep(period)
            try:
                await self.sweep()
            except Exception:
                log.exception("album sweep failed")

    async def settled(self, timeout: float | None = None) -> bool:
        """Wait until every arrival is recorded and every album this replica holds is
        answered; False on timeout."""
        return await wait_settled(
            lambda: [t for t in (*self._tasks, *self._holding.values()) if not t.done()], timeout
        )

    async def close(self, *, drain_s: float = 0.0) -> None:
        """Shutdown: with ``drain_s``, let answers in progress end within that time; then stop
        and release the albums still held, so another replica answers them at once."""
        if drain_s > 0:
            await self.settled(drain_s)
        self._closed = True
        holders = [t for t in (*self._holding.values(), self._sweeper) if t is not None]
        for task in holders:
            task.cancel()
        await asyncio.gather(*holders, return_exceptions=True)
        if self._putting:
            await asyncio.wait(self._putting, timeout=PUT_UP_TIMEOUT_S)
        rest = [*self._tasks, *self._putting]
        for left in rest:
            left.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.answers.release(self.replica)


def shared_albums_for(services: BotServices) -> SharedAlbums | None:
    """The shared album answers of a front end on PostgreSQL; None on SQLite (one process:
    :mod:`bot.albums` answers everything)."""
    db = services.engine.db
    if not db.shared:
        return None
    owners = services.engine.owners

    async def owner_of(chat_id: int) -> int | None:
        owner = await owners.find("user" if chat_id > 0 else "chat", chat_id)
        return None if owner is None else owner.id

    settings = services.settings.bot
    albums = SharedAlbums(
        services.bot,
        db.album_answers,
        owner_of,
        replica=db.worker,
        wait_s=settings.album_wait_s,
        lease_s=settings.album_lease_s,
    )
    albums.start()
    return albums


def _result_of(job: Job) -> ItemResult | None:
    if job.state not in ("done", "failed"):
        return None
    return ItemResult.from_outcome(outcome_of(job, request_of(job)))
