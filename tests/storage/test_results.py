"""Result messages and search sessions: owner-scoped, gone with their item, expiring."""

from __future__ import annotations

import pytest

from storage import Database, OwnerStore
from storage.dbapi import INTEGRITY_ERRORS
from storage.results import RESULT_TTL_S, SESSION_TTL_S, ResultStore
from tests.storage.conftest import Clock, add_photo, add_video


@pytest.fixture
async def other(db: Database) -> OwnerStore:
    owner = await db.owners.ensure("user", 2002)
    return db.owner(owner.id)


async def test_result_messages_resolve_only_for_their_owner(
    db: Database, store: OwnerStore, other: OwnerStore
) -> None:
    mine = await add_photo(store, "a", message_id=7)
    theirs = await add_photo(other, "b", message_id=7)
    video = await add_video(store, "v", [0.0, 3.0])
    results = ResultStore(db, store.owner_id)
    stored = await results.record(
        1001,
        [(50, mine.media_id, mine.unit_ids[0]), (51, video.media_id, video.unit_ids[1])],
    )
    assert stored == 2
    found = await results.result(1001, 51)
    assert found is not None and (found.media_id, found.unit_id) == (
        video.media_id,
        video.unit_ids[1],
    )
    assert await results.result(2002, 50) is None  # another chat
    assert await ResultStore(db, other.owner_id).result(1001, 50) is None  # another owner
    # Another owner's item is never recorded as one of mine.
    assert await results.record(1001, [(52, theirs.media_id, None)]) == 0
    assert await results.result(1001, 52) is None

    saved = await results.media_by_message(7)
    assert saved is not None and saved.id == mine.media_id
    theirs_saved = await ResultStore(db, other.owner_id).media_by_message(7)
    assert theirs_saved is not None and theirs_saved.id == theirs.media_id
    assert await results.media_by_message(8) is None


async def test_result_rows_go_with_their_item(db: Database, store: OwnerStore) -> None:
    item = await add_photo(store, "a")
    results = ResultStore(db, store.owner_id)
    await results.record(1001, [(60, item.media_id, item.unit_ids[0])])
    await store.media.delete(item.media_id)
    assert await results.result(1001, 60) is None
    async with db.read() as conn:
        rows = await conn.execute_fetchall("SELECT count(*) FROM result_messages")
    assert rows[0][0] == 0


async def test_old_result_rows_are_dropped(db: Database, store: OwnerStore, clock: Clock) -> None:
    item = await add_photo(store, "a")
    results = ResultStore(db, store.owner_id)
    await results.record(1001, [(1, item.media_id, None)])
    clock.now += RESULT_TTL_S + 1
    await results.record(1001, [(2, item.media_id, None)])
    assert await results.result(1001, 1) is None
    assert await results.result(1001, 2) is not None


async def test_sessions_are_owner_scoped_and_expire(
    db: Database, store: OwnerStore, other: OwnerStore, clock: Clock
) -> None:
    results = ResultStore(db, store.owner_id)
    text = await results.create_session("text", text="a red car -blue")
    photo = await results.create_session("photo", text="sunset", file_id="AgAC-photo")
    item = await results.create_session("item", media_id=5, unit_id=9)
    assert len({text.id, photo.id, item.id}) == 3
    assert all(0 < s.id < 2**53 for s in (text, photo, item))
    again = await results.session(text.id)
    assert again == text
    assert (await results.session(photo.id)).file_id == "AgAC-photo"  # type: ignore[union-attr]
    assert await ResultStore(db, other.owner_id).session(text.id) is None
    assert await results.session(text.id + 1) is None
    clock.now += SESSION_TTL_S + 1
    assert await results.session(text.id) is None


async def test_session_kinds_need_their_query(db: Database, store: OwnerStore) -> None:
    results = ResultStore(db, store.owner_id)
    with pytest.raises(ValueError):
        await results.create_session("video")  # type: ignore[arg-type]
    with pytest.raises(INTEGRITY_ERRORS):
        await results.create_session("photo", text="no file")
    with pytest.raises(INTEGRITY_ERRORS):
        await results.create_session("item")


async def test_sessions_go_with_their_owner(db: Database, store: OwnerStore) -> None:
    results = ResultStore(db, store.owner_id)
    session = await results.create_session("text", text="cat")
    await store.profile.delete()
    assert await results.session(session.id) is None
