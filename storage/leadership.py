"""One active replica among several: a PostgreSQL session advisory lock held on a connection of
its own.

Telegram hands updates to one ``getUpdates`` caller at a time, so of several front ends polling
one bot exactly one may poll; the others wait as hot standbys. The lock is a *session* lock: it
lasts exactly as long as the holder's connection, so a replica that crashes, is killed or loses
the network lets it go without anyone cleaning up, and a standby retrying every ``retry_s``
takes over. A holder checks its connection (and that the lock is still granted) each period; if
that fails it has lost the lock, since the server dropped the session and may already have
granted it to another replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import psycopg

from storage.dbapi import Backend
from storage.postgres import PgConnections

log = logging.getLogger(__name__)

_TRY = "SELECT pg_try_advisory_lock(hashtext(%s))"
# The lock's connection holds this one advisory lock only.
_HELD = (
    "SELECT count(*) FROM pg_locks "
    "WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()"
)


class Leadership:
    """The lock ``name`` (scoped to the collection's schema). :meth:`acquire` waits until this
    replica holds it, :meth:`lost` returns once it no longer does, :meth:`release` lets it go."""

    @classmethod
    def of(cls, backend: Backend, name: str, *, retry_s: float) -> Leadership | None:
        """The lock of a shared (PostgreSQL) database; None for SQLite, one process's file."""
        return cls(backend, name, retry_s=retry_s) if isinstance(backend, PgConnections) else None

    def __init__(self, conns: PgConnections, name: str = "polling", *, retry_s: float) -> None:
        if retry_s <= 0:
            raise ValueError("retry_s must be > 0")
        self.key = conns.scoped(name)
        self.retry_s = retry_s
        self._conns = conns
        self._stack: contextlib.AsyncExitStack | None = None
        self._raw: psycopg.AsyncConnection[Any] | None = None

    @property
    def held(self) -> bool:
        return self._raw is not None

    @property
    def check_timeout_s(self) -> float:
        """How long one check may take before the connection counts as gone."""
        return max(2.0 * self.retry_s, 2.0)

    async def try_acquire(self) -> bool:
        """One attempt: True when this replica holds the lock now."""
        if self._raw is not None:
            return True
        stack = contextlib.AsyncExitStack()
        try:
            raw = await stack.enter_async_context(self._conns.dedicated())
            cur = await asyncio.wait_for(raw.execute(_TRY, (self.key,)), self.check_timeout_s)
            row = await cur.fetchone()
        except (psycopg.Error, OSError, TimeoutError) as exc:
            await stack.aclose()
            log.warning("cannot reach PostgreSQL for the lock %s: %s", self.key, exc)
            return False
        except BaseException:
            await stack.aclose()
            raise
        if not (row and row[0]):
            await stack.aclose()
            return False
        self._stack, self._raw = stack, raw
        return True

    async def acquire(
        self, stop: asyncio.Event | None = None, *, on_retry: Callable[[], object] | None = None
    ) -> bool:
        """Retry every ``retry_s`` until the lock is held (True) or ``stop`` is set (False).
        ``on_retry`` is called after each failed attempt (a standby's heartbeat)."""
        while not await self.try_acquire():
            if stop is not None and stop.is_set():
                return False
            if on_retry is not None:
                on_retry()
            if await _wait(stop, self.retry_s):
                return False
        return True

    async def still_held(self) -> bool:
        """A cheap query on the lock's connection: is it alive, and the lock granted to it?"""
        raw = self._raw
        if raw is None:
            return False
        try:
            cur = await asyncio.wait_for(raw.execute(_HELD), self.check_timeout_s)
            row = await cur.fetchone()
        except (psycopg.Error, OSError, TimeoutError):
            return False
        return bool(row and row[0])

    async def lost(self, stop: asyncio.Event | None = None) -> bool:
        """Check every ``retry_s``; returns True once the lock is lost (the connection is then
        closed), False when ``stop`` was set first."""
        while True:
            if await _wait(stop, self.retry_s):
                return False
            if not await self.still_held():
                log.warning("lost the lock %s (its connection failed)", self.key)
                await self.release()
                return True

    async def release(self) -> None:
        """Let the lock go: closing its session releases it on the server."""
        stack, self._stack, self._raw = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> Leadership:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()


async def _wait(stop: asyncio.Event | None, seconds: float) -> bool:
    """Sleep ``seconds``, or less when ``stop`` is set; True when it was."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
