"""One owner's ingest jobs: enqueue, look up, finish, fail.

Claiming jobs spans owners and lives in :class:`~storage.job_queue.JobQueue`; everything here
is scoped by the owner id, so a job id of another owner matches nothing.

Finishing a job (done, failed, back to pending) only succeeds while ``worker`` holds it: a
worker whose lease ran out and whose job was claimed again must not overwrite the new holder's
work. A finished job carries ``outcome`` (JSON): what a front end on another machine needs to
answer the sender besides the columns (``unit_ids``, ``timestamps``, ``near_duplicate_of`` as
``[media_id, score]``, ``thumbnail_only``; ``reason`` and ``message`` of a failure).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, cast

from storage.dbapi import Backend, Conn
from storage.errors import JobStateError
from storage.leases import notify_job, notify_queued, row_lock
from storage.records import JOB_STATES, Job, JobState
from storage.sql import JOB_SELECT, fetch_all, job_from_row, require_owner, scalar


class OwnerJobs:
    """The ingest jobs of one owner. ``max_attempts``: how many claims a job may have before a
    retryable failure makes it ``failed`` instead of ``pending`` again."""

    def __init__(
        self, conns: Backend, owner_id: int, *, max_attempts: int, worker: str | None = None
    ) -> None:
        self._conns = conns
        self.owner_id = int(owner_id)
        self.max_attempts = max_attempts
        self.worker = worker  # the claimer finishing jobs here (None: any holder)

    async def enqueue(self, payload: Mapping[str, Any]) -> int:
        """Persist one unit of ingest work (``pending``); returns the job id. The payload is any
        JSON object: file_id, file_unique_id, kind, caption, forward origin, message date,
        album id, or a local path with its mtime and size."""
        return (await self.enqueue_many([payload]))[0]

    async def enqueue_many(
        self,
        payloads: Iterable[Mapping[str, Any]],
        *,
        front: str | None = None,
        embeds: bool = False,
    ) -> list[int]:
        """Several jobs in one transaction (an album, a folder scan). ``front``: the front end
        that owes the senders their answers (on a shared database); ``embeds``: and it embeds
        them itself, so workers leave them alone."""
        encoded = [json.dumps(dict(p), ensure_ascii=False) for p in payloads]
        now = self._conns.now()
        ids: list[int] = []
        async with self._conns.write() as conn:
            await require_owner(conn, self.owner_id)
            for payload in encoded:
                job_id = await scalar(
                    conn,
                    "INSERT INTO jobs (owner_id, payload, created_at, updated_at, front, "
                    "front_embeds) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    self.owner_id,
                    payload,
                    now,
                    now,
                    front,
                    int(embeds and front is not None),
                )
                ids.append(job_id)
            if ids:
                await notify_queued(conn, ids[0])
        return ids

    async def get(self, job_id: int) -> Job | None:
        async with self._conns.read() as conn:
            rows = await fetch_all(
                conn, f"{JOB_SELECT} WHERE owner_id = ? AND id = ?", (self.owner_id, job_id)
            )
        return job_from_row(rows[0]) if rows else None

    async def all(self, *, states: Iterable[JobState] | None = None, limit: int = 100) -> list[Job]:
        """The owner's jobs, oldest first, optionally only in some states."""
        wanted = list(states) if states is not None else list(JOB_STATES)
        async with self._conns.read() as conn:
            rows = await conn.execute_fetchall(
                f"{JOB_SELECT} WHERE owner_id = ? "
                "AND state IN (SELECT CAST(value AS TEXT) FROM json_each(?)) ORDER BY id LIMIT ?",
                (self.owner_id, json.dumps(wanted), limit),
            )
        return [job_from_row(r) for r in rows]

    async def counts(self) -> dict[str, int]:
        """Jobs per state."""
        async with self._conns.read() as conn:
            return await job_counts(conn, self.owner_id)

    async def finish(
        self,
        job_id: int,
        *,
        media_id: int | None = None,
        duplicate: bool = False,
        outcome: Mapping[str, Any] | None = None,
    ) -> None:
        """Mark a running job ``done`` without committing an item, e.g. when
        ``OwnerMedia.find`` showed a duplicate before any download."""
        async with self._conns.write() as conn:
            await require_running(conn, self.owner_id, job_id, self.worker)
            await mark_done(
                conn,
                self.owner_id,
                job_id,
                media_id,
                duplicate=duplicate,
                now=self._conns.now(),
                outcome=outcome,
            )

    async def fail(
        self,
        job_id: int,
        error: str,
        *,
        retry: bool = False,
        outcome: Mapping[str, Any] | None = None,
    ) -> JobState:
        """Record a failure of a running job. With ``retry`` it goes back to ``pending`` while
        it has been claimed fewer than ``max_attempts`` times; otherwise it is ``failed`` (with
        ``outcome``, and listening front ends are told). Returns the new state."""
        async with self._conns.write() as conn:
            await require_running(conn, self.owner_id, job_id, self.worker)
            rows = await fetch_all(
                conn,
                f"""
                UPDATE jobs
                SET state = CASE WHEN ? = 1 AND attempts < ? THEN 'pending' ELSE 'failed' END,
                    front = CASE WHEN ? = 1 AND attempts < ? THEN front ELSE {_ANSWERED} END,
                    last_error = ?, updated_at = ?, lease_until = NULL, outcome = ?
                WHERE owner_id = ? AND id = ?
                RETURNING state
                """,
                (
                    int(retry), self.max_attempts, int(retry), self.max_attempts, error,
                    self._conns.now(), _encode(outcome), self.owner_id, job_id,
                ),
            )  # fmt: skip
            state = cast(JobState, rows[0][0])  # the CASE above yields only pending or failed
            if state == "failed":
                await notify_job(conn, job_id)
        return state


async def job_counts(conn: Conn, owner_id: int) -> dict[str, int]:
    """The owner's jobs per state, inside the caller's connection."""
    rows = await fetch_all(
        conn, "SELECT state, count(*) FROM jobs WHERE owner_id = ? GROUP BY state", (owner_id,)
    )
    return dict(rows)


async def require_running(
    conn: Conn, owner_id: int, job_id: int, worker: str | None = None
) -> None:
    """Refuse to touch a job that is gone (cancelled with its owner's data), not running, or
    (with ``worker``) held by another worker since our lease ran out. On PostgreSQL the row
    stays locked to the end of the caller's transaction, so no claim can take it meanwhile."""
    rows = await fetch_all(
        conn,
        "SELECT state, worker FROM jobs WHERE owner_id = ? AND id = ?"
        + row_lock(conn, skip_locked=False),
        (owner_id, job_id),
    )
    if not rows:
        raise JobStateError(f"job {job_id} of owner {owner_id} no longer exists")
    if rows[0][0] != "running":
        raise JobStateError(f"job {job_id} is {rows[0][0]}, not running")
    if worker is not None and rows[0][1] != worker:
        raise JobStateError(f"job {job_id} is held by {rows[0][1]}, not by {worker}")


async def mark_done(
    conn: Conn,
    owner_id: int,
    job_id: int,
    media_id: int | None,
    *,
    duplicate: bool,
    now: int,
    outcome: Mapping[str, Any] | None = None,
) -> None:
    """Mark the job ``done`` with its outcome, inside the caller's write transaction (the one
    that stored the item, so "saved" and "done" can never disagree); listening front ends are
    told when it commits."""
    await conn.execute(
        f"""
        UPDATE jobs SET state = 'done', media_id = ?, duplicate = ?, last_error = NULL,
                        updated_at = ?, lease_until = NULL, outcome = ?, front = {_ANSWERED}
        WHERE owner_id = ? AND id = ?
        """,
        (media_id, int(duplicate), now, _encode(outcome), owner_id, job_id),
    )
    await notify_job(conn, job_id)


# A front end that embeds what it queues answers as it finishes: it owes nothing afterwards. A
# worker finishing another front end's job leaves the debt to that front end.
_ANSWERED = "CASE WHEN front = worker THEN NULL ELSE front END"


def _encode(outcome: Mapping[str, Any] | None) -> str | None:
    return None if outcome is None else json.dumps(dict(outcome), ensure_ascii=False)
