"""The collection database: connections, transactions, owners, and the cross-owner job queue.

One writer connection, serialised by an asyncio lock, so a multi-statement transaction never
interleaves with another; WAL lets a small pool of read-only connections answer searches while a
write is in progress. Everything about one owner's data goes through :meth:`Database.owner`,
which returns an :class:`~storage.repositories.OwnerStore` whose every query is scoped by that
owner id. The few methods here that span owners (claiming jobs, start-up recovery) are for the
ingest workers, never for answering a user.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiosqlite
import numpy as np

from core.errors import StorageError
from storage.migrations import MIGRATIONS_DIR, migrate
from storage.records import OWNER_KINDS, Job, JobState, Owner, OwnerKind, VectorSnapshot
from storage.repositories import JOB_SELECT, OwnerStore, job_from_row, model_key
from storage.vectors import split_model_id

DB_FILENAME = "image-finder.db"
# RETURNING and UPSERT ... DO NOTHING RETURNING need 3.35 (March 2021).
MIN_SQLITE = (3, 35, 0)
PAGE_SIZE = 16384


def default_database_path(data_dir: Path) -> Path:
    """Where the bot and the CLI keep the database inside ``DATA_DIR``."""
    return data_dir / DB_FILENAME


class Database:
    """Open with ``await Database.open(path)`` (or ``async with await Database.open(path)``).

    ``max_attempts``: how many times a job may be claimed before a failure (or an interrupted
    run) makes it ``failed`` instead of ``pending`` again.
    """

    def __init__(
        self,
        path: Path,
        writer: aiosqlite.Connection,
        readers: list[aiosqlite.Connection],
        *,
        max_attempts: int,
        clock: Callable[[], float],
    ) -> None:
        self.path = path
        self.max_attempts = max_attempts
        self._writer = writer
        self._readers = readers
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        for conn in readers:
            self._idle.put_nowait(conn)
        self._write_lock = asyncio.Lock()
        self._clock = clock
        self._closed = False

    # --- lifecycle ------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        migrations_dir: Path = MIGRATIONS_DIR,
        readers: int = 2,
        max_attempts: int = 5,
        busy_timeout_ms: int = 5000,
        clock: Callable[[], float] = time.time,
    ) -> Database:
        """Open (creating if needed) the database file and apply pending migrations."""
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StorageError(
                f"SQLite {sqlite3.sqlite_version} is too old; "
                f"{'.'.join(map(str, MIN_SQLITE))} or newer is needed"
            )
        path = Path(path)
        if str(path) == ":memory:":
            raise ValueError("a file path is needed: readers and the writer share it through WAL")
        if readers < 1 or max_attempts < 1:
            raise ValueError("readers and max_attempts must be >= 1")
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await _connect(path, busy_timeout_ms, read_only=False)
        opened: list[aiosqlite.Connection] = [writer]
        try:
            # 16 KB pages hold fifteen 1 KB float16 vectors instead of three: about 20% less disk
            # per vector. Only takes effect on a new, empty file (before WAL and the schema).
            await writer.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            mode = await _scalar(writer, "PRAGMA journal_mode=WAL")
            if str(mode).lower() != "wal":
                raise StorageError(f"{path}: cannot switch to WAL journal mode (got {mode})")
            await migrate(writer, migrations_dir, clock=clock)
            pool = []
            for _ in range(readers):
                conn = await _connect(path, busy_timeout_ms, read_only=True)
                opened.append(conn)
                pool.append(conn)
        except BaseException:
            for conn in opened:
                await conn.close()
            raise
        return cls(path, writer, pool, max_attempts=max_attempts, clock=clock)

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

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- plumbing for the repositories ----------------------------------------------------------

    def now(self) -> int:
        return int(self._clock())

    @asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``); rolls back on any error or
        cancellation. Writers queue on a lock, so keep CPU work outside the block."""
        async with self._write_lock:
            conn = self._writer
            try:
                # BEGIN inside the try: a task cancelled while BEGIN runs in the worker thread
                # must still roll back, or the shared writer stays stuck in a transaction.
                await conn.execute("BEGIN IMMEDIATE")
                yield conn
                await conn.execute("COMMIT")
            except BaseException:
                await asyncio.shield(_rollback(conn))
                raise

    @asynccontextmanager
    async def read(self, *, snapshot: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        """A read-only connection; ``snapshot=True`` wraps the block in one read transaction so
        several statements see the same committed state."""
        conn = await self._idle.get()
        try:
            if snapshot:
                await conn.execute("BEGIN")
            yield conn
        finally:
            if conn.in_transaction or snapshot:
                await asyncio.shield(_rollback(conn))
            self._idle.put_nowait(conn)

    # --- owners ---------------------------------------------------------------------------------

    def owner(self, owner_id: int) -> OwnerStore:
        """The repository for one owner: every read and write it does is scoped by ``owner_id``.
        Cheap; does not touch the database (reads of a missing owner return nothing, writes
        raise :class:`UnknownOwnerError`)."""
        return OwnerStore(self, owner_id)

    async def ensure_owner(self, kind: OwnerKind, external_id: int | str) -> Owner:
        """Get or create the owner for a Telegram user/chat id (``kind`` "user"/"chat") or a
        local collection name (``kind`` "local", e.g. ``ensure_owner("local", "default")``)."""
        if kind not in OWNER_KINDS:
            raise ValueError(f"unknown owner kind {kind!r}; expected one of {OWNER_KINDS}")
        async with self.write() as conn:
            await conn.execute(
                "INSERT INTO owners (kind, external_id, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, external_id) DO NOTHING",
                (kind, str(external_id), self.now()),
            )
            rows = await conn.execute_fetchall(
                f"{_OWNER_SELECT} WHERE kind = ? AND external_id = ?", (kind, str(external_id))
            )
        return _owner_from_row(rows[0])

    async def find_owner(self, kind: OwnerKind, external_id: int | str) -> Owner | None:
        async with self.read() as conn:
            rows = await conn.execute_fetchall(
                f"{_OWNER_SELECT} WHERE kind = ? AND external_id = ?", (kind, str(external_id))
            )
        return _owner_from_row(rows[0]) if rows else None

    async def move_owner(
        self, kind: OwnerKind, old_external_id: int | str, new_external_id: int | str
    ) -> Owner | None:
        """Give the owner known as ``old_external_id`` the id ``new_external_id``, keeping its
        row id, so its items, vectors and index files stay as they are (a Telegram group that
        became a supergroup gets a new chat id). An owner already under the new id is replaced
        only while it holds nothing (the bot may have seen the new chat first); otherwise, or
        when there is no old owner, nothing changes and the result is None."""
        old, new = str(old_external_id), str(new_external_id)
        if old == new:
            return None
        async with self.write() as conn:
            rows = await conn.execute_fetchall(
                "SELECT id FROM owners WHERE kind = ? AND external_id = ?", (kind, old)
            )
            if not rows:
                return None
            owner_id = rows[0][0]
            taken = await conn.execute_fetchall(
                "SELECT id FROM owners WHERE kind = ? AND external_id = ?", (kind, new)
            )
            if taken:
                busy = await conn.execute_fetchall(
                    "SELECT 1 FROM media WHERE owner_id = ? UNION ALL SELECT 1 FROM jobs "
                    "WHERE owner_id = ? AND state IN ('pending', 'running') LIMIT 1",
                    (taken[0][0], taken[0][0]),
                )
                if busy:
                    return None
                await conn.execute("DELETE FROM owners WHERE id = ?", (taken[0][0],))
            await conn.execute("UPDATE owners SET external_id = ? WHERE id = ?", (new, owner_id))
            rows = await conn.execute_fetchall(f"{_OWNER_SELECT} WHERE id = ?", (owner_id,))
        return _owner_from_row(rows[0])

    async def get_owner(self, owner_id: int) -> Owner | None:
        async with self.read() as conn:
            rows = await conn.execute_fetchall(f"{_OWNER_SELECT} WHERE id = ?", (owner_id,))
        return _owner_from_row(rows[0]) if rows else None

    async def owner_ids(self, *, after: int = 0, limit: int = 1000) -> list[int]:
        """Owner ids in ascending order, for background sweeps (re-embedding, maintenance)."""
        async with self.read() as conn:
            rows = await conn.execute_fetchall(
                "SELECT id FROM owners WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
            )
        return [r[0] for r in rows]

    async def owners_missing_vectors(self, model_id: str) -> list[int]:
        """Owners with at least one unit that has no vector for ``model_id`` (re-embed work)."""
        name, version = split_model_id(model_id)
        async with self.read() as conn:
            rows = await conn.execute_fetchall(
                """
                SELECT DISTINCT u.owner_id
                FROM units AS u
                WHERE NOT EXISTS (
                    SELECT 1
                    FROM vectors AS v JOIN models AS m ON m.id = v.model
                    WHERE v.owner_id = u.owner_id AND v.unit_id = u.id
                      AND m.name = ? AND m.version = ?
                )
                ORDER BY u.owner_id
                """,
                (name, version),
            )
        return [r[0] for r in rows]

    # --- models ---------------------------------------------------------------------------------

    async def register_model(self, model_id: str, dim: int) -> None:
        """Record a model's dimension (call at start-up for every loaded bundle). Raises
        :class:`VectorError` if the same ``name@version`` was stored with another dimension,
        i.e. a different model reuses an old id."""
        async with self.write() as conn:
            await model_key(conn, model_id, dim, now=self.now())

    async def models(self) -> dict[str, int]:
        """Every model id ever stored -> its dimension."""
        async with self.read() as conn:
            rows = await conn.execute_fetchall("SELECT name, version, dim FROM models ORDER BY id")
        return {f"{n}@{v}": d for n, v, d in rows}

    # --- VectorSource (for the per-owner FAISS indexes) -----------------------------------------

    async def index_version(self, owner_id: int, model_id: str) -> int:
        return await self.owner(owner_id).index_version(model_id)

    async def load_vectors(self, owner_id: int, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """int64 unit ids [n] (ascending) and float32 vectors [n, d] of one owner and model.
        Read :meth:`index_version` *before* this (or use ``OwnerStore.vector_snapshot``)."""
        return await self.owner(owner_id).load_vectors(model_id)

    async def vector_snapshot(self, owner_id: int, model_id: str) -> VectorSnapshot:
        """Version and vectors read in one transaction, so an index built from them is exact."""
        return await self.owner(owner_id).vector_snapshot(model_id)

    # --- jobs across owners (ingest workers only) -----------------------------------------------

    async def claim_jobs(self, limit: int) -> list[Job]:
        """Move up to ``limit`` pending jobs to ``running`` and return them, oldest first but
        round-robin across owners, so one owner's thousand-photo backlog does not starve another
        owner's single photo. Each claim counts as an attempt."""
        if limit < 1:
            return []
        now = self.now()
        async with self.write() as conn:
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
        now = self.now()
        async with self.write() as conn:
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

    async def job_counts(self) -> dict[str, int]:
        """Jobs per state across all owners (monitoring)."""
        async with self.read() as conn:
            rows = await conn.execute_fetchall("SELECT state, count(*) FROM jobs GROUP BY state")
        return dict(rows)

    async def purge_jobs(
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
        async with self.write() as conn:
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


# --- helpers shared with the repositories -------------------------------------------------------

_OWNER_SELECT = "SELECT id, kind, external_id, settings, created_at FROM owners"


def _owner_from_row(row: Any) -> Owner:
    return Owner(row[0], row[1], row[2], json.loads(row[3]), row[4])


async def _connect(path: Path, busy_timeout_ms: int, *, read_only: bool) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA synchronous = NORMAL")
        if read_only:
            await conn.execute("PRAGMA query_only = ON")
    except BaseException:
        await conn.close()
        raise
    return conn


async def _scalar(conn: aiosqlite.Connection, sql: str) -> Any:
    rows = list(await conn.execute_fetchall(sql))
    return rows[0][0] if rows else None


async def _rollback(conn: aiosqlite.Connection) -> None:
    # After a failed COMMIT or a cancellation the transaction may already be gone.
    with suppress(sqlite3.OperationalError):
        await conn.execute("ROLLBACK")
