"""The analyser of the text index: what a caption, file name, forward origin or OCR text turns
into before SQLite's full-text index sees it, and what a query word turns into before a lookup.

Both sides go through the same functions, so "квитанции" finds "квитанция" and "invoices" finds
"invoice": words are cut at anything that is not a Unicode letter or digit, case-folded (``ё``
becomes ``е``), and reduced to their Snowball stem (Russian for Cyrillic words, English for
Latin ones; numbers and other scripts stay as they are), then a Latin letter with one
diacritic loses it ("café" finds "cafe"). SQLite's tokenizer would drop those diacritics
anyway; doing it here gives PostgreSQL, which indexes the stems as they are, the same terms.
Pure functions, no SQL; the stemmers are pure Python, so callers with long texts run
:func:`index_terms` off the event loop.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from typing import Any, Literal, get_args

import snowballstemmer

__all__ = ["SOURCE_WEIGHTS", "TEXT_SOURCES", "TextSource", "index_terms", "stem", "stems", "words"]

# Where an item's text comes from: one column of the index per source, in this order on both
# backends.
TextSource = Literal["caption", "file_name", "origin", "ocr"]
TEXT_SOURCES: tuple[TextSource, ...] = get_args(TextSource)
# How much a match in each source counts (bm25 on SQLite, ts_rank on PostgreSQL). What the
# owner wrote ranks above what was read off the picture, the name and where it came from.
SOURCE_WEIGHTS: dict[str, float] = {"caption": 1.0, "file_name": 0.6, "origin": 0.4, "ocr": 0.8}

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
    letters, English for a Latin one; numbers and other scripts are kept as they are. Latin
    diacritics go after stemming (the stemmers know "é"), so SQLite's terms do not change."""
    if word.isdigit():
        return word
    if _CYRILLIC.search(word):
        found = str(_stemmers.russian.stemWord(word))
    elif _LATIN.search(word):
        found = str(_stemmers.english.stemWord(word))
    else:
        found = word
    return found if found.isascii() else "".join(map(_plain_letter, found))


@lru_cache(maxsize=4096)
def _plain_letter(ch: str) -> str:
    """``ch`` without its diacritic when it is an ASCII letter with exactly one (what SQLite's
    unicode61 tokenizer does with ``remove_diacritics 1``); any other character as it is."""
    parts = unicodedata.normalize("NFD", ch)
    if (
        len(parts) == 2
        and parts[0].isascii()
        and parts[0].isalpha()
        and unicodedata.combining(parts[1])
    ):
        return parts[0]
    return ch


def stems(text: str) -> list[str]:
    """The stems of every word of ``text``, in order (a phrase is these, consecutive)."""
    return [stem(w) for w in words(text)]


def index_terms(text: str) -> str:
    """What goes into the full-text index for ``text``: its stems joined by spaces."""
    return " ".join(stems(text))
