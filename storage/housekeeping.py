"""Housekeeping: purge what would otherwise grow forever, on a schedule.

Finished ingest jobs (``done`` and ``failed``), the bot's result messages and its search
sessions are only useful for a while: a job's outcome is reported when it finishes, and a result
button older than its retention answers "expired" (the session is gone, as for an unknown id).
Each table is purged in chunks of at most ``chunk`` rows, one short write transaction per chunk,
so even a large backlog never holds the single writer long enough to delay storing an item. The
age indexes of ``migrations/0004_housekeeping_indexes.sql`` keep each chunk a range scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from storage.results import SESSION_TTL_S

if TYPE_CHECKING:
    from storage.db import Database
    from storage.records import JobState

log = logging.getLogger(__name__)

DAY_S = 24 * 3600

# Jobs in these states are purged (through JobQueue.purge); pending and running stay.
FINISHED: tuple[JobState, ...] = ("done", "failed")
# One statement per results table: delete up to ``?`` rows older than ``?``, oldest first.
_PURGE_RESULT_MESSAGES = """
DELETE FROM result_messages WHERE (owner_id, chat_id, message_id) IN (
    SELECT owner_id, chat_id, message_id FROM result_messages WHERE created_at < ?
    ORDER BY created_at LIMIT ?
)
"""
_PURGE_SEARCH_SESSIONS = """
DELETE FROM search_sessions WHERE id IN (
    SELECT id FROM search_sessions WHERE created_at < ? ORDER BY created_at LIMIT ?
)
"""


@dataclass(frozen=True, slots=True)
class Retention:
    """How long finished jobs, and result messages with their sessions, are kept (seconds)."""

    jobs_s: int
    results_s: int

    @classmethod
    def days(cls, jobs: int, results: int) -> Retention:
        return cls(jobs * DAY_S, results * DAY_S)

    @classmethod
    def for_jobs(cls, days: int) -> Retention:
        """Jobs as configured; results as long as their buttons work (one policy for both)."""
        return cls(days * DAY_S, SESSION_TTL_S)


@dataclass(frozen=True, slots=True)
class PurgeCounts:
    """Rows one housekeeping pass deleted, per table."""

    jobs: int = 0
    result_messages: int = 0
    search_sessions: int = 0


async def purge_in_chunks(delete: Callable[[int], Awaitable[int]], chunk: int) -> int:
    """Call ``delete(limit)`` (one write transaction each) until it deletes fewer than
    ``chunk`` rows; other writers get the lock between chunks. Returns the rows deleted."""
    if chunk < 1:
        raise ValueError("chunk must be >= 1")
    total = 0
    while True:
        deleted = await delete(chunk)
        total += deleted
        if deleted < chunk:
            return total
        await asyncio.sleep(0)  # let a queued writer (an item being stored) go first


async def purge_expired(db: Database, retention: Retention, *, chunk: int = 1000) -> PurgeCounts:
    """One housekeeping pass over every owner, with ages measured on the database's clock."""
    now = db.now()

    async def jobs(limit: int) -> int:
        return await db.queue.purge(older_than=now - retention.jobs_s, states=FINISHED, limit=limit)

    def rows(sql: str) -> Callable[[int], Awaitable[int]]:
        async def delete(limit: int) -> int:
            async with db.write() as conn:
                cur = await conn.execute(sql, (int(now - retention.results_s), limit))
            return max(cur.rowcount, 0)

        return delete

    return PurgeCounts(
        jobs=await purge_in_chunks(jobs, chunk),
        result_messages=await purge_in_chunks(rows(_PURGE_RESULT_MESSAGES), chunk),
        search_sessions=await purge_in_chunks(rows(_PURGE_SEARCH_SESSIONS), chunk),
    )


class Housekeeper:
    """Runs :func:`purge_expired` once at :meth:`start`, then every ``interval_s`` seconds, in
    one asyncio task that :meth:`stop` cancels (a chunk in progress rolls back). A failed pass is
    logged and retried at the next interval. ``sleep`` is injectable so tests need no waiting."""

    def __init__(
        self,
        db: Database,
        retention: Retention,
        *,
        interval_s: float,
        chunk: int = 1000,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if interval_s <= 0 or chunk < 1:
            raise ValueError("interval_s must be > 0 and chunk >= 1")
        self._db = db
        self.retention = retention
        self.interval_s = interval_s
        self.chunk = chunk
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self._passed = asyncio.Condition()
        self.passes = 0  # completed passes, failed ones included
        self.last: PurgeCounts | None = None  # what the last successful pass deleted

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the schedule (idempotent); the first pass runs right away, in the task."""
        if not self.running:
            self._task = asyncio.create_task(self._loop(), name="housekeeping")

    async def stop(self) -> None:
        """Cancel the schedule and wait for it to unwind; safe without :meth:`start`."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def wait_passes(self, n: int = 1) -> None:
        """Until at least ``n`` passes have completed since this object was built."""
        async with self._passed:
            await self._passed.wait_for(lambda: self.passes >= n)

    async def run_once(self) -> PurgeCounts | None:
        """One pass; errors are logged (the next interval tries again), never raised."""
        counts = None
        try:
            counts = await purge_expired(self._db, self.retention, chunk=self.chunk)
            self.last = counts
            if counts.jobs or counts.result_messages or counts.search_sessions:
                log.info(
                    "housekeeping purged %d job(s), %d result message(s), %d session(s)",
                    counts.jobs,
                    counts.result_messages,
                    counts.search_sessions,
                )
        except Exception:
            log.exception("housekeeping pass failed; retrying in %.0f s", self.interval_s)
        async with self._passed:
            self.passes += 1
            self._passed.notify_all()
        return counts

    async def _loop(self) -> None:
        while True:
            await self.run_once()
            await self._sleep(self.interval_s)
