"""The vectors of any owner by owner id: the source the per-owner FAISS indexes load from.

It implements ``core.index.loading.VectorSource`` (structurally; storage does not import core)
and goes through the owner-scoped :class:`~storage.owner_vectors.OwnerVectors`, so an index
for one owner can only ever be built from that owner's rows.
"""

from __future__ import annotations

import numpy as np

from storage.dbapi import Backend
from storage.owner_vectors import OwnerVectors
from storage.records import VectorSnapshot


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
