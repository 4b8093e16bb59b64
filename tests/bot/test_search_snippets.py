"""Why a hit matched by text: its words in context under a result page, escaped for Telegram's
HTML with only the matching words in bold, and short enough for one message."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, fields
from typing import Any

from bot.i18n import t
from bot.search_texts import (
    SNIPPET_CHARS,
    SNIPPET_LINES,
    snippet_html,
    summary_text,
    visible_length,
)
from core.search.results import Hit, SearchResult
from storage.records import Media

TAGS = re.compile(r"</?b>")


@dataclass(frozen=True, slots=True)
class TextSnippet:
    """The shape of ``core.search.results.Snippet``: plain text and the spans that matched."""

    source: str
    text: str
    spans: tuple[tuple[int, int], ...]


def media(media_id: int) -> Media:
    return Media(
        media_id, 1, "photo", "ready", f"u{media_id}", f"f{media_id}", None, None, None, None,
        None, None, None, None, None, None, 0, None,
    )  # fmt: skip


def hit(media_id: int, matched: str = "text", snippet: Any = None) -> Any:
    """A hit matched by ``matched`` with ``snippet`` (the search's own types when they carry
    these fields, else a stand-in of the same shape)."""
    names = {f.name for f in fields(Hit)}
    if {"matched", "snippet"} <= names:
        from core.search import results

        if snippet is not None and hasattr(results, "Snippet"):
            snippet = results.Snippet(snippet.source, snippet.text, snippet.spans)
        return Hit(media(media_id), 0.5, media_id, None, matched=matched, snippet=snippet)  # type: ignore[call-arg]

    @dataclass(frozen=True)
    class StandIn:
        media: Media
        score: float
        unit_id: int
        timestamp: float | None
        matched: str
        snippet: Any

    return StandIn(media(media_id), 0.5, media_id, None, matched, snippet)


def result(*hits: Any, offset: int = 0) -> SearchResult:
    return SearchResult(list(hits), "m", 9.0, offset=offset, limit=10, total=len(hits) + offset)


def test_matching_words_are_bold_and_everything_else_escaped() -> None:
    text = "счёт за март <script>alert(1)</script> & co"
    got = snippet_html(text, [(8, 12), (13, 21)])
    assert got == "счёт за <b>март</b> <b>&lt;script&gt;</b>alert(1)&lt;/script&gt; &amp; co"
    assert html.unescape(TAGS.sub("", got)) == text


def test_bad_spans_never_break_the_markup() -> None:
    got = snippet_html("a cat on a mat", [(9, 99), (2, 5), (3, 4), (-4, 1), (7, 7)])
    assert got == "<b>a</b> <b>cat</b> on <b>a mat</b>"


def test_a_long_text_is_cut_around_the_first_match_on_one_line() -> None:
    words = " ".join(f"word{i}" for i in range(80))
    text = words + "\ninvoice\nmarch " + words
    start = text.index("invoice")
    got = snippet_html(text, [(start, start + 7)])
    assert "<b>invoice</b> march" in got
    assert got.startswith("…") and got.endswith("…")
    assert "\n" not in got
    assert len(TAGS.sub("", got)) <= SNIPPET_CHARS + 2


def test_the_summary_lists_text_hits_with_their_rank_and_source() -> None:
    receipt = TextSnippet("ocr", "…счёт за март…", ((9, 13),))
    caption = TextSnippet("caption", "<b>hi</b> march", ((10, 15),))
    page = result(
        hit(1, "picture"),
        hit(2, "text", receipt),
        hit(3, "both", caption),
        hit(4, "text", None),
        offset=10,
    )

    got = summary_text(page, 4, 0, "ru")

    plain = t("search-summary", "ru", total="14", ms=9) + t("search-range", "ru", first=11, last=14)
    assert got == plain + t("search-why-header", "ru") + t(
        "search-why-line",
        "ru",
        n=12,
        source=t("search-source-ocr", "ru"),
        text="…счёт за <b>март</b>…",
    ) + t(
        "search-why-line",
        "ru",
        n=13,
        source=t("search-source-caption", "ru"),
        text="&lt;b&gt;hi&lt;/b&gt; <b>march</b>",
    )


def test_a_page_matched_by_pictures_only_has_no_text_lines() -> None:
    page = result(hit(1, "picture"), hit(2, "picture"))
    assert summary_text(page, 2, 0, "en") == t("search-summary", "en", total="2", ms=9)


def test_many_long_snippets_stay_within_one_message() -> None:
    long = TextSnippet("ocr", "<&>" * 400, ((0, 3),))
    page = result(*(hit(i, "text", long) for i in range(1, 11)))

    got = summary_text(page, 10, 0, "en")

    assert got.count("«") == SNIPPET_LINES
    assert visible_length(got) < 4096 and len(got) < 4096
    assert "<&>" not in got
