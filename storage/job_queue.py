"""The ingest job queue across owners: claiming, start-up recovery, purging, monitoring.

For the ingest workers and housekeeping only, never for answering a user; one owner's jobs are
``Database.owner(owner_id).jobs``.
"""

from __future__ import annotations

import json

from storage.dbapi import Backend
from storage.records import Job, JobState
from storage.sql import JOB_SELECT, fetch_all, job_from_row


class JobQueue:
    """``max_attempts``: how many times a job may be claimed before an interrupted run makes it
    ``failed`` instead of ``pending`` again."""

    def __init__(self, conns: Backend, *, max_attempts: int) -> None:
        self._conns = conns
        self.max_attempts = max_attempts

    async def claim(self, limit: int) -> list[Job]:
        """Move up to ``limit`` pending jobs to ``running`` and return them, oldest first but
        round-robin across owners, so one owner's thousand-photo backlog does not starve another
        owner's single photo. Each claim counts as an attempt."""
        if limit < 1:
            return []
        now = self._conns.now()
        async with self._conns.write() as conn:
            rows = await conn.execute_fetchall(
                """
                SELECT id
                FROM (
                    SELECT id, row_number() OVER (PARTITION BY owner_id ORDER BY id) AS turn
                    FROM jobs
                    WHERE state = 'pending'
                )
                ORDER BY turn, id
                LIMIT ?
                """,
                (limit,),
            )
            ids = [r[0] for r in rows]
            if not ids:
                return []
            await conn.execute(
                """
                UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_at = ?
                WHERE id IN (SELECT value FROM json_each(?))
                """,
                (now, json.dumps(ids)),
            )
            rows = await conn.execute_fetchall(
                f"{JOB_SELECT} WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(ids),)
            )
        by_id = {r[0]: job_from_row(r) for r in rows}
        return [by_id[i] for i in ids]

    async def requeue_running(self) -> tuple[int, int]:
        """Start-up recovery: jobs left ``running`` by a stopped process go back to ``pending``,
        except those already claimed ``max_attempts`` times (a job that keeps killing the
        process), which become ``failed``. Returns ``(requeued, failed)``. Call once, before any
        worker starts."""
        now = self._conns.now()
        async with self._conns.write() as conn:
            cur = await conn.execute(
                """
                UPDATE jobs
                SET state = 'failed', updated_at = ?,
                    last_error = 'interrupted ' || attempts || ' time(s); giving up'
                WHERE state = 'running' AND attempts >= ?
                """,
                (now, self.max_attempts),
            )
            failed = cur.rowcount
            cur = await conn.execute(
                "UPDATE jobs SET state = 'pending', updated_at = ? WHERE state = 'running'", (now,)
            )
            requeued = cur.rowcount
        return requeued, failed

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
                (int(older_than), int(limit)),
            )
        return max(cur.rowcount, 0)
