"""Owner isolation: every method of every OwnerStore repository, called for owner A with owner
B's ids, neither returns nor touches B's rows. The test fails when a public method is added
without a check."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

import pytest

from core.errors import JobStateError, UnknownMediaError, UnknownUnitError
from storage import Database, LocalFile, NewMedia, NewUnit, OwnerStore
from storage.media_filters import MediaFilter
from storage.near_duplicates import PairKey
from tests.storage.conftest import CLIP, RUCLIP, add_photo, add_video, vecs

OWNER_TABLES = ("media", "units", "vectors", "local_files", "jobs", "index_versions",
                "active_models", "media_texts", "near_duplicates")  # fmt: skip


async def snapshot(db: Database, owner_id: int) -> dict[str, list]:
    """Every row owner B has, in every table."""
    async with db.read() as conn:
        rows = {
            t: list(
                await conn.execute_fetchall(f"SELECT * FROM {t} WHERE owner_id = ?", (owner_id,))
            )
            for t in OWNER_TABLES
        }
        rows["owners"] = list(
            await conn.execute_fetchall("SELECT * FROM owners WHERE id = ?", (owner_id,))
        )
    return rows


async def populate(db: Database, store: OwnerStore, tag: str) -> dict:
    photo = await add_photo(store, f"{tag}-photo")
    shared = await add_photo(store, "same-unique-id")  # both owners have this key
    video = await add_video(store, f"{tag}-video", [0.0, 5.0])
    f = LocalFile(f"/{tag}/x.jpg", 1, 1, tag[0] * 64)
    local = await store.media.commit(
        NewMedia("photo", f.file_unique_id, local=f), [NewUnit.image()], {CLIP: vecs(1)}
    )
    await store.profile.update_settings({"language": tag})
    await store.models.set_active({"en": CLIP})
    pending = await store.jobs.enqueue({"owner": tag})
    return {
        "media": [photo.media_id, shared.media_id, video.media_id, local.media_id],
        "units": [*photo.unit_ids, *shared.unit_ids, *video.unit_ids, *local.unit_ids],
        "path": f.path,
        "file": f,
        "pending_job": pending,
    }


async def test_owner_a_can_never_reach_owner_b(db: Database) -> None:
    a = db.owner((await db.owners.ensure("user", 1)).id)
    b = db.owner((await db.owners.ensure("user", 2)).id)
    mine = await populate(db, a, "alice")
    theirs = await populate(db, b, "bob")
    assert await b.texts.put(theirs["media"][0], "ocr", "bob secret")
    running_b = await b.jobs.enqueue({"owner": "bob", "n": 2})
    claimed = await db.queue.claim(10)
    assert running_b in {j.id for j in claimed}
    b_before = await snapshot(db, b.owner_id)
    b_units, b_media = theirs["units"], theirs["media"]

    checks: dict[str, Callable[[], Awaitable[None]]] = {}

    def check(fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        checks[fn.__name__] = fn
        return fn

    @check
    async def profile_info() -> None:
        owner = await a.profile.info()
        assert owner is not None and owner.id == a.owner_id

    @check
    async def profile_settings() -> None:
        assert await a.profile.settings() == {"language": "alice"}

    @check
    async def profile_update_settings() -> None:
        await a.profile.update_settings({"language": "alice"})

    @check
    async def media_get() -> None:
        for m in b_media:
            assert await a.media.get(m) is None

    @check
    async def media_by_ids() -> None:
        assert await a.media.by_ids(b_media) == {}

    @check
    async def media_find() -> None:
        assert await a.media.find("bob-photo") is None
        same = await a.media.find("same-unique-id")
        assert same is not None and same.owner_id == a.owner_id

    @check
    async def media_page() -> None:
        assert {m.owner_id for m in await a.media.page(limit=1000)} == {a.owner_id}

    @check
    async def units_by_ids() -> None:
        assert await a.units.by_ids(b_units) == {}

    @check
    async def units_of_media() -> None:
        for m in b_media:
            assert await a.units.of_media(m) == []

    @check
    async def vectors_index_version() -> None:
        assert await a.vectors.index_version(CLIP) == 4  # a's own four commits, not b's

    @check
    async def vectors_snapshot() -> None:
        snap = await a.vectors.snapshot(CLIP)
        assert set(snap.ids.tolist()) == set(mine["units"])

    @check
    async def vectors_load() -> None:
        ids, _ = await a.vectors.load(RUCLIP)
        assert not set(ids.tolist()) & set(b_units)
        ids, _ = await db.vectors.load_vectors(a.owner_id, CLIP)
        assert set(ids.tolist()) == set(mine["units"])
        assert await db.vectors.index_version(a.owner_id, CLIP) == 4

    @check
    async def vectors_after() -> None:
        top_up = await a.vectors.after(CLIP, 0)
        assert set(top_up.ids.tolist()) == set(mine["units"])
        held = await a.vectors.after(CLIP, max(b_units))
        assert held.held_count == len(mine["units"]) and held.held_sum == sum(mine["units"])

    @check
    async def vectors_of_units() -> None:
        ids, v = await a.vectors.of_units(CLIP, b_units)
        assert ids.size == 0 and v.shape[0] == 0

    @check
    async def vectors_missing() -> None:
        missing = await a.vectors.missing(RUCLIP)  # a's local item has no RUCLIP vector
        assert [w.media.id for w in missing] == [mine["media"][3]]
        assert {w.media.owner_id for w in await a.vectors.missing("other@1")} == {a.owner_id}

    @check
    async def vectors_counts() -> None:
        assert await a.vectors.counts() == {CLIP: 5, RUCLIP: 4}

    @check
    async def models_active() -> None:
        assert await a.models.active() == {"en": CLIP}

    @check
    async def models_set_active() -> None:
        await a.models.set_active({"en": CLIP})

    @check
    async def jobs_get() -> None:
        assert await a.jobs.get(theirs["pending_job"]) is None
        assert await a.jobs.get(running_b) is None

    @check
    async def jobs_all() -> None:
        assert {j.owner_id for j in await a.jobs.all()} == {a.owner_id}

    @check
    async def jobs_counts() -> None:
        assert sum((await a.jobs.counts()).values()) == 1

    @check
    async def jobs_enqueue() -> None:
        job = await a.jobs.get(await a.jobs.enqueue({"x": 1}))
        assert job is not None and job.owner_id == a.owner_id

    @check
    async def jobs_enqueue_many() -> None:
        for job_id in await a.jobs.enqueue_many([{"x": 2}]):
            job = await a.jobs.get(job_id)
            assert job is not None and job.owner_id == a.owner_id

    @check
    async def jobs_finish() -> None:
        with pytest.raises(JobStateError):
            await a.jobs.finish(running_b, media_id=b_media[0])

    @check
    async def jobs_fail() -> None:
        with pytest.raises(JobStateError):
            await a.jobs.fail(running_b, "nope", retry=True)

    @check
    async def media_commit() -> None:
        # B's idempotency key is not a duplicate for A: A gets its own item.
        r = await a.media.commit(NewMedia("photo", "bob-photo"), [NewUnit.image()], {CLIP: vecs(1)})
        assert not r.duplicate and r.media_id not in b_media
        with pytest.raises(JobStateError):
            await a.media.commit(
                NewMedia("photo", "another"), [NewUnit.image()], {CLIP: vecs(1)},
                job_id=running_b,
            )  # fmt: skip

    @check
    async def vectors_add() -> None:
        with pytest.raises(UnknownUnitError):
            await a.vectors.add(CLIP, b_units[:1], vecs(1))
        with pytest.raises(UnknownUnitError):
            await a.vectors.add("new@1", [mine["units"][0], b_units[0]], vecs(2))

    @check
    async def local_files_indexed() -> None:
        assert list(await a.local_files.indexed()) == [mine["path"]]

    @check
    async def local_files_put() -> None:
        with pytest.raises(UnknownMediaError):
            await a.local_files.put(LocalFile("/alice/y.jpg", 1, 1, "c" * 64), b_media[0])

    @check
    async def local_files_remove() -> None:
        result = await a.local_files.remove([theirs["path"]])
        assert result.media_ids == () and result.unit_ids == ()

    @check
    async def media_video_seconds() -> None:
        assert await a.media.video_seconds() == 6.0  # a's own video only (duration 5 + 1)

    @check
    async def stats() -> None:
        s = await a.stats()
        assert s.media_total == 5 and s.units == 6

    @check
    async def texts_put() -> None:
        for m in b_media:
            assert await a.texts.put(m, "ocr", "alice wrote here") is False
        assert await a.texts.put(mine["media"][0], "ocr", "alice secret")

    @check
    async def texts_search() -> None:
        assert [t.media_id for t in await a.texts.search(["secret"])] == [mine["media"][0]]
        assert await a.texts.search(["bob"]) == []
        assert await a.texts.search(["secret"], media_ids=b_media) == []

    @check
    async def texts_of_media() -> None:
        assert await a.texts.of_media(b_media) == {}

    @check
    async def texts_count() -> None:
        assert await a.texts.count() == 1

    @check
    async def filters_media_ids() -> None:
        ids = await a.filters.media_ids(MediaFilter(kinds=("photo", "video")), order="newest")
        assert set(mine["media"]) <= set(await a.filters.media_ids())
        assert ids and not set(ids) & set(b_media)

    @check
    async def filters_count() -> None:
        assert await a.filters.count() == len(await a.filters.media_ids())

    @check
    async def filters_dates() -> None:
        assert await a.filters.dates(b_media) == {}

    @check
    async def filters_units_of() -> None:
        assert await a.filters.units_of(b_media) == []

    @check
    async def near_duplicates_record() -> None:
        # B's pair, another owner's ids, a mixed pair: none of them can be recorded by A.
        assert await a.near_duplicates.record(b_media[0], b_media[1], 0.99) is False
        assert await a.near_duplicates.record(mine["media"][0], b_media[1], 0.99) is False
        assert await a.near_duplicates.record(mine["media"][1], mine["media"][0], 0.98)

    @check
    async def near_duplicates_page() -> None:
        pairs = await a.near_duplicates.page(limit=10)
        assert [(p.copy.id, p.original.id) for p in pairs] == [(mine["media"][1], mine["media"][0])]

    @check
    async def near_duplicates_get() -> None:
        assert await a.near_duplicates.get(PairKey(b_media[0], b_media[1])) is None

    @check
    async def near_duplicates_dismiss() -> None:
        assert await a.near_duplicates.dismiss(PairKey(b_media[0], b_media[1])) is False

    @check
    async def near_duplicates_count() -> None:
        assert await a.near_duplicates.count() == 1

    @check
    async def media_delete() -> None:
        for m in b_media:
            result = await a.media.delete(m)
            assert result.media_ids == () and result.unit_ids == () and result.versions == {}

    @check
    async def media_delete_many() -> None:
        result = await a.media.delete_many([*b_media, mine["media"][0]])
        assert result.media_ids == (mine["media"][0],)
        assert set(result.unit_ids) <= set(mine["units"])

    @check
    async def vectors_delete_model() -> None:
        result = await a.vectors.delete_model(RUCLIP)
        assert not set(result.unit_ids) & set(b_units)

    @check
    async def media_delete_all() -> None:
        await a.media.delete_all()
        assert await a.media.page() == []

    @check
    async def profile_delete() -> None:
        await a.profile.delete()
        assert await a.profile.info() is None

    public = public_methods(a)
    assert set(checks) == public, f"unchecked methods: {public - set(checks)}"

    # Reads and harmless writes first; deletions of A last (dict order is insertion order).
    for name, fn in checks.items():
        await fn()
        assert await snapshot(db, b.owner_id) == b_before, f"{name} touched owner B's rows"
    assert len(b_before["media"]) == 4 and len(b_before["vectors"]) == 9


def public_methods(store: OwnerStore) -> set[str]:
    """``repository_method`` for every public coroutine method of every repository of the
    store (and ``method`` for the store's own), named as the checks above are."""
    names = {n for n, _ in inspect.getmembers(OwnerStore, inspect.iscoroutinefunction)}
    for attr, repo in vars(store).items():
        if attr.startswith("_") or not hasattr(repo, "owner_id"):
            continue
        members = inspect.getmembers(type(repo), inspect.iscoroutinefunction)
        names |= {f"{attr}_{n}" for n, _ in members}
    return {n for n in names if not n.startswith("_") and "__" not in n}
