"""One owner's embeddable units (a photo, a video frame, a thumbnail): what search hits name."""

from __future__ import annotations

from collections.abc import Iterable

from storage.dbapi import Backend
from storage.records import Unit
from storage.sql import UNIT_SELECT, ids_json


class OwnerUnits:
    """Units of one owner; ids of another owner, or of deleted units, match nothing."""

    def __init__(self, conns: Backend, owner_id: int) -> None:
        self._conns = conns
        self.owner_id = int(owner_id)

    async def by_ids(self, unit_ids: Iterable[int]) -> dict[int, Unit]:
        """Unit id -> unit (its media id and frame timestamp) for search hits. Ids of another
        owner, or of deleted units, are absent: a stale index entry can never leak."""
        async with self._conns.read() as conn:
            rows = await conn.execute_fetchall(
                f"{UNIT_SELECT} WHERE owner_id = ? AND id IN (SELECT value FROM json_each(?))",
                (self.owner_id, ids_json(unit_ids)),
            )
        return {r[0]: Unit(*r) for r in rows}

    async def of_media(self, media_id: int) -> list[Unit]:
        """The units of one item, in insertion order (frames in the order they were given)."""
        async with self._conns.read() as conn:
            rows = await conn.execute_fetchall(
                f"{UNIT_SELECT} WHERE owner_id = ? AND media_id = ? ORDER BY id",
                (self.owner_id, media_id),
            )
        return [Unit(*r) for r in rows]
