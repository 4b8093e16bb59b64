"""What a user asks for: the query text with its ``-word`` exclusions, quoted phrases and
filters (the language: :mod:`core.search.language`), and a search request.

A query is a text, a photo (bytes or a file), an item already in the collection, or a text
together with a photo or an item; any of them may carry ``-word`` / ``-"a phrase"`` exclusions,
quoted phrases and filters. Filters alone (``"видео 2024 сначала новые"``) list what they allow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

from core.search.filters import QueryFilters
from core.search.language import dedupe_terms, parse_query, parse_query_language

__all__ = ["STRICTNESS", "Query", "Strictness", "dedupe_terms", "parse_query"]

Strictness = Literal["strict", "normal", "loose"]
STRICTNESS: tuple[str, ...] = ("strict", "normal", "loose")


@dataclass(frozen=True, slots=True)
class Query:
    """One search request: at least one of ``text``, ``image``, ``unit_id`` / ``media_id``,
    ``phrases``, or filters that narrow or sort.

    ``text`` is the positive text only; build from what a user typed with :meth:`from_text`,
    which moves ``-word`` exclusions into ``exclude``, quoted phrases into ``phrases`` (text
    that must occur in an item's caption, file name, source or recognised text) and filters
    into ``filters``. ``image`` and an existing item (``unit_id``: one photo or one video
    frame; ``media_id``: a whole item) are exclusive.
    ``limit=None`` means ``SEARCH_DEFAULT_LIMIT``; larger than ``SEARCH_MAX_LIMIT`` is clamped.
    """

    text: str | None = None
    image: bytes | Path | None = None
    unit_id: int | None = None
    media_id: int | None = None
    exclude: tuple[str, ...] = ()
    strictness: Strictness = "normal"
    offset: int = 0
    limit: int | None = None
    phrases: tuple[str, ...] = ()
    filters: QueryFilters = field(default_factory=QueryFilters)

    def __post_init__(self) -> None:
        if self.strictness not in STRICTNESS:
            raise ValueError(f"strictness must be one of {STRICTNESS}, got {self.strictness!r}")
        if self.offset < 0:
            raise ValueError("offset must be >= 0")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be >= 1")
        given = sum(x is not None for x in (self.image, self.unit_id, self.media_id))
        if given > 1:
            raise ValueError("give at most one of image, unit_id and media_id")
        if isinstance(self.exclude, str):
            raise TypeError("exclude must be a sequence of terms, not one string")
        if isinstance(self.phrases, str):
            raise TypeError("phrases must be a sequence of phrases, not one string")

    @classmethod
    def from_text(
        cls,
        text: str | None,
        *,
        image: bytes | Path | None = None,
        unit_id: int | None = None,
        media_id: int | None = None,
        exclude: Iterable[str] = (),
        strictness: Strictness = "normal",
        offset: int = 0,
        limit: int | None = None,
        filters: QueryFilters | None = None,
        today: date | None = None,
    ) -> Query:
        """A query from what the user typed: exclusions, phrases and filters parsed out of
        ``text`` (``filters`` given here narrow it further; ``today`` decides which bare years
        count as dates)."""
        parsed = parse_query_language(text or "", today=today)
        return cls(
            text=parsed.text or None,
            image=image,
            unit_id=unit_id,
            media_id=media_id,
            exclude=dedupe_terms((*parsed.exclude, *exclude)),
            strictness=strictness,
            offset=offset,
            limit=limit,
            phrases=parsed.phrases,
            filters=parsed.filters if filters is None else parsed.filters.merged(filters),
        )

    @property
    def has_item(self) -> bool:
        return self.unit_id is not None or self.media_id is not None

    @property
    def text_only(self) -> bool:
        """Only quoted phrases (and filters), no other words, photo or item: answered from the
        text index alone."""
        return bool(self.phrases) and not self.text and self.image is None and not self.has_item

    @property
    def listing(self) -> bool:
        """Only filters (and exclusions): the items they allow, by date."""
        nothing = not self.text and not self.phrases and self.image is None and not self.has_item
        return nothing and self.filters.active
