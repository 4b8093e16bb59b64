"""Why a text hit matched: the matching words in their context, as plain text with spans.

A :class:`Snippet` is a window of about ``width`` characters of one source text (caption, file
name, forward origin or recognised text) around its first matching word, cut at word
boundaries with "…" where text was left out, and the character ranges of every word in it
whose stem is one of the query's (the analyser of the text index,
:mod:`storage.text_terms`, so "котами" lights up for "кот"). Front ends escape and mark up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from storage.text_terms import stem, words

__all__ = ["SNIPPET_WIDTH", "Snippet", "make_snippet", "query_stems"]

SNIPPET_WIDTH = 80
ELLIPSIS = "…"
_WORD = re.compile(r"[^\W_]+")
_SOURCE_ORDER = ("caption", "ocr", "file_name", "origin")

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Snippet:
    """``text`` (plain, one line) from ``source``; ``spans`` are ``[start, end)`` character
    ranges of the matching words in ``text``, in order."""

    source: str
    text: str
    spans: tuple[Span, ...]


def query_stems(terms: Iterable[str]) -> frozenset[str]:
    """The stems a snippet marks: those of every word of the query's words and phrases."""
    return frozenset(stem(w) for term in terms for w in words(term))


def _matches(text: str, stems: frozenset[str]) -> list[Span]:
    """Ranges of the words of ``text`` whose stem is one of ``stems``."""
    found: list[Span] = []
    for match in _WORD.finditer(text):
        tokens = words(match.group())
        if tokens and any(stem(t) in stems for t in tokens):
            found.append((match.start(), match.end()))
    return found


def _window(text: str, first: Span, width: int) -> tuple[int, int]:
    """``[a, b)`` of about ``width`` characters holding ``first``, cut at spaces."""
    a = max(0, first[0] - width // 3)
    b = min(len(text), max(a + width, first[1]))
    if b == len(text):
        a = max(0, min(a, b - width))
    if a > 0 and not text[a - 1].isspace():
        space = text.find(" ", a, first[0])
        a = space + 1 if space >= 0 else first[0]
    if b < len(text) and not text[b].isspace():
        space = text.rfind(" ", first[1], b)
        b = space if space >= 0 else first[1]
    return a, b


def make_snippet(
    texts: Mapping[str, str],
    stems: frozenset[str],
    *,
    prefer: Sequence[str] = (),
    width: int = SNIPPET_WIDTH,
) -> Snippet | None:
    """The snippet of the first source (``prefer`` first, then caption, recognised text, file
    name, origin) holding a word with one of ``stems``; None if none does."""
    order = [*prefer, *(s for s in _SOURCE_ORDER if s not in prefer)]
    order += [s for s in texts if s not in order]
    for source in order:
        raw = texts.get(source)
        if not raw:
            continue
        text = re.sub(r"\s", " ", raw)  # one character for one: spans stay valid
        found = _matches(text, stems)
        if not found:
            continue
        a, b = _window(text, found[0], width)
        body = text[a:b]
        lead = len(body) - len(body.lstrip())
        body = body.strip()
        start = a + lead
        prefix = ELLIPSIS if start > 0 else ""
        suffix = ELLIPSIS if start + len(body) < len(text.rstrip()) else ""
        shift = len(prefix) - start
        spans = tuple(
            (s + shift, e + shift) for s, e in found if s >= start and e <= start + len(body)
        )
        return Snippet(source, prefix + body + suffix, spans)
    return None
