"""What a search answers: one page of hits, or why there is none.

A page is ``[offset, offset + limit)`` of the ranked items (score descending, then media id);
every hit is looked up in SQLite, so an item deleted meanwhile is never shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from core.search.query import Query, Strictness
from core.search.relevance import Ranking
from storage.records import Media

if TYPE_CHECKING:
    from storage.repositories import OwnerStore

Reason = Literal["no_match", "empty", "past_end"]
"""Why ``hits`` is empty: ``no_match`` = nothing passed the relevance cut (``best_score`` says
how close the best candidate came); ``empty`` = nothing to search (no indexed item, or only the
query item itself); ``past_end`` = there are results, but ``offset`` is beyond them."""


@dataclass(frozen=True, slots=True)
class Hit:
    """One item found. ``unit_id`` is the matching photo or frame; ``timestamp`` is the moment
    (seconds) of the best frame for a video, ``None`` for a photo or a thumbnail."""

    media: Media
    score: float  # cosine similarity to the query vector
    unit_id: int
    timestamp: float | None


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

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.has_more else None


async def page_hits(store: OwnerStore, ranking: Ranking, offset: int, limit: int) -> list[Hit]:
    """The hits of ``[offset, offset + limit)`` with their media rows (one SQLite read)."""
    chosen = ranking.items[offset : offset + limit]
    media = await store.media.by_ids(u.media_id for u, _ in chosen) if chosen else {}
    return [
        Hit(media[u.media_id], round(float(s), 6), u.id, u.timestamp)
        for u, s in chosen
        if u.media_id in media  # deleted between the ranking and now
    ]


def empty_reason(ranking: Ranking) -> Reason:
    """Why a page came back without hits."""
    if not ranking.seen_any:
        return "empty"
    if not ranking.items:
        return "no_match"
    return "past_end"


def search_result(
    query: Query,
    ranking: Ranking,
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
    )
