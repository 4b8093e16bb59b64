"""Bringing one (owner, model) index in line with storage: its file if current, else a rebuild.

Storage (SQLite, or PostgreSQL shared by several processes) is the source of truth. A file is
used only when its version is the one storage reports (or exactly one behind an operation about
to be applied) and its kind still fits the settings; otherwise the index is rebuilt from a
snapshot of the vectors. On a shared database other processes change vectors too, so a cached
index (or a stale file) behind storage is first *topped up*: when the unit ids storage holds up
to the largest the index holds match the index's (count and sum), storage changed only by
additions past them, and only those are read; anything else (a deletion elsewhere) rebuilds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from core.errors import IndexFileError
from core.index.kinds import BuildPolicy
from core.index.offload import Offload
from core.index.owner_index import OwnerIndex

log = logging.getLogger(__name__)

Key = tuple[int, str]
T = TypeVar("T")

# Fingerprinting or topping up an index of at most this many vectors runs inline.
INLINE_IDS = 8_192


class VectorSource(Protocol):
    """What the index needs from storage (SQLite holds the vectors).

    A source may also offer ``async vector_snapshot(owner_id, model_id)`` returning an object
    with ``version``, ``ids`` and ``vectors`` read in one transaction; it is then preferred over
    reading the version around :meth:`load_vectors`. For a shared database it may offer
    ``async index_versions(pairs)`` (many versions in one read) and ``async vectors_after(owner_id,
    model_id, unit_id)`` (an object with ``version``, ``held_count``, ``held_sum``, ``ids`` and
    ``vectors``: see ``storage.records.VectorTopUp``), which make top-ups possible.
    """

    async def index_version(self, owner_id: int, model_id: str) -> int: ...

    async def load_vectors(self, owner_id: int, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """All vectors of the pair: int64 ids [n] and float32 vectors [n, d]."""
        ...


@dataclass
class IndexStats:
    """Counters for tests and monitoring."""

    loads: int = 0
    rebuilds: int = 0
    top_ups: int = 0  # brought up to date with only the vectors added elsewhere
    evictions: int = 0
    writes: int = 0
    rebuild_reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Loaded:
    """A loaded index, and whether it was rebuilt (then its file is stale and must be written)."""

    index: OwnerIndex
    rebuilt: bool


class IndexLoader:
    """Reads index files and rebuilds indexes from the source; counts both in ``stats``."""

    def __init__(
        self,
        source: VectorSource,
        policy: BuildPolicy,
        offload: Offload,
        stats: IndexStats,
        *,
        shared: bool = False,
    ) -> None:
        self.source = source
        self.policy = policy
        self.shared = shared  # other processes change the vectors: stale files are topped up
        self._offload = offload
        self._stats = stats

    async def load(self, key: Key, path: Path, *, next_version: int | None = None) -> Loaded:
        """The file at ``path`` if it is current, else a rebuild.

        ``next_version``: the version of an operation about to be applied; a file exactly one
        version behind it is current for that purpose.
        """
        owner_id, model_id = key
        source_version = await self.source.index_version(owner_id, model_id)
        reason: str | None
        try:
            idx: OwnerIndex | None = await self._offload(
                OwnerIndex.read_file, path, owner_id, model_id, exact_kind=self.policy.exact_kind
            )
        except FileNotFoundError:
            idx, reason = None, "missing"
        except IndexFileError as e:
            log.warning("index file unusable, rebuilding: %s", e)
            idx, reason = None, f"corrupt: {e.problem}"
        if idx is not None:
            file_version = idx.version
            reason = await self._unusable(key, idx, source_version, next_version)
            if reason is None and idx.version != file_version:
                return Loaded(idx, rebuilt=True)  # topped up since its file: write it
        if idx is not None and reason is None:
            self._stats.loads += 1
            return Loaded(idx, rebuilt=False)
        assert reason is not None
        log.info("rebuilding index owner=%s model=%s: %s", owner_id, model_id, reason)
        return Loaded(await self.rebuild(key, reason), rebuilt=True)

    async def _unusable(
        self, key: Key, idx: OwnerIndex, source_version: int, next_version: int | None
    ) -> str | None:
        """Why a file's index cannot serve, or None; on a shared database a file behind
        storage is first topped up."""
        if idx.version == source_version or (
            next_version is not None and idx.version == next_version - 1
        ):
            return self.rebuild_reason(idx)
        if self.shared and idx.version < source_version and await self.catch_up(key, idx):
            return self.rebuild_reason(idx)
        return f"stale: file version {idx.version}, source {source_version}"

    def rebuild_reason(self, idx: OwnerIndex) -> str | None:
        """Why ``idx`` should be rebuilt under this loader's policy, or None."""
        return idx.wants_rebuild(self.policy.approx_threshold, self.policy.exact_kind)

    async def rebuild(self, key: Key, reason: str) -> OwnerIndex:
        """A fresh index from a snapshot of the source's vectors (built in a thread)."""
        v1, v2, ids, vecs = await self._snapshot(key)
        idx = await self._offload(
            OwnerIndex.build,
            key[0],
            key[1],
            ids,
            vecs,
            v1,
            approx_threshold=self.policy.approx_threshold,
            exact_kind=self.policy.exact_kind,
            target_recall=self.policy.target_recall,
            uncertain_upto=v2,
        )
        self._stats.rebuilds += 1
        self._stats.rebuild_reasons.append(reason)
        return idx

    async def versions(self, keys: list[Key]) -> dict[Key, int]:
        """Storage's current version of each pair: one read when the source can batch them."""
        batched = getattr(self.source, "index_versions", None)
        if batched is not None:
            found: dict[Key, int] = await batched(keys)
            return {k: int(found.get(k, 0)) for k in keys}
        return {k: await self.source.index_version(*k) for k in keys}

    async def catch_up(self, key: Key, idx: OwnerIndex) -> bool:
        """Top ``idx`` up to storage with the vectors added past its largest id; False (nothing
        changed) when storage changed otherwise, or the source cannot tell. Caller holds the
        pair's lock, so no operation slips between the fingerprint and the top-up."""
        after = getattr(self.source, "vectors_after", None)
        if after is None:
            return False
        count, high, total, mutations = await self._maybe_offload(idx.ntotal, idx.fingerprint)
        delta = await after(key[0], key[1], high)
        if delta.version < idx.version or (delta.held_count, delta.held_sum) != (count, total):
            return False
        if len(delta.ids) and idx.dim and delta.vectors.shape[1] != idx.dim:
            return False
        done = await self._maybe_offload(
            idx.ntotal + len(delta.ids),
            idx.top_up,
            delta.ids,
            delta.vectors,
            version=delta.version,
            mutations=mutations,
        )
        if done:
            self._stats.top_ups += 1
        return bool(done)

    async def _maybe_offload(
        self, size: int, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> T:
        """Inline for work over few vectors (a thread hop costs more), in a thread otherwise."""
        if size <= INLINE_IDS:
            return fn(*args, **kwargs)
        return await self._offload(fn, *args, **kwargs)

    async def _snapshot(self, key: Key) -> tuple[int, int, np.ndarray, np.ndarray]:
        """(version, uncertain_upto, ids, vecs): a version read before and after the vectors.

        When a commit slips between the reads the window (v1, v2] is remembered, and operations
        in it are applied idempotently.
        """
        owner_id, model_id = key
        snapshot = getattr(self.source, "vector_snapshot", None)
        if snapshot is not None:
            snap = await snapshot(owner_id, model_id)
            return int(snap.version), int(snap.version), snap.ids, snap.vectors
        v1 = v2 = 0
        ids = vecs = np.zeros(0)
        for _ in range(3):
            v1 = await self.source.index_version(owner_id, model_id)
            ids, vecs = await self.source.load_vectors(owner_id, model_id)
            v2 = await self.source.index_version(owner_id, model_id)
            if v1 == v2:
                break
        return v1, v2, ids, vecs
