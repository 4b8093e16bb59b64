"""An owner's items as the front ends change and browse them: add (through the ingest
pipeline), delete, clear, look items up by id, by Telegram file or newest first, and decide
about near-duplicate pairs (delete one item, or keep both).

Adding always goes through the pipeline (durable job first, see :mod:`core.ingest.pipeline`);
deleting always goes through :class:`~core.search.collection.CollectionService`, so the indexes
never keep a vector of a deleted item.
"""

from __future__ import annotations

from typing import Literal

from core.errors import NotFoundError
from core.ingest.pipeline import IngestPipeline, IngestRequest, ProgressCallback, Ticket
from core.ingest.remote import RemoteTickets
from core.search.collection import CollectionService
from storage import Database, DeleteResult, Media, PurgeResult
from storage.near_duplicates import NearDuplicatePair, PairKey

# What the owner decided about a near-duplicate pair.
PairChoice = Literal["delete_original", "delete_copy", "keep_both"]


class Library:
    """Adds to and deletes from owners' collections; reads single items and pages of them."""

    def __init__(
        self,
        db: Database,
        collection: CollectionService,
        pipeline: IngestPipeline | RemoteTickets | None,
    ) -> None:
        self._db = db
        self._collection = collection
        self._pipeline = pipeline

    @property
    def accepts_items(self) -> bool:
        """Whether this engine was opened with an ingest pipeline (``Engine.open(fetch=...)``)."""
        return self._pipeline is not None

    async def submit(
        self, request: IngestRequest, *, progress: ProgressCallback | None = None
    ) -> Ticket:
        """Queue one item durably; await ``ticket.result()`` for the outcome. Raises
        :class:`RuntimeError` on an engine opened without a fetch callback (search only)."""
        return await self._require_pipeline().submit(request, progress=progress)

    async def submit_many(self, requests: list[IngestRequest]) -> list[Ticket]:
        """Queue several items in one go (an album, a folder scan), tickets in request order."""
        return await self._require_pipeline().submit_many(requests)

    async def delete(self, owner_id: int, media_id: int) -> DeleteResult:
        """Delete one item with its units, vectors and index entries; raises
        :class:`~core.errors.NotFoundError` when it is not (or no longer) the owner's."""
        return await self._collection.delete_media(owner_id, media_id)

    async def apply_delete(self, owner_id: int, result: DeleteResult) -> None:
        """Drop from the indexes what a committed storage deletion removed."""
        await self._collection.apply_delete(owner_id, result)

    async def clear(self, owner_id: int) -> PurgeResult:
        """Delete every item of the owner; the owner and its settings stay."""
        return await self._collection.clear(owner_id)

    async def item(self, owner_id: int, media_id: int) -> Media | None:
        """The owner's item by id, or None (deleted, or another owner's)."""
        return await self._db.owner(owner_id).media.get(media_id)

    async def find(self, owner_id: int, file_unique_id: str) -> Media | None:
        """The owner's item holding this Telegram file (or local file key), or None."""
        return await self._db.owner(owner_id).media.find(file_unique_id)

    async def newest(
        self, owner_id: int, *, limit: int = 50, before_id: int | None = None
    ) -> list[Media]:
        """The owner's items newest first, a page of ``limit`` older than ``before_id``."""
        return await self._db.owner(owner_id).media.page(limit=limit, before_id=before_id)

    async def duplicates(
        self, owner_id: int, *, limit: int, after: PairKey | None = None
    ) -> list[NearDuplicatePair]:
        """The owner's near-duplicate pairs still to decide on, newest first (see
        :meth:`storage.near_duplicates.OwnerNearDuplicates.page`)."""
        return await self._db.owner(owner_id).near_duplicates.page(limit=limit, after=after)

    async def count_duplicates(self, owner_id: int) -> int:
        return await self._db.owner(owner_id).near_duplicates.count()

    async def resolve_duplicate(
        self, owner_id: int, key: PairKey, choice: PairChoice
    ) -> NearDuplicatePair | None:
        """Delete one item of the owner's pair (through :meth:`delete`, so the indexes follow)
        or keep both; None when the pair is not (or no longer) open: another owner's ids, an
        item deleted meanwhile, a pair decided already."""
        pairs = self._db.owner(owner_id).near_duplicates
        pair = await pairs.get(key)
        if pair is None:
            return None
        if choice == "keep_both":
            return pair if await pairs.dismiss(key) else None
        victim = pair.original if choice == "delete_original" else pair.copy
        try:
            await self.delete(owner_id, victim.id)
        except NotFoundError:
            return None
        return pair

    def _require_pipeline(self) -> IngestPipeline | RemoteTickets:
        if self._pipeline is None:
            raise RuntimeError("this engine was opened without an ingest pipeline (no fetch)")
        return self._pipeline
