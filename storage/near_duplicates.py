"""One owner's near-duplicate pairs: recorded when ingest finds that a new item looks like one
the owner already has, listed by /duplicates until the owner deletes one item or keeps both.

Scoped by owner like every repository (``store.near_duplicates``): a pair of ids taken from
callback data matches nothing unless both items are this owner's. The rows go with either item
(``migrations/0007_near_duplicates.sql`` cascades), so a listed pair never names a deleted item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.dbapi import Backend, Conn
from storage.records import Media
from storage.sql import MEDIA_SELECT, fetch_all, ids_json, media_from_row, scalar

# Newest pair first: a pair is named by its newer item, then the item it looks like.
_ORDER = "ORDER BY media_id DESC, duplicate_of DESC"


@dataclass(frozen=True, slots=True)
class PairKey:
    """A pair by its ids: ``copy`` (the newer item, ``media_id``) looks like ``original``."""

    copy: int
    original: int


@dataclass(frozen=True, slots=True)
class NearDuplicatePair:
    """Two of the owner's items that look alike: ``original`` was there first."""

    original: Media
    copy: Media
    score: float  # cosine similarity of their first pictures
    created_at: int

    @property
    def key(self) -> PairKey:
        return PairKey(self.copy.id, self.original.id)


class OwnerNearDuplicates:
    """The near-duplicate pairs of one owner (see the module docstring)."""

    def __init__(self, conns: Backend, owner_id: int) -> None:
        self._conns = conns
        self.owner_id = int(owner_id)

    async def record(self, media_id: int, duplicate_of: int, score: float) -> bool:
        """Remember that item ``media_id`` looks like ``duplicate_of``; False when either is not
        (or no longer) this owner's, or the pair is known already (a dismissal stays)."""
        if int(media_id) == int(duplicate_of):
            return False
        score = max(-1.0, min(1.0, float(score)))
        async with self._conns.write() as conn:
            cur = await conn.execute(
                """
                INSERT INTO near_duplicates (owner_id, media_id, duplicate_of, score, created_at)
                SELECT ?, ?, ?, ?, ?
                WHERE (SELECT count(*) FROM media WHERE owner_id = ? AND id IN (?, ?)) = 2
                ON CONFLICT (owner_id, media_id, duplicate_of) DO NOTHING
                """,
                (
                    self.owner_id, int(media_id), int(duplicate_of), score, self._conns.now(),
                    self.owner_id, int(media_id), int(duplicate_of),
                ),
            )  # fmt: skip
        return cur.rowcount > 0

    async def page(self, *, limit: int, after: PairKey | None = None) -> list[NearDuplicatePair]:
        """Pairs the owner has not dismissed, newest first; ``after``: the last pair of the
        previous page (a key, not an offset, so a pair resolved meanwhile shifts nothing)."""
        last = (after.copy, after.original) if after is not None else (2**63 - 1, 2**63 - 1)
        async with self._conns.read(snapshot=True) as conn:
            rows = await fetch_all(
                conn,
                f"""
                SELECT media_id, duplicate_of, score, created_at FROM near_duplicates
                WHERE owner_id = ? AND dismissed = 0 AND (media_id, duplicate_of) < (?, ?)
                {_ORDER} LIMIT ?
                """,
                (self.owner_id, *last, int(limit)),
            )
            media = await self._media(conn, rows)
        return [
            NearDuplicatePair(media[original], media[copy], float(score), created)
            for copy, original, score, created in rows
            if copy in media and original in media
        ]

    async def get(self, key: PairKey) -> NearDuplicatePair | None:
        """The pair, unless it was dismissed, is gone with one of its items, or is not this
        owner's."""
        async with self._conns.read(snapshot=True) as conn:
            rows = await fetch_all(
                conn,
                """
                SELECT media_id, duplicate_of, score, created_at FROM near_duplicates
                WHERE owner_id = ? AND media_id = ? AND duplicate_of = ? AND dismissed = 0
                """,
                (self.owner_id, int(key.copy), int(key.original)),
            )
            media = await self._media(conn, rows)
        if not rows or key.copy not in media or key.original not in media:
            return None
        return NearDuplicatePair(media[key.original], media[key.copy], *rows[0][2:])

    async def dismiss(self, key: PairKey) -> bool:
        """Keep both: the pair is not listed again. False when there was no open pair."""
        async with self._conns.write() as conn:
            cur = await conn.execute(
                """
                UPDATE near_duplicates SET dismissed = 1
                WHERE owner_id = ? AND media_id = ? AND duplicate_of = ? AND dismissed = 0
                """,
                (self.owner_id, int(key.copy), int(key.original)),
            )
        return cur.rowcount > 0

    async def count(self) -> int:
        """How many pairs are waiting for the owner's decision."""
        async with self._conns.read() as conn:
            return await scalar(
                conn,
                "SELECT count(*) FROM near_duplicates WHERE owner_id = ? AND dismissed = 0",
                self.owner_id,
            )

    async def _media(self, conn: Conn, rows: list[tuple[Any, ...]]) -> dict[int, Media]:
        """The items of ``rows`` (copy, original, ...) by id, read in the caller's snapshot."""
        ids = {int(r[i]) for r in rows for i in (0, 1)}
        if not ids:
            return {}
        found = await fetch_all(
            conn,
            f"{MEDIA_SELECT} WHERE m.owner_id = ? AND m.id IN (SELECT value FROM json_each(?))",
            (self.owner_id, ids_json(ids)),
        )
        return {r[0]: media_from_row(r) for r in found}
