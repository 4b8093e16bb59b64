"""Download a ready bundle from a model hub: Immich's ONNX repositories on Hugging Face, or any
repository laid out like our own bundles.

Stdlib only (urllib), so it works in the runtime environment. What it does:

* lists the repository with the hub API (``/api/models/{repo}/tree/{revision}?recursive=true``,
  paginated by ``Link: <...>; rel="next"``), which gives each file's size and checksums: the
  sha256 of Git LFS files (``lfs.oid``) and the git blob id of the others (``oid``);
* fetches only what a bundle needs: ``config.json``, the files directly in ``visual/`` and
  ``textual/`` (Immich's layout, without its ARM NN / RKNN variants in sub-directories), or the
  top-level files of our own layout;
* writes ``<file>.part`` files in a hidden directory next to the destination, resuming them with
  HTTP ``Range`` after an interruption (also across runs), checks every file, and renames the
  directory into place only when all are complete, so a failed pull never leaves a half bundle
  where the bot looks for models.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, urljoin

from core.errors import ModelDownloadError

DEFAULT_BASE_URL = "https://huggingface.co"
BASE_URL_ENV = "MODEL_HUB_URL"
DEFAULT_OWNER = "immich-app"  # a bare name like "ViT-B-32__openai" means Immich's repository
DEFAULT_MODELS_DIR = Path("models")
USER_AGENT = "image-finder-pull/1"
CHUNK = 1 << 20
TIMEOUT = 30.0
RETRIES = 3

# Short names for a few well-known bundles.
ALIASES: dict[str, str] = {
    "clip-vit-b-32": "immich-app/ViT-B-32__openai",
    "clip-vit-b-16": "immich-app/ViT-B-16__openai",
    "xlm-roberta-large-vit-b-32": "immich-app/XLM-Roberta-Large-Vit-B-32",
    "nllb-clip-base-siglip": "immich-app/nllb-clip-base-siglip__v1",
    "vit-b-16-siglip2": "immich-app/ViT-B-16-SigLIP2__webli",
}

OFFLINE_HINT = (
    "copy a bundle by hand or run `python -m core.models export …` on a machine with internet"
)
# Model formats for other runtimes that Immich keeps next to the ONNX files.
SKIP_SUFFIXES = (".armnn", ".rknn", ".md")
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_SOURCE_MARK = ".pull-source"


@dataclass(frozen=True)
class RemoteFile:
    """One file of the repository listing."""

    path: str
    size: int | None
    sha256: str | None = None  # Git LFS files: sha256 of the content
    git_oid: str | None = None  # other files: git blob id (sha1 of "blob <size>\0" + content)


# --- names ----------------------------------------------------------------------------------


def resolve_repo(name: str) -> str:
    """``owner/name`` of a repository: an alias, an ``owner/name``, or an Immich model name."""
    repo = ALIASES.get(name.strip().lower(), name.strip())
    if "/" not in repo:
        repo = f"{DEFAULT_OWNER}/{repo}"
    if not _REPO_RE.match(repo) or ".." in repo:
        raise ModelDownloadError(f"{name!r} is not a model name (expected owner/name or an alias)")
    return repo


def default_destination(repo: str) -> Path:
    return DEFAULT_MODELS_DIR / repo.split("/", 1)[1]


def base_url_from_env(base_url: str | None = None) -> str:
    return (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


# --- HTTP -----------------------------------------------------------------------------------


def _offline(base_url: str, reason: object) -> ModelDownloadError:
    return ModelDownloadError(f"cannot reach {base_url} ({reason}): {OFFLINE_HINT}")


def _open(
    url: str, base_url: str, headers: dict[str, str] | None = None, timeout: float = TIMEOUT
) -> http.client.HTTPResponse:
    """urlopen that turns "no network" into one clear ``ModelDownloadError``; HTTP errors pass."""
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError:
        raise
    except urllib.error.URLError as exc:
        raise _offline(base_url, exc.reason) from exc
    except (TimeoutError, ConnectionError) as exc:
        raise _offline(base_url, exc) from exc


def _http_error(repo: str, base_url: str, exc: urllib.error.HTTPError) -> ModelDownloadError:
    if exc.code in (401, 404):
        # The hub answers 401 for a repository that does not exist (or is private).
        known = ", ".join(sorted(ALIASES))
        return ModelDownloadError(
            f"{repo}: no such model repository at {base_url} (HTTP {exc.code}); "
            f"check the name (owner/name, or one of: {known})"
        )
    if exc.code == 403:
        return ModelDownloadError(f"{repo}: access denied by {base_url} (HTTP 403, gated?)")
    return ModelDownloadError(f"{repo}: {base_url} answered HTTP {exc.code} {exc.reason}")


def _next_link(header: str | None) -> str | None:
    for part in (header or "").split(","):
        match = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', part)
        if match:
            return match.group(1)
    return None


def list_files(
    repo: str, *, base_url: str, revision: str = "main", timeout: float = TIMEOUT
) -> list[RemoteFile]:
    """Every file of the repository with its size and checksum, from the hub API."""
    url: str | None = f"{base_url}/api/models/{repo}/tree/{quote(revision, safe='')}?recursive=true"
    files: list[RemoteFile] = []
    while url:
        try:
            with _open(url, base_url, timeout=timeout) as resp:
                page = json.load(resp)
                link = resp.headers.get("Link")
        except urllib.error.HTTPError as exc:
            raise _http_error(repo, base_url, exc) from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelDownloadError(f"{repo}: {base_url} sent a malformed file list") from exc
        if not isinstance(page, list):
            raise ModelDownloadError(f"{repo}: {base_url} sent a malformed file list")
        files += [_remote_file(entry) for entry in page if entry.get("type") == "file"]
        next_url = _next_link(link)
        url = urljoin(url, next_url) if next_url else None
    return files


def _remote_file(entry: dict[str, Any]) -> RemoteFile:
    lfs = entry.get("lfs") or {}
    size = entry.get("size", lfs.get("size"))
    return RemoteFile(
        path=str(entry["path"]),
        size=int(size) if size is not None else None,
        sha256=lfs.get("oid") or lfs.get("sha256"),
        # An LFS or Xet file's "oid" is the blob id of its pointer, not of the content.
        git_oid=None if lfs or entry.get("xetHash") else entry.get("oid"),
    )


def select_bundle_files(repo: str, files: Sequence[RemoteFile]) -> list[RemoteFile]:
    """The files a bundle needs, in either layout."""
    paths = {f.path for f in files}

    def wanted(f: RemoteFile) -> bool:
        name = f.path.rsplit("/", 1)[-1]
        return not name.startswith(".") and not name.lower().endswith(SKIP_SUFFIXES)

    if {"config.json", "visual.onnx", "textual.onnx"} <= paths:
        chosen = [f for f in files if "/" not in f.path and wanted(f)]
    elif {"config.json", "visual/model.onnx", "textual/model.onnx"} <= paths:
        chosen = [
            f
            for f in files
            if f.path == "config.json"
            or (
                f.path.count("/") == 1
                and f.path.split("/")[0] in ("visual", "textual")
                and wanted(f)
            )
        ]
    else:
        raise ModelDownloadError(
            f"{repo}: not a model bundle (no config.json with visual/model.onnx and "
            "textual/model.onnx, nor with visual.onnx and textual.onnx)"
        )
    for f in chosen:
        if ".." in f.path.split("/") or f.path.startswith("/"):
            raise ModelDownloadError(f"{repo}: refusing the file path {f.path!r}")
    return chosen


# --- progress -------------------------------------------------------------------------------


class Progress:
    """A bar on a terminal; a line every 10% (or 5 s) otherwise, e.g. in logs."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.started = self._last = time.monotonic()
        self._last_tenth = -1

    def file(self, rf: RemoteFile) -> None:
        if not self.tty:
            size = f" ({rf.size / 1e6:.1f} MB)" if rf.size is not None else ""
            self._write(f"fetching {rf.path}{size}\n")

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.tty:
            if now - self._last >= 0.1 or self.done >= self.total:
                self._last = now
                self._write("\r" + self._bar(now))
            return
        tenth = min(10, self.done * 10 // self.total)
        if tenth > self._last_tenth or now - self._last >= 5.0:
            self._last_tenth, self._last = tenth, now
            self._write(self._status(now) + "\n")

    def close(self) -> None:
        if self.tty:
            self._write("\r" + self._bar(time.monotonic()) + "\n")

    def _status(self, now: float) -> str:
        rate = self.done / max(now - self.started, 1e-6) / 1e6
        pct = min(100.0, 100.0 * self.done / self.total)
        return f"{self.done / 1e6:.1f}/{self.total / 1e6:.1f} MB {pct:3.0f}% {rate:.1f} MB/s"

    def _bar(self, now: float) -> str:
        width = 30
        filled = min(width, width * self.done // self.total)
        return f"[{'#' * filled}{'.' * (width - filled)}] {self._status(now)}"

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


# --- files ----------------------------------------------------------------------------------


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def verify_file(path: Path, rf: RemoteFile) -> str | None:
    """None when ``path`` matches the listing, else what is wrong."""
    size = path.stat().st_size
    if rf.size is not None and size != rf.size:
        return f"size {size} bytes, expected {rf.size}"
    if rf.sha256:
        digest = hashlib.sha256()
        for chunk in _chunks(path):
            digest.update(chunk)
        if digest.hexdigest() != rf.sha256.lower():
            return f"sha256 {digest.hexdigest()}, expected {rf.sha256}"
    elif rf.git_oid and len(rf.git_oid) == 40:
        digest = hashlib.sha1(f"blob {size}\0".encode())
        for chunk in _chunks(path):
            digest.update(chunk)
        if digest.hexdigest() != rf.git_oid.lower():
            return f"git blob id {digest.hexdigest()}, expected {rf.git_oid}"
    return None


class _Interrupted(Exception):
    pass


def _fetch(url: str, part: Path, rf: RemoteFile, base_url: str, progress: Progress) -> None:
    """Download into ``part``, continuing from its current length with a Range request."""
    have = part.stat().st_size if part.exists() else 0
    if rf.size is not None and have > rf.size:
        part.unlink()
        have = 0
    if rf.size is not None and have == rf.size:
        return
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        resp = _open(url, base_url, headers)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the part is already complete
            return
        raise
    with resp:
        if have and resp.status != 206:  # the server ignored Range: start over
            progress.advance(-have)
            have = 0
        with part.open("ab" if have else "wb") as fh:
            try:
                while chunk := resp.read(CHUNK):
                    fh.write(chunk)
                    progress.advance(len(chunk))
            except (http.client.IncompleteRead, ConnectionError, TimeoutError) as exc:
                raise _Interrupted(str(exc) or type(exc).__name__) from exc
    if rf.size is not None and part.stat().st_size < rf.size:
        raise _Interrupted(f"connection closed at {part.stat().st_size} of {rf.size} bytes")


def _download(
    url: str,
    part: Path,
    rf: RemoteFile,
    *,
    repo: str,
    base_url: str,
    progress: Progress,
    retries: int,
) -> None:
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, rf, base_url, progress)
            return
        except urllib.error.HTTPError as exc:
            raise _http_error(repo, base_url, exc) from exc
        except _Interrupted as exc:
            if attempt == retries:
                raise ModelDownloadError(
                    f"{rf.path}: download interrupted ({exc}); run the same command again to resume"
                ) from exc
            time.sleep(min(2.0**attempt, 10.0) * 0.1)


# --- the whole pull -------------------------------------------------------------------------


def pull(
    name: str,
    out_dir: Path | None = None,
    *,
    base_url: str | None = None,
    revision: str = "main",
    force: bool = False,
    progress_stream: TextIO | None = None,
    retries: int = RETRIES,
    timeout: float = TIMEOUT,
) -> Path:
    """Download the bundle ``name`` into ``out_dir`` (default ``models/<repository name>``)."""
    base = base_url_from_env(base_url)
    repo = resolve_repo(name)
    dest = Path(out_dir) if out_dir is not None else default_destination(repo)
    if dest.exists() and not force and (not dest.is_dir() or any(dest.iterdir())):
        raise ModelDownloadError(f"{dest} already exists; pass --force to replace it")
    files = select_bundle_files(
        repo, list_files(repo, base_url=base, revision=revision, timeout=timeout)
    )

    dest.parent.mkdir(parents=True, exist_ok=True)
    work = dest.parent / f".{dest.name}.download"
    source = f"{base}/{repo}@{revision}\n"
    mark = work / _SOURCE_MARK
    if work.exists() and (not mark.is_file() or mark.read_text("utf-8") != source):
        shutil.rmtree(work)  # leftovers of another repository: do not mix files
    work.mkdir(exist_ok=True)
    mark.write_text(source, "utf-8")

    progress = Progress(sum(f.size or 0 for f in files), progress_stream)
    for rf in files:
        target = work / rf.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_file() and rf.size is not None and target.stat().st_size == rf.size:
            progress.advance(rf.size)  # verified and kept by an earlier run
            continue
        part = target.with_name(target.name + ".part")
        if part.exists():
            progress.advance(part.stat().st_size)
        progress.file(rf)
        url = f"{base}/{repo}/resolve/{quote(revision, safe='')}/{quote(rf.path)}"
        _download(url, part, rf, repo=repo, base_url=base, progress=progress, retries=retries)
        problem = verify_file(part, rf)
        if problem is not None:
            shutil.rmtree(work, ignore_errors=True)
            raise ModelDownloadError(
                f"{repo}: {rf.path} failed its checksum ({problem}); nothing was installed"
            )
        part.replace(target)
    progress.close()
    mark.unlink()
    _check_loadable(repo, work)
    _install(work, dest)
    return dest


def _check_loadable(repo: str, work: Path) -> None:
    """Files that passed their checksums can still be a layout we cannot read; say so now."""
    from core.errors import BundleError
    from core.models.bundle import load_bundle

    try:
        load_bundle(work)
    except BundleError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise ModelDownloadError(f"{repo}: downloaded, but not a usable bundle: {exc}") from exc


def _install(work: Path, dest: Path) -> None:
    """Put the finished directory at ``dest`` with renames only (same file system)."""
    old = dest.parent / f".{dest.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if dest.exists():
        dest.rename(old)
    work.rename(dest)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)
