"""Exclusions (``"a circle -red"``): leaving out what a search for the excluded term finds.

Subtracting the exclusion's vector from the query's (rclip's way) shifts every score and breaks
the meaning of the relevance floor, and comparing a hit's cosine to the exclusion text with its
cosine to the query compares two texts whose cosines are not on the same scale. Instead an
exclusion is treated as a query of its own: a unit is dropped when it would be a (loose) result
of searching the excluded term, i.e. its cosine to the term is at least
``max(floor, best_term_score - SEARCH_MARGIN_LOOSE)``, where the best term score is taken over
the whole collection (one extra index lookup of k=1 per term). Exclusions work on units, so a
video keeps its frames that do not show the excluded thing. The cosines of the fetched units
come from their stored vectors (one SQLite read per fetch round).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from core.index.manager import IndexManager
from core.models.embedder import l2_normalize
from core.search.planning import QueryPlan

if TYPE_CHECKING:
    from storage.repositories import OwnerStore


async def exclusion_thresholds(
    index: IndexManager, owner_id: int, plan: QueryPlan, *, floor: float, loose_margin: float
) -> np.ndarray:
    """Per exclusion term, the cosine at or above which a unit is dropped: what a loose
    search for the term would return (its best score in the collection minus the loose
    margin, never below the model's floor)."""
    if not len(plan.exclude):
        return np.zeros(0, dtype=np.float32)
    tops = await index.search(owner_id, plan.model_id, plan.exclude, 1, refresh=False)
    out = [max(floor, row[0][1] - loose_margin) if row else np.inf for row in tops]
    return np.asarray(out, dtype=np.float32)


class ExclusionFilter:
    """Decides, once per unit over one search, whether an exclusion term matches it."""

    def __init__(self, store: OwnerStore, plan: QueryPlan, thresholds: np.ndarray) -> None:
        self._store = store
        self._plan = plan
        self._thresholds = thresholds
        self._excluded: dict[int, bool] = {}

    @property
    def active(self) -> bool:
        """False when the query has no exclusions (nothing to read or compare)."""
        return bool(len(self._thresholds))

    async def excluded(self, unit_ids: list[int]) -> set[int]:
        """Those of ``unit_ids`` an exclusion drops (decided once, then remembered)."""
        await self._decide([u for u in unit_ids if u not in self._excluded])
        return {u for u in unit_ids if self._excluded[u]}

    async def _decide(self, todo: list[int]) -> None:
        if not todo:
            return
        ids, vecs = await self._store.vectors.of_units(self._plan.model_id, todo)
        for uid in todo:
            self._excluded[uid] = True  # no stored vector: a row deleted meanwhile
        if len(ids):
            scores = l2_normalize(vecs) @ self._plan.exclude.T  # [n, E]
            hit = (scores >= self._thresholds[None, :]).any(axis=1)
            for uid, is_excluded in zip(ids.tolist(), hit.tolist(), strict=True):
                self._excluded[uid] = bool(is_excluded)
