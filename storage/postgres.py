"""Connections to a PostgreSQL collection database (psycopg 3 and its pool).

The same contract as the SQLite :class:`~storage.connection.Connections`: ``write()`` is one
transaction, and within a process writes queue on a lock (the repositories were written for
one writer, and a worker's batch commit stays one transaction); ``read()`` takes a pooled
connection. Across processes PostgreSQL's row locks do the rest: queues claim with
``FOR UPDATE SKIP LOCKED``, upserts are atomic.

Everything is scoped to the schema the URL's ``search_path`` names (``public`` by default), and
so are notification channels and advisory locks: several collections, or several test runs,
can share one server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg_pool import AsyncConnectionPool

from storage.dbapi import Dialect, Row
from storage.dialect import to_postgres
from storage.errors import StorageError
from storage.migrations import MIGRATIONS_DIR
from storage.pg_migrations import migrate_postgres

SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(target: object) -> bool:
    """Whether a DATABASE_URL (or a path) names a PostgreSQL server."""
    return isinstance(target, str) and target.startswith(SCHEMES)


def _param(value: Any) -> Any:
    """Values as PostgreSQL's columns expect them: integers for bools and numpy scalars (SQLite
    takes both), and no NUL in text (PostgreSQL refuses it; SQLite stores it), so a caption
    with one is kept, with U+FFFD in its place, instead of failing the whole item."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _params(params: Sequence[Any]) -> list[Any]:
    return [_param(v) for v in params]


class PgCursor:
    """A finished statement's rows (fetched eagerly: the cursor is reused by the next one)."""

    def __init__(self, rows: list[Row], rowcount: int) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount

    async def fetchone(self) -> Row | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    async def fetchall(self) -> list[Row]:
        rows, self._rows = self._rows[self._next :], []
        return rows


class PgConn:
    """A psycopg connection speaking the repositories' SQLite-style SQL."""

    dialect: Dialect = "postgresql"

    def __init__(self, conn: psycopg.AsyncConnection[Any], schema: str) -> None:
        self.raw = conn
        self.schema = schema

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> PgCursor:
        # Binary results: vectors (bytea) arrive as bytes, not as hex text to decode.
        async with self.raw.cursor(binary=True) as cur:
            await cur.execute(to_postgres(sql), _params(params))
            rows = [tuple(r) for r in await cur.fetchall()] if cur.description else []
            return PgCursor(rows, cur.rowcount)

    async def execute_fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await (await self.execute(sql, params)).fetchall()

    async def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> None:
        rows = [_params(p) for p in seq]
        if rows:
            async with self.raw.cursor() as cur:
                await cur.executemany(to_postgres(sql), rows)


class PgConnections:
    """Open with ``await PgConnections.open(url)``: migrations run (under an advisory lock, so
    processes starting together apply each file once) before the pools serve anyone.

    As on SQLite, one connection writes (writes queue on a lock anyway) and a pool of others
    reads; the readers' sessions are read-only, so a statement that writes through ``read()``
    fails instead of committing outside any write transaction. Both pools check a connection
    before handing it out: one the server dropped (a restart, ``pg_terminate_backend``) is
    replaced instead of failing the next caller."""

    dialect: Dialect = "postgresql"
    path: Path | None = None

    def __init__(
        self,
        url: str,
        writer: AsyncConnectionPool,
        readers: AsyncConnectionPool,
        schema: str,
        *,
        clock: Callable[[], float],
    ) -> None:
        self.url = url
        self.schema = schema
        self._writer = writer
        self._readers = readers
        self._write_lock = asyncio.Lock()
        self._clock = clock
        self._closed = False

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        migrations_dir: Path = MIGRATIONS_DIR,
        readers: int = 2,
        clock: Callable[[], float] = time.time,
        connect_timeout_s: float = 10.0,
    ) -> PgConnections:
        if readers < 1:
            raise ValueError("readers must be >= 1")
        try:
            first = await psycopg.AsyncConnection.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise StorageError(f"cannot connect to PostgreSQL: {_short(exc)}") from exc
        try:
            cur = await first.execute("SELECT current_schema()")
            schema = (await cur.fetchall())[0][0]
            if schema is None:
                raise StorageError("the search_path of the DATABASE_URL names no existing schema")
            await migrate_postgres(first, migrations_dir / "postgresql", clock=clock)
        finally:
            await first.close()
        writer = _pool(url, 1, connect_timeout_s)
        reader_pool = _pool(url, readers, connect_timeout_s, configure=_read_only)
        try:
            for pool in (writer, reader_pool):
                await pool.open(wait=True, timeout=connect_timeout_s)
        except BaseException:
            for pool in (writer, reader_pool):
                await pool.close()
            raise
        return cls(url, writer, reader_pool, str(schema), clock=clock)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._write_lock:
            await self._readers.close()
            await self._writer.close()

    def now(self) -> int:
        return int(self._clock())

    def scoped(self, name: str) -> str:
        """A channel or lock name private to this schema."""
        return f"{self.schema}.{name}"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[PgConn]:
        """One write transaction; rolled back on any error or cancellation."""
        async with self._write_lock, self._writer.connection() as raw, raw.transaction():
            yield PgConn(raw, self.schema)

    @asynccontextmanager
    async def read(self, *, snapshot: bool = False) -> AsyncIterator[PgConn]:
        """A pooled connection; ``snapshot=True`` reads one consistent state (repeatable read)."""
        async with self._readers.connection() as raw:
            if not snapshot:
                yield PgConn(raw, self.schema)
                return
            await raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield PgConn(raw, self.schema)
            finally:
                with suppress(psycopg.Error):
                    await asyncio.shield(raw.execute("ROLLBACK"))

    @asynccontextmanager
    async def dedicated(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection of its own, outside the pool (LISTEN, a held advisory lock)."""
        raw = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        try:
            yield raw
        finally:
            with suppress(psycopg.Error):
                await raw.close()


def _pool(
    url: str,
    size: int,
    timeout_s: float,
    *,
    configure: Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]] | None = None,
) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        url,
        min_size=size,
        max_size=size,
        kwargs={"autocommit": True},
        configure=configure,
        check=AsyncConnectionPool.check_connection,
        open=False,
        timeout=timeout_s,
    )


async def _read_only(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute("SET default_transaction_read_only = on")


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
