"""Items, units and vectors: commit, duplicates, atomicity, reads and deletion."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from core.errors import JobStateError, UnknownOwnerError, VectorError
from storage import Database, NewMedia, NewUnit, OwnerStore, owner_media
from tests.storage.conftest import CLIP, DIM, RUCLIP, add_photo, add_video, photo, vecs


async def row_counts(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        return {
            t: (await conn.execute_fetchall(f"SELECT count(*) FROM {t}"))[0][0]
            for t in ("media", "units", "vectors", "local_files")
        }


async def test_commit_photo_stores_item_unit_and_vectors(store: OwnerStore) -> None:
    v_clip, v_ru = vecs(1, seed=3), vecs(1, dim=16, seed=4)
    media = NewMedia(
        "photo", "AQADuid", file_id="AgACfile", size=12345, width=800, height=600,
        caption="at the sea", forward_origin="channel:@travel", message_id=77,
        message_date=1_699_999_000, album_id="13579",
    )  # fmt: skip
    result = await store.media.commit(media, [NewUnit.image()], {CLIP: v_clip, RUCLIP: v_ru})
    assert not result.duplicate and len(result.unit_ids) == 1
    assert result.versions == {CLIP: 1, RUCLIP: 1}

    got = await store.media.get(result.media_id)
    assert got is not None
    assert (got.kind, got.status, got.file_unique_id, got.file_id) == (
        "photo", "ready", "AQADuid", "AgACfile"
    )  # fmt: skip
    assert (got.size, got.width, got.height, got.caption) == (12345, 800, 600, "at the sea")
    assert (got.forward_origin, got.message_id, got.message_date, got.album_id) == (
        "channel:@travel", 77, 1_699_999_000, "13579"
    )  # fmt: skip
    assert got.owner_id == store.owner_id and got.path is None and got.created_at > 0
    (unit,) = await store.units.of_media(result.media_id)
    assert (unit.id, unit.kind, unit.timestamp) == (result.unit_ids[0], "image", None)
    ids, vectors = await store.vectors.load(CLIP)
    assert ids.tolist() == list(result.unit_ids) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, v_clip, atol=1e-3)
    assert (await store.vectors.load(RUCLIP))[1].shape == (1, 16)


async def test_file_name_and_taken_at_are_stored_and_read_back(store: OwnerStore) -> None:
    media = NewMedia(
        "document", "doc1", file_id="f", file_name="IMG_0042.HEIC", taken_at=1_650_000_000
    )
    result = await store.media.commit(media, [NewUnit.image()], {CLIP: vecs(1)})
    for got in (
        await store.media.get(result.media_id),
        await store.media.find("doc1"),
        (await store.media.page())[0],
    ):
        assert got is not None
        assert (got.file_name, got.taken_at) == ("IMG_0042.HEIC", 1_650_000_000)
    plain = await store.media.get((await add_photo(store, "plain")).media_id)
    assert plain is not None and (plain.file_name, plain.taken_at) == (None, None)


async def test_video_frames_keep_order_and_timestamps(store: OwnerStore) -> None:
    times = [0.0, 4.5, 12.25, 30.0]
    result = await add_video(store, "vid", times)
    units = await store.units.of_media(result.media_id)
    assert [u.id for u in units] == list(result.unit_ids)
    assert [(u.kind, u.timestamp) for u in units] == [("frame", t) for t in times]
    mapped = await store.units.by_ids(reversed(result.unit_ids))
    assert {u.timestamp for u in mapped.values()} == set(times)
    assert {u.media_id for u in mapped.values()} == {result.media_id}


async def test_thumbnail_only_video_is_marked(store: OwnerStore) -> None:
    result = await store.media.commit(
        NewMedia("video", "big", file_id="f", size=3_000_000_000),
        [NewUnit.thumbnail()],
        {CLIP: vecs(1)},
    )
    media = await store.media.get(result.media_id)
    assert media is not None and media.status == "thumbnail"
    assert [u.kind for u in await store.units.of_media(result.media_id)] == ["thumbnail"]
    assert (await store.stats()).thumbnail_only == 1


async def test_duplicate_returns_existing_item_and_changes_nothing(
    db: Database, store: OwnerStore
) -> None:
    first = await add_photo(store, "same")
    before = await row_counts(db)
    again = await store.media.commit(photo("same"), [NewUnit.image()], {CLIP: vecs(1, seed=9)})
    assert again.duplicate and again.media_id == first.media_id
    assert again.unit_ids == () and again.versions == {}
    assert await row_counts(db) == before
    assert await store.vectors.index_version(CLIP) == 1


async def test_concurrent_commits_of_one_item_store_it_once(
    db: Database, store: OwnerStore
) -> None:
    results = await asyncio.gather(*(add_photo(store, "race", seed=i) for i in range(5)))
    assert sum(not r.duplicate for r in results) == 1
    assert len({r.media_id for r in results}) == 1
    assert (await row_counts(db))["media"] == 1


async def test_concurrent_commits_are_serialised(store: OwnerStore) -> None:
    results = await asyncio.gather(*(add_photo(store, f"p{i}", seed=i) for i in range(20)))
    assert sorted(r.versions[CLIP] for r in results) == list(range(1, 21))
    assert await store.vectors.index_version(CLIP) == 20
    assert len((await store.vectors.load(CLIP))[0]) == 20


@pytest.mark.parametrize(
    ("units", "vectors", "error"),
    [
        ([], {CLIP: vecs(0)}, ValueError),
        ([NewUnit.image()], {CLIP: vecs(2)}, VectorError),  # one row per unit
        ([NewUnit.image()], {CLIP: np.full((1, DIM), np.nan, np.float32)}, VectorError),
        ([NewUnit.image()], {CLIP: np.full((1, DIM), 1e6, np.float32)}, VectorError),
        ([NewUnit.image()], {CLIP: np.ones(DIM, np.float32)}, VectorError),  # not 2-D
        ([NewUnit.image()], {CLIP: np.ones((1, DIM), np.int64)}, VectorError),
        ([NewUnit.image()], {"no-version": vecs(1)}, ValueError),
    ],
)
async def test_invalid_input_is_refused_before_writing(
    db: Database, store: OwnerStore, units, vectors, error
) -> None:
    with pytest.raises(error):
        await store.media.commit(photo("x"), units, vectors)
    assert await row_counts(db) == {"media": 0, "units": 0, "vectors": 0, "local_files": 0}


def test_new_records_validate() -> None:
    with pytest.raises(ValueError):
        NewMedia("sticker", "u")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        NewMedia("photo", "")
    with pytest.raises(ValueError):
        NewUnit("frame")
    with pytest.raises(ValueError):
        NewUnit.frame(-1)
    with pytest.raises(ValueError):
        NewUnit("image", 2.0)
    with pytest.raises(ValueError):
        NewUnit("gif")  # type: ignore[arg-type]


async def test_failure_mid_commit_leaves_nothing(db: Database, store: OwnerStore) -> None:
    """The item, its units and the first model's vectors are written before the second model
    turns out to have the wrong dimension: all of it must roll back, and the job stay running."""
    await db.models.register(RUCLIP, 16)
    await add_photo(store, "existing")
    before = await row_counts(db)
    (job_id,) = await store.jobs.enqueue_many([{"file_unique_id": "new"}])
    await db.queue.claim(10)
    with pytest.raises(VectorError, match="dimension 16"):
        await store.media.commit(
            photo("new"), [NewUnit.image()], {CLIP: vecs(1), RUCLIP: vecs(1, dim=DIM)},
            job_id=job_id,
        )  # fmt: skip
    assert await row_counts(db) == before
    assert await store.media.find("new") is None
    assert await store.vectors.index_version(CLIP) == 1
    job = await store.jobs.get(job_id)
    assert job is not None and job.state == "running"
    # The connection is usable afterwards.
    assert not (await add_photo(store, "new")).duplicate


async def test_crash_at_the_last_step_leaves_nothing(
    db: Database, store: OwnerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage import LocalFile

    async def boom(*args: object, **kw: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(owner_media, "put_local_row", boom)
    local = LocalFile("a.jpg", 10, 1, "0" * 64)
    with pytest.raises(RuntimeError, match="disk full"):
        await store.media.commit(
            NewMedia("photo", local.file_unique_id, local=local), [NewUnit.image()],
            {CLIP: vecs(1)},
        )  # fmt: skip
    assert await row_counts(db) == {"media": 0, "units": 0, "vectors": 0, "local_files": 0}
    assert await store.vectors.index_version(CLIP) == 0


async def test_cancelled_commit_rolls_back(
    db: Database, store: OwnerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = asyncio.Event()
    original = owner_media.bump_version

    async def slow_bump(conn: object, owner_id: int, key: int) -> int:
        gate.set()
        await asyncio.Event().wait()  # never returns: the task is cancelled here
        return await original(conn, owner_id, key)  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        patch.setattr(owner_media, "bump_version", slow_bump)
        task = asyncio.create_task(add_photo(store, "cancel-me"))
        await gate.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await row_counts(db) == {"media": 0, "units": 0, "vectors": 0, "local_files": 0}
    assert not (await add_photo(store, "after")).duplicate


async def test_reads_do_not_see_an_uncommitted_write(db: Database, store: OwnerStore) -> None:
    await add_photo(store, "a")
    async with db.write() as conn:
        await conn.execute("DELETE FROM media WHERE owner_id = ?", (store.owner_id,))
        # A reader is not blocked by the open write and sees the last committed state.
        assert len(await store.media.page()) == 1
    assert await store.media.page() == []


async def test_media_reads(store: OwnerStore) -> None:
    ids = [(await add_photo(store, f"p{i}", seed=i)).media_id for i in range(5)]
    assert set(await store.media.by_ids([ids[1], ids[3], 999_999])) == {ids[1], ids[3]}
    found = await store.media.find("p2")
    assert found is not None and found.id == ids[2]
    assert await store.media.find("nope") is None
    assert await store.media.get(999_999) is None
    page1 = await store.media.page(limit=2)
    page2 = await store.media.page(limit=2, before_id=page1[-1].id)
    page3 = await store.media.page(limit=2, before_id=page2[-1].id)
    assert [m.id for m in page1 + page2 + page3] == ids[::-1]


async def test_delete_media_removes_rows_and_reports_units(db: Database, store: OwnerStore) -> None:
    keep = await add_photo(store, "keep")
    video = await add_video(store, "vid", [0.0, 5.0, 10.0])
    result = await store.media.delete(video.media_id)
    assert result.media_ids == (video.media_id,)
    assert result.unit_ids == video.unit_ids
    assert result.by_model == {CLIP: video.unit_ids, RUCLIP: video.unit_ids}
    assert result.versions == {CLIP: 3, RUCLIP: 3}
    assert await store.vectors.index_version(CLIP) == 3
    assert await store.media.get(video.media_id) is None
    assert await store.units.by_ids(video.unit_ids) == {}
    assert (await store.vectors.load(CLIP))[0].tolist() == list(keep.unit_ids)
    assert await row_counts(db) == {"media": 1, "units": 1, "vectors": 2, "local_files": 0}
    # Deleting again (or an unknown id) is a no-op that bumps nothing.
    again = await store.media.delete(video.media_id)
    assert again.media_ids == () and again.versions == {}
    assert await store.vectors.index_version(CLIP) == 3


async def test_delete_media_many(store: OwnerStore) -> None:
    a, b, c = [await add_photo(store, u) for u in "abc"]
    result = await store.media.delete_many([a.media_id, c.media_id])
    assert result.media_ids == tuple(sorted([a.media_id, c.media_id]))
    assert result.by_model[CLIP] == a.unit_ids + c.unit_ids
    assert [m.id for m in await store.media.page()] == [b.media_id]


async def test_delete_all_media_keeps_owner_and_settings(db: Database, store: OwnerStore) -> None:
    await store.profile.update_settings({"language": "ru"})
    await add_photo(store, "a")
    await add_video(store, "v", [1.0, 2.0])
    await store.jobs.enqueue({"file_unique_id": "pending"})
    result = await store.media.delete_all()
    assert result.media_count == 2
    assert result.models == (CLIP, RUCLIP)
    assert result.versions == {CLIP: 3, RUCLIP: 3}
    assert await row_counts(db) == {"media": 0, "units": 0, "vectors": 0, "local_files": 0}
    assert await store.jobs.all() == []
    assert await store.profile.settings() == {"language": "ru"}
    assert await store.vectors.index_version(CLIP) == 3
    assert not (await add_photo(store, "a")).duplicate  # starts afresh


async def test_delete_owner_forgets_everything(db: Database, store: OwnerStore) -> None:
    await add_photo(store, "a")
    await store.jobs.enqueue({"x": 1})
    await store.models.set_active({"en": CLIP})
    result = await store.profile.delete()
    assert result.media_count == 1 and result.models == (CLIP, RUCLIP)
    assert await store.profile.info() is None
    assert await row_counts(db) == {"media": 0, "units": 0, "vectors": 0, "local_files": 0}
    async with db.read() as conn:
        for table in ("jobs", "index_versions", "active_models"):
            assert (await conn.execute_fetchall(f"SELECT count(*) FROM {table}"))[0][0] == 0
    again = await db.owners.ensure("user", 1001)
    assert again.id != store.owner_id  # ids are never reused
    with pytest.raises(UnknownOwnerError):
        await add_photo(store, "b")


async def test_writes_for_unknown_owner_are_refused(db: Database) -> None:
    ghost = db.owner(424242)
    with pytest.raises(UnknownOwnerError):
        await add_photo(ghost, "a")
    with pytest.raises(UnknownOwnerError):
        await ghost.jobs.enqueue({})
    with pytest.raises(UnknownOwnerError):
        await ghost.profile.update_settings({"a": 1})
    with pytest.raises(UnknownOwnerError):
        await ghost.models.set_active({"en": CLIP})
    assert await ghost.profile.settings() == {} and await ghost.media.page() == []


async def test_job_cancelled_while_running_stores_nothing(db: Database, store: OwnerStore) -> None:
    job_id = await store.jobs.enqueue({"file_unique_id": "late"})
    await db.queue.claim(1)
    await store.media.delete_all()  # the user deleted everything while the worker embedded
    with pytest.raises(JobStateError, match="no longer exists"):
        await store.media.commit(photo("late"), [NewUnit.image()], {CLIP: vecs(1)}, job_id=job_id)
    assert await store.media.find("late") is None


async def test_a_caption_with_a_nul_character_is_saved_on_both_backends(db: Database) -> None:
    """PostgreSQL refuses NUL in text; the item must still be saved (the NUL replaced)."""
    owner = await db.owners.ensure("user", 4242)
    store = db.owner(owner.id)
    result = await add_photo(store, "nul", caption="кот\x00окно")
    media = await store.media.get(result.media_id)
    assert media is not None and media.caption is not None
    assert media.caption.replace("\ufffd", "\x00") == "кот\x00окно"
