"""Vector storage: float16 round trip, the VectorSource contract, model change support."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import pytest

from core.errors import IncompleteModelError, UnknownUnitError, VectorError
from storage import Database, NewMedia, NewUnit, OwnerStore
from storage.vectors import decode_vectors, encode_vectors, split_model_id
from tests.storage.conftest import CLIP, DIM, RUCLIP, add_photo, add_video, photo, vecs

NEW = "clip-test@2"


@runtime_checkable
class VectorSource(Protocol):
    async def index_version(self, owner_id: int, model_id: str) -> int: ...

    async def load_vectors(self, owner_id: int, model_id: str) -> tuple[np.ndarray, np.ndarray]: ...


def test_float16_round_trip() -> None:
    v = vecs(50, dim=512, seed=1)
    dim, blobs = encode_vectors(v)
    assert dim == 512 and len(blobs) == 50 and all(len(b) == 1024 for b in blobs)
    back = decode_vectors(blobs, dim)
    assert back.dtype == np.float32 and back.shape == (50, 512) and back.flags.c_contiguous
    np.testing.assert_allclose(back, v, atol=2e-3)
    # Cosine between a vector and its stored copy stays ~1, so rankings do not change.
    assert (np.sum(back * v, axis=1) > 0.9999).all()
    assert blobs[0] == v[0].astype("<f2").tobytes()  # little-endian float16 on disk
    assert decode_vectors([], 7).shape == (0, 7)
    with pytest.raises(VectorError, match="damaged"):
        decode_vectors([blobs[0][:-2]], 512)
    np.testing.assert_array_equal(
        decode_vectors(encode_vectors(v.astype(np.float64))[1], 512), back
    )


def test_model_id_parsing() -> None:
    assert split_model_id("clip-vit-b-32@openai-1") == ("clip-vit-b-32", "openai-1")
    assert split_model_id("m@1@x") == ("m", "1@x")
    for bad in ("clip", "@1", "clip@"):
        with pytest.raises(ValueError):
            split_model_id(bad)


async def test_db_vectors_is_a_vector_source(db: Database, store: OwnerStore) -> None:
    assert isinstance(db.vectors, VectorSource)
    assert await db.vectors.index_version(store.owner_id, CLIP) == 0
    ids, v = await db.vectors.load_vectors(store.owner_id, CLIP)
    assert ids.dtype == np.int64 and ids.shape == (0,) and v.shape == (0, 0)
    photos = [await add_photo(store, f"p{i}", seed=i) for i in range(3)]
    video = await add_video(store, "v", [0.0, 3.0], seed=10)
    ids, v = await db.vectors.load_vectors(store.owner_id, CLIP)
    expected = [u for r in photos for u in r.unit_ids] + list(video.unit_ids)
    assert ids.tolist() == sorted(expected) and v.shape == (5, DIM) and v.dtype == np.float32
    np.testing.assert_allclose(v[:3], np.vstack([vecs(1, seed=i) for i in range(3)]), atol=1e-3)
    assert await db.vectors.index_version(store.owner_id, CLIP) == 4
    snap = await store.vectors.snapshot(RUCLIP)
    assert snap.version == 4 and snap.vectors.shape == (5, 2 * DIM)
    assert snap.ids.tolist() == ids.tolist()


async def test_vectors_for_units(store: OwnerStore) -> None:
    a = await add_photo(store, "a", seed=1)
    b = await add_photo(store, "b", seed=2)
    ids, v = await store.vectors.of_units(CLIP, [b.unit_ids[0], 999_999, a.unit_ids[0]])
    assert ids.tolist() == [a.unit_ids[0], b.unit_ids[0]]
    np.testing.assert_allclose(v, np.vstack([vecs(1, seed=1), vecs(1, seed=2)]), atol=1e-3)
    ids, v = await store.vectors.of_units("unknown@1", a.unit_ids)
    assert ids.size == 0 and v.shape[0] == 0


async def test_register_model_checks_dimension(db: Database, store: OwnerStore) -> None:
    await db.models.register(NEW, 4)
    await db.models.register(NEW, 4)  # idempotent
    with pytest.raises(VectorError, match="dimension 4"):
        await db.models.register(NEW, 5)
    await add_photo(store, "a")
    assert await db.models.dims() == {NEW: 4, CLIP: DIM, RUCLIP: 2 * DIM}


async def test_add_vectors_for_a_new_model(store: OwnerStore) -> None:
    a = await add_photo(store, "a")
    v = await add_video(store, "v", [1.0, 2.0])
    units = [a.unit_ids[0], *v.unit_ids]
    assert await store.vectors.add(NEW, units, vecs(3, dim=4)) == 1
    assert (await store.vectors.load(NEW))[0].tolist() == sorted(units)
    # Replacing is allowed (re-embedding the same model) and bumps the version.
    assert await store.vectors.add(NEW, units[:1], vecs(1, dim=4, seed=5)) == 2
    np.testing.assert_allclose(
        (await store.vectors.of_units(NEW, units[:1]))[1], vecs(1, dim=4, seed=5), atol=1e-3
    )
    assert await store.vectors.counts() == {CLIP: 3, NEW: 3, RUCLIP: 3}
    with pytest.raises(ValueError, match="distinct"):
        await store.vectors.add(NEW, [units[0], units[0]], vecs(2, dim=4))
    with pytest.raises(VectorError):
        await store.vectors.add(NEW, units[:1], vecs(1, dim=5))
    with pytest.raises(VectorError):
        await store.vectors.add(NEW, units[:2], vecs(1, dim=4))


async def test_add_vectors_refuses_unknown_units_atomically(store: OwnerStore) -> None:
    a = await add_photo(store, "a")
    with pytest.raises(UnknownUnitError):
        await store.vectors.add(NEW, [a.unit_ids[0], 999_999], vecs(2, dim=4))
    assert (await store.vectors.load(NEW))[0].size == 0
    assert await store.vectors.index_version(NEW) == 0


async def test_missing_vectors_lists_work_for_re_embedding(db: Database, store: OwnerStore) -> None:
    a = await add_photo(store, "a")
    v = await add_video(store, "v", [0.0, 7.5, 15.0])
    b = await add_photo(store, "b")
    work = await store.vectors.missing(NEW)
    assert [w.media.id for w in work] == [a.media_id, v.media_id, b.media_id]
    assert [u.timestamp for u in work[1].units] == [0.0, 7.5, 15.0]
    assert work[1].media.file_id == "file-v"
    assert await db.owners.missing_vectors(NEW) == [store.owner_id]
    # Half-done video: only the missing frame is listed. Pages by media id.
    await store.vectors.add(NEW, [a.unit_ids[0], *v.unit_ids[:2]], vecs(3, dim=4))
    work = await store.vectors.missing(NEW, limit=1)
    assert [(w.media.id, [u.id for u in w.units]) for w in work] == [(v.media_id, [v.unit_ids[2]])]
    work = await store.vectors.missing(NEW, limit=1, after_media_id=v.media_id)
    assert [w.media.id for w in work] == [b.media_id]
    await store.vectors.add(NEW, [v.unit_ids[2], b.unit_ids[0]], vecs(2, dim=4))
    assert await store.vectors.missing(NEW) == []
    assert await db.owners.missing_vectors(NEW) == []
    assert await db.owners.missing_vectors(CLIP) == []


async def test_active_model_switch_is_atomic_and_guarded(store: OwnerStore) -> None:
    assert await store.models.active() == {}
    await store.models.set_active({"en": CLIP, "ru": RUCLIP})
    a = await add_photo(store, "a")
    await add_video(store, "v", [1.0, 2.0])
    with pytest.raises(IncompleteModelError) as err:
        await store.models.set_active({"ru": RUCLIP, "en": NEW})
    assert err.value.missing == 3 and err.value.model_id == NEW
    assert await store.models.active() == {"en": CLIP, "ru": RUCLIP}
    await store.models.set_active({"en": NEW}, require_complete=False)
    assert await store.models.active() == {"en": NEW, "ru": RUCLIP}
    await store.models.set_active({"en": CLIP})
    ids = [u.id for m in await store.vectors.missing(NEW) for u in m.units]
    await store.vectors.add(NEW, ids, vecs(len(ids), dim=4))
    await store.models.set_active({"en": NEW})
    assert await store.models.active() == {"en": NEW, "ru": RUCLIP}
    removed = await store.vectors.delete_model(CLIP)
    assert removed.by_model[CLIP] == tuple(sorted(ids)) and a.unit_ids[0] in ids
    assert removed.versions == {CLIP: 3} and await store.vectors.index_version(CLIP) == 3
    assert await store.vectors.counts() == {NEW: 3, RUCLIP: 3}
    assert await store.vectors.delete_model(CLIP) == type(removed)()
    with pytest.raises(ValueError):
        await store.models.set_active({"en": "bad"})


async def test_units_map_hits_to_items_and_timestamps(store: OwnerStore) -> None:
    v = await add_video(store, "v", [2.0, 9.0])
    p = await store.media.commit(photo("p"), [NewUnit.image()], {CLIP: vecs(1)})
    hits = await store.units.by_ids([p.unit_ids[0], v.unit_ids[1], 123_456])
    assert set(hits) == {p.unit_ids[0], v.unit_ids[1]}
    assert (hits[v.unit_ids[1]].media_id, hits[v.unit_ids[1]].timestamp) == (v.media_id, 9.0)
    assert (hits[p.unit_ids[0]].media_id, hits[p.unit_ids[0]].timestamp) == (p.media_id, None)
    assert await store.units.by_ids([]) == {}
    assert await store.units.by_ids(np.array(list(v.unit_ids), dtype=np.int64)) != {}


async def test_large_loads_decode_off_the_event_loop(store: OwnerStore) -> None:
    times = [float(t) for t in range(3000)]  # above the inline threshold
    result = await store.media.commit(
        NewMedia("video", "long", duration=3000.0),
        [NewUnit.frame(t) for t in times],
        {CLIP: vecs(3000, seed=7)},
    )
    snap = await store.vectors.snapshot(CLIP)
    assert snap.ids.tolist() == list(result.unit_ids) and snap.version == 1
    np.testing.assert_allclose(snap.vectors, vecs(3000, seed=7), atol=1e-3)
    assert [u.timestamp for u in await store.units.of_media(result.media_id)] == times
