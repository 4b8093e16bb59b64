"""Move a SQLite collection into an empty PostgreSQL schema, ids and all, and prove it arrived.

Both databases are opened with :meth:`Database.open` first, so both run their migrations; the
move refuses unless they then stand at the same migration version, and refuses a target that
holds any row (a second run must never merge two collections). Tables are discovered from the
SQLite schema rather than listed here, so a table a later migration adds moves too; they are
copied in foreign-key order with COPY, all in ONE PostgreSQL transaction: a move that fails
half-way leaves the target empty and can simply be run again.

Ids are kept (FAISS index files and Telegram buttons name them), so each identity sequence is
set past the largest id ever used: the largest present, or SQLite's AUTOINCREMENT high-water
mark when rows were deleted (unit ids must never be reused). FTS5's table cannot be copied (its
PostgreSQL counterpart is a plain table of stems): every item with texts is put on the text
backlog and the text index's own backfill rebuilds it from ``media_texts``.

Verification reads both sides again after the commit: row counts per table, the text index's
row count, and a SHA-256 over every vector's bytes per (owner, model), in unit order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from storage.connection import SqliteConn
from storage.db import Database
from storage.dbapi import Conn
from storage.errors import StorageError
from storage.postgres import PgConn
from storage.text_backfill import backfill_text_index

BATCH = 2000
LEDGER = "schema_migrations"
# Rebuilt on the target, never copied: FTS5's rows (and its shadow tables) have no PostgreSQL
# form; the backlog is refilled with every item that has texts.
TEXT_INDEX = "media_text_index"
TEXT_BACKLOG = "media_text_backlog"

Progress = Callable[[str, int, int], None]
"""``progress(table, rows copied so far, rows in the table)``, after each batch of a table."""


class TransferError(StorageError):
    """The collection cannot be moved: wrong backends, different migration versions, or a
    table the other side does not have."""

    code = "transfer"


class TargetNotEmptyError(TransferError):
    """The PostgreSQL schema already holds a collection (or part of one)."""

    code = "transfer_target_not_empty"

    def __init__(self, tables: Sequence[str]) -> None:
        self.tables = tuple(tables)
        super().__init__(
            "the PostgreSQL database is not empty (rows in "
            f"{', '.join(self.tables)}): move into a new database or schema"
        )


@dataclass(frozen=True, slots=True)
class TransferReport:
    """What was copied and what verification found. ``tables``: rows per table on
    (source, target); ``vectors``: a checksum per (owner, model) on (source, target)."""

    tables: dict[str, tuple[int, int]]
    text_index: tuple[int, int]
    vectors: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict)

    @property
    def mismatches(self) -> list[str]:
        """One line per difference; empty when the copy is verified."""
        out = [f"{t}: {s} rows, {d} copied" for t, (s, d) in self.tables.items() if s != d]
        if self.text_index[0] != self.text_index[1]:
            out.append(f"text index: {self.text_index[0]} items, {self.text_index[1]} rebuilt")
        out += [
            f"vectors of owner {o}, model {m}: checksums differ"
            for (o, m), (s, d) in self.vectors.items()
            if s != d
        ]
        return out

    @property
    def verified(self) -> bool:
        return not self.mismatches


async def transfer(
    source: Database, target: Database, *, batch: int = BATCH, progress: Progress | None = None
) -> TransferReport:
    """Copy every table of ``source`` (SQLite) into ``target`` (an empty PostgreSQL schema at
    the same migration version), rebuild the text index there and verify. Raises
    :class:`TargetNotEmptyError` or :class:`TransferError` before writing anything."""
    if source.dialect != "sqlite" or target.dialect != "postgresql":
        raise TransferError("a move goes from a SQLite collection to a PostgreSQL database")
    if batch < 1:
        raise ValueError("batch must be >= 1")
    await _check_versions(source, target)
    tables = await _source_tables(source)
    await _check_target(target, tables)
    await _copy(source, target, tables, batch, progress)
    await backfill_text_index(target.connections)
    return await verify(source, target, list(tables))


async def verify(source: Database, target: Database, tables: Sequence[str]) -> TransferReport:
    """Counts per table, the text index's rows and the vector checksums, on both sides."""
    counts = {t: (await _count(source, t), await _count(target, t)) for t in tables}
    text_index = (await _count(source, TEXT_INDEX), await _count(target, TEXT_INDEX))
    vectors = {
        pair: (await _vector_digest(source, *pair), await _vector_digest(target, *pair))
        for pair in await _vector_pairs(source, target)
    }
    return TransferReport(counts, text_index, vectors)


# --- checks before anything is written -------------------------------------------------------


async def _check_versions(source: Database, target: Database) -> None:
    sql = f"SELECT name FROM {LEDGER} ORDER BY name"
    async with source.read() as conn:
        ours = [str(r[0]) for r in await conn.execute_fetchall(sql)]
    async with target.read() as conn:
        theirs = [str(r[0]) for r in await conn.execute_fetchall(sql)]
    if ours != theirs:
        raise TransferError(
            "the two databases are at different migration versions "
            f"({ours[-1] if ours else 'none'} and {theirs[-1] if theirs else 'none'}): "
            "run the same release against both"
        )


async def _source_tables(source: Database) -> dict[str, list[str]]:
    """The tables to copy with their columns, parents before children."""
    async with source.read() as conn:
        rows = await conn.execute_fetchall(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name"
        )
        virtual = [str(n) for n, sql in rows if str(sql).upper().startswith("CREATE VIRTUAL")]
        names = [
            str(n)
            for n, _ in rows
            if not str(n).startswith("sqlite_")
            and str(n) != LEDGER
            and not any(str(n) == v or str(n).startswith(f"{v}_") for v in virtual)
        ]
        columns: dict[str, list[str]] = {}
        parents: dict[str, set[str]] = {}
        for name in names:
            info = await conn.execute_fetchall(f"SELECT name FROM pragma_table_info('{name}')")
            columns[name] = [str(r[0]) for r in info]
            refs = await conn.execute_fetchall(
                f"SELECT \"table\" FROM pragma_foreign_key_list('{name}')"
            )
            parents[name] = {str(r[0]) for r in refs} - {name}
    return {name: columns[name] for name in _parents_first(parents)}


def _parents_first(parents: dict[str, set[str]]) -> list[str]:
    order: list[str] = []
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in path:
            raise TransferError(f"foreign keys form a cycle through {name}")
        for parent in sorted(parents.get(name, set())):
            visit(parent, (*path, name))
        done.add(name)
        order.append(name)

    for name in sorted(parents):
        visit(name, ())
    return order


async def _check_target(target: Database, tables: dict[str, list[str]]) -> None:
    async with target.read() as conn:
        rows = await conn.execute_fetchall(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema()"
        )
        present: dict[str, set[str]] = {}
        for table, column in rows:
            present.setdefault(str(table), set()).add(str(column))
        for table, cols in tables.items():
            missing = set(cols) - present.get(table, set())
            if missing:
                raise TransferError(
                    f"the PostgreSQL schema has no {table}({', '.join(sorted(missing))})"
                )
        await _refuse_filled(conn, sorted(present))


async def _refuse_filled(conn: Conn, tables: Sequence[str]) -> None:
    """Raise :class:`TargetNotEmptyError` when any table but the ledger holds a row."""
    filled = [
        t
        for t in tables
        if t != LEDGER and await conn.execute_fetchall(f'SELECT 1 FROM "{t}" LIMIT 1')
    ]
    if filled:
        raise TargetNotEmptyError(filled)


# --- the copy ----------------------------------------------------------------------------------


async def _copy(
    source: Database,
    target: Database,
    tables: dict[str, list[str]],
    batch: int,
    progress: Progress | None,
) -> None:
    """Every table in one snapshot of the source and one transaction on the target."""
    async with source.read(snapshot=True) as src, target.write() as dst:
        if not isinstance(src, SqliteConn) or not isinstance(dst, PgConn):
            raise TransferError("a move needs SQLite's and PostgreSQL's own connections")
        await _refuse_filled(dst, list(tables))  # again, now under the write: two moves at once
        rows = await src.execute_fetchall("SELECT name, seq FROM sqlite_sequence")
        high_water = {str(name): int(seq) for name, seq in rows}
        for table, cols in tables.items():
            if table == TEXT_BACKLOG:
                continue  # refilled below from every item's texts
            total = int((await src.execute_fetchall(f'SELECT count(*) FROM "{table}"'))[0][0])
            await _copy_table(src, dst, table, cols, batch, total, progress)
        await _set_sequences(dst, high_water)
        if TEXT_BACKLOG in tables:
            await dst.execute(
                f"INSERT INTO {TEXT_BACKLOG} (owner_id, media_id) "
                "SELECT DISTINCT owner_id, media_id FROM media_texts"
            )


async def _copy_table(
    src: SqliteConn,
    dst: PgConn,
    table: str,
    cols: list[str],
    batch: int,
    total: int,
    progress: Progress | None,
) -> None:
    names = ", ".join(f'"{c}"' for c in cols)
    cursor = await src.raw.execute(f'SELECT {names} FROM "{table}"')
    copied = 0
    async with dst.raw.cursor() as cur, cur.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        while rows := await cursor.fetchmany(batch):
            for row in rows:
                await copy.write_row(tuple(row))
                copied += 1
            if progress is not None:
                progress(table, copied, total)
    await cursor.close()
    if progress is not None and copied == 0:
        progress(table, 0, total)


async def _set_sequences(dst: PgConn, high_water: dict[str, int]) -> None:
    """Each identity past the largest id used, so the next row gets a new one."""
    identities = await dst.execute_fetchall(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND is_identity = 'YES'"
    )
    for table, column in identities:
        largest = (await dst.execute_fetchall(f'SELECT max("{column}") FROM "{table}"'))[0][0]
        used = max(int(largest or 0), int(high_water.get(table) or 0))
        # setval(seq, n): the next id is n + 1; an unused sequence starts again at 1.
        called = "true" if used > 0 else "false"
        await dst.execute(
            f"SELECT setval(pg_get_serial_sequence(?, ?), CAST(? AS bigint), {called})",
            (f'"{table}"', str(column), max(used, 1)),
        )


# --- verification ------------------------------------------------------------------------------


async def _count(db: Database, table: str) -> int:
    async with db.read() as conn:
        return int((await conn.execute_fetchall(f'SELECT count(*) FROM "{table}"'))[0][0])


async def _vector_pairs(source: Database, target: Database) -> list[tuple[int, int]]:
    sql = "SELECT DISTINCT owner_id, model FROM vectors"
    pairs: set[tuple[int, int]] = set()
    for db in (source, target):
        async with db.read() as conn:
            pairs |= {(int(o), int(m)) for o, m in await conn.execute_fetchall(sql)}
    return sorted(pairs)


async def _vector_digest(db: Database, owner_id: int, model: int, *, batch: int = BATCH) -> str:
    """SHA-256 over (unit id, bytes) of the pair's vectors in unit order, read in pages."""
    digest = hashlib.sha256()
    last = -1
    async with db.read(snapshot=True) as conn:
        while True:
            rows = await conn.execute_fetchall(
                "SELECT unit_id, data FROM vectors WHERE owner_id = ? AND model = ? "
                "AND unit_id > ? ORDER BY unit_id LIMIT ?",
                (owner_id, model, last, batch),
            )
            for unit_id, data in rows:
                digest.update(int(unit_id).to_bytes(8, "little", signed=True))
                digest.update(len(data).to_bytes(4, "little"))
                digest.update(bytes(data))
            if len(rows) < batch:
                return digest.hexdigest()
            last = int(rows[-1][0])
