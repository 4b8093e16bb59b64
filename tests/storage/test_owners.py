"""Owners, their settings and statistics; connection set-up."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from storage import Database, NewMedia, NewUnit, OwnerStore, default_database_path
from storage.postgres import PgConn, PgConnections
from tests.storage.conftest import CLIP, RUCLIP, add_photo, add_video, vecs


async def test_ensure_owner_is_idempotent_and_kinds_are_separate(db: Database) -> None:
    user = await db.owners.ensure("user", 555)
    assert (user.kind, user.external_id, user.settings) == ("user", "555", {})
    assert await db.owners.ensure("user", "555") == user
    chat = await db.owners.ensure("chat", 555)
    assert chat.id != user.id
    local = await db.owners.ensure("local", "default")
    assert await db.owners.find("local", "default") == local
    assert await db.owners.find("user", 556) is None
    assert await db.owners.get(chat.id) == chat
    assert await db.owners.get(999) is None
    assert await db.owners.ids() == [user.id, chat.id, local.id]
    assert await db.owners.ids(after=user.id, limit=1) == [chat.id]
    with pytest.raises(ValueError):
        await db.owners.ensure("bot", 1)  # type: ignore[arg-type]


async def test_a_group_that_became_a_supergroup_keeps_its_collection(db: Database) -> None:
    group = await db.owners.ensure("chat", -100)
    await add_photo(db.owner(group.id), "a")
    await db.owner(group.id).profile.update_settings({"language": "ru"})
    # The bot saw the new chat first: an empty owner there is replaced.
    await db.owners.ensure("chat", -1001)
    moved = await db.owners.move("chat", -100, -1001)
    assert moved is not None and moved.id == group.id and moved.external_id == "-1001"
    assert moved.settings == {"language": "ru"}
    assert await db.owners.find("chat", -100) is None
    assert (await db.owner(group.id).stats()).media_total == 1
    # Moving again (the second service message) or from nowhere changes nothing.
    assert await db.owners.move("chat", -100, -1001) is None
    assert await db.owners.find("chat", -1001) == moved


async def test_moving_an_owner_never_overwrites_a_collection(db: Database) -> None:
    old = await db.owners.ensure("chat", -100)
    new = await db.owners.ensure("chat", -1001)
    await add_photo(db.owner(new.id), "b")
    assert await db.owners.move("chat", -100, -1001) is None
    assert await db.owners.find("chat", -100) == old
    assert await db.owners.find("chat", -1001) == new
    # Queued work counts as something held, too.
    other = await db.owners.ensure("chat", -200)
    await db.owner(other.id).jobs.enqueue_many([{}])
    assert await db.owners.move("chat", -100, -200) is None


async def test_settings_merge_and_remove_keys(store: OwnerStore) -> None:
    assert await store.profile.settings() == {}
    assert await store.profile.update_settings({"results_per_page": 10, "language": "ru"}) == {
        "results_per_page": 10,
        "language": "ru",
    }
    await store.profile.update_settings({"strictness": "strict", "language": None})
    assert await store.profile.settings() == {"results_per_page": 10, "strictness": "strict"}
    info = await store.profile.info()
    assert info is not None and info.settings == await store.profile.settings()


async def test_stats(db: Database, store: OwnerStore) -> None:
    await add_photo(store, "a")
    await add_photo(store, "b")
    await add_video(store, "v", [0.0, 1.0, 2.0])
    await store.media.commit(NewMedia("animation", "gif"), [NewUnit.frame(0.0)], {CLIP: vecs(1)})
    await store.media.commit(NewMedia("video_note", "note"), [NewUnit.thumbnail()], {CLIP: vecs(1)})
    await store.jobs.enqueue_many([{}, {}])
    await db.queue.claim(1)
    stats = await store.stats()
    assert stats.media_by_kind == {"photo": 2, "video": 1, "animation": 1, "video_note": 1}
    assert stats.media_total == 5 and stats.units == 7 and stats.thumbnail_only == 1
    assert stats.vectors_by_model == {CLIP: 7, RUCLIP: 5}
    assert stats.jobs_by_state == {"pending": 1, "running": 1}
    assert await store.vectors.counts() == stats.vectors_by_model


async def test_connections_are_configured(db: Database) -> None:
    if db.dialect == "postgresql":
        await _check_postgres_connections(db)
        return
    async with db.write() as conn:
        assert (await conn.execute_fetchall("PRAGMA foreign_keys"))[0][0] == 1
        assert (await conn.execute_fetchall("PRAGMA journal_mode"))[0][0] == "wal"
        assert (await conn.execute_fetchall("PRAGMA synchronous"))[0][0] == 1  # NORMAL
        assert (await conn.execute_fetchall("PRAGMA busy_timeout"))[0][0] == 5000
    async with db.read() as conn:
        assert (await conn.execute_fetchall("PRAGMA foreign_keys"))[0][0] == 1
        assert (await conn.execute_fetchall("PRAGMA query_only"))[0][0] == 1


async def _check_postgres_connections(db: Database) -> None:
    """The writer is in a read-write transaction of the URL's schema; readers cannot write."""
    assert isinstance(db.connections, PgConnections)
    schema = db.connections.schema
    async with db.write() as conn:
        assert (await conn.execute_fetchall("SELECT current_schema()"))[0][0] == schema
        assert (await conn.execute_fetchall("SHOW transaction_read_only"))[0][0] == "off"
        assert isinstance(conn, PgConn)
        status = conn.raw.info.transaction_status
        assert status == psycopg.pq.TransactionStatus.INTRANS
    for snapshot in (False, True):
        async with db.read(snapshot=snapshot) as conn:
            assert (await conn.execute_fetchall("SELECT current_schema()"))[0][0] == schema
            assert (await conn.execute_fetchall("SHOW transaction_read_only"))[0][0] == "on"
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                await conn.execute("DELETE FROM owners")


async def test_open_validates_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        await Database.open(":memory:")
    with pytest.raises(ValueError):
        await Database.open(tmp_path / "x.db", readers=0)
    path = default_database_path(tmp_path / "data")
    async with await Database.open(path) as db:
        assert db.path == path and path.exists()
    await db.close()  # closing twice is harmless
