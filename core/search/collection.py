"""Deleting from an owner's collection while keeping SQLite and the vector indexes in step.

Deleting an item (:meth:`CollectionService.delete_media`) or everything an owner has
(:meth:`CollectionService.clear` keeps the owner and its settings,
:meth:`CollectionService.forget_owner` does not) commits in SQLite first, then removes the
units from every index, or drops the owner's index files. If the index step fails the index is
dropped from memory and rebuilt from SQLite on next use; a stale index entry is never shown
meanwhile because every search hit is looked up in SQLite.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from core.errors import NotFoundError
from core.index.manager import IndexManager
from storage.records import DeleteResult, PurgeResult

if TYPE_CHECKING:
    from storage.db import Database

log = logging.getLogger(__name__)


class CollectionService:
    """Deletes from an owner's collection: rows and vectors in SQLite, then index entries."""

    def __init__(self, db: Database, index: IndexManager) -> None:
        self._db = db
        self._index = index

    async def delete_media(self, owner_id: int, media_id: int) -> DeleteResult:
        """Delete one item with its units, vectors and index entries. Raises
        :class:`NotFoundError` if it is not the owner's (already deleted, or another owner's)."""
        result = await self.delete_media_many(owner_id, [media_id])
        if not result.media_ids:
            raise NotFoundError(f"item {media_id} not found")
        return result

    async def delete_media_many(self, owner_id: int, media_ids: Iterable[int]) -> DeleteResult:
        """Delete several items in one transaction; unknown ids are ignored (see the result)."""
        result = await self._db.owner(owner_id).media.delete_many(media_ids)
        await self.apply_delete(owner_id, result)
        return result

    async def apply_delete(self, owner_id: int, result: DeleteResult) -> None:
        """Remove from the indexes what a committed storage deletion removed (also for
        ``LocalFiles.remove`` and ``OwnerVectors.delete_model`` results)."""
        for model_id, unit_ids in result.by_model.items():
            version = result.versions.get(model_id)
            if version is None or not unit_ids:
                continue
            try:
                await self._index.remove(
                    owner_id, model_id, np.asarray(unit_ids, dtype=np.int64), version
                )
            except Exception:
                # SQLite already committed: forget the in-memory index, rebuild on next use.
                log.exception("index removal failed owner=%s model=%s", owner_id, model_id)
                await self._index.drop(owner_id, model_id)

    async def clear(self, owner_id: int) -> PurgeResult:
        """Delete every item, unit, vector and job of the owner and its index files; the owner,
        its settings and active models stay."""
        result = await self._db.owner(owner_id).media.delete_all()
        await self._index.drop_owner(owner_id)
        return result

    async def forget_owner(self, owner_id: int) -> PurgeResult:
        """Forget the owner entirely (rows, settings, vectors, jobs) and its index files."""
        result = await self._db.owner(owner_id).profile.delete()
        await self._index.drop_owner(owner_id)
        return result
