"""What a user asks for: the query text with its ``-word`` exclusions, and a search request.

A query is a text, a photo (bytes or a file), an item already in the collection, or a text
together with a photo or an item; any of them may carry ``-word`` / ``-"a phrase"`` exclusions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Strictness = Literal["strict", "normal", "loose"]
STRICTNESS: tuple[str, ...] = ("strict", "normal", "loose")

# "-" at the start of a word (start of text or after whitespace), followed by a quoted phrase
# (straight, curly or guillemet quotes; a missing closing quote runs to the end of the text) or
# by a word that does not start with a digit (so "-5 degrees" stays a number) or another dash.
_EXCLUSION = re.compile(
    r"""(?<!\S)-(?:
        "(?P<q1>[^"]*)"?
      | “(?P<q2>[^”]*)”?
      | «(?P<q3>[^»]*)»?
      | „(?P<q4>[^“”]*)[“”]?
      | (?P<word>[^\s\d\-"“«„]\S*)
    )""",
    re.VERBOSE,
)
_TRAILING = ".,;:!?)]}"
_DASHES = "-‐‑‒–—―−"


def parse_query(text: str) -> tuple[str, tuple[str, ...]]:
    """Split a query into the text to look for and the terms to leave out.

    ``'cat on a sofa -dog -"red blanket"'`` -> ``("cat on a sofa", ("dog", "red blanket"))``.
    A ``-`` counts only at the start of a word ("e-mail" and "-5" are plain text); quotes may be
    ``"..."``, ``“...”``, ``«...»`` or ``„...“``. Words made only of dashes are dropped, spaces
    are collapsed, and exclusions are deduplicated ignoring case. The positive text may come
    back empty: the caller decides whether that is an error (it is for a text-only query).
    """
    excluded: list[str] = []
    seen: set[str] = set()

    def take(match: re.Match[str]) -> str:
        groups = match.groupdict()
        term = next((g for k, g in groups.items() if k != "word" and g is not None), None)
        if term is None:
            term = (groups["word"] or "").rstrip(_TRAILING)
        term = " ".join(term.split())
        if term and term.casefold() not in seen:
            seen.add(term.casefold())
            excluded.append(term)
        return " "

    rest = _EXCLUSION.sub(take, text)
    positive = " ".join(w for w in rest.split() if w.strip(_DASHES))
    return positive, tuple(excluded)


def dedupe_terms(terms: Iterable[str]) -> tuple[str, ...]:
    """Terms with spaces collapsed, empty ones dropped, repeats (ignoring case) removed."""
    seen: set[str] = set()
    out: list[str] = []
    for term in terms:
        term = " ".join(str(term).split())
        if term and term.casefold() not in seen:
            seen.add(term.casefold())
            out.append(term)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Query:
    """One search request. At least one of ``text``, ``image``, ``unit_id`` / ``media_id``.

    ``text`` is the positive text only; build from what a user typed with :meth:`from_text`,
    which moves ``-word`` exclusions into ``exclude``. ``image`` and an existing item
    (``unit_id``: one photo or one video frame; ``media_id``: a whole item) are exclusive.
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
    ) -> Query:
        """A query from what the user typed (``-word`` exclusions parsed out of ``text``)."""
        positive, excluded = parse_query(text or "")
        return cls(
            text=positive or None,
            image=image,
            unit_id=unit_id,
            media_id=media_id,
            exclude=dedupe_terms((*excluded, *exclude)),
            strictness=strictness,
            offset=offset,
            limit=limit,
        )

    @property
    def has_item(self) -> bool:
        return self.unit_id is not None or self.media_id is not None
