"""Owner isolation: every OwnerStore method, called for owner A with owner B's ids, neither
returns nor touches B's rows. The test fails when a public method is added without a check."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

import pytest

from core.errors import JobStateError, UnknownMediaError, UnknownUnitError
from storage import Database, LocalFile, NewMedia, NewUnit, OwnerStore
from tests.storage.conftest import CLIP, RUCLIP, add_photo, add_video, vecs

OWNER_TABLES = ("media", "units", "vectors", "local_files", "jobs", "index_versions",
                "active_models")  # fmt: skip


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
    local = await store.commit_media(
        NewMedia("photo", f.file_unique_id, local=f), [NewUnit.image()], {CLIP: vecs(1)}
    )
    await store.update_settings({"language": tag})
    await store.set_active_models({"en": CLIP})
    pending = await store.enqueue_job({"owner": tag})
    return {
        "media": [photo.media_id, shared.media_id, video.media_id, local.media_id],
        "units": [*photo.unit_ids, *shared.unit_ids, *video.unit_ids, *local.unit_ids],
        "path": f.path,
        "file": f,
        "pending_job": pending,
    }


async def test_owner_a_can_never_reach_owner_b(db: Database) -> None:
    a = db.owner((await db.ensure_owner("user", 1)).id)
    b = db.owner((await db.ensure_owner("user", 2)).id)
    mine = await populate(db, a, "alice")
    theirs = await populate(db, b, "bob")
    running_b = await b.enqueue_job({"owner": "bob", "n": 2})
    claimed = await db.claim_jobs(10)
    assert running_b in {j.id for j in claimed}
    b_before = await snapshot(db, b.owner_id)
    b_units, b_media = theirs["units"], theirs["media"]

    checks: dict[str, Callable[[], Awaitable[None]]] = {}

    def check(fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        checks[fn.__name__] = fn
        return fn

    @check
    async def info() -> None:
        owner = await a.info()
        assert owner is not None and owner.id == a.owner_id

    @check
    async def settings() -> None:
        assert await a.settings() == {"language": "alice"}

    @check
    async def update_settings() -> None:
        await a.update_settings({"language": "alice"})

    @check
    async def get_media() -> None:
        for m in b_media:
            assert await a.get_media(m) is None

    @check
    async def media_by_ids() -> None:
        assert await a.media_by_ids(b_media) == {}

    @check
    async def find_media() -> None:
        assert await a.find_media("bob-photo") is None
        same = await a.find_media("same-unique-id")
        assert same is not None and same.owner_id == a.owner_id

    @check
    async def list_media() -> None:
        assert {m.owner_id for m in await a.list_media(limit=1000)} == {a.owner_id}

    @check
    async def units() -> None:
        assert await a.units(b_units) == {}

    @check
    async def units_of_media() -> None:
        for m in b_media:
            assert await a.units_of_media(m) == []

    @check
    async def index_version() -> None:
        assert await a.index_version(CLIP) == 4  # a's own four commits, not b's

    @check
    async def vector_snapshot() -> None:
        snap = await a.vector_snapshot(CLIP)
        assert set(snap.ids.tolist()) == set(mine["units"])

    @check
    async def load_vectors() -> None:
        ids, _ = await a.load_vectors(RUCLIP)
        assert not set(ids.tolist()) & set(b_units)
        ids, _ = await db.load_vectors(a.owner_id, CLIP)
        assert set(ids.tolist()) == set(mine["units"])
        assert await db.index_version(a.owner_id, CLIP) == 4

    @check
    async def vectors_for_units() -> None:
        ids, v = await a.vectors_for_units(CLIP, b_units)
        assert ids.size == 0 and v.shape[0] == 0

    @check
    async def missing_vectors() -> None:
        missing = await a.missing_vectors(RUCLIP)  # a's local item has no RUCLIP vector
        assert [w.media.id for w in missing] == [mine["media"][3]]
        assert {w.media.owner_id for w in await a.missing_vectors("other@1")} == {a.owner_id}

    @check
    async def vector_counts() -> None:
        assert await a.vector_counts() == {CLIP: 5, RUCLIP: 4}

    @check
    async def active_models() -> None:
        assert await a.active_models() == {"en": CLIP}

    @check
    async def set_active_models() -> None:
        await a.set_active_models({"en": CLIP})

    @check
    async def get_job() -> None:
        assert await a.get_job(theirs["pending_job"]) is None
        assert await a.get_job(running_b) is None

    @check
    async def jobs() -> None:
        assert {j.owner_id for j in await a.jobs()} == {a.owner_id}

    @check
    async def job_counts() -> None:
        assert sum((await a.job_counts()).values()) == 1

    @check
    async def enqueue_job() -> None:
        job = await a.get_job(await a.enqueue_job({"x": 1}))
        assert job is not None and job.owner_id == a.owner_id

    @check
    async def enqueue_jobs() -> None:
        for job_id in await a.enqueue_jobs([{"x": 2}]):
            job = await a.get_job(job_id)
            assert job is not None and job.owner_id == a.owner_id

    @check
    async def finish_job() -> None:
        with pytest.raises(JobStateError):
            await a.finish_job(running_b, media_id=b_media[0])

    @check
    async def fail_job() -> None:
        with pytest.raises(JobStateError):
            await a.fail_job(running_b, "nope", retry=True)

    @check
    async def commit_media() -> None:
        # B's idempotency key is not a duplicate for A: A gets its own item.
        r = await a.commit_media(NewMedia("photo", "bob-photo"), [NewUnit.image()], {CLIP: vecs(1)})
        assert not r.duplicate and r.media_id not in b_media
        with pytest.raises(JobStateError):
            await a.commit_media(
                NewMedia("photo", "another"), [NewUnit.image()], {CLIP: vecs(1)},
                job_id=running_b,
            )  # fmt: skip

    @check
    async def add_vectors() -> None:
        with pytest.raises(UnknownUnitError):
            await a.add_vectors(CLIP, b_units[:1], vecs(1))
        with pytest.raises(UnknownUnitError):
            await a.add_vectors("new@1", [mine["units"][0], b_units[0]], vecs(2))

    @check
    async def local_files() -> None:
        assert list(await a.local_files()) == [mine["path"]]

    @check
    async def put_local_file() -> None:
        with pytest.raises(UnknownMediaError):
            await a.put_local_file(LocalFile("/alice/y.jpg", 1, 1, "c" * 64), b_media[0])

    @check
    async def remove_local_files() -> None:
        result = await a.remove_local_files([theirs["path"]])
        assert result.media_ids == () and result.unit_ids == ()

    @check
    async def stats() -> None:
        s = await a.stats()
        assert s.media_total == 5 and s.units == 6

    @check
    async def delete_media() -> None:
        for m in b_media:
            result = await a.delete_media(m)
            assert result.media_ids == () and result.unit_ids == () and result.versions == {}

    @check
    async def delete_media_many() -> None:
        result = await a.delete_media_many([*b_media, mine["media"][0]])
        assert result.media_ids == (mine["media"][0],)
        assert set(result.unit_ids) <= set(mine["units"])

    @check
    async def delete_model_vectors() -> None:
        result = await a.delete_model_vectors(RUCLIP)
        assert not set(result.unit_ids) & set(b_units)

    @check
    async def delete_all_media() -> None:
        await a.delete_all_media()
        assert await a.list_media() == []

    @check
    async def delete_owner() -> None:
        await a.delete_owner()
        assert await a.info() is None

    public = {
        name
        for name, fn in inspect.getmembers(OwnerStore, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }
    assert set(checks) == public, f"unchecked methods: {public - set(checks)}"

    # Reads and harmless writes first; deletions of A last (dict order is insertion order).
    for name, fn in checks.items():
        await fn()
        assert await snapshot(db, b.owner_id) == b_before, f"{name} touched owner B's rows"
    assert len(b_before["media"]) == 4 and len(b_before["vectors"]) == 9
