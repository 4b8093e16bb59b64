"""The query language: words to look for, ``-word`` exclusions, quoted phrases, filters, sort.

Russian and English are always both understood, whatever the user's language:

* **Dates**: a bare plausible year ("2024", "in 2024", "в 2024 году"), a month with a year
  ("march 2024", "mar 2024", "март 2024", "в марте 2024"), and ranges ``after:`` /
  ``before:`` / ``после:`` / ``до:`` with ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD`` or
  ``DD.MM.YYYY``. ``after:P`` starts with P, ``before:P`` ends where P starts. Several bare
  periods join ("2023 2024" is both years); ranges narrow them. UTC.
* **Kinds**: video / видео / ролик, gif / гиф / гифка / animation, photo / фото / фотки,
  document / документ, кружок / video note (several join).
* **Sources**: ``from:@name`` / ``от:@name`` (several join).
* **Sort**: newest / latest / "new first" / "сначала новые" / "новые сначала"; oldest /
  "oldest first" / "сначала старые" (``sort:new`` / ``sort:old`` too).
* **Phrases**: ``"exact words"`` (also “…”, «…», „…“) must occur in the item's text (caption,
  file name, source, recognised text). A query of only phrases (and filters) searches the text
  alone; with other words, the phrases restrict what the words may find.

Anything that only looks like a filter stays text: "before:xyz", "1234", "march" without a
year, a filter word inside a quoted phrase. :func:`parse_query` (words and exclusions only)
keeps the grammar of exclusions that the whole language shares.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from core.search.filters import QueryFilters, Sort
from core.search.language_dates import (
    Period,
    month_number,
    period_of_value,
    plausible_year,
    year_period,
)

__all__ = ["ParsedQuery", "dedupe_terms", "parse_query", "parse_query_language", "search_words"]

# "-" at the start of a word (start of text or after whitespace), followed by a quoted phrase
# (straight, curly or guillemet quotes; a missing closing quote runs to the end of the text) or
# by a word that does not start with a digit (so "-5 degrees" stays a number) or another dash.
_EXCLUSION_PATTERN = r"""(?<!\S)-(?:
        "(?P<q1>[^"]*)"?
      | “(?P<q2>[^”]*)”?
      | «(?P<q3>[^»]*)»?
      | „(?P<q4>[^“”]*)[“”]?
      | (?P<word>[^\s\d\-"“«„]\S*)
    )"""
_EXCLUSION = re.compile(_EXCLUSION_PATTERN, re.VERBOSE)
# One segment of a query: an exclusion, a quoted phrase at the start of a word, or a word.
_SEGMENT = re.compile(
    _EXCLUSION_PATTERN
    + r"""
    | (?<!\S)(?:
        "(?P<p1>[^"]*)"?
      | “(?P<p2>[^”]*)”?
      | «(?P<p3>[^»]*)»?
      | „(?P<p4>[^“”]*)[“”]?
    )
    | (?P<token>\S+)""",
    re.VERBOSE,
)
_TRAILING = ".,;:!?)]}"
_DASHES = "-‐‑‒–—―−"
_EDGES = ".,;!?)]}"  # cut from a word's end before it is compared with the vocabulary

_KINDS: dict[str, str] = {
    **dict.fromkeys(["video", "videos", "видео", "ролик", "ролики", "видос", "видосы"], "video"),
    **dict.fromkeys(
        ["gif", "gifs", "гиф", "гифка", "гифки", "гифку", "animation", "animations", "анимация"],
        "animation",
    ),
    **dict.fromkeys(
        ["photo", "photos", "фото", "фотка", "фотки", "фотку", "фотография", "фотографии"],
        "photo",
    ),
    **dict.fromkeys(["document", "documents", "документ", "документы"], "document"),
    **dict.fromkeys(["кружок", "кружки", "кружочек", "кружочки"], "video_note"),
}
_KIND_PAIRS: dict[tuple[str, str], str] = {
    ("video", "note"): "video_note",
    ("video", "notes"): "video_note",
}
_SORT_WORDS: dict[str, Sort] = {"newest": "newest", "latest": "newest", "oldest": "oldest"}
_SORT_PAIRS: dict[tuple[str, str], Sort] = {
    ("new", "first"): "newest",
    ("newest", "first"): "newest",
    ("latest", "first"): "newest",
    ("recent", "first"): "newest",
    ("old", "first"): "oldest",
    ("oldest", "first"): "oldest",
    ("сначала", "новые"): "newest",
    ("новые", "сначала"): "newest",
    ("сначала", "свежие"): "newest",
    ("свежие", "сначала"): "newest",
    ("сначала", "старые"): "oldest",
    ("старые", "сначала"): "oldest",
}
_SORT_VALUES: dict[str, Sort] = {
    **dict.fromkeys(["new", "newest", "latest", "новые", "свежие"], "newest"),
    **dict.fromkeys(["old", "oldest", "старые"], "oldest"),
}
_AFTER = {"after", "since", "после"}
_BEFORE = {"before", "until", "до"}
_FROM = {"from", "от"}
_OPERATOR = re.compile(r"(?P<op>[^\W\d_]+):(?P<value>.*)")
_SOURCE = re.compile(r"@?(?P<name>[^\W][\w.]*)")
# Words that may stand before a date ("in 2024", "в марте 2024") or after a year ("2024 года").
_DATE_BEFORE = {"in", "during", "в", "во", "за"}
_YEAR_AFTER = {"год", "года", "году", "г"}
# Words too common to require in the text index (they still reach the picture model).
_STOPWORDS = frozenset(
    {
        *("a", "an", "the", "of", "on", "in", "at", "to", "for", "with", "and", "or", "by"),
        *("is", "are", "this", "that"),
        *("в", "во", "на", "с", "со", "и", "или", "за", "по", "к", "ко", "о", "об", "от"),
        *("до", "из", "у", "для", "под", "над", "про", "это"),
    }
)


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """What a typed query says: ``text`` (the words to look for, filters, phrases and
    exclusions taken out; may be empty), ``exclude``, ``phrases`` and ``filters``."""

    text: str = ""
    exclude: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    filters: QueryFilters = field(default_factory=QueryFilters)

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(self.text.split())

    @property
    def text_only(self) -> bool:
        """Only quoted phrases (and filters): answered from the text index alone."""
        return bool(self.phrases) and not self.text


def parse_query(text: str) -> tuple[str, tuple[str, ...]]:
    """Split a query into the text to look for and the terms to leave out.

    ``'cat on a sofa -dog -"red blanket"'`` -> ``("cat on a sofa", ("dog", "red blanket"))``.
    A ``-`` counts only at the start of a word ("e-mail" and "-5" are plain text); quotes may be
    ``"..."``, ``“...”``, ``«...»`` or ``„...“``. Words made only of dashes are dropped, spaces
    are collapsed, and exclusions are deduplicated ignoring case. The positive text may come
    back empty: the caller decides whether that is an error (it is for a text-only query).
    """
    excluded: list[str] = []

    def take(match: re.Match[str]) -> str:
        excluded.append(_excluded_term(match))
        return " "

    rest = _EXCLUSION.sub(take, text)
    positive = " ".join(w for w in rest.split() if w.strip(_DASHES))
    return positive, dedupe_terms(excluded)


def _excluded_term(match: re.Match[str]) -> str:
    groups = match.groupdict()
    for name in ("q1", "q2", "q3", "q4"):
        if groups.get(name) is not None:
            return " ".join(str(groups[name]).split())
    return " ".join((groups["word"] or "").rstrip(_TRAILING).split())


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


def search_words(words: Sequence[str]) -> tuple[str, ...]:
    """The words the text index must find: the query's words without the most common
    prepositions and articles ("кот на диване" needs "кот" and "диване"), unless nothing
    else is left."""
    kept = tuple(w for w in words if _key(w) not in _STOPWORDS)
    return kept or tuple(words)


def parse_query_language(text: str, *, today: date | None = None) -> ParsedQuery:
    """Parse everything a typed query may say (see the module docstring). Never raises: what
    is not understood is text. ``today`` decides which bare years are plausible."""
    today = today or datetime.now(UTC).date()
    excluded: list[str] = []
    phrases: list[str] = []
    tokens: list[str] = []
    for match in _SEGMENT.finditer(text):
        groups = match.groupdict()
        if groups["token"] is not None:
            tokens.append(groups["token"])
            continue
        phrase = next((groups[p] for p in ("p1", "p2", "p3", "p4") if groups[p] is not None), None)
        if phrase is not None:
            phrases.append(phrase)
        else:
            excluded.append(_excluded_term(match))
    reader = _FilterReader(today)
    words = reader.read([t for t in tokens if t.strip(_DASHES)])
    return ParsedQuery(
        " ".join(words), dedupe_terms(excluded), dedupe_terms(phrases), reader.done()
    )


def _key(token: str) -> str:
    """A word as the vocabulary compares it: case-folded, ``ё`` as ``е``, outer punctuation
    gone ("Видео," is "видео")."""
    return token.casefold().replace("ё", "е").rstrip(_EDGES).lstrip("([{")


@dataclass(slots=True)
class _FilterReader:
    """Reads filters off a list of words, left to right; what is no filter is kept as text."""

    today: date
    periods: list[Period] = field(default_factory=list)
    date_from: int | None = None
    date_to: int | None = None
    kinds: set[str] = field(default_factory=set)
    sources: list[str] = field(default_factory=list)
    sort: Sort = "relevance"

    def read(self, tokens: Sequence[str]) -> list[str]:
        keys = [_key(t) for t in tokens]
        matchers: tuple[Callable[[Sequence[str], int], int], ...] = (
            self._operator,
            self._sort_words,
            self._kind,
            self._date,
        )
        words: list[str] = []
        i = 0
        while i < len(tokens):
            used = next((n for m in matchers if (n := m(keys, i))), 0)
            if used:
                i += used
            else:
                words.append(tokens[i])
                i += 1
        return words

    def done(self) -> QueryFilters:
        start, end = self.date_from, self.date_to
        if self.periods:
            span_start = min(p[0] for p in self.periods)
            span_end = max(p[1] for p in self.periods)
            start = span_start if start is None else max(start, span_start)
            end = span_end if end is None else min(end, span_end)
        sources = tuple(dict.fromkeys(self.sources))
        return QueryFilters(start, end, frozenset(self.kinds), sources, self.sort)

    # -- matchers: how many words from ``i`` on make one filter (0: none)

    def _operator(self, keys: Sequence[str], i: int) -> int:
        match = _OPERATOR.fullmatch(keys[i])
        if match is None:
            return 0
        op, value = match["op"], match["value"]
        if not value and i + 1 < len(keys):
            if self._apply_operator(op, keys[i + 1]):
                return 2
            return 0
        return 1 if self._apply_operator(op, value) else 0

    def _apply_operator(self, op: str, value: str) -> bool:
        if op in _AFTER or op in _BEFORE:
            period = period_of_value(value)
            if period is None:
                return False
            if op in _AFTER:
                self.date_from = max(period[0], self.date_from or period[0])
            else:
                self.date_to = min(period[0], self.date_to or period[0])
            return True
        if op in _FROM:
            source = _SOURCE.fullmatch(value)
            if source is None:
                return False
            self.sources.append(source["name"])
            return True
        if op == "sort" and value in _SORT_VALUES:
            self.sort = _SORT_VALUES[value]
            return True
        return False

    def _sort_words(self, keys: Sequence[str], i: int) -> int:
        pair = tuple(keys[i : i + 2])
        if len(pair) == 2 and pair in _SORT_PAIRS:
            self.sort = _SORT_PAIRS[pair]
            return 2
        if keys[i] in _SORT_WORDS:
            self.sort = _SORT_WORDS[keys[i]]
            return 1
        return 0

    def _kind(self, keys: Sequence[str], i: int) -> int:
        pair = tuple(keys[i : i + 2])
        if len(pair) == 2 and pair in _KIND_PAIRS:
            self.kinds.add(_KIND_PAIRS[pair])
            return 2
        if keys[i] in _KINDS:
            self.kinds.add(_KINDS[keys[i]])
            return 1
        return 0

    def _date(self, keys: Sequence[str], i: int) -> int:
        lead = 1 if keys[i] in _DATE_BEFORE else 0
        at = i + lead
        if at >= len(keys):
            return 0
        month = month_number(keys[at])
        if month is not None:
            year = plausible_year(keys[at + 1], self.today) if at + 1 < len(keys) else None
            if year is None:
                return 0
            self.periods.append(year_period(year, month))
            used = lead + 2
        else:
            year = plausible_year(keys[at], self.today)
            if year is None:
                return 0
            self.periods.append(year_period(year))
            used = lead + 1
        if i + used < len(keys) and keys[i + used] in _YEAR_AFTER:
            used += 1
        return used
