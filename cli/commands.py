"""The CLI's commands over the engine's application services: each opens an engine, does one
thing for the local owner, prints the answer and closes the engine again.

The orchestration (folder diff, ingest, deletes) lives in :mod:`core.engine`; this module only
renders progress and results for a terminal or a pipe.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from core.engine.engine import Engine
from core.engine.folders import SyncReport
from core.ingest.fetch import local_fetcher
from core.ingest.pipeline import IngestOutcome
from core.search.query import Query
from core.search.results import SearchResult
from core.settings import Settings


class Progress:
    """One self-rewriting line on a terminal, a line every few seconds otherwise."""

    def __init__(self, total: int, label: str, stream: TextIO = sys.stderr) -> None:
        self.total, self.label, self.stream = total, label, stream
        self.done = self.failed = self.duplicates = 0
        self.started = self._last = time.monotonic()
        self.tty = stream.isatty()

    def step(self, outcome: IngestOutcome) -> None:
        self.done += 1
        self.failed += outcome.failed
        self.duplicates += outcome.duplicate
        now = time.monotonic()
        if self.tty or now - self._last >= 5 or self.done == self.total:
            self._last = now
            self.render(now)

    def render(self, now: float) -> None:
        rate = self.done / max(now - self.started, 1e-9)
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        line = (
            f"{self.label} [{bar}] {self.done}/{self.total} "
            f"({self.failed} failed, {self.duplicates} duplicates) {rate:.1f}/s"
        )
        end = "\r" if self.tty and self.done < self.total else "\n"
        self.stream.write(line + end)
        self.stream.flush()


async def index_folder(settings: Settings, root: Path, out: TextIO = sys.stdout) -> dict[str, int]:
    """Bring the local collection in line with ``root``: add new and changed files, drop removed
    ones. Returns counts; failures are listed with their reason."""
    root = root.resolve()
    if not root.is_dir():
        raise SystemExit(f"error: {root} is not a directory")
    async with await Engine.open(settings, fetch=local_fetcher()) as engine:
        owner = await engine.owners.ensure_local()
        plan = await engine.folders.plan(owner.id, root)
        progress = Progress(len(plan.todo), "indexing")
        report = await engine.folders.ingest(owner.id, plan, on_outcome=progress.step)
        print_sync_report(report, out)
        return report.counts()


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


def format_result(result: SearchResult) -> str:
    if not result.hits:
        why = {
            "no_match": "nothing matched well enough",
            "empty": "the collection is empty",
            "past_end": "no more results",
        }.get(result.reason or "", "no results")
        best = f" (best score {result.best_score:.3f})" if result.best_score is not None else ""
        return f"{why}{best}; try other words or --loose [{result.elapsed_ms:.0f} ms]"
    lines = []
    for rank, hit in enumerate(result.hits, start=result.offset + 1):
        where = hit.media.path or hit.media.file_unique_id
        at = f" @ {hit.timestamp:.1f}s" if hit.timestamp is not None else ""
        lines.append(f"{rank:3d}  {hit.score:.3f}  {where}{at}")
    more = f", more with --offset {result.next_offset}" if result.has_more else ""
    lines.append(
        f"{len(result.hits)} shown of {result.total}{'' if result.total_exact else '+'} "
        f"by {result.model_id} in {result.elapsed_ms:.0f} ms{more}"
    )
    return "\n".join(lines)


def result_json(result: SearchResult) -> dict[str, Any]:
    """The ``--json`` payload: stable keys for scripts."""
    hits = [
        {
            "path": h.media.path,
            "score": round(h.score, 4),
            "timestamp": h.timestamp,
            "kind": h.media.kind,
        }
        for h in result.hits
    ]
    return {
        "hits": hits,
        "reason": result.reason,
        "model": result.model_id,
        "elapsed_ms": round(result.elapsed_ms, 1),
        "next_offset": result.next_offset,
    }


async def search_cli(settings: Settings, args: argparse.Namespace, out: TextIO) -> SearchResult:
    async with await Engine.open(settings) as engine:
        owner = await engine.owners.ensure_local()
        query = Query.from_text(
            args.query,
            image=args.image,
            strictness=args.strictness,
            offset=args.offset,
            limit=args.limit,
        )
        result = await engine.queries.search(owner.id, query)
        if args.json:
            print(json.dumps(result_json(result), ensure_ascii=False), file=out)
        else:
            print(format_result(result), file=out)
        return result


async def stats_cli(settings: Settings, out: TextIO) -> None:
    async with await Engine.open(settings) as engine:
        owner = await engine.owners.ensure_local()
        stats = await engine.owners.stats(owner.id)
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(stats.media_by_kind.items())) or "empty"
        print(f"items: {stats.media_total} ({kinds}); units: {stats.units}", file=out)
        for model, n in sorted(stats.vectors_by_model.items()):
            print(f"vectors {model}: {n}", file=out)
