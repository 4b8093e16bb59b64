"""The relevance cut: which fetched hits are relevant, and which of them a page may count.

A hit is kept when ``score >= relevance_floor`` of the model and ``score >= best - margin``,
the margin chosen by the strictness (``SEARCH_MARGIN_STRICT`` / ``_NORMAL`` / ``_LOOSE``).
Scores come from the index in descending order, so the kept hits are a prefix: once a fetched
score falls below the cut, every relevant item has been seen. Only hits scoring strictly above
the last fetched score (or all of them once the cut or the end of the index was reached) are
counted, so items tied at the fetch boundary can never shift between pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.search.query import STRICTNESS, Strictness
from storage.records import Unit

if TYPE_CHECKING:
    from core.settings import SearchSettings


@dataclass(slots=True)
class Ranking:
    """The relevant items of a search, and how far they can be trusted."""

    items: list[tuple[Unit, float]] = field(default_factory=list)  # one per media, sorted
    complete: bool = True  # every relevant item is in ``items``
    best: float | None = None
    seen_any: bool = False  # at least one searchable unit besides the query item


def relevance_margin(settings: SearchSettings, strictness: Strictness) -> float:
    """The relevance margin (cosine below the best hit) for a strictness."""
    margins = {
        "strict": settings.margin_strict,
        "normal": settings.margin_normal,
        "loose": settings.margin_loose,
    }
    try:
        return float(margins[strictness])
    except KeyError:
        raise ValueError(f"strictness must be one of {STRICTNESS}") from None


def relevance_cut(
    kept: list[tuple[Unit, float]],
    *,
    floor: float,
    margin: float,
    last: float,
    exhausted: bool,
    want: int,
) -> Ranking | None:
    """The ranking of one fetch round's surviving units (non-empty, sorted in place), or None
    when more must be fetched to fill ``want`` items.

    ``last`` is the lowest score fetched, ``exhausted`` whether the index had no more.
    """
    # Ties in score: the lower unit id first, so the best frame does not flicker.
    kept.sort(key=lambda us: (-us[1], us[0].id))
    best = kept[0][1]
    threshold = max(floor, best - margin)
    complete = exhausted or last < threshold
    items: list[tuple[Unit, float]] = []
    media_seen: set[int] = set()
    for unit, score in kept:
        if score < threshold:
            break
        if unit.media_id in media_seen:
            continue
        media_seen.add(unit.media_id)
        # Below the last fetched score an unfetched unit may tie: only count the sure.
        if complete or score > last:
            items.append((unit, score))
    if complete or len(items) > want:
        items.sort(key=lambda us: (-us[1], us[0].media_id))
        return Ranking(items, complete, best, True)
    return None
