"""Fetching candidates from an owner's index until a page can be answered.

The index is asked for ``4 x (offset + limit + 1)`` units (at least 32); units whose rows are
gone (a deletion racing the index) and the query item itself are skipped, exclusions are
applied, and frames collapse to their media. If the page cannot be filled yet and the index had
more, the request grows 4x, until the page is full, the relevance cut is passed, or the index
is exhausted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.index.manager import IndexManager
from core.index.vectors import Hit
from core.search.exclusions import ExclusionFilter
from core.search.planning import QueryPlan
from core.search.relevance import Ranking, relevance_cut
from storage.records import Unit

if TYPE_CHECKING:
    from storage.repositories import OwnerStore

# How many units to fetch per wanted item: frames collapse and exclusions drop units.
OVERFETCH = 4
MIN_FETCH = 32


class CandidateRetriever:
    """Ranks one query's relevant items, one per media, in page order."""

    def __init__(self, index: IndexManager) -> None:
        self._index = index

    async def rank(
        self,
        owner_id: int,
        store: OwnerStore,
        plan: QueryPlan,
        exclusions: ExclusionFilter,
        *,
        floor: float,
        margin: float,
        want: int,
    ) -> Ranking:
        """Relevant items for the first ``want`` places and beyond, as far as fetched."""
        k = max(MIN_FETCH, OVERFETCH * (want + 1))
        units: dict[int, Unit | None] = {}
        while True:
            raw = (await self._index.search(owner_id, plan.model_id, plan.vector, k))[0]
            exhausted = len(raw) < k
            valid = await _searchable(store, plan, raw, units)
            kept = valid
            if exclusions.active:
                dropped = await exclusions.excluded([u.id for u, _ in valid])
                kept = [(u, s) for u, s in valid if u.id not in dropped]
            if kept:
                ranking = relevance_cut(
                    kept,
                    floor=floor,
                    margin=margin,
                    last=raw[-1][1],
                    exhausted=exhausted,
                    want=want,
                )
                if ranking is not None:
                    return ranking
            elif exhausted or (raw and raw[-1][1] < floor):
                return Ranking(seen_any=bool(valid))
            k *= OVERFETCH


async def _searchable(
    store: OwnerStore, plan: QueryPlan, raw: list[Hit], units: dict[int, Unit | None]
) -> list[tuple[Unit, float]]:
    """The fetched hits whose units still exist and are not the query item, with their rows
    (``units`` caches lookups across fetch rounds: one SQLite read per round for new ids)."""
    new = [uid for uid, _ in raw if uid not in units]
    if new:
        found = await store.units.by_ids(new)
        units.update((uid, found.get(uid)) for uid in new)
    valid: list[tuple[Unit, float]] = []
    for uid, score in raw:
        unit = units[uid]
        if unit is not None and unit.media_id != plan.own_media:
            valid.append((unit, score))
    return valid
