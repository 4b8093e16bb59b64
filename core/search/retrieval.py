"""Fetching candidates from an owner's index until a page can be answered.

The index is asked for ``4 x (offset + limit + 1)`` units (at least 32); units whose rows are
gone (a deletion racing the index) and the query item itself are skipped, exclusions are
applied, and frames collapse to their media. If the page cannot be filled yet and the index had
more, the request grows 4x, until the page is full, the relevance cut is passed, or the index
is exhausted.

A query's filters (:class:`~core.search.filters.MediaScope`) skip the units of items they do not
allow; when they allow at most ``SEARCH_DIRECT_MAX`` items, those items' stored vectors are
scored directly instead (one SQLite read, no walk through an index of everything else).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import TYPE_CHECKING

import numpy as np

from core.index.manager import IndexManager
from core.index.vectors import Hit
from core.models.embedder import l2_normalize
from core.search.exclusions import ExclusionFilter
from core.search.filters import MediaScope
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

    def __init__(self, index: IndexManager, *, direct_max: int = 0) -> None:
        self._index = index
        self._direct_max = int(direct_max)

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
        scope: MediaScope | None = None,
    ) -> Ranking:
        """Relevant items for the first ``want`` places and beyond, as far as fetched, among
        the items ``scope`` admits."""
        assert plan.vector is not None, "a query without a vector has no vector ranking"
        scope = scope or MediaScope()
        allowed = scope.ids()
        if allowed is not None and len(allowed) <= self._direct_max:
            valid = await _scored_directly(store, plan, allowed)
            kept = await _not_excluded(valid, exclusions)
            if not kept:
                return Ranking(seen_any=bool(valid))
            cut = relevance_cut(
                kept, floor=floor, margin=margin, last=-math.inf, exhausted=True, want=want
            )
            assert cut is not None  # exhausted: always complete
            return cut
        k = max(MIN_FETCH, OVERFETCH * (want + 1))
        units: dict[int, Unit | None] = {}
        while True:
            found = await self._index.search(owner_id, plan.model_id, plan.vector, k, refresh=False)
            raw = found[0]
            exhausted = len(raw) < k
            valid = await _searchable(store, plan, raw, units, scope)
            kept = await _not_excluded(valid, exclusions)
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


async def _not_excluded(
    valid: list[tuple[Unit, float]], exclusions: ExclusionFilter
) -> list[tuple[Unit, float]]:
    """The scored units no exclusion drops."""
    if not exclusions.active:
        return valid
    dropped = await exclusions.excluded([u.id for u, _ in valid])
    return [(u, s) for u, s in valid if u.id not in dropped]


async def _scored_directly(
    store: OwnerStore, plan: QueryPlan, media_ids: Collection[int]
) -> list[tuple[Unit, float]]:
    """Every unit of the given items (but the query item) with its cosine to the query,
    from the stored vectors."""
    assert plan.vector is not None
    units = {
        u.id: u for u in await store.filters.units_of(media_ids) if u.media_id != plan.own_media
    }
    if not units:
        return []
    ids, vecs = await store.vectors.of_units(plan.model_id, list(units))
    if not len(ids):
        return []
    scores = l2_normalize(np.asarray(vecs, dtype=np.float32)) @ plan.vector
    return [(units[u], float(s)) for u, s in zip(ids.tolist(), scores.tolist(), strict=True)]


async def _searchable(
    store: OwnerStore,
    plan: QueryPlan,
    raw: list[Hit],
    units: dict[int, Unit | None],
    scope: MediaScope,
) -> list[tuple[Unit, float]]:
    """The fetched hits whose units still exist, are not the query item and are in the scope,
    with their rows (``units`` caches lookups across fetch rounds: one SQLite read per round
    for new ids)."""
    new = [uid for uid, _ in raw if uid not in units]
    if new:
        found = await store.units.by_ids(new)
        units.update((uid, found.get(uid)) for uid in new)
    valid: list[tuple[Unit, float]] = []
    for uid, score in raw:
        unit = units[uid]
        if unit is not None and unit.media_id != plan.own_media and scope.admits(unit.media_id):
            valid.append((unit, score))
    return valid
