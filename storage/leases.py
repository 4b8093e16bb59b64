"""Claims as leases, shared by the ingest job queue and the OCR work list.

A claimed row is held by one worker (``Database.worker``) until its lease ends; the holder
renews it while it works. A row whose lease ran out is claimable again: the worker that held it
died or hung, and nobody else may wait for it. On PostgreSQL the candidates of a claim are
locked ``FOR UPDATE SKIP LOCKED``, so concurrent claimers on any machine never take the same
row; SQLite has one writer at a time and needs no row locks.
"""

from __future__ import annotations

import itertools
import math
import os
import secrets
import socket
from collections.abc import Sequence
from typing import Any

from storage.dbapi import Conn

__all__ = [
    "DEFAULT_LEASE_S",
    "default_worker",
    "lease_end",
    "lock_in_order",
    "notify_job",
    "notify_queued",
    "row_lock",
]

DEFAULT_LEASE_S = 60.0
JOBS_CHANNEL = "jobs"
QUEUED_CHANNEL = "queued"
_opened = itertools.count()


def default_worker() -> str:
    """``hostname:pid:random`` for a process's first database, ``.../n`` for further ones (two
    databases opened in one process are two claimers). The random part keeps a container
    restarted in place (same hostname, pid 1) from taking its dead predecessor's name, whose
    expired claims it would never take back and whose owed answers it would never see."""
    n = next(_opened)
    base = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    return base if n == 0 else f"{base}/{n}"


def lease_end(now: int, lease_s: float) -> int:
    """The unix second a lease taken at ``now`` lasts until (at least one second)."""
    return now + max(1, math.ceil(lease_s))


def row_lock(conn: Conn, *, skip_locked: bool = True) -> str:
    """The row-lock clause a claim's SELECT ends with: none on SQLite."""
    if conn.dialect != "postgresql":
        return ""
    return " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"


async def lock_in_order(
    conn: Conn,
    table: str,
    order: list[int],
    condition: str,
    params: Sequence[Any],
    limit: int,
) -> list[int]:
    """The first ``limit`` of the candidate ids ``order`` (round-robin order) whose row still
    meets ``condition``, locked for the caller's transaction on PostgreSQL: rows another
    claimer holds are skipped rather than waited for, and only the rows returned are locked
    (a claim must not hold candidates it does not take). On SQLite, whose write transaction
    excludes every other writer, the candidates are the answer."""
    if conn.dialect != "postgresql":
        return order[:limit]
    rows = await conn.execute_fetchall(
        f"""
        SELECT id FROM {table}
        WHERE id = ANY(CAST(? AS bigint[])) AND {condition}
        ORDER BY array_position(CAST(? AS bigint[]), id)
        LIMIT ?
        FOR UPDATE SKIP LOCKED
        """,
        (order, *params, order, limit),
    )
    return [r[0] for r in rows]


async def notify_job(conn: Conn, job_id: int) -> None:
    """Tell front ends listening on PostgreSQL (channel ``<schema>.jobs``, payload the job id)
    that a job finished. A no-op on SQLite, where the front end is the process that did it."""
    await _notify(conn, JOBS_CHANNEL, job_id)


async def notify_queued(conn: Conn, job_id: int) -> None:
    """Wake idle workers on PostgreSQL (channel ``<schema>.queued``): a job became claimable
    (payload: one of their ids). A no-op on SQLite, whose pipeline is woken in process."""
    await _notify(conn, QUEUED_CHANNEL, job_id)


async def _notify(conn: Conn, channel: str, job_id: int) -> None:
    """Sent when the caller's transaction commits, not before."""
    if conn.dialect == "postgresql":
        await conn.execute(
            f"SELECT pg_notify(current_schema() || '.{channel}', ?)", (str(int(job_id)),)
        )
