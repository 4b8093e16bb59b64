"""Connections to the collection database: one serialised writer, a pool of WAL readers.

One writer connection, serialised by an asyncio lock, so a multi-statement transaction never
interleaves with another; WAL lets a small pool of read-only connections answer searches while a
write is in progress. Every repository of storage runs its SQL through :meth:`Connections.read`
and :meth:`Connections.write`; nothing here knows about tables.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiosqlite

from storage.dbapi import Dialect, Row
from storage.errors import StorageError
from storage.migrations import MIGRATIONS_DIR, migrate

DB_FILENAME = "image-finder.db"
# RETURNING and UPSERT ... DO NOTHING RETURNING need 3.35 (March 2021).
MIN_SQLITE = (3, 35, 0)
PAGE_SIZE = 16384


def default_database_path(data_dir: Path) -> Path:
    """Where the bot and the CLI keep the database inside ``DATA_DIR``."""
    return data_dir / DB_FILENAME


class SqliteCursor:
    """aiosqlite's cursor with rows as tuples (no row factory is set)."""

    def __init__(self, cur: aiosqlite.Cursor) -> None:
        self._cur = cur

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    async def fetchone(self) -> Row | None:
        row = await self._cur.fetchone()
        return None if row is None else tuple(row)

    async def fetchall(self) -> list[Row]:
        return [tuple(row) for row in await self._cur.fetchall()]


class SqliteConn:
    """An aiosqlite connection behind the repositories' connection interface
    (:class:`storage.dbapi.Conn`), the same one PostgreSQL's connections offer."""

    dialect: Dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.raw = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> SqliteCursor:
        return SqliteCursor(await self.raw.execute(sql, params))

    async def execute_fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        # No row factory is set, so rows are tuples (aiosqlite annotates them as sqlite3.Row).
        return [tuple(row) for row in await self.raw.execute_fetchall(sql, params)]

    async def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> None:
        await self.raw.executemany(sql, seq)

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction


class Connections:
    """Open with ``await Connections.open(path)``: the file is created if needed and pending
    migrations are applied before any reader opens."""

    dialect: Dialect = "sqlite"

    def __init__(
        self,
        path: Path,
        writer: aiosqlite.Connection,
        readers: list[aiosqlite.Connection],
        *,
        clock: Callable[[], float],
    ) -> None:
        self.path = path
        self._writer = writer
        self._readers = readers
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        for conn in readers:
            self._idle.put_nowait(conn)
        self._write_lock = asyncio.Lock()
        self._clock = clock
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        migrations_dir: Path = MIGRATIONS_DIR,
        readers: int = 2,
        busy_timeout_ms: int = 5000,
        clock: Callable[[], float] = time.time,
    ) -> Connections:
        """Open (creating if needed) the database file and apply pending migrations."""
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StorageError(
                f"SQLite {sqlite3.sqlite_version} is too old; "
                f"{'.'.join(map(str, MIN_SQLITE))} or newer is needed"
            )
        path = Path(path)
        if str(path) == ":memory:":
            raise ValueError("a file path is needed: readers and the writer share it through WAL")
        if readers < 1:
            raise ValueError("readers must be >= 1")
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await _connect(path, busy_timeout_ms, read_only=False)
        opened: list[aiosqlite.Connection] = [writer]
        try:
            await _prepare_writer(writer, path, migrations_dir, clock)
            pool = []
            for _ in range(readers):
                conn = await _connect(path, busy_timeout_ms, read_only=True)
                opened.append(conn)
                pool.append(conn)
        except BaseException:
            for conn in opened:
                await conn.close()
            raise
        return cls(path, writer, pool, clock=clock)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._write_lock:
            with suppress(sqlite3.Error):
                await self._writer.execute("PRAGMA optimize")
            for conn in self._readers:
                await conn.close()
            await self._writer.close()

    def now(self) -> int:
        """Unix time on the database's clock (injectable, so tests about ages never sleep)."""
        return int(self._clock())

    @asynccontextmanager
    async def write(self) -> AsyncIterator[SqliteConn]:
        """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``); rolls back on any error or
        cancellation. Writers queue on a lock, so keep CPU work outside the block."""
        async with self._write_lock:
            conn = self._writer
            try:
                # BEGIN inside the try: a task cancelled while BEGIN runs in the worker thread
                # must still roll back, or the shared writer stays stuck in a transaction.
                await conn.execute("BEGIN IMMEDIATE")
                yield SqliteConn(conn)
                await conn.execute("COMMIT")
            except BaseException:
                await asyncio.shield(_rollback(conn))
                raise

    @asynccontextmanager
    async def read(self, *, snapshot: bool = False) -> AsyncIterator[SqliteConn]:
        """A read-only connection; ``snapshot=True`` wraps the block in one read transaction so
        several statements see the same committed state."""
        conn = await self._idle.get()
        try:
            if snapshot:
                await conn.execute("BEGIN")
            yield SqliteConn(conn)
        finally:
            if conn.in_transaction or snapshot:
                await asyncio.shield(_rollback(conn))
            self._idle.put_nowait(conn)


async def _prepare_writer(
    writer: aiosqlite.Connection, path: Path, migrations_dir: Path, clock: Callable[[], float]
) -> None:
    """Page size and WAL before the schema exists, then the migrations."""
    # 16 KB pages hold fifteen 1 KB float16 vectors instead of three: about 20% less disk
    # per vector. Only takes effect on a new, empty file (before WAL and the schema).
    await writer.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    mode = await _switch_to_wal(writer)
    if str(mode).lower() != "wal":
        raise StorageError(f"{path}: cannot switch to WAL journal mode (got {mode})")
    await migrate(writer, migrations_dir, clock=clock)


async def _switch_to_wal(writer: aiosqlite.Connection, *, attempts: int = 50) -> Any:
    """``journal_mode=WAL``, tried again while another process switches the same new file: the
    switch fails at once with "database is locked" instead of waiting for the busy timeout."""
    for attempt in range(attempts):
        try:
            return await _scalar(writer, "PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.02 * (attempt + 1))
    return None


async def _connect(path: Path, busy_timeout_ms: int, *, read_only: bool) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA synchronous = NORMAL")
        # SQLite's lower() folds ASCII only; filters compare Cyrillic names too.
        await conn.create_function("casefold", 1, _casefold, deterministic=True)
        if read_only:
            await conn.execute("PRAGMA query_only = ON")
    except BaseException:
        await conn.close()
        raise
    return conn


def _casefold(value: object) -> object:
    return value.casefold() if isinstance(value, str) else value


async def _scalar(conn: aiosqlite.Connection, sql: str) -> Any:
    rows = list(await conn.execute_fetchall(sql))
    return rows[0][0] if rows else None


async def _rollback(conn: aiosqlite.Connection) -> None:
    # After a failed COMMIT or a cancellation the transaction may already be gone.
    with suppress(sqlite3.OperationalError):
        await conn.execute("ROLLBACK")
