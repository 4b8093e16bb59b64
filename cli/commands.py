"""The CLI's commands over the engine's application services: each opens an engine, does one
thing for the local owner, prints the answer and closes the engine again.

The orchestration (folder diff, ingest, deletes, OCR) lives in :mod:`core`; this module only
drives it and hands the results to :mod:`cli.output`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TextIO

from cli.output import (
    IngestProgress,
    Progress,
    format_result,
    ocr_summary,
    print_sync_report,
    result_json,
)
from core.engine.engine import Engine
from core.errors import ImageFinderError
from core.ingest.fetch import local_fetcher
from core.ocr.stage import OcrStage
from core.search.query import Query
from core.search.results import SearchResult
from core.settings import Settings
from storage import OwnerKind

LOCAL_ONLY: tuple[OwnerKind, ...] = ("local",)
"""The CLI fetches local files only: its OCR stage leaves the bot's items to the bot."""
OCR_POLL_S = 0.5
"""How often the OCR progress line is refreshed while the stage works."""


class OcrUnavailableError(ImageFinderError):
    """OCR was asked for but the engine has no OCR stage (switched off, or no tessdata)."""

    code = "ocr_unavailable"


async def index_folder(
    settings: Settings, root: Path, out: TextIO = sys.stdout, *, ocr: bool = True
) -> dict[str, int]:
    """Bring the local collection in line with ``root``: add new and changed files, drop removed
    ones, then (``ocr``, and OCR enabled) read the text of the new pictures to completion.
    Returns counts; failures are listed with their reason."""
    root = root.resolve()
    if not root.is_dir():
        raise SystemExit(f"error: {root} is not a directory")
    async with await Engine.open(
        settings, fetch=local_fetcher(), ocr_owner_kinds=LOCAL_ONLY
    ) as engine:
        owner = await engine.owners.ensure_local()
        plan = await engine.folders.plan(owner.id, root)
        progress = IngestProgress(len(plan.todo), "indexing")
        report = await engine.folders.ingest(owner.id, plan, on_outcome=progress.step)
        print_sync_report(report, out)
        if ocr and engine.ocr is not None:
            print(ocr_summary(await read_texts(engine.ocr, owner.id)), file=out)
        return report.counts()


async def ocr_cli(settings: Settings, out: TextIO, *, again: bool = False) -> dict[str, int]:
    """Read the text of the local collection's pictures that are not read yet (``again``:
    of every picture, e.g. after installing another language), with progress."""
    async with await Engine.open(
        settings, fetch=local_fetcher(), ocr_owner_kinds=LOCAL_ONLY
    ) as engine:
        stage = engine.ocr
        if stage is None:
            raise OcrUnavailableError(
                "OCR is off: set OCR_ENABLED=1 and install tesseract-ocr with the "
                "tesseract-ocr-rus and tesseract-ocr-eng data"
            )
        owner = await engine.owners.ensure_local()
        if again:
            await stage.rerun(owner.id)
        counts = await read_texts(stage, owner.id)
        print(ocr_summary(counts), file=out)
        return counts


async def read_texts(
    stage: OcrStage, owner_id: int, stream: TextIO | None = None
) -> dict[str, int]:
    """Wait until the OCR stage has no work left, showing the owner's share of it on
    ``stream`` (stderr); returns the owner's items per OCR state."""
    start = _open_items(await stage.counts(owner_id))
    progress = Progress(start, "reading text", stream)
    drain = asyncio.ensure_future(stage.drain())
    try:
        while True:
            finished, _ = await asyncio.wait({drain}, timeout=OCR_POLL_S)
            counts = await stage.counts(owner_id)
            if start:
                progress.update(start - _open_items(counts))
            if finished:
                drain.result()  # the stage's own failure, if any, surfaces here
                return counts
    finally:
        if not drain.done():
            drain.cancel()


def _open_items(counts: dict[str, int]) -> int:
    return counts.get("pending", 0) + counts.get("running", 0)


async def search_cli(settings: Settings, args: argparse.Namespace, out: TextIO) -> SearchResult:
    """Answer the typed query (with its filters and sort) for the local owner."""
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
            print(format_result(result, tty=out.isatty()), file=out)
        return result


async def stats_cli(settings: Settings, out: TextIO) -> None:
    async with await Engine.open(settings) as engine:
        owner = await engine.owners.ensure_local()
        stats = await engine.owners.stats(owner.id)
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(stats.media_by_kind.items())) or "empty"
        print(f"items: {stats.media_total} ({kinds}); units: {stats.units}", file=out)
        for model, n in sorted(stats.vectors_by_model.items()):
            print(f"vectors {model}: {n}", file=out)
        if stats.media_total:
            print(ocr_summary(await engine.db.ocr.counts(owner.id)), file=out)
