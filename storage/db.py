"""The collection database: the composition root of storage.

:class:`Database` opens the :class:`~storage.connection.Connections` and puts each concern that
spans owners beside them; everything about one owner's data goes through :meth:`Database.owner`,
whose every query is scoped by that owner id::

    db = await Database.open(default_database_path(settings.data.dir))
    owner = await db.owners.ensure("user", telegram_user_id)
    store = db.owner(owner.id)
    await db.models.register("clip@1", 512)
    jobs = await db.queue.claim(8)               # ingest workers only
    index = IndexManager(db.vectors, index_dir)  # per-owner FAISS indexes load from here

Imports go one way: connection <- repositories <- registries <- this module.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from storage.album_answers import AlbumAnswers
from storage.connection import Connections, default_database_path
from storage.dbapi import Backend, Conn
from storage.job_queue import JobQueue
from storage.leases import default_worker
from storage.migrations import MIGRATIONS_DIR
from storage.model_registry import ModelRegistry
from storage.ocr_queue import OcrQueue
from storage.owed_answers import OwedAnswers
from storage.owners import OwnerRegistry
from storage.postgres import PgConnections, is_postgres_url
from storage.repositories import OwnerStore
from storage.text_backfill import backfill_text_index
from storage.vector_source import VectorSource

__all__ = ["Database", "default_database_path"]


class Database:
    """Open with ``await Database.open(path)`` (or ``async with await Database.open(path)``).

    ``max_attempts``: how many times a job may be claimed before a failure (or an interrupted
    run) makes it ``failed`` instead of ``pending`` again.

    - ``owners``: the owner registry (ensure, find, move, get, ids);
    - ``models``: the model registry (register, dims);
    - ``queue``: the job queue across owners (claim, requeue_running, counts, purge);
    - ``ocr``: the OCR stage's work list across owners (claim, done, failed, rerun, counts);
    - ``vectors``: the vector source of the per-owner indexes.

    ``worker``: this claimer's name on the jobs and OCR items it holds (default
    ``hostname:pid``); ``shared``: other processes may claim too (PostgreSQL), so start-up
    must not requeue what is running: leases tell when a holder died.
    """

    def __init__(
        self, connections: Backend, *, max_attempts: int, worker: str | None = None
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.worker = worker or default_worker()
        self.shared = connections.dialect == "postgresql"
        self.connections = connections
        self.dialect = connections.dialect
        # The SQLite file, or None on PostgreSQL (index files then live in DATA_DIR alone).
        self.path: Path | None = getattr(connections, "path", None)
        self.max_attempts = max_attempts
        self.owners = OwnerRegistry(connections)
        self.models = ModelRegistry(connections)
        self.queue = JobQueue(connections, max_attempts=max_attempts, worker=self.worker)
        self.ocr = OcrQueue(connections, worker=self.worker)
        self.vectors = VectorSource(connections)
        self.album_answers = AlbumAnswers(connections)  # front ends sharing album answers
        self.owed = OwedAnswers(connections)  # which front end tells the sender (workers' jobs)

    @classmethod
    async def open(
        cls,
        target: str | Path,
        *,
        migrations_dir: Path = MIGRATIONS_DIR,
        readers: int = 2,
        max_attempts: int = 5,
        busy_timeout_ms: int = 5000,
        clock: Callable[[], float] = time.time,
        worker: str | None = None,
    ) -> Database:
        """Open ``target`` (a SQLite file path, created if needed, or a ``postgresql://`` URL),
        apply pending migrations and index the texts of items stored before the text index
        existed (once; see text_backfill)."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        connections: Backend
        if is_postgres_url(target):
            connections = await PgConnections.open(
                str(target), migrations_dir=migrations_dir, readers=readers, clock=clock
            )
        else:
            connections = await Connections.open(
                target,
                migrations_dir=migrations_dir,
                readers=readers,
                busy_timeout_ms=busy_timeout_ms,
                clock=clock,
            )
        try:
            await backfill_text_index(connections)
        except BaseException:
            await connections.close()
            raise
        return cls(connections, max_attempts=max_attempts, worker=worker)

    async def close(self) -> None:
        await self.connections.close()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def owner(self, owner_id: int) -> OwnerStore:
        """The repositories of one owner: every read and write they do is scoped by
        ``owner_id``. Cheap; does not touch the database (reads of a missing owner return
        nothing, writes raise :class:`UnknownOwnerError`)."""
        return OwnerStore(
            self.connections, owner_id, max_attempts=self.max_attempts, worker=self.worker
        )

    # --- plumbing for storage's other repositories (results, housekeeping) and tests ----------

    def now(self) -> int:
        return self.connections.now()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Conn]:
        """See :meth:`Connections.write`."""
        async with self.connections.write() as conn:
            yield conn

    @asynccontextmanager
    async def read(self, *, snapshot: bool = False) -> AsyncIterator[Conn]:
        """See :meth:`Connections.read`."""
        async with self.connections.read(snapshot=snapshot) as conn:
            yield conn
