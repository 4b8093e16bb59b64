"""The migration runner and the schema it builds from zero."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import aiosqlite
import psycopg
import pytest

from core.errors import MigrationError
from storage import MIGRATIONS_DIR, Database, migrate
from storage.migrations import discover, split_statements
from tests.conftest import DatabaseTarget
from tests.postgres_support import fresh_schema

SHIPPED = sorted(p.name for p in MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))
EXPECTED_COLUMNS = {
    "owners": ["id", "kind", "external_id", "settings", "created_at"],
    "models": ["id", "name", "version", "dim", "created_at"],
    "media": [
        "id", "owner_id", "kind", "status", "file_unique_id", "file_id", "size", "width",
        "height", "duration", "caption", "forward_origin", "message_id", "message_date",
        "album_id", "created_at", "thumbnail_file_id", "file_name", "taken_at",
        "ocr_state", "ocr_attempts", "ocr_error", "ocr_lease_until", "ocr_worker",
    ],
    "units": ["id", "owner_id", "media_id", "kind", "ts"],
    "vectors": ["id", "owner_id", "unit_id", "model", "data"],
    "index_versions": ["owner_id", "model", "version"],
    "active_models": ["owner_id", "slot", "model_id", "updated_at"],
    "local_files": ["owner_id", "path", "media_id", "size", "mtime_ns", "sha256"],
    "jobs": [
        "id", "owner_id", "state", "payload", "attempts", "last_error", "media_id",
        "duplicate", "created_at", "updated_at", "lease_until", "worker", "outcome", "front",
        "front_embeds",
    ],
    "schema_migrations": ["name", "sha256", "applied_at"],
    "result_messages": [
        "owner_id", "chat_id", "message_id", "media_id", "unit_id", "created_at",
    ],
    "search_sessions": [
        "id", "owner_id", "kind", "text", "file_id", "media_id", "unit_id", "created_at",
    ],
    "media_texts": ["owner_id", "media_id", "source", "text"],
    "media_text_backlog": ["owner_id", "media_id"],
    # The FTS5 table and the shadow tables SQLite keeps for it.
    "media_text_index": ["owner", "caption", "file_name", "origin", "ocr"],
    "media_text_index_data": ["id", "block"],
    "media_text_index_idx": ["segid", "term", "pgno"],
    "media_text_index_content": ["id", "c0", "c1", "c2", "c3", "c4"],
    "media_text_index_docsize": ["id", "sz"],
    "media_text_index_config": ["k", "v"],
    "near_duplicates": [
        "owner_id", "media_id", "duplicate_of", "score", "created_at", "dismissed",
    ],
    "album_answers": [
        "owner_id", "chat_id", "album_id", "holder", "lease_until", "message_id",
        "last_item_ms", "lang", "quiet", "refused", "done", "created_at",
    ],
}  # fmt: skip

# name -> (table, leading columns, unique)
EXPECTED_INDEXES = {
    "media_owner_kind": ("media", ["owner_id", "kind"], False),
    "units_owner_media": ("units", ["owner_id", "media_id"], False),
    "vectors_owner_model": ("vectors", ["owner_id", "model", "unit_id"], False),
    "local_files_owner_media": ("local_files", ["owner_id", "media_id"], False),
    "jobs_owner_state": ("jobs", ["owner_id", "state", "id"], False),
    "jobs_pending": ("jobs", ["owner_id", "id"], False),
    "near_duplicates_of": ("near_duplicates", ["owner_id", "duplicate_of"], False),
    "media_owner_message": ("media", ["owner_id", "message_id"], False),
    "media_ocr_open": ("media", ["owner_id", "id"], False),
    "jobs_leased": ("jobs", ["lease_until"], False),
    "media_ocr_leased": ("media", ["ocr_lease_until"], False),
    "jobs_owed": ("jobs", ["front"], False),
    "result_messages_owner_media": ("result_messages", ["owner_id", "media_id"], False),
    "search_sessions_owner": ("search_sessions", ["owner_id", "created_at"], False),
}


# Statements the schema must refuse (after owners 1, 2 and item 10 of owner 1 exist).
SCHEMA_VIOLATIONS = [
    "INSERT INTO owners (kind, external_id, created_at) VALUES ('robot', 'x', 0)",
    "INSERT INTO media (owner_id, kind, file_unique_id, created_at) VALUES (1, 'pdf', 'v', 0)",
    # (owner, file_unique_id) is unique
    "INSERT INTO media (owner_id, kind, file_unique_id, created_at) VALUES (1, 'photo', 'u', 0)",
    "INSERT INTO units (owner_id, media_id, kind) VALUES (1, 10, 'frame')",  # frame needs ts
    "INSERT INTO units (owner_id, media_id, kind, ts) VALUES (1, 10, 'image', 1.0)",
    # A unit cannot hang under another owner's item.
    "INSERT INTO units (owner_id, media_id, kind) VALUES (2, 10, 'image')",
    "INSERT INTO jobs (owner_id, state, payload, created_at, updated_at) "
    "VALUES (1, 'lost', '{}', 0, 0)",
    "INSERT INTO jobs (owner_id, payload, created_at, updated_at) VALUES (1, 'not json', 0, 0)",
    "UPDATE owners SET settings = '[1]' WHERE id = 1",
]


def schema(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path)


async def open_db(path: Path, migrations: Path = MIGRATIONS_DIR) -> Database:
    return await Database.open(path, migrations_dir=migrations, readers=1)


def copy_migrations(dst: Path) -> Path:
    dst.mkdir()
    for f in MIGRATIONS_DIR.glob("*.sql"):
        shutil.copy(f, dst / f.name)
    return dst


async def test_builds_schema_from_zero(tmp_path: Path) -> None:
    db = await open_db(tmp_path / "a.db")
    await db.close()
    con = schema(tmp_path / "a.db")
    tables = {
        r[0]
        for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    assert tables == set(EXPECTED_COLUMNS)
    for table, columns in EXPECTED_COLUMNS.items():
        assert [r[1] for r in con.execute(f"PRAGMA table_info({table})")] == columns, table
    for name, (table, cols, unique) in EXPECTED_INDEXES.items():
        info = {r[1]: r for r in con.execute(f"PRAGMA index_list({table})")}
        assert name in info, name
        assert bool(info[name][2]) is unique
        assert [r[2] for r in con.execute(f"PRAGMA index_info({name})")] == cols
    # Every owner-scoped composite index (explicit or from a UNIQUE) starts with owner_id.
    for table in ("media", "units", "vectors", "local_files", "jobs", "index_versions",
                  "result_messages", "search_sessions", "media_texts",
                  "media_text_backlog", "near_duplicates"):  # fmt: skip
        for idx in con.execute(f"PRAGMA index_list({table})").fetchall():
            cols = [r[2] for r in con.execute(f"PRAGMA index_info({idx[1]})")]
            if len(cols) > 1:
                assert cols[0] == "owner_id", (table, idx[1], cols)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    applied = con.execute("SELECT * FROM schema_migrations ORDER BY name").fetchall()
    assert [r[0] for r in applied] == SHIPPED
    assert all(len(digest) == 64 and at > 0 for _, digest, at in applied)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_schema_enforces_enums_and_owner_consistency(tmp_path: Path) -> None:
    db = await open_db(tmp_path / "a.db")
    await db.close()
    con = schema(tmp_path / "a.db")
    con.execute("PRAGMA foreign_keys = ON")
    con.execute("INSERT INTO owners (id, kind, external_id, created_at) VALUES (1, 'user', '1', 0)")
    con.execute("INSERT INTO owners (id, kind, external_id, created_at) VALUES (2, 'user', '2', 0)")
    con.execute(
        "INSERT INTO media (id, owner_id, kind, file_unique_id, created_at) "
        "VALUES (10, 1, 'photo', 'u', 0)"
    )
    for sql in SCHEMA_VIOLATIONS:
        with pytest.raises(sqlite3.IntegrityError):
            con.execute(sql)


async def test_second_migration_is_applied_once(tmp_path: Path) -> None:
    migrations = copy_migrations(tmp_path / "migrations")
    db = await open_db(tmp_path / "a.db", migrations)
    await db.close()
    (migrations / "9002_media_note.sql").write_text(
        "-- a later change comes as a new file\nALTER TABLE media ADD COLUMN note TEXT;\n"
        "CREATE INDEX media_owner_note ON media (owner_id, note);\n"
    )
    db = await open_db(tmp_path / "a.db", migrations)
    await db.close()
    async with aiosqlite.connect(tmp_path / "a.db", isolation_level=None) as conn:
        assert await migrate(conn, migrations) == []  # nothing left: not applied twice
        names = [r[0] for r in await conn.execute_fetchall("SELECT name FROM schema_migrations")]
        cols = [r[1] for r in await conn.execute_fetchall("PRAGMA table_info(media)")]
    assert names == [*SHIPPED, "9002_media_note.sql"]
    assert cols[-1] == "note"


async def test_edited_applied_migration_is_refused(tmp_path: Path) -> None:
    migrations = copy_migrations(tmp_path / "migrations")
    await (await open_db(tmp_path / "a.db", migrations)).close()
    with (migrations / "0001_initial.sql").open("a") as f:
        f.write("\n-- sneaky edit\n")
    with pytest.raises(MigrationError, match=r"0001_initial\.sql was edited"):
        await open_db(tmp_path / "a.db", migrations)


async def test_missing_applied_migration_is_refused(tmp_path: Path) -> None:
    migrations = copy_migrations(tmp_path / "migrations")
    (migrations / "9002_x.sql").write_text("CREATE TABLE x (a INTEGER);")
    await (await open_db(tmp_path / "a.db", migrations)).close()
    (migrations / "9002_x.sql").unlink()
    with pytest.raises(MigrationError, match=r"9002_x\.sql .* missing"):
        await open_db(tmp_path / "a.db", migrations)


async def test_new_file_numbered_below_applied_is_refused(tmp_path: Path) -> None:
    migrations = copy_migrations(tmp_path / "migrations")
    (migrations / "9003_c.sql").write_text("CREATE TABLE c (a INTEGER);")
    await (await open_db(tmp_path / "a.db", migrations)).close()
    (migrations / "9002_b.sql").write_text("CREATE TABLE b (a INTEGER);")
    with pytest.raises(MigrationError, match=r"9002_b\.sql"):
        await open_db(tmp_path / "a.db", migrations)


async def test_failing_migration_leaves_no_trace(tmp_path: Path) -> None:
    migrations = copy_migrations(tmp_path / "migrations")
    (migrations / "9002_bad.sql").write_text(
        "CREATE TABLE half (a INTEGER);\nINSERT INTO nowhere VALUES (1);\n"
    )
    with pytest.raises(MigrationError, match=r"9002_bad\.sql failed.*nowhere"):
        await open_db(tmp_path / "a.db", migrations)
    con = schema(tmp_path / "a.db")
    assert con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half'").fetchone() == (0,)
    assert [r[0] for r in con.execute("SELECT name FROM schema_migrations")] == SHIPPED


def test_discover_orders_numerically_and_rejects_duplicate_numbers(tmp_path: Path) -> None:
    (tmp_path / "0010_b.sql").write_text("SELECT 1;")
    (tmp_path / "0002_a.sql").write_text("SELECT 1;")
    (tmp_path / "README.md").write_text("ignored")
    (tmp_path / "2_bad_name.sql").write_text("ignored")
    assert [m.name for m in discover(tmp_path)] == ["0002_a.sql", "0010_b.sql"]
    (tmp_path / "0002_again.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="share number 0002"):
        discover(tmp_path)


def test_checksum_ignores_line_endings(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_bytes(b"SELECT 1;\nSELECT 2;\n")
    lf = discover(tmp_path)[0].sha256
    (tmp_path / "0001_a.sql").write_bytes(b"SELECT 1;\r\nSELECT 2;\r\n")
    assert discover(tmp_path)[0].sha256 == lf


def test_split_statements_keeps_triggers_and_strings_whole() -> None:
    sql = """
    -- comment; with a semicolon
    CREATE TABLE t (a TEXT DEFAULT 'x;y');
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN
        UPDATE t SET a = 'z;' WHERE rowid = new.rowid;
        SELECT 1;
    END;
    /* trailing */
    """
    stmts = split_statements(sql)
    assert len(stmts) == 2
    assert stmts[0].endswith("DEFAULT 'x;y');")
    assert stmts[1].startswith("CREATE TRIGGER") and stmts[1].endswith("END;")
    with pytest.raises(MigrationError, match="incomplete"):
        split_statements("CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1;")


async def test_new_database_uses_16k_pages(tmp_path: Path) -> None:
    """Vectors are 1 KB rows: small pages would waste a fifth of the disk."""
    from storage.connection import PAGE_SIZE
    from storage.db import Database

    async with await Database.open(tmp_path / "db.sqlite") as db, db.read() as conn:
        cur = await conn.execute("PRAGMA page_size")
        assert (await cur.fetchone())[0] == PAGE_SIZE


async def test_database_exposes_vector_snapshot(tmp_path: Path) -> None:
    from storage.db import Database

    async with await Database.open(tmp_path / "db.sqlite") as db:
        owner = await db.owners.ensure("user", 1)
        snap = await db.vectors.vector_snapshot(owner.id, "m@1")
        assert snap.version == 0 and len(snap.ids) == 0


# --- PostgreSQL: the same schema from migrations/postgresql, and the same rules ----------------

PG_DIR = MIGRATIONS_DIR / "postgresql"
# FTS5 keeps these beside media_text_index on SQLite; PostgreSQL's media_text_index is a plain
# table (a tsvector column), so neither they nor its columns are compared.
FTS_ONLY = {t for t in EXPECTED_COLUMNS if t.startswith("media_text_index_")}
PG_TEXT_INDEX_COLUMNS = ["owner_id", "media_id", "caption", "file_name", "origin", "ocr", "words"]


def test_every_migration_has_a_postgresql_twin() -> None:
    pg = sorted(p.name for p in PG_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    assert pg == SHIPPED
    assert [m.name for m in discover(PG_DIR)] == SHIPPED


def sqlite_schema(path: Path) -> tuple[dict[str, list[str]], set[str]]:
    """Columns per table and the explicit index names (UNIQUE constraints' are implicit)."""
    con = schema(path)
    tables = [
        r[0]
        for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    columns = {t: [r[1] for r in con.execute(f"PRAGMA table_info({t})")] for t in tables}
    indexes = {
        r[0]
        for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql NOT NULL")
    }
    con.close()
    return columns, indexes


def postgres_schema(url: str) -> tuple[dict[str, list[str]], set[str]]:
    """The same for the URL's schema; indexes that back a PRIMARY KEY or UNIQUE are left out."""
    with psycopg.connect(url) as con:
        columns: dict[str, list[str]] = {}
        for table, column in con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        ):
            columns.setdefault(table, []).append(column)
        indexes = {
            r[0]
            for r in con.execute(
                "SELECT i.indexname FROM pg_indexes AS i WHERE i.schemaname = current_schema() "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c "
                "WHERE c.conindid = to_regclass(quote_ident(i.schemaname) || '.' || "
                "quote_ident(i.indexname)))"
            )
        }
        leading = {
            name: [str(c) for c in cols]
            for name, cols in con.execute(
                "SELECT ic.relname, array_agg(a.attname ORDER BY k.ord) "
                "FROM pg_index AS x JOIN pg_class AS ic ON ic.oid = x.indexrelid "
                "JOIN pg_namespace AS n ON n.oid = ic.relnamespace "
                "CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord) "
                "JOIN pg_attribute AS a ON a.attrelid = x.indrelid AND a.attnum = k.attnum "
                "WHERE n.nspname = current_schema() GROUP BY ic.relname"
            )
        }
    for name, (_table, cols, _unique) in EXPECTED_INDEXES.items():
        assert leading.get(name) == cols, name
    return columns, indexes


async def test_postgresql_builds_the_same_schema_as_sqlite(tmp_path: Path) -> None:
    await (await open_db(tmp_path / "a.db")).close()
    lite_columns, lite_indexes = sqlite_schema(tmp_path / "a.db")
    with fresh_schema() as url:
        await (await Database.open(url, readers=1)).close()
        pg_columns, pg_indexes = postgres_schema(url)
        with psycopg.connect(url) as con:
            applied = [r[0] for r in con.execute("SELECT name FROM schema_migrations ORDER BY 1")]
    assert applied == SHIPPED
    assert pg_columns.pop("media_text_index") == PG_TEXT_INDEX_COLUMNS
    lite_columns.pop("media_text_index")
    assert pg_columns == {t: c for t, c in lite_columns.items() if t not in FTS_ONLY}
    assert pg_indexes - {"media_text_index_words"} == lite_indexes


async def test_postgresql_schema_enforces_enums_and_owner_consistency() -> None:
    with fresh_schema() as url:
        await (await Database.open(url, readers=1)).close()
        with psycopg.connect(url, autocommit=True) as con:
            con.execute(
                "INSERT INTO owners (id, kind, external_id, created_at) VALUES (1, 'user', '1', 0)"
            )
            con.execute(
                "INSERT INTO owners (id, kind, external_id, created_at) VALUES (2, 'user', '2', 0)"
            )
            con.execute(
                "INSERT INTO media (id, owner_id, kind, file_unique_id, created_at) "
                "VALUES (10, 1, 'photo', 'u', 0)"
            )
            for sql in SCHEMA_VIOLATIONS:
                with pytest.raises((psycopg.IntegrityError, psycopg.DataError)):
                    con.execute(sql)


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    """A copy of both backends' files (the SQLite ones at the top, PostgreSQL's beneath)."""
    dst = copy_migrations(tmp_path / "migrations")
    shutil.copytree(PG_DIR, dst / "postgresql")
    return dst


def files_of(backend: str, migrations: Path) -> Path:
    """Where ``backend``'s runner reads its files under a migrations directory."""
    return migrations if backend == "sqlite" else migrations / "postgresql"


async def open_target(database_target: DatabaseTarget, migrations: Path) -> Database:
    return await Database.open(database_target("a.db"), migrations_dir=migrations, readers=1)


async def test_rules_hold_on_both_backends_edited_file(
    backend: str, database_target: DatabaseTarget, migrations_copy: Path
) -> None:
    await (await open_target(database_target, migrations_copy)).close()
    with (files_of(backend, migrations_copy) / "0001_initial.sql").open("a") as f:
        f.write("\n-- sneaky edit\n")
    with pytest.raises(MigrationError, match=r"0001_initial\.sql was edited"):
        await open_target(database_target, migrations_copy)


async def test_rules_hold_on_both_backends_missing_and_out_of_order(
    backend: str, database_target: DatabaseTarget, migrations_copy: Path
) -> None:
    files = files_of(backend, migrations_copy)
    (files / "9003_c.sql").write_text("CREATE TABLE c (a INTEGER);")
    await (await open_target(database_target, migrations_copy)).close()
    (files / "9002_b.sql").write_text("CREATE TABLE b (a INTEGER);")
    with pytest.raises(MigrationError, match=r"9002_b\.sql"):
        await open_target(database_target, migrations_copy)
    (files / "9002_b.sql").unlink()
    (files / "9003_c.sql").unlink()
    with pytest.raises(MigrationError, match=r"9003_c\.sql .* missing"):
        await open_target(database_target, migrations_copy)


async def test_rules_hold_on_both_backends_failing_file_leaves_no_trace(
    backend: str, database_target: DatabaseTarget, migrations_copy: Path
) -> None:
    files = files_of(backend, migrations_copy)
    (files / "9002_bad.sql").write_text(
        "CREATE TABLE half (a INTEGER);\nINSERT INTO nowhere VALUES (1);\n"
    )
    with pytest.raises(MigrationError, match=r"9002_bad\.sql failed.*nowhere"):
        await open_target(database_target, migrations_copy)
    (files / "9002_bad.sql").write_text("CREATE TABLE half (a INTEGER);\n")
    async with await open_target(database_target, migrations_copy) as db, db.read() as conn:
        names = [r[0] for r in await conn.execute_fetchall("SELECT name FROM schema_migrations")]
        assert sorted(names) == [*SHIPPED, "9002_bad.sql"]
        assert await conn.execute_fetchall("SELECT count(*) FROM half") == [(0,)]


async def test_opening_one_fresh_database_twice_at_once_applies_each_file_once(
    database_target: DatabaseTarget,
) -> None:
    target = database_target("a.db")
    first, second = await asyncio.gather(
        Database.open(target, readers=1), Database.open(target, readers=1)
    )
    try:
        async with first.read() as conn:
            rows = await conn.execute_fetchall(
                "SELECT name, count(*) FROM schema_migrations GROUP BY name ORDER BY name"
            )
        assert rows == [(name, 1) for name in SHIPPED]
        owner = await first.owners.ensure("user", 1)
        assert await second.owners.find("user", 1) == owner
    finally:
        await first.close()
        await second.close()
