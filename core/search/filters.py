"""A query's filters (date range, kinds, forward sources, date order) and what they let through.

Filters narrow both rankings: the items they allow are read once per query from storage
(:class:`~storage.media_filters.OwnerMediaFilters`) as a :class:`MediaScope`, which the vector
side consults for every fetched unit and the text side passes to its lookup. Text exclusions
(items whose text holds an excluded term) are part of the same scope, as items it denies.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from storage.media_filters import MediaFilter

if TYPE_CHECKING:
    from storage.repositories import OwnerStore

Sort = Literal["relevance", "newest", "oldest"]
SORTS: tuple[str, ...] = ("relevance", "newest", "oldest")
# The most items a text exclusion can remove (far more than a page can reach).
EXCLUSION_MATCH_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class QueryFilters:
    """What the query narrows to: ``date_from <= date < date_to`` (unix seconds, UTC; an item's
    date is when it was taken, else posted, else stored), media ``kinds`` (storage's kind
    names: ``photo``, ``video``, ``animation``, ``video_note``, ``document``), forward
    ``sources`` (usernames or titles, without "@"), and ``sort``: by relevance, or by date."""

    date_from: int | None = None
    date_to: int | None = None
    kinds: frozenset[str] = frozenset()
    sources: tuple[str, ...] = ()
    sort: Sort = "relevance"

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise ValueError(f"sort must be one of {SORTS}, got {self.sort!r}")
        if isinstance(self.sources, str):
            raise TypeError("sources must be a sequence of names, not one string")
        self.media_filter()  # unknown kinds raise here, not at search time

    @property
    def narrows(self) -> bool:
        """True when some items may not pass (a date, kind or source is given)."""
        return self.media_filter().narrows

    @property
    def active(self) -> bool:
        """True when the filters change anything: they narrow, or ask for date order."""
        return self.narrows or self.sort != "relevance"

    @property
    def empty_range(self) -> bool:
        """A date range no item can be in (e.g. ``after:2024 before:2023``)."""
        return (
            self.date_from is not None
            and self.date_to is not None
            and self.date_from >= self.date_to
        )

    def media_filter(self) -> MediaFilter:
        """The storage filter these stand for."""
        return MediaFilter(self.date_from, self.date_to, tuple(sorted(self.kinds)), self.sources)

    def merged(self, other: QueryFilters) -> QueryFilters:
        """Both filters at once: the ranges intersect, kinds and sources join (a kind or
        source of either passes), and a date order of ``other`` wins."""
        return QueryFilters(
            _latest(self.date_from, other.date_from),
            _earliest(self.date_to, other.date_to),
            self.kinds | other.kinds,
            tuple(dict.fromkeys((*self.sources, *other.sources))),
            other.sort if other.sort != "relevance" else self.sort,
        )


def _latest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _earliest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


@dataclass(frozen=True, slots=True)
class MediaScope:
    """The items one search may answer with: ``allowed`` (None: any item) minus ``denied``."""

    allowed: frozenset[int] | None = None
    denied: frozenset[int] = field(default_factory=frozenset)

    def admits(self, media_id: int) -> bool:
        if media_id in self.denied:
            return False
        return self.allowed is None or media_id in self.allowed

    @property
    def nothing(self) -> bool:
        """No item can pass: searching is pointless."""
        return self.allowed is not None and not (self.allowed - self.denied)

    def ids(self) -> Collection[int] | None:
        """The allowed ids for a lookup that takes them (None: no restriction)."""
        if self.allowed is None:
            return None
        return self.allowed - self.denied if self.denied else self.allowed

    def narrowed(self, media_ids: Iterable[int]) -> MediaScope:
        """This scope restricted to ``media_ids`` as well."""
        ids = frozenset(media_ids)
        allowed = ids if self.allowed is None else self.allowed & ids
        return MediaScope(allowed, self.denied)


async def media_scope(
    store: OwnerStore,
    filters: QueryFilters,
    *,
    phrases: Sequence[str] = (),
    exclude: Sequence[str] = (),
    phrase_limit: int,
) -> MediaScope:
    """The scope of one query: the items its filters allow, narrowed to those whose text holds
    every quoted phrase (a phrase is exact text, never a hint), minus those whose text holds an
    excluded term. Read once per query."""
    allowed: frozenset[int] | None = None
    if filters.empty_range:
        allowed = frozenset()
    elif filters.narrows:
        allowed = frozenset(await store.filters.media_ids(filters.media_filter()))
    scope = MediaScope(allowed)
    if phrases and not scope.nothing:
        found = await store.texts.search((), phrases, limit=phrase_limit, media_ids=scope.ids())
        scope = scope.narrowed(m.media_id for m in found)
    denied: set[int] = set()
    for term in exclude:
        found = await store.texts.search((), (term,), limit=EXCLUSION_MATCH_LIMIT)
        denied.update(m.media_id for m in found)
    return MediaScope(scope.allowed, frozenset(denied)) if denied else scope
