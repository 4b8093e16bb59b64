"""The words around search results: the summary under a page, the reason a page is empty, and
the short echo of the query in a "nothing found" answer.

Pure functions of a :class:`~core.search.results.SearchResult`, so they are tested without a
chat and the sending code stays free of wording.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from bot.i18n import catalog, t
from core.search.results import SearchResult
from storage.results import SearchSession

# How much of the query to quote back in a "nothing found" answer.
QUOTE_CHARS = 80
# "Matched by text" lines under a page: at most this many, each snippet at most SNIPPET_CHARS
# of plain text, all of them at most SNIPPETS_BUDGET characters as shown (Telegram counts a
# message's length after parsing its HTML), so the summary stays far below Telegram's 4096
# characters whatever the page size.
SNIPPET_LINES = 5
SNIPPET_CHARS = 120
SNIPPETS_BUDGET = 1500
ELLIPSIS = "…"
TAGS = re.compile(r"<[^>]*>")


def quote(text: str | None) -> str:
    """A short, escaped echo of what the user typed."""
    text = " ".join((text or "").split())
    if len(text) > QUOTE_CHARS:
        text = text[: QUOTE_CHARS - 1].rstrip() + "…"
    return html.escape(text)


def summary_text(result: SearchResult, shown: int, skipped: int, lang: str) -> str:
    total = f"{result.total}" if result.total_exact else f"{result.total}+"
    text = t("search-summary", lang, total=total, ms=max(1, round(result.elapsed_ms)))
    if result.offset > 0 or result.has_more:
        first = result.offset + 1
        text += t("search-range", lang, first=first, last=result.offset + shown + skipped)
    if result.excluded:
        terms = ", ".join(html.escape(term) for term in result.excluded)
        text += t("search-excluded", lang, terms=terms)
    if skipped:
        text += t("search-skipped", lang, n=skipped)
    return text + why_text(result, lang)


def why_text(result: SearchResult, lang: str) -> str:
    """Why the hits matched by text matched: their words in context, numbered by rank."""
    lines: list[str] = []
    used = 0
    for rank, hit in enumerate(result.hits, start=result.offset + 1):
        snippet = hit.snippet
        if hit.matched not in ("text", "both") or snippet is None:
            continue
        line = t("search-why-line", lang, n=rank, source=source_label(snippet, lang),
                 text=snippet_html(snippet.text, snippet.spans))  # fmt: skip
        shown = visible_length(line)
        if len(lines) == SNIPPET_LINES or used + shown > SNIPPETS_BUDGET:
            break
        lines.append(line)
        used += shown
    return t("search-why-header", lang) + "".join(lines) if lines else ""


def visible_length(text: str) -> int:
    """How many characters Telegram counts in an HTML text: tags dropped, entities as one."""
    return len(html.unescape(TAGS.sub("", text)))


def source_label(snippet: Any, lang: str) -> str:
    """Where the text was found (caption, in the picture, ...), in the user's language."""
    key = "search-source-" + str(getattr(snippet, "source", "")).replace("_", "-")
    return t(key if catalog.has(key) else "search-source-other", lang)


def snippet_html(text: str, spans: Sequence[tuple[int, int]], limit: int = SNIPPET_CHARS) -> str:
    """``text`` (plain, from the user or the picture) escaped for Telegram's HTML, its ``spans``
    (character ranges of the matching words) in bold, on one line, cut to ``limit``
    characters around the first match."""
    text = "".join(" " if c.isspace() else c for c in text)
    spans = _clean_spans(spans, len(text))
    start, end = _window(text, spans, limit)
    out = [ELLIPSIS] if start > 0 else []
    at = start
    for a, b in spans:
        a, b = max(a, start), min(b, end)
        if a >= b:
            continue
        out += [html.escape(text[at:a]), "<b>", html.escape(text[a:b]), "</b>"]
        at = b
    out.append(html.escape(text[at:end]))
    if end < len(text):
        out.append(ELLIPSIS)
    return "".join(out).strip()


def _clean_spans(spans: Sequence[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """Spans inside the text, sorted, overlaps merged (a bad span never breaks the markup)."""
    merged: list[tuple[int, int]] = []
    for a, b in sorted((max(0, int(a)), min(size, int(b))) for a, b in spans):
        if a >= b:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _window(text: str, spans: list[tuple[int, int]], limit: int) -> tuple[int, int]:
    """``[start, end)`` of at most ``limit`` characters, starting a little before the first
    match and moved to a word boundary where one is near."""
    if len(text) <= limit:
        return 0, len(text)
    first = spans[0][0] if spans else 0
    start = max(0, min(first - limit // 4, len(text) - limit))
    space = text.rfind(" ", max(0, start - 10), start + 1)
    start = space + 1 if space >= 0 and start > 0 else start
    return start, min(len(text), start + limit)


def empty_reason(result: SearchResult, session: SearchSession) -> str:
    """The id of the text that explains an empty page."""
    if result.reason == "past_end":
        return "search-past-end"
    if result.reason == "empty":
        return "search-similar-alone" if session.kind == "item" else "search-empty"
    if session.kind == "text" or (session.kind != "item" and session.text):
        return "search-no-match"
    return "search-no-match-photo"
