"""The ingest job queue across owners: claiming with leases (:mod:`storage.leases`), renewing
and releasing them, start-up recovery, purging, monitoring.

For the ingest workers and housekeeping only, never for answering a user; one owner's jobs are
``Database.owner(owner_id).jobs``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from storage.dbapi import Backend, Conn
from storage.leases import (
    DEFAULT_LEASE_S,
    lease_end,
    lock_in_order,
    notify_job,
    notify_queued,
    row_lock,
)
from storage.records import Job, JobState
from storage.sql import JOB_SELECT, fetch_all, job_from_row

# A claim looks at this many times ``limit`` candidates, so rows other claimers hold (skipped,
# not waited for) rarely leave it short.
CANDIDATES_PER_CLAIM = 4

# Claimable: pending, or running with a lease that ran out (its holder died or hung) and held
# by another worker (a claimer's own jobs are in its hands still; it renews them late).
_CLAIMABLE = (
    "(state = 'pending' OR (state = 'running' AND (lease_until IS NULL OR lease_until < ?)"
    " AND coalesce(worker, '') != ?))"
)


class JobQueue:
    """``max_attempts``: how many times a job may be claimed before an interrupted run makes it
    ``failed`` instead of ``pending`` again. ``worker``: the name claims are made under."""

    def __init__(self, conns: Backend, *, max_attempts: int, worker: str = "") -> None:
        self._conns = conns
        self.max_attempts = max_attempts
        self.worker = worker

    async def claim(
        self, limit: int, *, lease_s: float = DEFAULT_LEASE_S, front: str | None = None
    ) -> list[Job]:
        """Move up to ``limit`` claimable jobs to ``running``, held by this worker for
        ``lease_s`` seconds, and return them, oldest first but round-robin across owners, so one
        owner's thousand-photo backlog does not starve another owner's single photo. ``front``:
        only the jobs that front end owes answers for (one that embeds what it queues) and
        those nobody owes (queued before front ends were named); without it (a worker), none a
        front end embeds itself.

        Claimable are ``pending`` jobs and ``running`` ones whose lease ran out; each claim
        counts as an attempt, and an expired job already claimed ``max_attempts`` times (one
        that keeps killing its workers) becomes ``failed`` instead. Concurrent claimers, in any
        process, never get the same job."""
        if limit < 1:
            return []
        now = self._conns.now()
        async with self._conns.write() as conn:
            await self._give_up_expired(conn, now)
            ids = await self._lock_candidates(conn, limit, now, front)
            if not ids:
                return []
            await conn.execute(
                """
                UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_at = ?,
                                lease_until = ?, worker = ?
                WHERE id IN (SELECT value FROM json_each(?))
                """,
                (now, lease_end(now, lease_s), self.worker, json.dumps(ids)),
            )
            rows = await conn.execute_fetchall(
                f"{JOB_SELECT} WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(ids),)
            )
        by_id = {r[0]: job_from_row(r) for r in rows}
        return [by_id[i] for i in ids]

    async def _lock_candidates(
        self, conn: Conn, limit: int, now: int, front: str | None
    ) -> list[int]:
        """Up to ``limit`` claimable ids in round-robin order, row-locked on PostgreSQL (rows
        another claimer holds are skipped, and the claim condition is checked again on the
        locked row, so a job claimed meanwhile is not taken twice)."""
        claimable, params = f"{_CLAIMABLE} AND front_embeds = 0", [now, self.worker]
        if front is not None:
            claimable = f"{_CLAIMABLE} AND (front = ? OR front IS NULL)"
            params = [now, self.worker, front]
        rows = await conn.execute_fetchall(
            f"""
            SELECT id FROM (
                SELECT id, row_number() OVER (PARTITION BY owner_id ORDER BY id) AS turn
                FROM jobs WHERE {claimable}
            ) AS candidates
            ORDER BY turn, id
            LIMIT ?
            """,
            (*params, limit * CANDIDATES_PER_CLAIM),
        )
        order = [r[0] for r in rows]
        if not order:
            return []
        return await lock_in_order(
            conn,
            "jobs",
            order,
            f"{claimable} AND (state = 'pending' OR attempts < ?)",
            (*params, self.max_attempts),
            limit,
        )

    async def _give_up_expired(self, conn: Conn, now: int) -> None:
        """Expired jobs claimed ``max_attempts`` times already become ``failed``."""
        rows = await conn.execute_fetchall(
            """
            UPDATE jobs
            SET state = 'failed', updated_at = ?, lease_until = NULL,
                last_error = 'interrupted ' || attempts || ' time(s); giving up'
            WHERE id IN (
                SELECT id FROM jobs
                WHERE state = 'running' AND (lease_until IS NULL OR lease_until < ?)
                  AND attempts >= ? AND coalesce(worker, '') != ?
            """
            + row_lock(conn)
            + """
            )
            RETURNING id
            """,
            (now, now, self.max_attempts, self.worker),
        )
        for (job_id,) in rows:
            await notify_job(conn, job_id)

    async def renew(
        self,
        ids: Iterable[int] | None,
        worker: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> list[int]:
        """Extend the leases of those of ``ids`` (None: of every job) still held by ``worker``
        (default: this queue's) to ``lease_s`` from now; returns the ids renewed (a job missing
        from it was finished, or lost to another claimer after our lease ran out)."""
        scope, params = _held(ids, worker or self.worker)
        if not params:
            return []
        now = self._conns.now()
        async with self._conns.write() as conn:
            rows = await conn.execute_fetchall(
                f"UPDATE jobs SET lease_until = ? WHERE {scope} RETURNING id",
                (lease_end(now, lease_s), *params),
            )
        return sorted(r[0] for r in rows)

    async def release(self, ids: Iterable[int] | None, worker: str | None = None) -> int:
        """Jobs among ``ids`` (None: every job) still held by ``worker`` (default: this
        queue's) go back to ``pending`` at once, for another worker to claim without waiting
        for the lease (a worker stopping with jobs it cannot finish). Returns how many."""
        scope, params = _held(ids, worker or self.worker)
        if not params:
            return 0
        async with self._conns.write() as conn:
            cur = await conn.execute(
                "UPDATE jobs SET state = 'pending', lease_until = NULL, updated_at = ? "
                f"WHERE {scope}",
                (self._conns.now(), *params),
            )
            if cur.rowcount > 0:
                await notify_queued(conn, 0)
        return max(cur.rowcount, 0)

    async def requeue_running(self) -> tuple[int, int]:
        """Start-up recovery of one process that owns its database (SQLite): jobs left
        ``running`` by a stopped process go back to ``pending``, except those already claimed
        ``max_attempts`` times (a job that keeps killing the process), which become
        ``failed``. Returns ``(requeued, failed)``. Call once, before any worker starts; never
        on a shared database, where other workers' jobs run (their leases say when they died).
        """
        now = self._conns.now()
        async with self._conns.write() as conn:
            cur = await conn.execute(
                """
                UPDATE jobs
                SET state = 'failed', updated_at = ?, lease_until = NULL,
                    last_error = 'interrupted ' || attempts || ' time(s); giving up'
                WHERE state = 'running' AND attempts >= ?
                """,
                (now, self.max_attempts),
            )
            failed = cur.rowcount
            cur = await conn.execute(
                "UPDATE jobs SET state = 'pending', updated_at = ?, lease_until = NULL "
                "WHERE state = 'running'",
                (now,),
            )
            requeued = cur.rowcount
        return requeued, failed

    async def by_ids(self, ids: Iterable[int]) -> dict[int, Job]:
        """Jobs by id across owners (a front end waiting for jobs other workers run); ids of
        jobs that are gone are absent."""
        async with self._conns.read() as conn:
            rows = await conn.execute_fetchall(
                f"{JOB_SELECT} WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted({int(i) for i in ids})),),
            )
        return {r[0]: job_from_row(r) for r in rows}

    async def counts(self) -> dict[str, int]:
        """Jobs per state across all owners (monitoring)."""
        async with self._conns.read() as conn:
            rows = await fetch_all(conn, "SELECT state, count(*) FROM jobs GROUP BY state")
        return dict(rows)

    async def purge(
        self,
        *,
        older_than: float,
        states: tuple[JobState, ...] = ("done",),
        limit: int = -1,
    ) -> int:
        """Delete jobs in ``states`` last updated before unix time ``older_than``, oldest first,
        at most ``limit`` of them (-1: all); returns how many. By default failed jobs stay so
        their errors can still be shown; housekeeping passes both finished states."""
        if not set(states) <= {"done", "failed"}:
            raise ValueError(f"only finished jobs can be purged, not {states}")
        # Literal states (checked above), so the partial age index of both finished states
        # (migration 0004) can serve the housekeeping purge; bound parameters would hide that.
        listed = ", ".join(f"'{s}'" for s in sorted(set(states)))
        async with self._conns.write() as conn:
            cur = await conn.execute(
                f"""
                DELETE FROM jobs WHERE id IN (
                    SELECT id FROM jobs WHERE state IN ({listed}) AND updated_at < ?
                    ORDER BY updated_at LIMIT ?
                )
                """,
                (int(older_than), int(limit) if limit >= 0 else 2**62),
            )
        return max(cur.rowcount, 0)


def _held(ids: Iterable[int] | None, worker: str) -> tuple[str, tuple[str, ...]]:
    """The condition (and parameters) of the running jobs among ``ids`` (None: all) that
    ``worker`` holds; no parameters when ``ids`` is empty (nothing to do)."""
    if ids is None:
        return "state = 'running' AND worker = ?", (worker,)
    wanted = json.dumps(sorted({int(i) for i in ids}))
    if wanted == "[]":
        return "", ()
    return (
        "id IN (SELECT value FROM json_each(?)) AND state = 'running' AND worker = ?",
        (wanted, worker),
    )
