"""The analyser of the text index: what a caption, file name, forward origin or OCR text turns
into before SQLite's full-text index sees it, and what a query word turns into before a lookup.

Both sides go through the same functions, so "квитанции" finds "квитанция" and "invoices" finds
"invoice": words are cut at anything that is not a Unicode letter or digit, case-folded (``ё``
becomes ``е``), and reduced to their Snowball stem (Russian for Cyrillic words, English for
Latin ones; numbers and other scripts stay as they are). Pure functions, no SQL; the stemmers
are pure Python, so callers with long texts run :func:`index_terms` off the event loop.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from typing import Any

import snowballstemmer

__all__ = ["index_terms", "stem", "stems", "words"]

# A run of letters or digits (``\w`` without the underscore).
_WORD = re.compile(r"[^\W_]+")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[a-z\u00c0-\u024f]")
_STEM_CACHE = 65536


class _Stemmers(threading.local):
    """One stemmer object per thread and language: a Snowball stemmer keeps its working state
    on the object, so two threads must never share one."""

    def __init__(self) -> None:
        self.russian: Any = snowballstemmer.stemmer("russian")
        self.english: Any = snowballstemmer.stemmer("english")


_stemmers = _Stemmers()


def words(text: str) -> list[str]:
    """Case-folded word tokens of ``text`` (runs of Unicode letters and digits), ``ё`` as ``е``.

    NFKC first, so ligatures, full-width letters and composed/decomposed accents agree."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")
    return _WORD.findall(folded)


@lru_cache(maxsize=_STEM_CACHE)
def stem(word: str) -> str:
    """The Snowball stem of one token from :func:`words`: Russian for a word with Cyrillic
    letters, English for a Latin one; numbers and other scripts are kept as they are."""
    if word.isdigit():
        return word
    if _CYRILLIC.search(word):
        return str(_stemmers.russian.stemWord(word))
    if _LATIN.search(word):
        return str(_stemmers.english.stemWord(word))
    return word


def stems(text: str) -> list[str]:
    """The stems of every word of ``text``, in order (a phrase is these, consecutive)."""
    return [stem(w) for w in words(text)]


def index_terms(text: str) -> str:
    """What goes into the full-text index for ``text``: its stems joined by spaces."""
    return " ".join(stems(text))
