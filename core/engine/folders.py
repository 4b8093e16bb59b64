"""Keeping an owner's collection in line with a folder on disk (the local CLI's ``index``).

A sync has two steps so a front end can show progress against a known total:

    plan = await engine.folders.plan(owner.id, root)     # removed and changed files go now
    report = await engine.folders.ingest(owner.id, plan, on_outcome=progress.step)

A file is recognised by its path, size and mtime; a file whose mtime changed but whose bytes
(sha256) did not is only re-recorded, never re-embedded. A copy of known content at another
path ends as a duplicate of the existing item, recorded under its path too.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.engine.library import Library
from core.ingest.pipeline import IngestOutcome, IngestRequest
from core.media.exif import capture_time
from storage import Database, LocalFile, MediaKind, OwnerStore

PHOTO_EXT = {
    ".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif",
}  # fmt: skip
VIDEO_EXT = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".3gp"}
ANIMATION_EXT = {".gif"}


def media_kind(path: Path) -> MediaKind | None:
    """The kind of item a file becomes, by its extension; None for anything else."""
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


def taken_at(path: Path, kind: MediaKind, mtime_ns: int) -> int:
    """When a file's picture was taken: a photo's EXIF capture time, else the file's mtime
    (unix seconds), so date filters work on folders of copied files too."""
    found = capture_time(path) if kind == "photo" else None
    return found if found is not None else mtime_ns // 1_000_000_000


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(slots=True)
class SyncPlan:
    """What a folder scan found: files to ingest, and what was already settled."""

    todo: list[tuple[Path, LocalFile]] = field(default_factory=list)
    unchanged: int = 0
    removed: int = 0  # paths gone from the folder (changed files are not counted)


@dataclass(slots=True)
class SyncReport:
    """The outcome of a sync; ``failures`` keep each failed file with its outcome."""

    planned: int
    unchanged: int
    removed: int
    duplicates: int = 0
    failures: list[tuple[Path, IngestOutcome]] = field(default_factory=list)

    @property
    def added(self) -> int:
        return self.planned - len(self.failures) - self.duplicates

    def counts(self) -> dict[str, int]:
        return {
            "added": self.added,
            "duplicates": self.duplicates,
            "failed": len(self.failures),
            "unchanged": self.unchanged,
            "removed": self.removed,
        }


class FolderSync:
    """Brings an owner's local files in line with a folder (see the module docstring)."""

    def __init__(self, db: Database, library: Library) -> None:
        self._db = db
        self._library = library

    async def plan(self, owner_id: int, root: Path) -> SyncPlan:
        """Scan ``root``: drop items of files gone from it (and old content of changed files),
        re-record touched-but-identical files, and list the files to ingest."""
        root = root.resolve()
        store = self._db.owner(owner_id)
        known = await store.local_files.indexed()
        on_disk = list(walk(root))
        seen = {str(p) for p in on_disk}
        prefix = str(root) + os.sep
        removed = [p for p in known if p.startswith(prefix) and p not in seen]
        if removed:
            await self._remove(owner_id, store, removed)
        plan = SyncPlan(removed=len(removed))
        for path in on_disk:
            st = path.stat()
            old = known.get(str(path))
            if old is not None and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns:
                plan.unchanged += 1
                continue
            digest = await asyncio.to_thread(sha256_file, path)
            file = LocalFile(str(path), st.st_size, st.st_mtime_ns, digest)
            if old is not None and old.sha256 == digest:  # touched, same content
                assert old.media_id is not None  # a row read back from storage has its item
                await store.local_files.put(file, old.media_id)
                plan.unchanged += 1
                continue
            if old is not None:  # same path, new content: the old item goes
                await self._remove(owner_id, store, [str(path)])
            plan.todo.append((path, file))
        return plan

    async def ingest(
        self,
        owner_id: int,
        plan: SyncPlan,
        on_outcome: Callable[[IngestOutcome], None] | None = None,
    ) -> SyncReport:
        """Ingest every planned file concurrently (the pipeline bounds the work); a duplicate
        is recorded under its path. ``on_outcome`` sees each outcome as it arrives."""
        report = SyncReport(len(plan.todo), plan.unchanged, plan.removed)
        store = self._db.owner(owner_id)

        async def one(path: Path, file: LocalFile) -> None:
            kind = media_kind(path) or "photo"
            when = await asyncio.to_thread(taken_at, path, kind, file.mtime_ns)
            request = IngestRequest.for_local_file(
                owner_id, file, kind=kind, file_name=path.name, taken_at=when
            )
            outcome = await (await self._library.submit(request)).result()
            if outcome.failed:
                report.failures.append((path, outcome))
            elif outcome.duplicate and outcome.media_id is not None:
                await store.local_files.put(file, outcome.media_id)  # a copy at another path
            report.duplicates += outcome.duplicate
            if on_outcome is not None:
                on_outcome(outcome)

        await asyncio.gather(*(one(p, f) for p, f in plan.todo))
        return report

    async def _remove(self, owner_id: int, store: OwnerStore, paths: list[str]) -> None:
        result = await store.local_files.remove(paths)
        await self._library.apply_delete(owner_id, result)
