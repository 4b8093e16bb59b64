"""The words around search results: the summary under a page, the reason a page is empty, and
the short echo of the query in a "nothing found" answer.

Pure functions of a :class:`~core.search.results.SearchResult`, so they are tested without a
chat and the sending code stays free of wording.
"""

from __future__ import annotations

import html

from bot.i18n import t
from core.search.results import SearchResult
from storage.results import SearchSession

# How much of the query to quote back in a "nothing found" answer.
QUOTE_CHARS = 80


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
    return text


def empty_reason(result: SearchResult, session: SearchSession) -> str:
    """The id of the text that explains an empty page."""
    if result.reason == "past_end":
        return "search-past-end"
    if result.reason == "empty":
        return "search-similar-alone" if session.kind == "item" else "search-empty"
    if session.kind == "text" or (session.kind != "item" and session.text):
        return "search-no-match"
    return "search-no-match-photo"
