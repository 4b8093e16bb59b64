"""Local CLI: the same engine as the bot, over a folder on disk.

    python -m core index DIR            # new and changed files only; removed files are dropped
    python -m core search "a red car"   # text (Russian or English)
    python -m core search --image FILE  # photo by example (may be combined with a text)
    python -m core stats

Settings come from the environment and ``.env`` like the bot's (``DATA_DIR``, ``MODEL_DIRS``;
``--env-file`` picks another file); ``--data-dir`` and ``--models`` override them, relative to the
current directory. Folder items belong to one local owner, separate from every Telegram user.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from core.errors import ImageFinderError
from core.ingest.pipeline import IngestOutcome, IngestRequest, local_fetcher
from core.models.memory import tune_allocator
from core.search.service import Query, SearchResult
from core.settings import Settings, SettingsError, load_settings
from storage import LocalFile

PHOTO_EXT = {
    ".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif",
}  # fmt: skip
VIDEO_EXT = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".3gp"}
ANIMATION_EXT = {".gif"}
LOCAL_OWNER = ("local", "default")


def media_kind(path: Path) -> str | None:
    ext = path.suffix.lower()
    if ext in PHOTO_EXT:
        return "photo"
    if ext in VIDEO_EXT:
        return "video"
    if ext in ANIMATION_EXT:
        return "animation"
    return None


def walk(root: Path) -> Iterator[Path]:
    """Media files under ``root``, hidden files and folders skipped, in a stable order."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not name.startswith(".") and media_kind(path) is not None and path.is_file():
                yield path.resolve()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
    from core.engine.engine import Engine

    root = root.resolve()
    if not root.is_dir():
        raise SystemExit(f"error: {root} is not a directory")
    engine = await Engine.open(settings, fetch=local_fetcher())
    try:
        owner = await engine.db.ensure_owner(*LOCAL_OWNER)
        store = engine.db.owner(owner.id)
        known = await store.local_files()
        on_disk = list(walk(root))
        seen = {str(p) for p in on_disk}
        prefix = str(root) + os.sep
        removed = [p for p in known if p.startswith(prefix) and p not in seen]
        if removed:
            result = await store.remove_local_files(removed)
            await engine.search.collection.apply_delete(owner.id, result)

        todo: list[tuple[Path, LocalFile]] = []
        unchanged = 0
        for path in on_disk:
            st = path.stat()
            old = known.get(str(path))
            if old is not None and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns:
                unchanged += 1
                continue
            digest = await asyncio.to_thread(sha256_file, path)
            file = LocalFile(str(path), st.st_size, st.st_mtime_ns, digest)
            if old is not None and old.sha256 == digest:  # touched, same content
                await store.put_local_file(file, old.media_id)
                unchanged += 1
                continue
            if old is not None:  # same path, new content: the old item goes
                result = await store.remove_local_files([str(path)])
                await engine.search.collection.apply_delete(owner.id, result)
            todo.append((path, file))

        progress = Progress(len(todo), "indexing")
        failures: list[tuple[Path, IngestOutcome]] = []
        assert engine.pipeline is not None

        async def one(path: Path, file: LocalFile) -> None:
            kind = media_kind(path) or "photo"
            request = IngestRequest.for_local_file(owner.id, file, kind=kind)  # type: ignore[arg-type]
            ticket = await engine.pipeline.submit(request)  # type: ignore[union-attr]
            outcome = await ticket.result()
            if outcome.failed:
                failures.append((path, outcome))
            elif outcome.duplicate and outcome.media_id is not None:
                await store.put_local_file(file, outcome.media_id)  # a copy at another path
            progress.step(outcome)

        await asyncio.gather(*(one(p, f) for p, f in todo))
        for path, outcome in failures:
            print(f"failed: {path}: {outcome.message or outcome.reason}", file=sys.stderr)
        counts = {
            "added": len(todo) - len(failures) - progress.duplicates,
            "duplicates": progress.duplicates,
            "failed": len(failures),
            "unchanged": unchanged,
            "removed": len(removed),
        }
        print(
            f"{counts['added']} added, {counts['unchanged']} unchanged, "
            f"{counts['removed']} removed, {counts['duplicates']} duplicates, "
            f"{counts['failed']} failed",
            file=out,
        )
        return counts
    finally:
        await engine.close()


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


async def search_cli(settings: Settings, args: argparse.Namespace, out: TextIO) -> SearchResult:
    from core.engine.engine import Engine

    engine = await Engine.open(settings)
    try:
        owner = await engine.db.ensure_owner(*LOCAL_OWNER)
        query = Query.from_text(
            args.query,
            image=args.image,
            strictness=args.strictness,
            offset=args.offset,
            limit=args.limit,
        )
        result = await engine.search.search(owner.id, query)
        if args.json:
            hits = [
                {
                    "path": h.media.path,
                    "score": round(h.score, 4),
                    "timestamp": h.timestamp,
                    "kind": h.media.kind,
                }
                for h in result.hits
            ]
            payload = {
                "hits": hits,
                "reason": result.reason,
                "model": result.model_id,
                "elapsed_ms": round(result.elapsed_ms, 1),
                "next_offset": result.next_offset,
            }
            print(json.dumps(payload, ensure_ascii=False), file=out)
        else:
            print(format_result(result), file=out)
        return result
    finally:
        await engine.close()


async def stats_cli(settings: Settings, out: TextIO) -> None:
    from core.engine.engine import Engine

    engine = await Engine.open(settings)
    try:
        owner = await engine.db.ensure_owner(*LOCAL_OWNER)
        stats = await engine.db.owner(owner.id).stats()
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(stats.media_by_kind.items())) or "empty"
        print(f"items: {stats.media_total} ({kinds}); units: {stats.units}", file=out)
        for model, n in sorted(stats.vectors_by_model.items()):
            print(f"vectors {model}: {n}", file=out)
    finally:
        await engine.close()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description=__doc__.splitlines()[0])
    p.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help="settings file (default $IMAGE_FINDER_ENV_FILE or ./.env)",
    )
    p.add_argument("--data-dir", type=Path, help="where the collection lives (DATA_DIR)")
    p.add_argument("--models", help="comma-separated bundle directories (MODEL_DIRS)")
    sub = p.add_subparsers(dest="command", required=True)
    idx = sub.add_parser("index", help="index a folder (incremental)")
    idx.add_argument("folder", type=Path)
    s = sub.add_parser("search", help="search the indexed folder")
    s.add_argument("query", nargs="?", help='text; "-word" excludes')
    s.add_argument("--image", type=Path, help="a photo to search by example")
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--offset", type=int, default=0)
    s.add_argument(
        "--strict", dest="strictness", action="store_const", const="strict", default="normal"
    )
    s.add_argument("--loose", dest="strictness", action="store_const", const="loose")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("stats", help="what the local collection holds")
    return p


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    if args.models:
        overrides["model_dirs"] = args.models
    return load_settings(args.env_file, **overrides)


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    tune_allocator()  # before any thread starts
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
        if args.command == "index":
            asyncio.run(index_folder(settings, args.folder, out))
        elif args.command == "search":
            if not args.query and args.image is None:
                print("error: give a text query, --image FILE, or both", file=sys.stderr)
                return 2
            if args.image is not None and not args.image.is_file():
                print(f"error: {args.image} is not a file", file=sys.stderr)
                return 2
            asyncio.run(search_cli(settings, args, out))
        else:
            asyncio.run(stats_cli(settings, out))
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ImageFinderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
