"""Finished-job notices for a front end whose jobs inference workers run (PostgreSQL).

A worker's commit notifies ``<schema>.jobs`` with the job id (:func:`storage.leases.notify_job`);
:func:`finished_jobs` LISTENs on a connection of its own and yields those ids. Notifications are
not durable, so it also yields ``None`` ("check every job you wait for") after each (re)connect
and after every quiet spell: a lost notice delays an answer, never loses it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator

import psycopg
from psycopg import sql

from storage.dbapi import Backend
from storage.leases import JOBS_CHANNEL
from storage.postgres import PgConnections

log = logging.getLogger(__name__)

__all__ = ["finished_jobs"]

RECONNECT_S = 1.0  # first pause before listening again after a lost connection
MAX_PAUSE_S = 30.0


async def finished_jobs(
    conns: Backend, *, quiet_s: float, reconnect_s: float = RECONNECT_S
) -> AsyncGenerator[list[int] | None, None]:
    """Ids of finished jobs as workers commit them, or None for "re-read them all"; the first
    None arrives once the LISTEN is in place. Reconnects forever, the pause doubling."""
    if not isinstance(conns, PgConnections):
        raise ValueError("job notices need a shared (PostgreSQL) database")
    listen = sql.SQL("LISTEN {}").format(sql.Identifier(conns.scoped(JOBS_CHANNEL)))
    pause = reconnect_s
    while True:
        try:
            async with conns.dedicated() as raw:
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
