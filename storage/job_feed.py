"""Notices between the processes sharing a PostgreSQL database: LISTEN on a connection of its
own.

- :func:`finished_jobs`, for a front end whose jobs inference workers run: a worker's commit
  notifies ``<schema>.jobs`` with the job id (:func:`storage.leases.notify_job`).
- :func:`queued_jobs`, for idle workers: an enqueue or a released claim notifies
  ``<schema>.queued`` (:func:`storage.leases.notify_queued`).

Notifications are not durable, so both also yield ``None`` ("look at everything") after each
(re)connect and after every quiet spell: a lost notice delays work, never loses it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator

import psycopg
from psycopg import sql

from storage.dbapi import Backend
from storage.leases import JOBS_CHANNEL, QUEUED_CHANNEL
from storage.owed_answers import front_lock
from storage.postgres import PgConnections

log = logging.getLogger(__name__)

__all__ = ["finished_jobs", "queued_jobs"]

RECONNECT_S = 1.0  # first pause before listening again after a lost connection
MAX_PAUSE_S = 30.0


def finished_jobs(
    conns: Backend,
    *,
    quiet_s: float,
    alive_as: str | None = None,
    reconnect_s: float = RECONNECT_S,
) -> AsyncGenerator[list[int] | None, None]:
    """Ids of finished jobs as workers commit them, or None for "re-read them all"; the first
    None arrives once the LISTEN is in place. ``alive_as``: the front end's name, whose lock
    the connection holds (:mod:`storage.owed_answers`). Reconnects forever, the pause doubling."""
    return _notices(conns, JOBS_CHANNEL, quiet_s, alive_as, reconnect_s)


def queued_jobs(
    conns: Backend,
    *,
    quiet_s: float,
    alive_as: str | None = None,
    reconnect_s: float = RECONNECT_S,
) -> AsyncGenerator[list[int] | None, None]:
    """For idle workers: something became claimable ([a job id]; 0 for "some"), or None after
    a (re)connect and a quiet spell, when claimable work may have been missed. ``alive_as`` as
    for :func:`finished_jobs`."""
    return _notices(conns, QUEUED_CHANNEL, quiet_s, alive_as, reconnect_s)


async def _notices(
    conns: Backend, channel: str, quiet_s: float, alive_as: str | None, reconnect_s: float
) -> AsyncGenerator[list[int] | None, None]:
    if not isinstance(conns, PgConnections):
        raise ValueError("job notices need a shared (PostgreSQL) database")
    listen = sql.SQL("LISTEN {}").format(sql.Identifier(conns.scoped(channel)))
    pause = reconnect_s
    while True:
        try:
            async with conns.dedicated() as raw:
                if alive_as is not None:
                    lock = front_lock(conns, alive_as)
                    await raw.execute("SELECT pg_advisory_lock(hashtext(%s))", (lock,))
                await raw.execute(listen)
                pause = reconnect_s
                while True:
                    yield None
                    async for note in raw.notifies(timeout=quiet_s):
                        if note.payload.isdigit():
                            yield [int(note.payload)]
        except (psycopg.Error, OSError) as exc:
            log.warning("job notifications lost (%s); listening again in %.0f s", exc, pause)
        await asyncio.sleep(pause)
        pause = min(pause * 2, MAX_PAUSE_S)
