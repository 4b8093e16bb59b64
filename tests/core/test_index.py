"""Per owner x model FAISS indexes: correctness, persistence, recovery, memory bound, ANN mode."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from core.errors import IndexFileError, VectorIndexError
from core.index.file_format import index_path, read_index_file
from core.index.manager import IndexManager
from core.index.owner_index import OwnerIndex
from core.index.tuning import choose_nlist
from core.index.versions import MAX_AHEAD, VersionTracker
from core.settings import IndexSettings

MODEL = "clip-vit-b-32@1.0"
OTHER_MODEL = "ruclip/vit-b-32-384@2"
DIM = 64


class FakeSource:
    """In-memory stand-in for SQLite: vectors stored as float16, one version per commit."""

    def __init__(self) -> None:
        self.vectors: dict[tuple[int, str], dict[int, np.ndarray]] = {}
        self.versions: dict[tuple[int, str], int] = {}
        self.load_calls = 0
        self.gate: asyncio.Event | None = None
        self.during_load: list[Callable[[], object]] = []  # commits racing with a load

    def commit_add(self, owner: int, model: str, ids: np.ndarray, vecs: np.ndarray) -> int:
        rows = self.vectors.setdefault((owner, model), {})
        for i, v in zip(ids.tolist(), vecs, strict=True):
            rows[int(i)] = np.asarray(v, dtype=np.float16)
        return self._bump(owner, model)

    def commit_remove(self, owner: int, model: str, ids: np.ndarray) -> int:
        rows = self.vectors.setdefault((owner, model), {})
        for i in ids.tolist():
            rows.pop(int(i), None)
        return self._bump(owner, model)

    def _bump(self, owner: int, model: str) -> int:
        key = (owner, model)
        self.versions[key] = self.versions.get(key, 0) + 1
        return self.versions[key]

    async def index_version(self, owner_id: int, model_id: str) -> int:
        return self.versions.get((owner_id, model_id), 0)

    async def load_vectors(self, owner_id: int, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        self.load_calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.during_load:
            self.during_load.pop(0)()
        rows = self.vectors.get((owner_id, model_id), {})
        ids = np.array(sorted(rows), dtype=np.int64)
        if not len(ids):
            return ids, np.zeros((0, DIM), dtype=np.float32)
        return ids, np.stack([rows[i] for i in ids.tolist()]).astype(np.float32)


def clustered(n: int, seed: int, *, centers: int = 40, dim: int = DIM) -> np.ndarray:
    """Mixture of Gaussians in a 16-d subspace of ``dim`` plus noise, normalised (ANN-like data)."""
    rng = np.random.default_rng(1234)  # the same mixture for data and queries
    basis = np.linalg.qr(rng.standard_normal((dim, 16)))[0].T
    mids = rng.standard_normal((centers, 16))
    rs = np.random.default_rng(seed)
    z = mids[rs.integers(0, centers, n)] + 0.8 * rs.standard_normal((n, 16))
    x = z @ basis + 0.05 * rs.standard_normal((n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def ids_of(hits: list[tuple[int, float]]) -> list[int]:
    return [i for i, _ in hits]


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


def manager(source: FakeSource, tmp_path: Path, **kw: object) -> IndexManager:
    return IndexManager(source, tmp_path / "indexes", **kw)  # type: ignore[arg-type]


async def ingest(
    mgr: IndexManager, src: FakeSource, owner: int, ids: np.ndarray, vecs: np.ndarray
) -> int:
    """Commit then add, as the ingest pipeline does."""
    version = src.commit_add(owner, MODEL, ids, vecs)
    await mgr.add(owner, MODEL, ids, vecs, version)
    return version


# --- basic behaviour ----------------------------------------------------------------------------


async def test_add_search_remove(source: FakeSource, tmp_path: Path) -> None:
    mgr = manager(source, tmp_path)
    vecs = clustered(300, seed=1)
    ids = np.arange(1000, 1300, dtype=np.int64)
    await ingest(mgr, source, 1, ids, vecs)

    hits = (await mgr.search(1, MODEL, vecs[17], 5))[0]
    assert hits[0][0] == 1017
    assert hits[0][1] == pytest.approx(1.0, abs=2e-3)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)

    gone = np.array([1017, 1018], dtype=np.int64)
    version = source.commit_remove(1, MODEL, gone)
    await mgr.remove(1, MODEL, gone, version)
    hits = (await mgr.search(1, MODEL, vecs[17], 300))[0]
    assert 1017 not in ids_of(hits) and 1018 not in ids_of(hits)
    idx = await mgr.get(1, MODEL)
    assert idx.ntotal == 298 and idx.version == 2 and not idx.approximate


async def test_batch_queries_and_normalisation(source: FakeSource, tmp_path: Path) -> None:
    mgr = manager(source, tmp_path)
    vecs = clustered(50, seed=2)
    await ingest(mgr, source, 1, np.arange(50, dtype=np.int64), vecs * 7.0)  # not unit length
    results = await mgr.search(1, MODEL, vecs[[3, 4, 5]] * 0.5, 1)
    assert [r[0][0] for r in results] == [3, 4, 5]
    assert all(r[0][1] == pytest.approx(1.0, abs=2e-3) for r in results)


async def test_no_minus_one_padding_when_k_exceeds_ntotal(
    source: FakeSource, tmp_path: Path
) -> None:
    mgr = manager(source, tmp_path)
    vecs = clustered(3, seed=3)
    await ingest(mgr, source, 1, np.array([5, 6, 7], dtype=np.int64), vecs)
    (hits,) = await mgr.search(1, MODEL, vecs[0], 10)
    assert sorted(ids_of(hits)) == [5, 6, 7]
    assert all(i >= 0 for i in ids_of(hits))


async def test_empty_owner_searches_to_nothing_then_grows(
    source: FakeSource, tmp_path: Path
) -> None:
    mgr = manager(source, tmp_path)
    assert await mgr.search(9, MODEL, np.ones(DIM, dtype=np.float32), 10) == [[]]
    vecs = clustered(4, seed=4)
    await ingest(mgr, source, 9, np.arange(4, dtype=np.int64), vecs)
    assert ids_of((await mgr.search(9, MODEL, vecs[2], 1))[0]) == [2]


async def test_wrong_query_dimension_is_a_typed_error(source: FakeSource, tmp_path: Path) -> None:
    mgr = manager(source, tmp_path)
    await ingest(mgr, source, 1, np.arange(5, dtype=np.int64), clustered(5, seed=5))
    with pytest.raises(VectorIndexError):
        await mgr.search(1, MODEL, np.ones(DIM + 1, dtype=np.float32), 3)


async def test_owner_isolation(source: FakeSource, tmp_path: Path) -> None:
    mgr = manager(source, tmp_path)
    vecs = clustered(200, seed=6)
    await ingest(mgr, source, 1, np.arange(0, 100, dtype=np.int64), vecs[:100])
    await ingest(mgr, source, 2, np.arange(100, 200, dtype=np.int64), vecs[100:])
    # Owner B's own vectors as queries: owner A must still only ever see A's ids.
    for hits in await mgr.search(1, MODEL, vecs[100:], 50):
        assert hits and all(0 <= i < 100 for i in ids_of(hits))
    for hits in await mgr.search(2, MODEL, vecs[:100], 50):
        assert hits and all(100 <= i < 200 for i in ids_of(hits))
    # And models of one owner are separate indexes too.
    assert await mgr.search(1, OTHER_MODEL, vecs[0], 5) == [[]]


# --- versions -----------------------------------------------------------------------------------


async def test_operation_already_reflected_is_not_applied_twice(
    source: FakeSource, tmp_path: Path
) -> None:
    mgr = manager(source, tmp_path)
    vecs = clustered(10, seed=7)
    ids = np.arange(10, dtype=np.int64)
    version = source.commit_add(1, MODEL, ids, vecs)
    await mgr.get(1, MODEL)  # loads after the commit: already has the vectors
    await mgr.add(1, MODEL, ids, vecs, version)
    idx = await mgr.get(1, MODEL)
    assert idx.ntotal == 10
    assert source.load_calls == 1


async def test_out_of_order_operations_keep_a_contiguous_version(
    source: FakeSource, tmp_path: Path
) -> None:
    mgr = manager(source, tmp_path)
    vecs = clustered(30, seed=8)
    await mgr.get(1, MODEL)
    v1 = source.commit_add(1, MODEL, np.arange(0, 10, dtype=np.int64), vecs[:10])
    v2 = source.commit_add(1, MODEL, np.arange(10, 20, dtype=np.int64), vecs[10:20])
    await mgr.add(1, MODEL, np.arange(10, 20, dtype=np.int64), vecs[10:20], v2)
    idx = await mgr.get(1, MODEL)
    assert idx.version == 0 and idx.pending_versions == {v2} and idx.ntotal == 10
    await mgr.add(1, MODEL, np.arange(0, 10, dtype=np.int64), vecs[:10], v1)
    assert idx.version == v2 and not idx.pending_versions and idx.ntotal == 20


async def test_file_written_with_a_gap_is_stale_on_reload(
    source: FakeSource, tmp_path: Path
) -> None:
    mgr = manager(source, tmp_path)
    vecs = clustered(20, seed=9)
    await mgr.get(1, MODEL)
    source.commit_add(1, MODEL, np.arange(0, 10, dtype=np.int64), vecs[:10])  # never announced
    v2 = source.commit_add(1, MODEL, np.arange(10, 20, dtype=np.int64), vecs[10:])
    await mgr.add(1, MODEL, np.arange(10, 20, dtype=np.int64), vecs[10:], v2)
    await mgr.flush()
    fresh = manager(source, tmp_path)
    idx = await fresh.get(1, MODEL)
    assert fresh.stats.rebuilds == 1 and idx.ntotal == 20 and idx.version == v2


@pytest.mark.parametrize("races", [1, 3])
async def test_commit_racing_with_a_rebuild_is_not_duplicated(
    source: FakeSource, tmp_path: Path, races: int
) -> None:
    """A commit between reading the version and the vectors: retried, or applied idempotently."""
    mgr = manager(source, tmp_path)
    vecs = clustered(10 + 10 * races, seed=24)
    source.commit_add(1, MODEL, np.arange(10, dtype=np.int64), vecs[:10])
    batches = [np.arange(10 + 10 * r, 20 + 10 * r, dtype=np.int64) for r in range(races)]
    committed: list[int] = []
    for batch in batches:  # one racing commit during each load attempt
        source.during_load.append(
            lambda b=batch: committed.append(source.commit_add(1, MODEL, b, vecs[b]))
        )
    idx = await mgr.get(1, MODEL)
    n = 10 + 10 * races
    assert idx.ntotal == n  # the snapshot already holds the racing commits
    for batch, version in zip(batches, committed, strict=True):
        await mgr.add(1, MODEL, batch, vecs[batch], version)
    assert idx.ntotal == n and idx.version == committed[-1]
    (hits,) = await mgr.search(1, MODEL, vecs[15], n)
    assert sorted(ids_of(hits)) == list(range(n))  # each id exactly once


# --- persistence and recovery -------------------------------------------------------------------


async def test_persistence_round_trip(source: FakeSource, tmp_path: Path) -> None:
    mgr = manager(source, tmp_path)
    vecs = clustered(500, seed=10)
    await ingest(mgr, source, 1, np.arange(500, dtype=np.int64), vecs)
    before = await mgr.search(1, MODEL, vecs[:20], 10)
    await mgr.flush()
    assert index_path(tmp_path / "indexes", 1, MODEL).is_file()

    calls = source.load_calls
    again = manager(source, tmp_path)
    after = await again.search(1, MODEL, vecs[:20], 10)
    assert after == before
    assert again.stats.loads == 1 and again.stats.rebuilds == 0
    assert source.load_calls == calls  # served from the file, SQLite's vectors untouched


async def test_stale_file_is_rebuilt(source: FakeSource, tmp_path: Path) -> None:
    mgr = manager(source, tmp_path)
    vecs = clustered(60, seed=11)
    await ingest(mgr, source, 1, np.arange(50, dtype=np.int64), vecs[:50])
    await mgr.flush()
    # Committed while the process was down (or its index update was lost).
    source.commit_add(1, MODEL, np.arange(50, 60, dtype=np.int64), vecs[50:])

    again = manager(source, tmp_path)
    idx = await again.get(1, MODEL)
    assert again.stats.rebuilds == 1 and again.stats.rebuild_reasons[0].startswith("stale")
    assert idx.ntotal == 60 and idx.version == 2
    assert ids_of((await again.search(1, MODEL, vecs[55], 1))[0]) == [55]
    # The rebuilt file is current: a third process loads it without rebuilding.
    third = manager(source, tmp_path)
    await third.get(1, MODEL)
    assert third.stats.rebuilds == 0 and third.stats.loads == 1


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "empty", "foreign"])
async def test_corrupt_file_is_rebuilt(source: FakeSource, tmp_path: Path, damage: str) -> None:
    mgr = manager(source, tmp_path)
    vecs = clustered(80, seed=12)
    await ingest(mgr, source, 1, np.arange(80, dtype=np.int64), vecs)
    await mgr.flush()
    path = index_path(tmp_path / "indexes", 1, MODEL)
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(os.urandom(len(data)))
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flipped":
        path.write_bytes(data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:])
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # another owner's valid file copied into place
        await ingest(mgr, source, 2, np.arange(80, dtype=np.int64), vecs)
        await mgr.flush()
        path.write_bytes(index_path(tmp_path / "indexes", 2, MODEL).read_bytes())
    with pytest.raises(IndexFileError):
        OwnerIndex.read_file(path, 1, MODEL)

    again = manager(source, tmp_path)
    hits = (await again.search(1, MODEL, vecs[7], 1))[0]
    assert ids_of(hits) == [7]
    assert again.stats.rebuilds == 1 and again.stats.rebuild_reasons[0].startswith("corrupt")
    assert OwnerIndex.read_file(path, 1, MODEL).ntotal == 80  # rewritten, valid again


async def test_missing_file_is_rebuilt_and_written(source: FakeSource, tmp_path: Path) -> None:
    vecs = clustered(40, seed=13)
    source.commit_add(3, MODEL, np.arange(40, dtype=np.int64), vecs)
    mgr = manager(source, tmp_path)
    path = index_path(tmp_path / "indexes", 3, MODEL)
    assert not path.exists()
    assert ids_of((await mgr.search(3, MODEL, vecs[9], 1))[0]) == [9]
    assert mgr.stats.rebuild_reasons == ["missing"]
    assert path.is_file() and OwnerIndex.read_file(path, 3, MODEL).version == 1


async def test_crash_before_rename_keeps_the_old_file(
    source: FakeSource, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mgr = manager(source, tmp_path)
    vecs = clustered(40, seed=14)
    await ingest(mgr, source, 1, np.arange(20, dtype=np.int64), vecs[:20])
    await mgr.flush()
    path = index_path(tmp_path / "indexes", 1, MODEL)
    old = path.read_bytes()
    await ingest(mgr, source, 1, np.arange(20, 40, dtype=np.int64), vecs[20:])

    def crash(src: object, dst: object) -> None:
        raise OSError("simulated crash between write and rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        await mgr.flush()
    monkeypatch.undo()

    assert path.read_bytes() == old
    assert OwnerIndex.read_file(path, 1, MODEL).ntotal == 20
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # temp file cleaned up
    # The old file is stale now; a restart rebuilds rather than losing the second batch.
    again = manager(source, tmp_path)
    assert (await again.get(1, MODEL)).ntotal == 40
    # The failed flush left the index dirty, so a later flush writes it.
    await mgr.flush()
    assert OwnerIndex.read_file(path, 1, MODEL).ntotal == 40


async def test_leftover_temp_file_does_not_matter(source: FakeSource, tmp_path: Path) -> None:
    mgr = manager(source, tmp_path)
    vecs = clustered(10, seed=15)
    await ingest(mgr, source, 1, np.arange(10, dtype=np.int64), vecs)
    await mgr.flush()
    path = index_path(tmp_path / "indexes", 1, MODEL)
    leftover = path.parent / f".{path.name}.deadbeef.tmp"
    leftover.write_bytes(b"half a file")  # as a crash mid-write leaves it
    again = manager(source, tmp_path)
    assert (await again.get(1, MODEL)).ntotal == 10 and again.stats.rebuilds == 0
    await ingest(again, source, 1, np.array([99], dtype=np.int64), vecs[:1])
    await again.flush()
    assert not leftover.exists()


# --- memory budget ------------------------------------------------------------------------------


async def test_lru_eviction_under_budget_and_reload(source: FakeSource, tmp_path: Path) -> None:
    vecs = clustered(1000, seed=16)
    for owner in (1, 2, 3):
        source.commit_add(owner, MODEL, np.arange(1000, dtype=np.int64) + owner * 10_000, vecs)
    probe = manager(source, tmp_path)
    one = (await probe.get(1, MODEL)).memory_bytes
    assert one > 0

    mgr = manager(source, tmp_path, memory_budget_bytes=int(one * 2.5))
    await mgr.get(1, MODEL)
    await mgr.get(2, MODEL)
    await mgr.get(1, MODEL)  # 1 is now the most recently used
    await mgr.get(3, MODEL)
    assert mgr.cached() == [(1, MODEL), (3, MODEL)]
    assert mgr.stats.evictions == 1 and mgr.memory_bytes <= mgr.memory_budget_bytes

    # A change made while cached is written before eviction and survives the reload.
    v = source.commit_add(1, MODEL, np.array([1], dtype=np.int64), vecs[:1])
    await mgr.add(1, MODEL, np.array([1], dtype=np.int64), vecs[:1], v)
    await mgr.get(2, MODEL)  # evicts 3 (least recent)
    await mgr.get(3, MODEL)  # evicts 1, which is dirty
    rebuilds = mgr.stats.rebuilds
    hits = (await mgr.search(1, MODEL, vecs[0], 2))[0]
    assert set(ids_of(hits)) == {1, 10_000}
    assert mgr.stats.rebuilds == rebuilds  # reloaded from the file written at eviction


async def test_one_index_larger_than_budget_still_serves(
    source: FakeSource, tmp_path: Path
) -> None:
    mgr = manager(source, tmp_path, memory_budget_bytes=1)
    vecs = clustered(100, seed=17)
    await ingest(mgr, source, 1, np.arange(100, dtype=np.int64), vecs)
    assert ids_of((await mgr.search(1, MODEL, vecs[3], 1))[0]) == [3]
    await ingest(mgr, source, 2, np.arange(100, dtype=np.int64), vecs)
    assert mgr.cached() == [(2, MODEL)]


# --- concurrency --------------------------------------------------------------------------------


async def test_concurrent_get_loads_once(source: FakeSource, tmp_path: Path) -> None:
    source.commit_add(1, MODEL, np.arange(100, dtype=np.int64), clustered(100, seed=18))
    mgr = manager(source, tmp_path)
    source.gate = asyncio.Event()
    tasks = [asyncio.create_task(mgr.get(1, MODEL)) for _ in range(8)]
    while source.load_calls == 0:
        await asyncio.sleep(0)
    source.gate.set()
    results = await asyncio.gather(*tasks)
    assert source.load_calls == 1
    assert all(r is results[0] for r in results)
    assert mgr.stats.rebuilds == 1


async def test_given_executor_is_used(source: FakeSource, tmp_path: Path) -> None:
    vecs = clustered(50, seed=19)
    with ThreadPoolExecutor(1, thread_name_prefix="index-test") as pool:
        mgr = manager(source, tmp_path, executor=pool)
        await ingest(mgr, source, 1, np.arange(50, dtype=np.int64), vecs)
        await mgr.flush()
        assert ids_of((await mgr.search(1, MODEL, vecs[1], 1))[0]) == [1]


async def test_drop_owner_forgets_memory_and_files(source: FakeSource, tmp_path: Path) -> None:
    mgr = manager(source, tmp_path)
    vecs = clustered(20, seed=20)
    await ingest(mgr, source, 1, np.arange(20, dtype=np.int64), vecs)
    await ingest(mgr, source, 2, np.arange(20, dtype=np.int64), vecs)
    await mgr.flush()
    source.vectors.pop((1, MODEL))  # storage deleted everything of owner 1
    source.versions[(1, MODEL)] += 1
    await mgr.drop_owner(1)
    assert not (tmp_path / "indexes" / "1").exists()
    assert mgr.cached() == [(2, MODEL)]
    assert await mgr.search(1, MODEL, vecs[0], 5) == [[]]
    assert ids_of((await mgr.search(2, MODEL, vecs[0], 1))[0]) == [0]


# --- approximate mode ---------------------------------------------------------------------------


async def test_approximate_mode_switch_remove_and_recall(
    source: FakeSource, tmp_path: Path
) -> None:
    mgr = manager(source, tmp_path, settings=IndexSettings(approx_threshold=2_000))
    vecs = clustered(3_000, seed=21)
    ids = np.arange(3_000, dtype=np.int64) * 3 + 7  # ids need not be dense
    await ingest(mgr, source, 1, ids[:1_500], vecs[:1_500])
    assert not (await mgr.get(1, MODEL)).approximate
    await ingest(mgr, source, 1, ids[1_500:], vecs[1_500:])
    idx = await mgr.get(1, MODEL)
    assert idx.approximate and idx.ntotal == 3_000
    assert idx.params["nlist"] == choose_nlist(3_000) and idx.params["nprobe"] < idx.params["nlist"]
    assert mgr.stats.rebuild_reasons[-1] == "grew past the approximate threshold"

    # Deletions still work in approximate mode.
    gone = ids[:100]
    version = source.commit_remove(1, MODEL, gone)
    await mgr.remove(1, MODEL, gone, version)
    assert idx.approximate and idx.ntotal == 2_900
    for hits in await mgr.search(1, MODEL, vecs[:100], 10):
        assert not set(ids_of(hits)) & set(gone.tolist())

    # recall@10 against exact on fresh queries from the same distribution.
    queries = clustered(200, seed=22)
    exact = OwnerIndex.build(1, MODEL, ids[100:], vecs[100:], 0, approximate=False)
    truth = exact.search(queries, 10)
    got = await mgr.search(1, MODEL, queries, 10)
    recall = np.mean(
        [len(set(ids_of(a)) & set(ids_of(e))) / 10 for a, e in zip(got, truth, strict=True)]
    )
    assert recall >= 0.95

    # Survives a restart as an approximate index.
    await mgr.flush()
    again = manager(source, tmp_path, settings=IndexSettings(approx_threshold=2_000))
    reloaded = await again.get(1, MODEL)
    assert reloaded.approximate and again.stats.rebuilds == 0
    assert await again.search(1, MODEL, queries[:5], 10) == got[:5]

    # Well below the threshold it becomes exact again.
    gone = ids[100:1_500]
    version = source.commit_remove(1, MODEL, gone)
    await mgr.remove(1, MODEL, gone, version)
    assert not idx.approximate and idx.ntotal == 1_500


def test_nlist_grows_with_size_and_respects_training_needs() -> None:
    assert choose_nlist(3_000) == 64
    assert choose_nlist(200_000) == 512
    assert choose_nlist(1_000_000) == 1024
    assert all(choose_nlist(n) * 39 <= n for n in (1_000, 3_000, 50_000, 10**6))


async def test_add_after_restart_extends_the_file_without_rebuilding(
    source: FakeSource, tmp_path: Path
) -> None:
    mgr = manager(source, tmp_path)
    vecs = clustered(30, seed=23)
    await ingest(mgr, source, 1, np.arange(20, dtype=np.int64), vecs[:20])
    await mgr.flush()
    again = manager(source, tmp_path)
    # The commit bumps SQLite's version first; the file is exactly one version behind the add.
    await ingest(again, source, 1, np.arange(20, 30, dtype=np.int64), vecs[20:])
    idx = await again.get(1, MODEL)
    assert again.stats.rebuilds == 0 and again.stats.loads == 1
    assert idx.ntotal == 30 and idx.version == 2


async def test_source_snapshot_is_preferred_when_offered(
    source: FakeSource, tmp_path: Path
) -> None:
    class SnapshotSource(FakeSource):
        snapshots = 0

        async def vector_snapshot(self, owner_id: int, model_id: str) -> SimpleNamespace:
            self.snapshots += 1
            ids, vecs = await self.load_vectors(owner_id, model_id)
            return SimpleNamespace(
                version=self.versions.get((owner_id, model_id), 0), ids=ids, vectors=vecs
            )

    src = SnapshotSource()
    vecs = clustered(10, seed=25)
    src.commit_add(1, MODEL, np.arange(10, dtype=np.int64), vecs)
    mgr = manager(src, tmp_path)
    assert (await mgr.get(1, MODEL)).ntotal == 10
    assert src.snapshots == 1 and src.load_calls == 1


def test_manager_from_settings(tmp_path: Path) -> None:
    from core.settings import Settings

    settings = Settings(
        data_dir=tmp_path,
        index_memory_budget_mb=3,
        index_approx_threshold=5_000,
        index_exact_kind="fp32",
    )
    mgr = IndexManager.under(settings.data.dir, FakeSource(), settings.index)
    assert mgr.index_dir == tmp_path / "indexes"
    assert mgr.memory_budget_bytes == 3 * 1024 * 1024
    assert (mgr.approx_threshold, mgr.exact_kind) == (5_000, "fp32")


async def test_fp32_exact_kind(source: FakeSource, tmp_path: Path) -> None:
    mgr = manager(source, tmp_path, settings=IndexSettings(exact_kind="fp32"))
    vecs = clustered(20, seed=26)
    await ingest(mgr, source, 1, np.arange(20, dtype=np.int64), vecs)
    idx = await mgr.get(1, MODEL)
    assert idx.kind == "exact-fp32"
    assert (await mgr.search(1, MODEL, vecs[4], 1))[0][0][1] == pytest.approx(1.0, abs=1e-4)
    await mgr.flush()
    # A file of the other exact kind is rebuilt when the setting changes.
    other = manager(source, tmp_path, settings=IndexSettings(exact_kind="fp16"))
    assert (await other.get(1, MODEL)).kind == "exact-fp16"
    assert other.stats.rebuild_reasons == ["exact kind changed"]


# --- seams: versions and the file format --------------------------------------------------------


def test_version_tracker_advances_over_contiguous_runs_only() -> None:
    versions = VersionTracker(3)
    assert versions.accept(3) == (False, False)  # already reflected
    versions.advance(5)
    assert versions.version == 3 and versions.ahead == {5}
    assert versions.accept(5) == (False, False)  # applied ahead already
    versions.advance(4)
    assert versions.version == 5 and not versions.ahead


def test_version_tracker_dedupes_inside_the_uncertain_window() -> None:
    versions = VersionTracker(2, uncertain_upto=4)
    assert versions.accept(3) == (True, True) and versions.accept(5) == (True, False)
    assert not VersionTracker(0, ahead=range(2, 2 + MAX_AHEAD)).broken
    assert VersionTracker(0, ahead=range(2, 3 + MAX_AHEAD)).broken


def test_a_file_restores_pending_versions_and_the_uncertain_window(tmp_path: Path) -> None:
    ids, vecs = np.arange(10, dtype=np.int64), clustered(10, seed=40)
    idx = OwnerIndex.build(1, MODEL, ids, vecs, 2, uncertain_upto=4)
    assert idx.add([100], clustered(1, seed=41), version=6)
    path = tmp_path / "one.faiss"
    idx.write_file(path)
    contents = read_index_file(path, 1, MODEL)
    assert contents.state.ntotal == 11 and contents.versions.version == 2
    assert contents.versions.ahead == {6} and contents.versions.uncertain_upto == 4
    again = OwnerIndex.read_file(path, 1, MODEL)
    assert again.pending_versions == {6} and again.add([3], vecs[3:4], version=3)
    assert again.ntotal == 11  # inside the uncertain window: replaced, not duplicated


# --- shared databases ---------------------------------------------------------------------------


@pytest.mark.parametrize("approximate", [False, True])
def test_top_up_adds_past_the_held_ids_and_takes_the_storage_version(approximate: bool) -> None:
    vecs = clustered(1_500, seed=31)
    ids = np.arange(1_500, dtype=np.int64) * 2 + 5
    idx = OwnerIndex.build(1, MODEL, ids[:1_200], vecs[:1_200], 4, approximate=approximate)
    idx.remove(ids[:10], version=6)  # ahead of 5: pending
    count, high, total, mutations = idx.fingerprint()
    assert (count, high, total) == (1_190, int(ids[1_199]), int(ids[10:1_200].sum()))
    assert not idx.top_up(ids[1_200:], vecs[1_200:], version=9, mutations=mutations - 1)
    assert idx.top_up(ids[1_200:], vecs[1_200:], version=9, mutations=mutations)
    assert idx.ntotal == 1_490 and idx.version == 9 and not idx.pending_versions
    assert idx.kind.startswith("ivf") == approximate
    assert ids_of(idx.search(vecs[1_400], 1)[0]) == [int(ids[1_400])]


async def test_shared_manager_without_top_up_support_rebuilds(
    source: FakeSource, tmp_path: Path
) -> None:
    """A source that cannot list vectors past an id (nor batch versions) still stays fresh."""
    mgr = manager(source, tmp_path, shared=True)
    vecs = clustered(20, seed=32)
    ids = np.arange(1, 21, dtype=np.int64)
    await ingest(mgr, source, 1, ids[:10], vecs[:10])
    source.commit_add(1, MODEL, ids[10:], vecs[10:])  # another process
    assert ids_of((await mgr.search(1, MODEL, vecs[15], 1))[0]) == [16]
    assert mgr.stats.top_ups == 0 and mgr.stats.rebuild_reasons[-1].startswith("changed else")
    source.commit_remove(1, MODEL, ids[15:16])
    assert 16 not in ids_of((await mgr.search(1, MODEL, vecs[15], 20))[0])
