"""Every loaded (owner, model) index: an LRU cache under a memory budget, with mutations,
searches, writes to disk and eviction.

FAISS work that may take more than about a millisecond runs in a thread (or ``executor``),
never on the event loop; what is cheaper runs inline, since a thread hop costs more than it.

On a shared database (``shared``: PostgreSQL with workers and other front ends) the cache may
fall behind changes made elsewhere: before a search, the pair's version in storage is read
(one indexed read per query, batched over its pairs) and a pair behind it is topped up with
the vectors added since, or rebuilt (see :mod:`core.index.loading`). Files on disk are then
per-process caches whose version says when they are stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from core.index.file_format import index_path, unlink_index_file
from core.index.kinds import DEFAULT_TARGET_RECALL, BuildPolicy, ExactKind
from core.index.loading import IndexLoader, IndexStats, Key, VectorSource
from core.index.offload import Offload
from core.index.owner_index import OwnerIndex
from core.index.vectors import Hit, as_ids
from core.settings import IndexSettings, given_or

log = logging.getLogger(__name__)

# Work below these sizes is sub-millisecond and runs inline; above, in a thread.
INLINE_SCAN = 8_192
INLINE_ADD = 256


class IndexManager:
    """Lazily loaded, LRU-cached indexes of every (owner, model), bounded by a memory budget.

    FAISS work that may take more than about a millisecond runs in a thread (or ``executor``),
    never on the event loop. A per-pair asyncio lock makes a concurrent load happen once and
    serialises mutations; searches do not wait for a rebuild, they use the old index meanwhile.
    ``settings`` (INDEX_*) size the budget and pick the kinds; ``memory_budget_bytes``, when
    given, replaces the budget with a finer one than whole megabytes. ``shared``: other
    processes change the vectors too, so searches check the storage version first.
    """

    def __init__(
        self,
        source: VectorSource,
        index_dir: Path,
        settings: IndexSettings | None = None,
        *,
        memory_budget_bytes: int | None = None,
        target_recall: float = DEFAULT_TARGET_RECALL,
        executor: Executor | None = None,
        shared: bool = False,
    ) -> None:
        s = settings if settings is not None else IndexSettings()
        self.source = source
        self.index_dir = Path(index_dir)
        self.memory_budget_bytes = given_or(memory_budget_bytes, s.memory_budget_mb * 1024 * 1024)
        self.policy = BuildPolicy(s.approx_threshold, s.exact_kind, float(target_recall))
        self.stats = IndexStats()
        self._run = Offload(executor)
        self.shared = shared
        self._loader = IndexLoader(source, self.policy, self._run, self.stats, shared=shared)
        self._cache: OrderedDict[Key, OwnerIndex] = OrderedDict()
        self._dirty: set[Key] = set()  # changed in memory since last written
        self._locks: dict[Key, asyncio.Lock] = {}

    @classmethod
    def under(
        cls,
        data_dir: Path,
        source: VectorSource,
        settings: IndexSettings,
        *,
        executor: Executor | None = None,
        shared: bool = False,
    ) -> IndexManager:
        """Manager of the indexes under DATA_DIR (``data_dir/indexes``)."""
        return cls(source, Path(data_dir) / "indexes", settings, executor=executor, shared=shared)

    # -- plumbing

    @property
    def approx_threshold(self) -> int:
        return self.policy.approx_threshold

    @property
    def exact_kind(self) -> ExactKind:
        return self.policy.exact_kind

    @property
    def target_recall(self) -> float:
        return self.policy.target_recall

    def _lock(self, key: Key) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def path(self, owner_id: int, model_id: str) -> Path:
        return index_path(self.index_dir, owner_id, model_id)

    @property
    def memory_bytes(self) -> int:
        return sum(idx.memory_bytes for idx in self._cache.values())

    def cached(self) -> list[Key]:
        """Loaded (owner, model) pairs, least recently used first."""
        return list(self._cache)

    # -- loading

    async def get(self, owner_id: int, model_id: str) -> OwnerIndex:
        """The index of the pair, loaded from its file or rebuilt from the source if needed."""
        key = (int(owner_id), model_id)
        idx = self._cache.get(key)
        if idx is not None:
            self._cache.move_to_end(key)
            return idx
        async with self._lock(key):
            idx = await self._ensure(key)
        await self._enforce_budget(keep=key)
        return idx

    async def _ensure(self, key: Key, *, next_version: int | None = None) -> OwnerIndex:
        """Cached index, else the file if it is current, else a rebuild. Caller holds the lock.

        ``next_version``: as for :meth:`IndexLoader.load`.
        """
        idx = self._cache.get(key)
        if idx is not None:
            self._cache.move_to_end(key)
            return idx
        loaded = await self._loader.load(key, self.path(*key), next_version=next_version)
        self._cache[key] = loaded.index
        if loaded.rebuilt:
            await self._write(key, loaded.index)
        else:
            self._dirty.discard(key)
        return loaded.index

    # -- mutations

    async def add(
        self, owner_id: int, model_id: str, ids: np.ndarray, vecs: np.ndarray, version: int
    ) -> None:
        """Add committed vectors; ``version`` is the index_version of the committing transaction."""
        key = (int(owner_id), model_id)
        ids_arr = as_ids(ids)
        async with self._lock(key):
            idx = await self._ensure(key, next_version=version)
            await self._close_gap(key, idx, version)
            small = len(ids_arr) <= INLINE_ADD and idx.ntotal + len(ids_arr) <= INLINE_SCAN
            if small and not idx.approximate:
                changed = idx.add(ids_arr, vecs, version=version)
            else:
                changed = await self._run(idx.add, ids_arr, vecs, version=version)
            if changed:
                self._dirty.add(key)
                await self._maybe_rebuild(key, idx)
        await self._enforce_budget(keep=key)

    async def remove(self, owner_id: int, model_id: str, ids: np.ndarray, version: int) -> None:
        """Remove deleted units' ids; ``version`` as for :meth:`add`."""
        key = (int(owner_id), model_id)
        ids_arr = as_ids(ids)
        async with self._lock(key):
            idx = await self._ensure(key, next_version=version)
            await self._close_gap(key, idx, version)
            before = idx.mutations
            if idx.ntotal <= INLINE_SCAN:
                idx.remove(ids_arr, version=version)
            else:
                await self._run(idx.remove, ids_arr, version=version)
            if idx.mutations != before:
                self._dirty.add(key)
                await self._maybe_rebuild(key, idx)
        await self._enforce_budget(keep=key)

    async def _close_gap(self, key: Key, idx: OwnerIndex, version: int) -> None:
        """On a shared database, versions between the index's and ``version`` were committed
        elsewhere: catch up first (that includes ``version``'s own, already committed, change,
        which is then skipped as reflected). Caller holds the lock."""
        if self.shared and version > idx.version + 1:
            await self._catch_up(key, idx, f"versions {idx.version + 1}..{version - 1} elsewhere")

    async def _catch_up(self, key: Key, idx: OwnerIndex, why: str) -> None:
        """Top up from storage, else rebuild; caller holds the lock."""
        if not await self._loader.catch_up(key, idx):
            log.info("rebuilding index owner=%s model=%s: %s", key[0], key[1], why)
            idx.replace_with(await self._loader.rebuild(key, f"changed elsewhere: {why}"))
        self._dirty.add(key)
        await self._maybe_rebuild(key, idx)

    async def _maybe_rebuild(self, key: Key, idx: OwnerIndex) -> None:
        reason = self._loader.rebuild_reason(idx)
        if reason is None:
            return
        log.info("rebuilding index owner=%s model=%s: %s", key[0], key[1], reason)
        fresh = await self._loader.rebuild(key, reason)
        idx.replace_with(fresh)
        self._dirty.add(key)
        await self._write(key, idx)

    # -- search

    async def refresh(self, pairs: Iterable[tuple[int, str]]) -> None:
        """On a shared database, bring the cached indexes of ``pairs`` up to storage's version
        (one read for all of them); pairs not in memory are checked when they load."""
        if not self.shared:
            return
        keys = sorted({(int(o), m) for o, m in pairs} & self._cache.keys())
        if not keys:
            return
        current = await self._loader.versions(keys)
        for key in keys:
            if key not in self._cache or self._cache[key].version == current[key]:
                continue
            async with self._lock(key):
                idx = self._cache.get(key)
                if idx is not None and idx.version != current[key]:
                    await self._catch_up(key, idx, f"version {idx.version}, storage {current[key]}")
        await self._enforce_budget(keep=keys[-1])

    async def search(
        self, owner_id: int, model_id: str, query: np.ndarray, k: int, *, refresh: bool = True
    ) -> list[list[Hit]]:
        """Top-k (unit id, cosine) per query row, only among this owner's vectors.

        ``refresh=False``: the caller already called :meth:`refresh` for this query."""
        if refresh:
            await self.refresh([(owner_id, model_id)])
        idx = await self.get(owner_id, model_id)
        if idx.search_cost <= INLINE_SCAN:
            return idx.search(query, k)
        return await self._run(idx.search, query, k)

    # -- persistence and memory

    async def _write(self, key: Key, idx: OwnerIndex) -> None:
        """Write one index atomically; caller holds the key's lock."""
        mutations = await self._run(idx.write_file, self.path(*key))
        self.stats.writes += 1
        if idx.mutations == mutations:
            self._dirty.discard(key)

    async def flush(self) -> None:
        """Write every changed index to disk (atomically); raises the first failure."""
        errors: list[BaseException] = []
        for key in list(self._dirty):
            async with self._lock(key):
                idx = self._cache.get(key)
                if idx is None or key not in self._dirty:
                    self._dirty.discard(key)
                    continue
                try:
                    await self._write(key, idx)
                except OSError as e:
                    log.warning("cannot write index %s: %s", self.path(*key), e)
                    errors.append(e)
        if errors:
            raise errors[0]

    async def close(self) -> None:
        """Flush; the manager stays usable (indexes are reloaded on demand)."""
        await self.flush()

    async def _enforce_budget(self, keep: Key) -> None:
        """Evict least recently used indexes (writing them first) until within the budget."""
        while self.memory_bytes > self.memory_budget_bytes:
            victim = next(
                (k for k in self._cache if k != keep and not self._lock(k).locked()),
                None,
            )
            if victim is None:
                return
            await self._evict(victim)

    async def _evict(self, key: Key) -> None:
        async with self._lock(key):
            idx = self._cache.get(key)
            if idx is None:
                return
            if key in self._dirty:
                try:
                    await self._write(key, idx)
                except OSError as e:
                    # SQLite still has everything; the stale file will be rebuilt on next load.
                    log.warning("evicting index %s without writing it: %s", self.path(*key), e)
            self._cache.pop(key, None)
            self._dirty.discard(key)
            self.stats.evictions += 1

    async def drop(self, owner_id: int, model_id: str) -> None:
        """Forget one pair's index in memory and on disk (e.g. after a model switch)."""
        key = (int(owner_id), model_id)
        async with self._lock(key):
            self._cache.pop(key, None)
            self._dirty.discard(key)
            await self._run(unlink_index_file, self.path(*key))

    async def drop_owner(self, owner_id: int) -> None:
        """Forget every index of an owner, in memory and on disk."""
        owner_id = int(owner_id)
        keys = sorted({k for k in [*self._locks, *self._cache] if k[0] == owner_id})
        async with contextlib.AsyncExitStack() as stack:
            for key in keys:
                await stack.enter_async_context(self._lock(key))
            for key in keys:
                self._cache.pop(key, None)
                self._dirty.discard(key)
            await self._run(shutil.rmtree, self.index_dir / str(owner_id), ignore_errors=True)
