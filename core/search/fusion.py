"""Hybrid ranking: the vector ranking and the text index's ranking fused into one order.

**Weighted reciprocal rank fusion**: an item scores ``sum(w / (k + rank))`` over the rankings
it is in (ranks from 1, ``k = SEARCH_RRF_K``). A picture rank weighs 1; a text match weighs
``SEARCH_TEXT_MATCH_WEIGHT`` times the share of the query's words its text holds. So with the
default weight 2 a text holding every word leads the items only the pictures suggest, one
holding half of them interleaves with those (a word misread off a picture does not bury it),
a query whose words no text holds ranks by the pictures alone, and an item both find leads.
On a tie the picture's item leads, then the lower media id. The vector ranking takes part
after its relevance cut, so the floor and margin still guard items only the pictures suggest;
an item the text index found is relevant on its own.

**Stable pages.** Both inputs are fixed per query, not per page: the first
``SEARCH_FUSION_DEPTH`` vector ranks and the first ``SEARCH_TEXT_LIMIT`` text matches are fused
(the *head*); vector items past that depth follow in vector order (the *tail*). So the order is
one list per query and any ``[offset, offset + limit)`` is a slice of it: no duplicates, no
gaps. (When the depth is at least the text limit and no text weight is below 1, every head item
also outscores every tail item, so head + tail is exactly the weighted RRF order of everything.)

A query of filters alone lists what they allow by date (:func:`filter_listing`); a date order
("newest") sorts the first ``SEARCH_SORT_DEPTH`` relevant items (:func:`by_date`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from core.search.filters import MediaScope, QueryFilters
from core.search.relevance import Ranking
from storage.media_filters import DateOrder
from storage.records import Unit

if TYPE_CHECKING:
    from core.search.exclusions import ExclusionFilter
    from storage.owner_texts import TextMatch
    from storage.repositories import OwnerStore

Matched = Literal["picture", "text", "both"]
"""Why an item is a hit: its picture (the vector ranking), its text (the text index), or both.
Items listed by filters alone count as ``picture``."""
# Items whose exclusions are decided at once in a listing of filters alone.
LISTING_CHUNK = 256


@dataclass(frozen=True, slots=True)
class Ranked:
    """One item in a fused ranking: its best unit and cosine when the vector side has it
    (``None`` for an item only the text index or the filters found), why it matched, and the
    text sources that matched (best first, when known)."""

    media_id: int
    unit: Unit | None
    score: float | None
    matched: Matched = "picture"
    sources: tuple[str, ...] = ()


@dataclass(slots=True)
class Fused:
    """A search's relevant items in page order; the same fields as a vector
    :class:`~core.search.relevance.Ranking`, so results treat both alike."""

    items: list[Ranked] = field(default_factory=list)
    complete: bool = True  # every relevant item is in ``items``
    best: float | None = None  # best cosine of the vector side
    seen_any: bool = False  # something was searched (not an empty collection)


def rrf(
    rankings: Sequence[Sequence[int]],
    k: int,
    weights: Sequence[Sequence[float] | None] = (),
) -> list[tuple[int, float]]:
    """Ids by weighted reciprocal rank fusion of ``rankings`` (each best first, ids unique
    within it): an id scores ``sum(w / (k + rank))``, ``w`` its weight in that ranking
    (``weights[i][rank - 1]``; 1 when not given). ``(id, score)`` by score descending; on
    equal scores an id of an earlier ranking first (the pictures lead a tie with the text),
    then the smaller id."""
    scores: dict[int, float] = {}
    first: dict[int, int] = {}
    for which, ranking in enumerate(rankings):
        given = weights[which] if which < len(weights) else None
        for rank, item in enumerate(ranking, start=1):
            w = 1.0 if given is None else given[rank - 1]
            scores[item] = scores.get(item, 0.0) + w / (k + rank)
            first.setdefault(item, which)
    return sorted(scores.items(), key=lambda kv: (-kv[1], first[kv[0]], kv[0]))


def text_order(text: Sequence[TextMatch]) -> list[TextMatch]:
    """Text matches best first: those holding more of the query's words, then by bm25, then
    by media id."""
    return sorted(text, key=lambda m: (-m.coverage, -m.rank, m.media_id))


def match_weight(match: TextMatch, full: float) -> float:
    """A text match's fusion weight: ``full`` for one holding every query word, in proportion
    to the share of the words it holds otherwise."""
    return full * match.coverage


def from_vector(vector: Ranking) -> Fused:
    """A vector ranking as it stands (no text matched)."""
    items = [Ranked(u.media_id, u, s) for u, s in vector.items]
    return Fused(items, vector.complete, vector.best, vector.seen_any)


def fuse(
    vector: Ranking,
    text: Sequence[TextMatch],
    *,
    k: int,
    depth: int,
    text_complete: bool,
    text_weight: float = 1.0,
) -> Fused:
    """The weighted RRF order of ``vector`` (relevant items, page order) and ``text`` (text
    matches), a text match weighing :func:`match_weight`; see the module docstring for why
    the head/tail split keeps pages stable."""
    if not text:
        return from_vector(vector)
    head = vector.items[:depth]
    by_media = {u.media_id: (u, s) for u, s in head}
    ordered = text_order(text)
    matches = {m.media_id: m for m in ordered}
    weights = [match_weight(m, text_weight) for m in ordered]
    items: list[Ranked] = []
    fused = rrf([[u.media_id for u, _ in head], list(matches)], k, [None, weights])
    for media_id, _ in fused:
        unit, score = by_media.get(media_id, (None, None))
        match = matches.get(media_id)
        matched: Matched = "picture" if match is None else "text" if unit is None else "both"
        items.append(Ranked(media_id, unit, score, matched, match.sources if match else ()))
    items += [
        Ranked(u.media_id, u, s) for u, s in vector.items[depth:] if u.media_id not in matches
    ]
    return Fused(items, vector.complete and text_complete, vector.best, True)


def from_text(text: Sequence[TextMatch], *, text_complete: bool) -> Fused:
    """The text index's matches alone (a query of quoted phrases)."""
    items = [Ranked(m.media_id, None, None, "text", m.sources) for m in text_order(text)]
    return Fused(items, text_complete, None, bool(items))


async def by_date(store: OwnerStore, fused: Fused, newest: bool, *, depth: int) -> Fused:
    """The first ``depth`` relevant items in date order (ties by media id in the same
    direction, as filter listings order them)."""
    items = fused.items[:depth]
    dates = await store.filters.dates(r.media_id for r in items)
    sign = -1 if newest else 1
    items = [r for r in items if r.media_id in dates]  # deleted meanwhile
    items.sort(key=lambda r: (sign * dates[r.media_id], sign * r.media_id))
    complete = fused.complete and len(fused.items) <= depth
    return Fused(items, complete, fused.best, fused.seen_any)


async def excluded_media(
    store: OwnerStore, exclusions: ExclusionFilter, media_ids: Sequence[int]
) -> set[int]:
    """Those of ``media_ids`` an exclusion drops whole: every unit of the item looks like an
    excluded term (a video keeps counting while one of its moments does not)."""
    if not exclusions.active or not media_ids:
        return set()
    units = await store.filters.units_of(media_ids)
    dropped = await exclusions.excluded([u.id for u in units])
    keeps = {u.media_id for u in units if u.id not in dropped}
    return {m for m in media_ids if m not in keeps}


async def filter_listing(
    store: OwnerStore,
    filters: QueryFilters,
    scope: MediaScope,
    exclusions: ExclusionFilter,
    *,
    want: int,
) -> Fused:
    """A query of only filters: the items they allow, newest first (oldest first when asked),
    without those an exclusion drops; exclusions are decided a chunk at a time until more than
    ``want`` items are known."""
    order: DateOrder = "oldest" if filters.sort == "oldest" else "newest"
    ids = (
        []
        if filters.empty_range
        else await store.filters.media_ids(filters.media_filter(), order=order)
    )
    ids = [m for m in ids if scope.admits(m)]
    kept: list[int] = []
    done = 0
    while done < len(ids) and len(kept) <= want:
        chunk = ids[done : done + LISTING_CHUNK]
        dropped = await excluded_media(store, exclusions, chunk)
        kept += [m for m in chunk if m not in dropped]
        done += len(chunk)
    items = [Ranked(m, None, None) for m in kept]
    return Fused(items, done >= len(ids), None, bool(ids))


async def text_ranking(
    store: OwnerStore,
    words: Sequence[str],
    phrases: Sequence[str],
    media_ids: Collection[int] | None,
    *,
    limit: int,
    need: int,
    cap: int,
    min_share: float = 1.0,
) -> tuple[list[TextMatch], bool]:
    """The text index's matches (holding at least ``min_share`` of the words), best first, and
    whether they are all of them. A cut list keeps only the matches ranked strictly above its
    last one (items tied at the cut could fall on either side of it from one call to the
    next); while fewer than ``need`` are left that way, up to ``cap`` matches are asked for."""
    while True:
        found = await store.texts.search(
            words, phrases, limit=limit, media_ids=media_ids, min_share=min_share
        )
        ordered = text_order(found)
        if len(found) < limit:
            return ordered, True
        last = (ordered[-1].coverage, ordered[-1].rank)
        sure = [m for m in ordered if (m.coverage, m.rank) > last]
        if len(sure) >= need or limit >= cap:
            return sure, False
        limit = min(cap, limit * 4)
