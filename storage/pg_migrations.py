"""The migration runner for PostgreSQL: the same numbered files and rules as SQLite's
(:mod:`storage.migrations`), from ``migrations/postgresql/``, whose numbers match the SQLite
files one for one so a version means the same schema on both.

PostgreSQL runs a whole file in one transaction with its ledger record (DDL is transactional),
under an advisory lock so processes starting together apply each file once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from storage.errors import MigrationError
from storage.migrations import check_pending, discover

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       TEXT   PRIMARY KEY,
    sha256     TEXT   NOT NULL,
    applied_at BIGINT NOT NULL
)
"""


async def migrate_postgres(
    conn: psycopg.AsyncConnection[Any],
    directory: Path,
    *,
    clock: Callable[[], float] = time.time,
) -> list[str]:
    """Bring the schema up to date; return the names applied now. ``conn`` is autocommit."""
    migrations = discover(directory)
    await conn.execute("SELECT pg_advisory_lock(hashtext(current_schema() || ':migrations'))")
    try:
        await conn.execute(_LEDGER)
        cur = await conn.execute("SELECT name, sha256 FROM schema_migrations")
        applied = {str(name): str(digest) for name, digest in await cur.fetchall()}
        done: list[str] = []
        for m in check_pending(migrations, applied):
            try:
                async with conn.transaction():
                    await conn.execute(m.sql)  # no parameters: one script
                    await conn.execute(
                        "INSERT INTO schema_migrations (name, sha256, applied_at) "
                        "VALUES (%s, %s, %s)",
                        (m.name, m.sha256, int(clock())),
                    )
            except psycopg.Error as e:
                raise MigrationError(f"migration postgresql/{m.name} failed: {e}") from e
            done.append(m.name)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext(current_schema() || ':migrations'))")
