"""Owners as the front ends see them: find or create one, move it to a new id, forget it, read
its stats and per-owner settings.

Front ends go through :class:`OwnerService` rather than the database so that how storage
organises owners (one repository or several) stays behind the engine boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from core.search.collection import CollectionService
from storage import Database, Owner, OwnerKind, OwnerStats, PurgeResult

# The one owner of the local CLI's folder items, separate from every Telegram user or chat.
LOCAL_OWNER: Final[tuple[OwnerKind, str]] = ("local", "default")


class OwnerService:
    """Owner lookups and per-owner state, for the bot and the CLI alike."""

    def __init__(self, db: Database, collection: CollectionService) -> None:
        self._db = db
        self._collection = collection

    async def find(self, kind: OwnerKind, external_id: int | str) -> Owner | None:
        """The owner, without creating one (inline queries must not create collections)."""
        return await self._db.owners.find(kind, external_id)

    async def ensure(self, kind: OwnerKind, external_id: int | str) -> Owner:
        """Get or create the owner for a Telegram user/chat id or a local collection name."""
        return await self._db.owners.ensure(kind, external_id)

    async def ensure_local(self) -> Owner:
        """The local CLI's owner (:data:`LOCAL_OWNER`), created on first use."""
        return await self._db.owners.ensure(*LOCAL_OWNER)

    async def get(self, owner_id: int) -> Owner | None:
        """The owner by row id, or None once it was forgotten."""
        return await self._db.owners.get(owner_id)

    async def move(
        self, kind: OwnerKind, old_external_id: int | str, new_external_id: int | str
    ) -> Owner | None:
        """Keep an owner's collection under a new id (a group became a supergroup); None when
        nothing moved (see :meth:`storage.OwnerRegistry.move`)."""
        return await self._db.owners.move(kind, old_external_id, new_external_id)

    async def forget(self, owner_id: int) -> PurgeResult:
        """Forget the owner entirely: rows, settings, vectors, jobs and its index files."""
        return await self._collection.forget_owner(owner_id)

    async def stats(self, owner_id: int) -> OwnerStats:
        """What the owner's collection holds (items by kind, units, vectors, queued jobs)."""
        return await self._db.owner(owner_id).stats()

    async def video_seconds(self, owner_id: int) -> float:
        """Total length of the owner's videos, what a per-collection video quota counts."""
        return await self._db.owner(owner_id).media.video_seconds()

    async def settings(self, owner_id: int) -> dict[str, Any]:
        """The owner's settings; ``{}`` when none were set. Defaults belong to the caller."""
        return await self._db.owner(owner_id).profile.settings()

    async def update_settings(self, owner_id: int, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` (a ``None`` value removes that key) and return the result."""
        return await self._db.owner(owner_id).profile.update_settings(changes)
