"""What a search answers: one page of hits, or why there is none.

A page is ``[offset, offset + limit)`` of the ranked items (score descending, then media id; or
the fused order of pictures and text, :mod:`core.search.fusion`; or date order); every hit is
looked up in SQLite, so an item deleted meanwhile is never shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from core.models.embedder import l2_normalize
from core.search.filters import QueryFilters
from core.search.fusion import Fused, Matched
from core.search.query import Query, Strictness
from core.search.relevance import Ranking
from core.search.snippets import Snippet, make_snippet
from storage.records import Media, Unit

if TYPE_CHECKING:
    from storage.repositories import OwnerStore

Reason = Literal["no_match", "empty", "past_end"]
"""Why ``hits`` is empty: ``no_match`` = nothing passed the relevance cut (``best_score`` says
how close the best candidate came); ``empty`` = nothing to search (no indexed item, or only the
query item itself); ``past_end`` = there are results, but ``offset`` is beyond them."""


@dataclass(frozen=True, slots=True)
class Hit:
    """One item found. ``unit_id`` is the matching photo or frame; ``timestamp`` is the moment
    (seconds) of the best frame for a video, ``None`` for a photo or a thumbnail. ``matched``
    says whether the picture, the text or both found it; ``snippet`` shows the matching words of
    a text match in context."""

    media: Media
    score: float  # cosine similarity to the query vector (0.0 when the query has none)
    unit_id: int
    timestamp: float | None
    matched: Matched = "picture"
    snippet: Snippet | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One page of answers, or why there is none (``reason``)."""

    hits: list[Hit]
    model_id: str | None  # the model that answered
    elapsed_ms: float  # the whole search: embedding, index and database
    reason: Reason | None = None
    best_score: float | None = None  # of the best candidate, even when it did not pass the cut
    offset: int = 0
    limit: int = 0
    total: int = 0  # relevant items found; exact when ``total_exact``, else a lower bound
    total_exact: bool = True
    has_more: bool = False  # a next page (offset + limit) has at least one hit
    strictness: Strictness = "normal"
    excluded: tuple[str, ...] = ()  # the exclusion terms that were applied
    filters: QueryFilters | None = None  # the filters that were applied, if any

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.has_more else None


async def fused_hits(
    store: OwnerStore,
    fused: Fused,
    offset: int,
    limit: int,
    *,
    model_id: str,
    vector: np.ndarray | None,
) -> list[Hit]:
    """The hits of ``[offset, offset + limit)`` of a fused ranking. An item without a unit from
    the vector side (found by its text or listed by filters) shows its best unit for
    ``vector`` (its first unit when there is no query vector)."""
    chosen = fused.items[offset : offset + limit]
    if not chosen:
        return []
    media = await store.media.by_ids(r.media_id for r in chosen)
    missing = [r.media_id for r in chosen if r.unit is None and r.media_id in media]
    shown = await _shown_units(store, missing, model_id, vector) if missing else {}
    hits: list[Hit] = []
    for r in chosen:
        unit, score = (r.unit, r.score) if r.unit is not None else shown.get(r.media_id, (None, 0))
        if r.media_id in media and unit is not None:  # else deleted between ranking and now
            score = round(float(score or 0.0), 6)
            hits.append(Hit(media[r.media_id], score, unit.id, unit.timestamp, r.matched))
    return hits


async def _shown_units(
    store: OwnerStore, media_ids: list[int], model_id: str, vector: np.ndarray | None
) -> dict[int, tuple[Unit, float]]:
    """Per item, its unit most like ``vector`` and that cosine (no vector: its first unit)."""
    units = await store.filters.units_of(media_ids)
    best: dict[int, tuple[Unit, float]] = {}
    if vector is None:
        for u in units:
            best.setdefault(u.media_id, (u, 0.0))
        return best
    by_id = {u.id: u for u in units}
    ids, vecs = await store.vectors.of_units(model_id, list(by_id))
    scores = l2_normalize(vecs) @ vector if len(ids) else np.zeros(0, np.float32)
    for uid, score in zip(ids.tolist(), scores.tolist(), strict=True):
        unit = by_id[uid]
        if unit.media_id not in best or score > best[unit.media_id][1]:
            best[unit.media_id] = (unit, float(score))
    for u in units:  # no vector for this model yet (being re-embedded): still shown
        best.setdefault(u.media_id, (u, 0.0))
    return best


async def with_snippets(
    store: OwnerStore,
    hits: list[Hit],
    sources: Mapping[int, Sequence[str]],
    stems: frozenset[str],
) -> list[Hit]:
    """``hits`` with a snippet on each one its text matched (``sources``: the matched sources
    per media id, best first, shown first)."""
    todo = [h.media.id for h in hits if h.matched != "picture"]
    if not todo or not stems:
        return hits
    texts = await store.texts.of_media(todo)
    out: list[Hit] = []
    for hit in hits:
        if hit.matched != "picture" and hit.media.id in texts:
            prefer = tuple(sources.get(hit.media.id, ()))
            snippet = make_snippet(texts[hit.media.id], stems, prefer=prefer)
            hit = replace(hit, snippet=snippet)
        out.append(hit)
    return out


def empty_reason(ranking: Ranking | Fused) -> Reason:
    """Why a page came back without hits."""
    if not ranking.seen_any:
        return "empty"
    if not ranking.items:
        return "no_match"
    return "past_end"


def search_result(
    query: Query,
    ranking: Ranking | Fused,
    hits: list[Hit],
    *,
    model_id: str,
    limit: int,
    elapsed_ms: float,
) -> SearchResult:
    """The answer to ``query`` for the page ``hits`` of ``ranking``."""
    return SearchResult(
        hits=hits,
        model_id=model_id,
        elapsed_ms=elapsed_ms,
        reason=None if hits else empty_reason(ranking),
        best_score=None if ranking.best is None else round(ranking.best, 6),
        offset=query.offset,
        limit=limit,
        total=len(ranking.items),
        total_exact=ranking.complete,
        has_more=len(ranking.items) > query.offset + limit,
        strictness=query.strictness,
        excluded=query.exclude,
        filters=query.filters if query.filters.active else None,
    )
