"""Bringing one (owner, model) index in line with storage: its file if current, else a rebuild.

SQLite is the source of truth. A file is used only when its version is the one storage
reports (or exactly one behind an operation about to be applied) and its kind still fits the
settings; otherwise the index is rebuilt from a snapshot of the vectors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from core.errors import IndexFileError
from core.index.kinds import BuildPolicy
from core.index.offload import Offload
from core.index.owner_index import OwnerIndex

log = logging.getLogger(__name__)

Key = tuple[int, str]


class VectorSource(Protocol):
    """What the index needs from storage (SQLite holds the vectors).

    A source may also offer ``async vector_snapshot(owner_id, model_id)`` returning an object
    with ``version``, ``ids`` and ``vectors`` read in one transaction; it is then preferred over
    reading the version around :meth:`load_vectors`.
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
        self, source: VectorSource, policy: BuildPolicy, offload: Offload, stats: IndexStats
    ) -> None:
        self.source = source
        self.policy = policy
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
            if idx.version == source_version or (
                next_version is not None and idx.version == next_version - 1
            ):
                reason = self.rebuild_reason(idx)
            else:
                reason = f"stale: file version {idx.version}, source {source_version}"
        if idx is not None and reason is None:
            self._stats.loads += 1
            return Loaded(idx, rebuilt=False)
        assert reason is not None
        log.info("rebuilding index owner=%s model=%s: %s", owner_id, model_id, reason)
        return Loaded(await self.rebuild(key, reason), rebuilt=True)

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
