"""Which of one owner's items a query's filters allow: a date range, kinds, forward sources; in
date order when the query asks for it.

An item's date is ``COALESCE(taken_at, message_date, created_at)``: when the picture was taken
if known, else when it was posted, else when it was stored, so every item has one. A source
``name`` matches a forward origin stored as ``"Title (@name)"`` by its username, or one whose
title is ``name``, compared without case (Python's casefold, registered on every connection).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from storage.dbapi import Backend
from storage.records import MEDIA_KINDS, Unit
from storage.sql import UNIT_SELECT, fetch_all, ids_json, scalar

__all__ = ["DATE_OF", "DateOrder", "MediaFilter", "OwnerMediaFilters"]

DateOrder = Literal["newest", "oldest"]
DATE_OF = "COALESCE(m.taken_at, m.message_date, m.created_at)"
_ORDER_SQL: dict[str, str] = {
    "newest": f"{DATE_OF} DESC, m.id DESC",
    "oldest": f"{DATE_OF} ASC, m.id ASC",
}
# One source: its username inside "(@name)", or the whole origin equal to it, or its title
# before " (" equal to it.
_SOURCE_SQL = """(
    instr(casefold(m.forward_origin), '(@' || ? || ')') > 0
    OR casefold(m.forward_origin) = ?
    OR substr(casefold(m.forward_origin), 1, length(?) + 2) = ? || ' ('
)"""
_NO_LIMIT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class MediaFilter:
    """What an item must be to pass: ``date_from <= date < date_to`` (unix seconds, either side
    open when None), one of ``kinds`` (any when empty), forwarded from one of ``sources``
    (names without "@"; any item when empty)."""

    date_from: int | None = None
    date_to: int | None = None
    kinds: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(MEDIA_KINDS)
        if unknown:
            raise ValueError(f"unknown media kinds {sorted(unknown)}; expected {MEDIA_KINDS}")
        if isinstance(self.sources, str) or isinstance(self.kinds, str):
            raise TypeError("kinds and sources are sequences, not one string")

    @property
    def narrows(self) -> bool:
        """False when every item passes."""
        return (
            self.date_from is not None
            or self.date_to is not None
            or bool(self.kinds)
            or bool(self.sources)
        )

    def where(self) -> tuple[str, list[object]]:
        """The SQL condition on ``media AS m`` (after the owner's) and its parameters."""
        parts: list[str] = []
        params: list[object] = []
        if self.date_from is not None:
            parts.append(f"{DATE_OF} >= ?")
            params.append(int(self.date_from))
        if self.date_to is not None:
            parts.append(f"{DATE_OF} < ?")
            params.append(int(self.date_to))
        if self.kinds:
            parts.append("m.kind IN (SELECT CAST(value AS TEXT) FROM json_each(?))")
            params.append(_json_strings(self.kinds))
        if self.sources:
            names = [s.casefold().lstrip("@") for s in self.sources]
            parts.append("(" + " OR ".join(_SOURCE_SQL for _ in names) + ")")
            for name in names:
                params += [name, name, name, name]
        return (" AND ".join(parts) or "1 = 1"), params


def _json_strings(values: Sequence[str]) -> str:
    return json.dumps([str(v) for v in values])


class OwnerMediaFilters:
    """The filter side of one owner's search: ids of the items a filter allows, their dates,
    and the units of given items. Every query is scoped by the owner's id."""

    def __init__(self, conns: Backend, owner_id: int) -> None:
        self._conns = conns
        self.owner_id = int(owner_id)

    async def media_ids(
        self,
        flt: MediaFilter = MediaFilter(),
        *,
        order: DateOrder | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[int]:
        """Ids of the owner's items that pass ``flt``: by date (``order``; ties by id in the
        same direction) or by id, ``[offset, offset + limit)`` of them."""
        cond, params = flt.where()
        sql = f"SELECT m.id FROM media AS m WHERE m.owner_id = ? AND {cond}"
        sql += f" ORDER BY {_ORDER_SQL[order]}" if order is not None else " ORDER BY m.id"
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            # "No limit" has no spelling both accept (SQLite: -1, PostgreSQL: ALL or NULL).
            params = [*params, _NO_LIMIT if limit is None else int(limit), int(offset)]
        async with self._conns.read() as conn:
            rows = await fetch_all(conn, sql, [self.owner_id, *params])
        return [r[0] for r in rows]

    async def count(self, flt: MediaFilter = MediaFilter()) -> int:
        """How many of the owner's items pass ``flt``."""
        cond, params = flt.where()
        async with self._conns.read() as conn:
            return await scalar(
                conn,
                f"SELECT count(*) FROM media AS m WHERE m.owner_id = ? AND {cond}",
                self.owner_id,
                *params,
            )

    async def dates(self, media_ids: Iterable[int]) -> dict[int, int]:
        """Each given item's date (see the module docstring); other owners' ids are absent."""
        async with self._conns.read() as conn:
            rows = await fetch_all(
                conn,
                f"SELECT m.id, {DATE_OF} FROM media AS m WHERE m.owner_id = ? "
                "AND m.id IN (SELECT value FROM json_each(?))",
                (self.owner_id, ids_json(media_ids)),
            )
        return {r[0]: int(r[1]) for r in rows}

    async def units_of(self, media_ids: Iterable[int]) -> list[Unit]:
        """The units of the given items, by media id then unit id (direct scoring of a small
        filtered set, and the shown unit of an item only the text index found)."""
        async with self._conns.read() as conn:
            rows = await fetch_all(
                conn,
                f"{UNIT_SELECT} WHERE owner_id = ? "
                "AND media_id IN (SELECT value FROM json_each(?)) ORDER BY media_id, id",
                (self.owner_id, ids_json(media_ids)),
            )
        return [Unit(*r) for r in rows]
