"""Job intake: requests become durable jobs before anything else, and one feeder claims pending
jobs from the database (the real queue, round-robin across owners) into a bounded in-memory
queue. It also keeps the count of claimed jobs still in the pipeline, which says when it is
idle, and renews the leases of the jobs this process holds (:mod:`storage.leases`), so another
worker on the same database takes them over only when this one died."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from core.ingest.request import IngestRequest, ProgressCallback
from core.ingest.slots import durable
from core.ingest.tickets import Ticket, TicketBook
from storage import Database, Job
from storage.job_feed import queued_jobs

log = logging.getLogger(__name__)

__all__ = ["JobIntake"]

NOTICE_QUIET_S = 60.0  # a listener that heard nothing this long looks anyway


class JobIntake:
    """Durable enqueue, claiming, and the idle/quiet state of the pipeline.

    *Idle*: nothing pending or in progress (nothing to claim, nothing claimed, no submit under
    way). *Quiet*: no claimed job left in the pipeline (what a stop waits for).
    """

    def __init__(
        self,
        db: Database,
        book: TicketBook,
        *,
        queue_size: int,
        batch_size: int,
        backoff_s: float,
        lease_s: float = 60.0,
        poll_s: float | None = None,
        front: str | None = None,
    ) -> None:
        self._db = db
        # A front end on a shared database that embeds what it queues: its jobs name it, and it
        # claims only those (and what it took over), never another front end's.
        self.front = front
        self._book = book
        self.batch_size = batch_size
        self.backoff_s = backoff_s
        self.lease_s = lease_s
        # Shared database: other processes enqueue, and other workers' leases run out, without
        # waking this feeder; it looks again this often when idle (None: only when woken).
        self.poll_s = poll_s
        self.jobs: asyncio.Queue[Job] = asyncio.Queue(maxsize=queue_size)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._in_flight = 0
        self._submitting = 0
        # Held while a submit persists jobs and registers their tickets, and while the feeder
        # claims: a job is never claimed (and finished) before its ticket exists.
        self._claim_lock = asyncio.Lock()
        self.accepting = False

    # --- state ----------------------------------------------------------------------------------

    def open(self) -> None:
        """Start accepting: a fresh queue (a stopped run's claimed jobs resume from SQLite)."""
        self.jobs = asyncio.Queue(maxsize=self.jobs.maxsize)
        self._idle.clear()
        self._wake.set()
        self.accepting = True

    def close(self) -> None:
        """Stop claiming; the feeder finishes handing over what it claimed, then ends."""
        self.accepting = False
        self._wake.set()

    def abandon(self) -> None:
        """The workers were stopped: what they held resumes at the next start."""
        self._in_flight = 0
        self._quiet.set()
        self._idle.set()

    @property
    def idle(self) -> bool:
        return self._idle.is_set()

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def wait_quiet(self) -> None:
        await self._quiet.wait()

    def wake(self) -> None:
        """Something may be claimable (a job went back to ``pending``, one left the pipeline)."""
        self._wake.set()

    def settle(self) -> None:
        """One claimed job left the pipeline (done, failed or back to pending)."""
        self._in_flight -= 1
        if self._in_flight <= 0:
            self._in_flight = 0
            self._quiet.set()
            self._wake.set()  # let the feeder see whether anything is left

    # --- submitting -----------------------------------------------------------------------------

    async def submit(
        self, requests: list[IngestRequest], progress: list[ProgressCallback | None]
    ) -> list[Ticket]:
        """Persist ``requests`` as jobs and register their tickets, then wait for room."""
        self._submitting += 1
        self._idle.clear()
        try:
            async with self._claim_lock:
                tickets = await self._persist(requests, progress)
        finally:
            self._submitting -= 1
            self._wake.set()  # also after a failure: the feeder re-checks and may go idle
        await self._book.wait_for_room()
        return tickets

    async def _persist(
        self, requests: list[IngestRequest], progress: list[ProgressCallback | None]
    ) -> list[Ticket]:
        """One transaction per owner; each owner's tickets are registered right after its
        commit, so a later owner's failure (e.g. unknown) leaves no job without its ticket."""
        by_owner: dict[int, list[int]] = {}
        for i, request in enumerate(requests):
            by_owner.setdefault(request.owner_id, []).append(i)
        tickets: list[Ticket | None] = [None] * len(requests)
        for owner_id, positions in by_owner.items():
            payloads = [requests[i].to_payload() for i in positions]
            jobs = self._db.owner(owner_id).jobs
            queued = jobs.enqueue_many(payloads, front=self.front, embeds=True)
            ids = await durable(queued)
            for i, job_id in zip(positions, ids, strict=True):
                tickets[i] = self._book.issue(job_id, requests[i], progress[i])
        return [t for t in tickets if t is not None]

    # --- feeder ---------------------------------------------------------------------------------

    async def feed(self) -> None:
        """Claim pending jobs into the queue until :meth:`close`."""
        while self.accepting:
            self._wake.clear()
            jobs = await self._claim()
            if jobs is None:
                continue
            if not jobs:
                if self._in_flight == 0 and self._submitting == 0 and not self._wake.is_set():
                    self._idle.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)
                continue
            self._idle.clear()
            self._quiet.clear()
            self._in_flight += len(jobs)
            for i, job in enumerate(jobs):
                try:
                    await self.jobs.put(job)
                except asyncio.CancelledError:
                    # Stopping: these stay ``running`` in SQLite and resume at the next start.
                    for _ in jobs[i:]:
                        self.settle()
                    raise

    async def _claim(self) -> list[Job] | None:
        """As many jobs as the queue has room for (at most a batch); None after a failure."""
        free = max(1, self.jobs.maxsize - self.jobs.qsize())
        try:
            async with self._claim_lock:
                limit = min(free, self.batch_size)
                claim = self._db.queue.claim(limit, lease_s=self.lease_s, front=self.front)
                return await durable(claim)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("cannot claim ingest jobs; retrying")
            await asyncio.sleep(max(self.backoff_s, 0.1))
            return None

    # --- leases ---------------------------------------------------------------------------------

    async def follow_notices(self, on_gap: Callable[[], Awaitable[None]] | None = None) -> None:
        """Shared database: wake the feeder at once when another process queued or released
        work (the feeder's own ``poll_s`` still finds leases that ran out), until cancelled.
        A front end's connection also holds its liveness lock, and ``on_gap`` runs after each
        (re)connect and quiet spell (taking over what stopped front ends owed)."""
        quiet_s = self.poll_s if self.front is not None and self.poll_s else NOTICE_QUIET_S
        feed = queued_jobs(self._db.connections, quiet_s=quiet_s, alive_as=self.front)
        async with contextlib.aclosing(feed):
            async for ids in feed:
                if ids is None and on_gap is not None:
                    try:
                        await on_gap()
                    except Exception:
                        log.exception("cannot take over the jobs of stopped front ends")
                self.wake()

    async def renew_leases(self) -> None:
        """Every third of a lease, extend the leases of every job this process holds (claimed,
        queued, being fetched, embedded or committed), until cancelled."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                await durable(self._db.queue.renew(None, lease_s=self.lease_s))
            except asyncio.CancelledError:
                raise
            except Exception:  # the next round tries again; the lease has two more thirds
                log.exception("cannot renew the leases of ingest jobs")

    async def release(self) -> None:
        """Stopping on a shared database: jobs still held go back to ``pending`` at once, for
        another worker, rather than after their lease."""
        try:
            released = await durable(self._db.queue.release(None))
        except Exception:  # their leases run out instead
            log.exception("cannot release the ingest jobs still held")
            return
        if released:
            log.info("stopping: %d unfinished job(s) released to other workers", released)
