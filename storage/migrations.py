"""Apply the numbered plain-SQL files in ``migrations/`` in order, once each.

Why plain SQL and a forty-line runner: the schema stays readable in one place, there is nothing to
learn, and the rules are easy to check. The rules:

- a migration is a file ``NNNN_name.sql`` (four digits, lower-case name); other files are ignored;
- files are applied in numeric order, each in its own transaction together with its record in
  ``schema_migrations`` (name, sha256, applied_at), so a failing file leaves no trace;
- an applied file is never edited: if its checksum changed, or it disappeared, or a new file is
  numbered below one already applied, start-up stops with a :class:`MigrationError` that says what
  to do. Changes always come as a new file.

Files must not contain ``BEGIN``/``COMMIT`` (the runner owns the transaction) and cannot change
``PRAGMA foreign_keys`` (a no-op inside a transaction). After each file the runner runs
``PRAGMA foreign_key_check`` so a data-moving migration cannot leave dangling references.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

import migrations
from storage.errors import MigrationError

# A package beside storage/, so the files ship inside a wheel as well as in a checkout.
MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       TEXT    PRIMARY KEY,
    sha256     TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    number: int
    name: str  # file name, e.g. "0001_initial.sql"
    sql: str
    sha256: str


def discover(directory: Path) -> list[Migration]:
    """Read every ``NNNN_name.sql`` in ``directory``, sorted by number.

    The checksum is taken over the text with line endings normalised, so a checkout that turns
    LF into CRLF does not look like an edit.
    """
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    found: dict[int, Migration] = {}
    for path in directory.iterdir():
        m = _NAME.match(path.name)
        if not m:
            continue
        number = int(m.group(1))
        if number in found:
            raise MigrationError(
                f"two migrations share number {number:04d}: {found[number].name} and {path.name}"
            )
        sql = path.read_text(encoding="utf-8").replace("\r\n", "\n")
        digest = hashlib.sha256(sql.encode("utf-8")).hexdigest()
        found[number] = Migration(number, path.name, sql, digest)
    return [found[n] for n in sorted(found)]


def split_statements(sql: str) -> list[str]:
    """Cut a script into complete statements (semicolons inside strings and triggers are kept).

    ``executescript`` would be simpler but commits any open transaction first, which would make
    a migration and its ledger record two separate commits.
    """
    statements: list[str] = []
    buf = ""
    for piece in sql.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if _strip_comments(buf).strip(" \n\t;"):
                statements.append(buf.strip())
            buf = ""
    if _strip_comments(buf).strip(" \n\t;"):
        raise MigrationError(f"incomplete SQL statement at the end: {buf.strip()[:80]!r}")
    return statements


def _strip_comments(sql: str) -> str:
    """Good enough to tell a comment-only chunk from a statement (never used to run SQL)."""
    return _COMMENT.sub("", sql)


async def applied_migrations(conn: aiosqlite.Connection) -> dict[str, str]:
    """Name -> sha256 of what the database has applied (empty for a fresh database)."""
    await conn.execute(_LEDGER)
    rows = await conn.execute_fetchall("SELECT name, sha256 FROM schema_migrations")
    return {name: digest for name, digest in rows}


def check_pending(migrations: list[Migration], applied: dict[str, str]) -> list[Migration]:
    """Refuse an edited, missing or out-of-order file; return what is left to apply."""
    on_disk = {m.name: m for m in migrations}
    for name, digest in sorted(applied.items()):
        m = on_disk.get(name)
        if m is None:
            raise MigrationError(
                f"migration {name} was applied to this database but is missing from the "
                "migrations directory; restore the file (applied migrations are never removed)"
            )
        if m.sha256 != digest:
            raise MigrationError(
                f"migration {name} was edited after it was applied (recorded sha256 {digest}, "
                f"file has {m.sha256}); restore the original and put the change in a new file"
            )
    pending = [m for m in migrations if m.name not in applied]
    if applied and pending:
        last = max(int(name[:4]) for name in applied)
        early = [m.name for m in pending if m.number < last]
        if early:
            raise MigrationError(
                f"migration(s) {', '.join(early)} are numbered below the last applied one "
                f"({last:04d}); renumber them after it"
            )
    return pending


async def migrate(
    conn: aiosqlite.Connection,
    directory: Path = MIGRATIONS_DIR,
    *,
    clock: Callable[[], float] = time.time,
) -> list[str]:
    """Bring the database up to date; return the names applied now (oldest first).

    ``conn`` must be in autocommit mode (``isolation_level=None``). Safe against a second
    process migrating at the same time: each file is re-checked under ``BEGIN IMMEDIATE``.
    """
    migrations = discover(directory)
    pending = check_pending(migrations, await applied_migrations(conn))
    done: list[str] = []
    for m in pending:
        statements = split_statements(m.sql)
        await conn.execute("BEGIN IMMEDIATE")
        try:
            cur = await conn.execute("SELECT 1 FROM schema_migrations WHERE name = ?", (m.name,))
            if await cur.fetchone() is not None:  # another process got there first
                await conn.execute("ROLLBACK")
                continue
            for stmt in statements:
                try:
                    await conn.execute(stmt)
                except sqlite3.Error as e:
                    raise MigrationError(f"migration {m.name} failed: {e} in {stmt[:200]!r}") from e
            bad = await conn.execute_fetchall("PRAGMA foreign_key_check")
            if bad:
                raise MigrationError(
                    f"migration {m.name} leaves rows with dangling foreign keys: {list(bad)[:5]}"
                )
            await conn.execute(
                "INSERT INTO schema_migrations (name, sha256, applied_at) VALUES (?, ?, ?)",
                (m.name, m.sha256, int(clock())),
            )
            await conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise
        done.append(m.name)
    return done
