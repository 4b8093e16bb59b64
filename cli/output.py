"""What the CLI prints: progress lines on stderr, search results for a terminal or as JSON.

Kept apart from the commands so the formatting can be tested without opening an engine. Hit
fields that older engines lack (``matched``, ``snippet``, ``taken_at``) are read with defaults,
so the output never depends on which of them a hit carries.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any, TextIO

from core.engine.folders import SyncReport
from core.ingest.pipeline import IngestOutcome
from core.search.results import Hit, SearchResult
from storage.records import Media

BOLD, PLAIN = "\x1b[1m", "\x1b[0m"

QUERY_HELP = """\
Query language (Russian and English, mixed freely):
  red car / красная машина    words: found by the picture and by text in or about it
  -beach / -пляж              leave out what matches a word (or a -"quoted phrase")
  "invoice march"             words that must occur in the text; a query of only quoted
                              phrases (and filters) searches the text alone
  2024 | in 2024 | в 2024 году | march 2024 | март 2024 | в марте 2024   year or month
  after:2024-03-01 | before:2023 | после:2024-03 | до:01.06.2023       date range
  photo фото | video видео | gif гиф | document документ                kind of item
  from:@channel | от:@канал                                            a forward's source
  newest | сначала новые | oldest | сначала старые                     sort by date
Filters alone list what they allow ("video 2024 newest"). Text is the file name and what was
read off the picture (OCR); a photo's date is when it was taken (EXIF), else the file's
modification time. What only looks like a filter ("1234", "before:xyz", "march" without a
year) is searched as text."""


class Progress:
    """One self-rewriting line on a terminal, a line every few seconds otherwise."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total, self.label = total, label
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.started = self._last = time.monotonic()
        self.tty = self.stream.isatty()

    def update(self, done: int) -> None:
        """Move to ``done`` of ``total`` and redraw when due (always at the end)."""
        self.done = min(done, self.total)
        now = time.monotonic()
        if self.tty or now - self._last >= 5 or self.done == self.total:
            self._last = now
            self.render(now)

    def detail(self) -> str:
        return ""

    def render(self, now: float) -> None:
        rate = self.done / max(now - self.started, 1e-9)
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        line = f"{self.label} [{bar}] {self.done}/{self.total}{self.detail()} {rate:.1f}/s"
        end = "\r" if self.tty and self.done < self.total else "\n"
        self.stream.write(line + end)
        self.stream.flush()


class IngestProgress(Progress):
    """Progress of a folder's ingest, with its failures and duplicates."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        super().__init__(total, label, stream)
        self.failed = self.duplicates = 0

    def step(self, outcome: IngestOutcome) -> None:
        self.failed += outcome.failed
        self.duplicates += outcome.duplicate
        self.update(self.done + 1)

    def detail(self) -> str:
        return f" ({self.failed} failed, {self.duplicates} duplicates)"


def print_sync_report(report: SyncReport, out: TextIO) -> None:
    """Failures with their reason on stderr, then the one-line summary on ``out``."""
    for path, outcome in report.failures:
        print(f"failed: {path}: {outcome.message or outcome.reason}", file=sys.stderr)
    counts = report.counts()
    print(
        f"{counts['added']} added, {counts['unchanged']} unchanged, "
        f"{counts['removed']} removed, {counts['duplicates']} duplicates, "
        f"{counts['failed']} failed",
        file=out,
    )


def ocr_summary(counts: dict[str, int]) -> str:
    """One line about the text read off the collection's pictures (from OCR state counts)."""
    done, skipped = counts.get("done", 0), counts.get("skipped", 0)
    failed = counts.get("failed", 0)
    left = counts.get("pending", 0) + counts.get("running", 0)
    line = f"text: {done} pictures read, {failed} failed"
    line += f", {skipped} skipped (nothing to read)" if skipped else ""
    return line + (f", {left} left (image-finder ocr)" if left else "")


def media_time(media: Media) -> int:
    """The moment date filters use: capture time, else the message's date, else when stored."""
    for when in (media.taken_at, media.message_date):
        if when is not None:
            return int(when)
    return int(media.created_at)


def local_date(unix_s: int) -> str:
    return datetime.fromtimestamp(unix_s).strftime("%Y-%m-%d")


def marked(text: str, spans: tuple[tuple[int, int], ...], tty: bool) -> str:
    """``text`` with the matching spans in bold on a terminal; plain text for a pipe."""
    if not tty or not spans:
        return text
    parts, at = [], 0
    for start, end in sorted(spans):
        if start < at or end > len(text):
            continue  # overlapping or out of range: never cut a word in two
        parts += [text[at:start], BOLD, text[start:end], PLAIN]
        at = end
    return "".join([*parts, text[at:]])


def hit_lines(rank: int, hit: Hit, tty: bool = False) -> list[str]:
    """A hit's line (rank, score, date, kind, path) and, for a text match, its snippet."""
    media = hit.media
    where = media.path or media.file_unique_id
    at = f" @ {hit.timestamp:.1f}s" if hit.timestamp is not None else ""
    matched = hit.matched
    how = "" if matched == "picture" else f"  [{matched}]"
    lines = [
        f"{rank:3d}  {hit.score:.3f}  {local_date(media_time(media))}  {media.kind:<9s} "
        f"{where}{at}{how}"
    ]
    snippet = hit.snippet
    if snippet is not None:
        source = str(snippet.source).replace("_", " ")
        text = " ".join(marked(snippet.text, tuple(snippet.spans), tty).split())
        lines.append(f"     {source}: {text}")
    return lines


def format_result(result: SearchResult, tty: bool = False) -> str:
    if not result.hits:
        why = {
            "no_match": "nothing matched well enough",
            "empty": "the collection is empty",
            "past_end": "no more results",
        }.get(result.reason or "", "no results")
        best = f" (best score {result.best_score:.3f})" if result.best_score is not None else ""
        filters = result.filters
        hint = "other filters" if filters is not None and filters.narrows else "--loose"
        return f"{why}{best}; try other words or {hint} [{result.elapsed_ms:.0f} ms]"
    lines = []
    for rank, hit in enumerate(result.hits, start=result.offset + 1):
        lines += hit_lines(rank, hit, tty)
    more = f", more with --offset {result.next_offset}" if result.has_more else ""
    lines.append(
        f"{len(result.hits)} shown of {result.total}{'' if result.total_exact else '+'} "
        f"by {result.model_id} in {result.elapsed_ms:.0f} ms{more}"
    )
    return "\n".join(lines)


def hit_json(hit: Hit) -> dict[str, Any]:
    media = hit.media
    snippet = hit.snippet
    when = media_time(media)
    return {
        "path": media.path,
        "score": round(hit.score, 4),
        "timestamp": hit.timestamp,
        "kind": media.kind,
        "file_name": media.file_name,
        "date": local_date(when),
        "time": when,
        "taken_at": media.taken_at,
        "matched": hit.matched,
        "snippet": None
        if snippet is None
        else {
            "source": snippet.source,
            "text": snippet.text,
            "spans": [list(s) for s in snippet.spans],
        },
    }


def result_json(result: SearchResult) -> dict[str, Any]:
    """The ``--json`` payload: stable keys for scripts."""
    return {
        "hits": [hit_json(h) for h in result.hits],
        "reason": result.reason,
        "model": result.model_id,
        "elapsed_ms": round(result.elapsed_ms, 1),
        "next_offset": result.next_offset,
        "filters": plain(result.filters),
    }


def plain(value: object) -> Any:
    """A dataclass (the parsed filters) as JSON-ready values: sets become sorted lists."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, frozenset | set):
        return sorted(plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
