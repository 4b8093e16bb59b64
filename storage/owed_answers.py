"""Answers front ends owe: who tells the sender about a job that workers elsewhere run.

A front end queues a job with its own name in ``jobs.front`` (INGEST_REMOTE on PostgreSQL) and
clears it once it has told the sender (:meth:`OwedAnswers.settle`). Each live front end holds a
session advisory lock named after itself on its notice connection
(:func:`storage.job_feed.finished_jobs`), so it lasts exactly as long as the process. A front
end that finds another's lock free knows that one is gone, and takes over what it owed
(:meth:`OwedAnswers.adopt`): the jobs still running, and the finished ones nobody was told of.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from storage.dbapi import Backend, Conn
from storage.postgres import PgConnections
from storage.records import Job
from storage.sql import JOB_SELECT, fetch_all, job_from_row

__all__ = ["OwedAnswers", "front_lock"]


def front_lock(conns: PgConnections, front: str) -> str:
    """The name whose ``hashtext`` is the advisory lock of front end ``front`` while it lives."""
    return conns.scoped(f"front:{front}")


class OwedAnswers:
    """The owed answers of a shared (PostgreSQL) database's front ends."""

    def __init__(self, conns: Backend) -> None:
        self._conns = conns

    async def settle(self, job_ids: Iterable[int], front: str) -> int:
        """``front`` told the senders of these jobs; returns how many it still owed."""
        ids = [int(i) for i in job_ids]
        if not ids:
            return 0
        async with self._conns.write() as conn:
            cur = await conn.execute(
                "UPDATE jobs SET front = NULL "
                "WHERE id IN (SELECT value FROM json_each(?)) AND front = ?",
                (json.dumps(ids), front),
            )
        return cur.rowcount

    async def adopt(self, front: str, *, embeds: bool = False) -> list[Job]:
        """Make ``front`` owe what front ends no longer alive owed; returns those jobs (any
        state). ``embeds``: ``front`` embeds them itself (else workers may claim them). Two
        front ends adopting at once never take the same job."""
        conns = self._conns
        if not isinstance(conns, PgConnections):
            return []  # one process: its pipeline answers its own jobs
        async with conns.read() as conn:  # every few seconds per front end: no write for none
            gone = await _gone(conns, conn, front)
        if not gone:
            return []
        async with conns.write() as conn:  # a front end taken meanwhile no longer matches
            rows = await fetch_all(
                conn,
                "UPDATE jobs SET front = ?, front_embeds = ? "
                "WHERE front IN (SELECT CAST(value AS TEXT) FROM json_each(?)) RETURNING id",
                (front, int(embeds), json.dumps(gone)),
            )
            taken = [r[0] for r in rows]
            jobs = await fetch_all(
                conn,
                f"{JOB_SELECT} WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id",
                (json.dumps(taken),),
            )
        return [job_from_row(r) for r in jobs]


async def _gone(conns: PgConnections, conn: Conn, front: str) -> list[str]:
    """The other front ends that owe answers and hold no lock: they are not running."""
    rows = await conn.execute_fetchall(
        "SELECT DISTINCT front FROM jobs WHERE front IS NOT NULL AND front <> ?", (front,)
    )
    gone: list[str] = []
    for (name,) in rows:
        key = front_lock(conns, str(name))
        free = await fetch_all(conn, "SELECT pg_try_advisory_lock(hashtext(?))", (key,))
        if free[0][0]:
            await conn.execute("SELECT pg_advisory_unlock(hashtext(?))", (key,))
            gone.append(str(name))
    return gone
