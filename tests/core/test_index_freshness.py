"""Indexes kept fresh across processes: two Database objects and two IndexManagers on one
database play two replicas; what one commits, the other finds (and stops finding)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.index.manager import IndexManager
from core.settings import IndexSettings
from storage import Database, NewMedia, NewUnit
from storage.records import CommitResult
from storage.vector_source import VectorSource
from tests.conftest import DatabaseTarget

MODEL = "clip-fresh@1"
OTHER = "clip-fresh@2"
DIM = 16


def vec(seed: int, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((1, dim)).astype(np.float32)
    return v / np.linalg.norm(v)


class CountingSource:
    """The database's vector source, counting what the indexes ask of it."""

    def __init__(self, inner: VectorSource) -> None:
        self._inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return await attr(*args, **kwargs)

        return counted


@dataclass
class Replica:
    db: Database
    source: CountingSource
    index: IndexManager

    async def commit(self, owner_id: int, seed: int, model: str = MODEL) -> int:
        """Store one photo with its vector and tell this replica's index: its unit id."""
        result: CommitResult = await self.db.owner(owner_id).media.commit(
            NewMedia("photo", f"u{owner_id}-{seed}", file_id=f"f{seed}"),
            [NewUnit.image()],
            {model: vec(seed)},
        )
        unit = result.unit_ids[0]
        await self.index.add(owner_id, model, np.array([unit]), vec(seed), result.versions[model])
        return unit

    async def delete(self, owner_id: int, unit_id: int) -> None:
        """Delete the item of one unit and tell this replica's index."""
        store = self.db.owner(owner_id)
        media_id = (await store.units.by_ids([unit_id]))[unit_id].media_id
        result = await store.media.delete(media_id)
        ids = np.array(result.by_model[MODEL])
        await self.index.remove(owner_id, MODEL, ids, result.versions[MODEL])

    async def top(self, owner_id: int, seed: int, k: int = 10, model: str = MODEL) -> list[int]:
        """Unit ids this replica finds for the vector of ``seed``, best first."""
        return [u for u, _ in (await self.index.search(owner_id, model, vec(seed), k))[0]]


@pytest.fixture
async def replicas(
    database_target: DatabaseTarget, tmp_path: Path
) -> AsyncIterator[tuple[Replica, Replica]]:
    """Replicas A and B of one database, each with index files of its own (DATA_DIR is not
    shared)."""
    target = database_target("fresh.db")
    out: list[Replica] = []
    try:
        for name in ("a", "b"):
            db = await Database.open(target)
            source = CountingSource(db.vectors)
            index = IndexManager(source, tmp_path / name, IndexSettings(), shared=True)
            out.append(Replica(db, source, index))
        yield out[0], out[1]
    finally:
        for r in out:
            await r.index.close()
            await r.db.close()


async def owner(r: Replica, external: int) -> int:
    return (await r.db.owners.ensure("user", external)).id


async def test_commit_through_a_is_found_through_b(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    o = await owner(a, 1)
    first = await a.commit(o, 1)
    assert (await b.top(o, 1))[:1] == [first]
    rebuilds = b.index.stats.rebuilds
    second = await a.commit(o, 2)
    assert (await b.top(o, 2))[:1] == [second]
    assert sorted(await b.top(o, 2)) == sorted([first, second])
    # Only the new vector was read: a top-up, not a rebuild.
    assert b.index.stats.top_ups == 1 and b.index.stats.rebuilds == rebuilds
    assert (await b.index.get(o, MODEL)).version == 2


async def test_delete_through_a_is_gone_through_b(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    o = await owner(a, 1)
    keep, gone = await a.commit(o, 1), await a.commit(o, 2)
    assert sorted(await b.top(o, 2)) == sorted([keep, gone])
    await a.delete(o, gone)
    assert await b.top(o, 2) == [keep]
    assert b.index.stats.rebuild_reasons[-1].startswith("changed elsewhere")
    assert await a.top(o, 2) == [keep]


async def test_b_loads_an_owner_it_never_saw(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    o = await owner(a, 1)
    units = [await a.commit(o, s) for s in range(5)]
    await a.index.flush()  # A's files are not B's: B builds from the database
    assert (await b.top(o, 3))[:1] == [units[3]]
    assert b.index.cached() == [(o, MODEL)] and b.index.stats.rebuilds == 1


async def test_an_unchanged_index_costs_one_version_read(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    o = await owner(a, 1)
    await a.commit(o, 1)
    await b.top(o, 1)
    before = dict(b.source.calls)
    for _ in range(3):
        await b.top(o, 1)
    calls = {k: v - before.get(k, 0) for k, v in b.source.calls.items()}
    assert {k: v for k, v in calls.items() if v} == {"index_versions": 3}


async def test_evicted_owner_is_loaded_again_with_changes_made_meanwhile(
    database_target: DatabaseTarget, tmp_path: Path
) -> None:
    target = database_target("evict.db")
    db_a, db_b = await Database.open(target), await Database.open(target)
    try:
        source_a, source_b = CountingSource(db_a.vectors), CountingSource(db_b.vectors)
        a = Replica(
            db_a, source_a, IndexManager(source_a, tmp_path / "a", IndexSettings(), shared=True)
        )
        # B's budget holds one small index at a time.
        b_index = IndexManager(
            source_b, tmp_path / "b", IndexSettings(), shared=True, memory_budget_bytes=1
        )
        b = Replica(db_b, source_b, b_index)
        o1, o2 = await owner(a, 1), await owner(a, 2)
        u1 = await a.commit(o1, 1)
        u2 = await a.commit(o2, 2)
        assert await b.top(o1, 1) == [u1]
        assert await b.top(o2, 2) == [u2]
        assert b.index.cached() == [(o2, MODEL)] and b.index.stats.evictions == 1
        later = await a.commit(o1, 3)  # while o1 is out of B's memory; B's file is stale
        assert sorted(await b.top(o1, 3)) == sorted([u1, later])
        assert b.index.stats.top_ups == 1  # from B's own (stale) file, not a rebuild
        assert b.index.cached() == [(o1, MODEL)]
    finally:
        for r in (a, b):
            await r.index.close()
            await r.db.close()


async def test_no_cross_owner_leak(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    o1, o2 = await owner(a, 1), await owner(a, 2)
    mine = await a.commit(o1, 1)
    assert await b.top(o1, 1) == [mine]
    theirs = [await a.commit(o2, s) for s in (1, 2, 3)]  # the same vectors, another owner
    assert await b.top(o1, 1) == [mine]
    assert (await b.index.get(o1, MODEL)).ntotal == 1
    assert sorted(await b.top(o2, 1)) == sorted(theirs)
    extra = await a.commit(o1, 2)
    assert sorted(await b.top(o1, 1)) == sorted([mine, extra])
    assert not set(await b.top(o1, 1)) & set(theirs)


async def test_an_addition_below_the_largest_held_id_rebuilds(
    replicas: tuple[Replica, Replica],
) -> None:
    """Re-embedding for another model adds vectors of old units: a top-up past the largest
    held id would miss them, so the fingerprint sends B to a rebuild."""
    a, b = replicas
    o = await owner(a, 1)
    low, high = await a.commit(o, 1), await a.commit(o, 2)
    store = a.db.owner(o)
    await store.vectors.add(OTHER, [high], vec(2))
    assert await b.top(o, 1, model=OTHER) == [high]
    version = await store.vectors.add(OTHER, [low], vec(1))
    await a.index.add(o, OTHER, np.array([low]), vec(1), version)
    rebuilds = b.index.stats.rebuilds
    assert sorted(await b.top(o, 1, model=OTHER)) == sorted([low, high])
    assert b.index.stats.rebuilds == rebuilds + 1 and b.index.stats.top_ups == 0


async def test_local_change_after_remote_ones_catches_up_first(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    o = await owner(a, 1)
    first = await a.commit(o, 1)
    assert await b.top(o, 1) == [first]
    remote = await a.commit(o, 2)
    local = await b.commit(o, 3)  # version 3 while B's index is at 1
    idx = await b.index.get(o, MODEL)
    assert idx.version == 3 and not idx.pending_versions and idx.ntotal == 3
    assert sorted(await b.top(o, 1)) == sorted([first, remote, local])


async def test_whole_owner_cleared_elsewhere(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    o = await owner(a, 1)
    await a.commit(o, 1)
    await a.commit(o, 2)
    assert len(await b.top(o, 1)) == 2
    await a.db.owner(o).media.delete_all()
    await a.index.drop_owner(o)
    assert await b.top(o, 1) == []


async def test_not_shared_trusts_its_cache(database_target: DatabaseTarget, tmp_path: Path) -> None:
    """One process (SQLite, the default) reads no version before a search."""
    db = await Database.open(database_target("one.db"))
    try:
        source = CountingSource(db.vectors)
        r = Replica(db, source, IndexManager(source, tmp_path / "i", IndexSettings()))
        o = await owner(r, 1)
        unit = await r.commit(o, 1)
        before = dict(source.calls)
        assert await r.top(o, 1) == [unit]
        assert source.calls == before
    finally:
        await r.index.close()
        await db.close()
