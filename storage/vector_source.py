"""The vectors of any owner by owner id: the source the per-owner FAISS indexes load from.

It implements ``core.index.loading.VectorSource`` (structurally; storage does not import core)
and goes through the owner-scoped :class:`~storage.owner_vectors.OwnerVectors`, so an index
for one owner can only ever be built from that owner's rows.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from storage.dbapi import Backend
from storage.model_rows import owners_versions
from storage.owner_vectors import OwnerVectors
from storage.records import VectorSnapshot, VectorTopUp


class VectorSource:
    """Index versions and vectors per (owner, model)."""

    def __init__(self, conns: Backend) -> None:
        self._conns = conns

    async def index_version(self, owner_id: int, model_id: str) -> int:
        return await OwnerVectors(self._conns, owner_id).index_version(model_id)

    async def load_vectors(self, owner_id: int, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """int64 unit ids [n] (ascending) and float32 vectors [n, d] of one owner and model.
        Read :meth:`index_version` *before* this (or use :meth:`vector_snapshot`)."""
        return await OwnerVectors(self._conns, owner_id).load(model_id)

    async def vector_snapshot(self, owner_id: int, model_id: str) -> VectorSnapshot:
        """Version and vectors read in one transaction, so an index built from them is exact."""
        return await OwnerVectors(self._conns, owner_id).snapshot(model_id)

    async def index_versions(self, pairs: Iterable[tuple[int, str]]) -> dict[tuple[int, str], int]:
        """Current versions of many (owner, model) pairs in one read (0 for a pair never
        changed): how a cached index learns that another process changed its vectors."""
        wanted = {(int(o), m) for o, m in pairs}
        if not wanted:
            return {}
        async with self._conns.read() as conn:
            found = await owners_versions(conn, sorted({o for o, _ in wanted}))
        return {pair: found.get(pair, 0) for pair in wanted}

    async def vectors_after(self, owner_id: int, model_id: str, unit_id: int) -> VectorTopUp:
        """Vectors past ``unit_id`` with a fingerprint of those up to it (see VectorTopUp)."""
        return await OwnerVectors(self._conns, owner_id).after(model_id, unit_id)
