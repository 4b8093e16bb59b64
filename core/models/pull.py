"""Download a ready bundle from a model hub: Immich's ONNX repositories on Hugging Face, or any
repository laid out like our own bundles.

The transfer goes through ``huggingface_hub`` (imported only when a pull runs, so start-up stays
fast), which brings what a download needs: ``HF_ENDPOINT``, ``HF_TOKEN``, proxies
(``HTTP(S)_PROXY``), offline mode (``HF_HUB_OFFLINE``), retries that resume an interrupted
transfer with ``Range``, and its progress bars. What stays ours:

* the choice of files: the repository listing decides the layout, and only what a bundle needs
  is fetched: ``config.json`` and the files directly in ``visual/`` and ``textual/`` (Immich's
  layout, without its ARM NN / RKNN variants in sub-directories), or the top-level files of our
  own layout;
* the check: every file against the listing's checksum (the sha256 of Git LFS files, the git blob
  id of the others), then :func:`core.models.bundle.load_bundle`;
* the install: files go into a hidden directory next to the destination, renamed into place only
  when complete and checked, so a failed pull never leaves a half bundle where the bot looks.
  Files finished by a failed run are kept there, so running the same command again resumes
  (at file granularity: huggingface_hub 2.x drops a partial file when its run fails).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from core.errors import ModelDownloadError

if TYPE_CHECKING:
    from huggingface_hub import HfApi

DEFAULT_BASE_URL = "https://huggingface.co"
HF_ENDPOINT_ENV = "HF_ENDPOINT"
OFFLINE_ENVS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")  # what huggingface_hub reads
DEFAULT_OWNER = "immich-app"  # a bare name like "ViT-B-32__openai" means Immich's repository
DEFAULT_MODELS_DIR = Path("models")
CHUNK = 1 << 20
LIBRARY = "image-finder"  # in the User-Agent
TIMEOUT = 30.0  # seconds for the first call to the hub (huggingface_hub sets no limit)

# Short names for a few well-known bundles.
ALIASES: dict[str, str] = {
    "clip-vit-b-32": "immich-app/ViT-B-32__openai",
    "clip-vit-b-16": "immich-app/ViT-B-16__openai",
    "xlm-roberta-large-vit-b-32": "immich-app/XLM-Roberta-Large-Vit-B-32",
    "nllb-clip-base-siglip": "immich-app/nllb-clip-base-siglip__v1",
    "vit-b-16-siglip2": "immich-app/ViT-B-16-SigLIP2__webli",
    "vit-b-32-siglip2": "immich-app/ViT-B-32-SigLIP2-256__webli",
}

_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_SOURCE_MARK = ".pull-source"
_HF_DIR = ".cache"  # huggingface_hub's bookkeeping inside the download directory
_BYTES_BAR = "huggingface_hub.snapshot_download"  # the progress group of the bytes bar


@dataclass(frozen=True)
class RemoteFile:
    """One file of the repository listing."""

    path: str
    size: int | None
    sha256: str | None = None  # Git LFS files: sha256 of the content
    git_oid: str | None = None  # other files: git blob id (sha1 of "blob <size>\0" + content)


@dataclass(frozen=True)
class Layout:
    """Which repository files make a bundle, as glob patterns huggingface_hub also applies."""

    name: str
    allow: tuple[str, ...]
    ignore: tuple[str, ...]

    def wants(self, path: str) -> bool:
        return any(fnmatchcase(path, p) for p in self.allow) and not any(
            fnmatchcase(path, p) for p in self.ignore
        )


# Other runtimes' formats that Immich keeps next to the ONNX files, docs and dot files.
SKIP_PATTERNS = ("*.armnn", "*.rknn", "*.md", ".*", "*/.*")
OUR_LAYOUT = Layout("ours", ("*",), ("*/*", *SKIP_PATTERNS))
IMMICH_LAYOUT = Layout(
    "immich",
    ("config.json", "visual/*", "textual/*"),
    ("visual/*/*", "textual/*/*", *SKIP_PATTERNS),
)


# --- names ----------------------------------------------------------------------------------


def resolve_repo(name: str) -> str:
    """``owner/name`` of a repository: an alias, an ``owner/name``, or an Immich model name."""
    repo = ALIASES.get(name.strip().lower(), name.strip())
    if "/" not in repo:
        repo = f"{DEFAULT_OWNER}/{repo}"
    if not _REPO_RE.match(repo) or ".." in repo or "--" in repo:
        raise ModelDownloadError(f"{name!r} is not a model name (expected owner/name or an alias)")
    return repo


def default_destination(repo: str) -> Path:
    return DEFAULT_MODELS_DIR / repo.split("/", 1)[1]


def hub_endpoint(base_url: str | None = None) -> str:
    """The hub to ask: ``base_url`` (``--base-url``, else the MODEL_HUB_URL setting, as the
    caller passes it), else ``$HF_ENDPOINT``, else huggingface.co."""
    for value in (base_url, os.environ.get(HF_ENDPOINT_ENV)):
        if value and value.strip():
            return value.strip().rstrip("/")
    return DEFAULT_BASE_URL


def offline_mode() -> bool:
    """``HF_HUB_OFFLINE`` read now, not when huggingface_hub was imported."""
    return any(
        os.environ.get(key, "").strip().upper() in ("1", "ON", "YES", "TRUE")
        for key in OFFLINE_ENVS
    )


# --- which files ----------------------------------------------------------------------------


def bundle_layout(repo: str, files: Sequence[RemoteFile]) -> Layout:
    """Our layout or Immich's, from the repository listing."""
    paths = {f.path for f in files}
    if {"config.json", "visual.onnx", "textual.onnx"} <= paths:
        return OUR_LAYOUT
    if {"config.json", "visual/model.onnx", "textual/model.onnx"} <= paths:
        return IMMICH_LAYOUT
    raise ModelDownloadError(
        f"{repo}: not a model bundle (no config.json with visual/model.onnx and "
        "textual/model.onnx, nor with visual.onnx and textual.onnx)"
    )


def select_bundle_files(repo: str, files: Sequence[RemoteFile]) -> list[RemoteFile]:
    """The files a bundle needs, in either layout."""
    layout = bundle_layout(repo, files)
    chosen = [f for f in files if layout.wants(f.path)]
    for f in chosen:
        if ".." in f.path.split("/") or f.path.startswith("/"):
            raise ModelDownloadError(f"{repo}: refusing the file path {f.path!r}")
    return chosen


# --- checks ---------------------------------------------------------------------------------


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


# --- errors ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """What one pull is about, for the one-line messages."""

    repo: str
    endpoint: str
    dest: Path
    revision: str

    def fail(self, problem: str, advice: str) -> ModelDownloadError:
        return ModelDownloadError(f"{problem}: {advice}")

    def network(self, reason: str) -> ModelDownloadError:
        return self.fail(
            f"could not download model {self.repo} from {self.endpoint} ({reason})",
            "check the connection, HF_ENDPOINT/MODEL_HUB_URL and proxies, "
            f"or copy the bundle into {self.dest}",
        )

    def interrupted(self, reason: str) -> ModelDownloadError:
        return self.fail(
            f"download of model {self.repo} from {self.endpoint} was interrupted ({reason})",
            "run the same command again to resume",
        )

    def offline(self) -> ModelDownloadError:
        return self.fail(
            f"could not download model {self.repo}: offline mode is on (HF_HUB_OFFLINE)",
            f"unset HF_HUB_OFFLINE to download it, or copy the bundle into {self.dest}",
        )


def _one_line(exc: BaseException) -> str:
    """The first line of an exception's text, without ``[Errno N]``: fit for a message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", lines[0]) if lines else type(exc).__name__
    return text[:1].lower() + text[1:]


def _root_cause(exc: BaseException) -> BaseException:
    """huggingface_hub wraps network errors in LocalEntryNotFoundError; the cause says more."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    seen = 0
    while isinstance(exc, LocalEntryNotFoundError) and seen < 5:
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc, seen = inner, seen + 1
    return exc


def _explain(job: _Job, exc: BaseException) -> ModelDownloadError:
    """One :class:`ModelDownloadError` line for whatever huggingface_hub or httpx raised."""
    from huggingface_hub import errors as hf

    exc = _root_cause(exc)
    if isinstance(exc, hf.OfflineModeIsEnabled):
        return job.offline()
    if isinstance(exc, hf.GatedRepoError | hf.DisabledRepoError):
        return job.fail(
            f"model {job.repo} at {job.endpoint} is gated or disabled",
            f"accept its terms on the hub and set HF_TOKEN, or copy the bundle into {job.dest}",
        )
    if isinstance(exc, hf.RepositoryNotFoundError):
        known = ", ".join(sorted(ALIASES))
        status = exc.response.status_code if exc.response is not None else "?"
        return job.fail(
            f"{job.repo}: no such model repository at {job.endpoint} (HTTP {status})",
            f"check the name (owner/name, or one of: {known}); a private one needs HF_TOKEN",
        )
    if isinstance(exc, hf.RevisionNotFoundError):
        return job.fail(
            f"model {job.repo} has no revision {job.revision!r} at {job.endpoint}",
            "check --revision",
        )
    if isinstance(exc, hf.HfHubHTTPError):
        return _explain_http(job, exc)
    if isinstance(exc, hf.FileMetadataError | json.JSONDecodeError):  # e.g. a web page
        return job.network(f"not a Hugging Face hub: {_one_line(exc)}")
    return _explain_transport(job, exc)


def _explain_transport(job: _Job, exc: BaseException) -> ModelDownloadError:
    """The network and disk side: unreachable, a proxy, a cut connection, a full disk."""
    import httpx2

    if isinstance(exc, httpx2.ProxyError):
        return job.network(f"proxy error: {_one_line(exc)}")
    if isinstance(exc, httpx2.ConnectError | httpx2.TimeoutException):
        return job.network(_one_line(exc))
    if isinstance(exc, httpx2.UnsupportedProtocol | httpx2.InvalidURL):
        return job.network(f"not a hub address: {_one_line(exc)}")
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return job.fail(
            f"could not download model {job.repo}: no space left in {job.dest.parent}",
            "free some space, then run the same command again to resume",
        )
    if isinstance(exc, httpx2.TransportError | OSError):
        return job.interrupted(_one_line(exc))
    return job.fail(
        f"could not download model {job.repo} from {job.endpoint} ({_one_line(exc)})",
        f"run the same command again, or copy the bundle into {job.dest}",
    )


def _explain_http(job: _Job, exc: Any) -> ModelDownloadError:
    status = exc.response.status_code if exc.response is not None else None
    if status == 401:
        return job.fail(
            f"model {job.repo} at {job.endpoint} needs a login (HTTP 401)",
            f"set HF_TOKEN, or copy the bundle into {job.dest}",
        )
    if status == 403:
        return job.fail(
            f"access to model {job.repo} at {job.endpoint} was denied (HTTP 403)",
            f"check HF_TOKEN's permissions, or copy the bundle into {job.dest}",
        )
    if status == 404:  # not a hub API there, or a listed file gone (the repository changed)
        return job.fail(
            f"could not download model {job.repo}: {job.endpoint} answered HTTP 404",
            "check MODEL_HUB_URL/HF_ENDPOINT, then run the same command again",
        )
    return job.fail(
        f"could not download model {job.repo} from {job.endpoint} (HTTP {status})",
        "try again later: run the same command again to resume",
    )


# --- huggingface_hub ------------------------------------------------------------------------


def _remote_file(entry: Any) -> RemoteFile:
    """Our view of a ``huggingface_hub.hf_api.RepoFile``."""
    lfs = entry.lfs
    return RemoteFile(
        path=str(entry.path),
        size=int(lfs.size if lfs is not None else entry.size),
        sha256=lfs.sha256 if lfs is not None else None,
        # An LFS or Xet file's blob id is that of its pointer, not of the content.
        git_oid=None if lfs is not None or entry.xet_hash else entry.blob_id,
    )


def _listing(api: HfApi, repo: str, revision: str) -> tuple[str, list[RemoteFile]]:
    """The commit ``revision`` names now, and every file of the repository at that commit."""
    from huggingface_hub.hf_api import RepoFile

    info = api.repo_info(repo, revision=revision, timeout=TIMEOUT)
    commit = str(info.sha)
    entries = api.list_repo_tree(repo, recursive=True, revision=commit)
    return commit, [_remote_file(e) for e in entries if isinstance(e, RepoFile)]


def _fetch(job: _Job, api: HfApi, commit: str, layout: Layout, work: Path, progress: type) -> None:
    """Download the layout's files of ``commit`` into ``work``; finished files of an earlier run
    at the same commit are kept (huggingface_hub's metadata in ``work/.cache`` says which)."""
    from huggingface_hub import snapshot_download

    snapshot_download(
        job.repo,
        revision=commit,
        endpoint=api.endpoint,
        library_name=LIBRARY,
        local_dir=work,
        cache_dir=work / _HF_DIR / "hub",  # nothing is written outside the download directory
        allow_patterns=list(layout.allow),
        ignore_patterns=list(layout.ignore),
        etag_timeout=TIMEOUT,
        tqdm_class=progress,
    )


def progress_class(stream: TextIO, total: int) -> type:
    """huggingface_hub's bars on a terminal; elsewhere (a pipe, a log file) no redraws, one line
    per 10 % of the ``total`` bytes to fetch instead, so logs stay short. (The bar's own total
    grows as files start, so a small first file would read as 100 %.)"""
    from huggingface_hub.utils.tqdm import tqdm as hf_tqdm

    tty = bool(getattr(stream, "isatty", None) and stream.isatty())

    class PullProgress(hf_tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._lines = not tty and kwargs.get("name") == _BYTES_BAR
            self._tenth = 0  # tenths of the total reported so far
            kwargs["file"] = stream
            if not tty:
                kwargs["disable"] = True
            super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]  # hf: no hints

        def update(self, n: float | None = 1) -> bool | None:
            if not self._lines:
                return super().update(n)  # type: ignore[no-any-return]
            self.n += n or 0
            done = min(self.n, total)
            tenth = min(10, int(done * 10 // max(total, 1)))
            if tenth > self._tenth:
                self._tenth = tenth
                stream.write(f"{done / 1e6:.1f}/{total / 1e6:.1f} MB {tenth * 10:3d}%\n")
                stream.flush()
            return None

    return PullProgress


# --- the whole pull -------------------------------------------------------------------------


def pull(
    name: str,
    out_dir: Path | None = None,
    *,
    base_url: str | None = None,
    revision: str = "main",
    force: bool = False,
    progress_stream: TextIO | None = None,
) -> Path:
    """Download the bundle ``name`` into ``out_dir`` (default ``models/<repository name>``)."""
    repo = resolve_repo(name)
    dest = Path(out_dir) if out_dir is not None else default_destination(repo)
    job = _Job(repo, hub_endpoint(base_url), dest, revision)
    if dest.exists() and not force and (not dest.is_dir() or any(dest.iterdir())):
        raise ModelDownloadError(f"{dest} already exists; pass --force to replace it")
    if offline_mode():
        raise job.offline()
    stream = progress_stream if progress_stream is not None else sys.stderr
    from huggingface_hub import HfApi

    api = HfApi(endpoint=job.endpoint, library_name=LIBRARY)
    try:
        commit, listing = _listing(api, repo, revision)
        layout = bundle_layout(repo, listing)
        files = select_bundle_files(repo, listing)
        work = _work_dir(dest, f"{job.endpoint}/{repo}@{revision}\n")
        todo = [f for f in files if not _finished(work, f)]
        _announce(job, files, todo, stream)
        progress = progress_class(stream, sum(f.size or 0 for f in todo))
        _fetch(job, api, commit, layout, work, progress)
    except ModelDownloadError:
        raise
    except Exception as exc:  # huggingface_hub's and httpx's errors, in one line each
        raise _explain(job, exc) from None
    _check_files(job, work, files)
    _check_loadable(repo, work)
    _install(work, dest)
    return dest


def _finished(work: Path, rf: RemoteFile) -> bool:
    """Downloaded by an earlier run (huggingface_hub moves a file in only when complete)."""
    path = work / rf.path
    return path.is_file() and (rf.size is None or path.stat().st_size == rf.size)


def _announce(
    job: _Job, files: Sequence[RemoteFile], todo: Sequence[RemoteFile], stream: TextIO
) -> None:
    """One line before the bars, so a log says what is coming and from where."""
    size = sum(f.size or 0 for f in todo) / 1e6
    kept = len(files) - len(todo)
    note = f" ({kept} kept from an earlier run)" if kept else ""
    stream.write(
        f"fetching {job.repo} from {job.endpoint}: {len(todo)} files, {size:.1f} MB{note}\n"
    )
    stream.flush()


def _work_dir(dest: Path, source: str) -> Path:
    """The hidden download directory next to ``dest``; leftovers of another source go."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = dest.parent / f".{dest.name}.download"
    mark = work / _SOURCE_MARK
    if work.exists() and (not mark.is_file() or mark.read_text("utf-8") != source):
        shutil.rmtree(work)  # do not mix files of two repositories
    work.mkdir(exist_ok=True)
    mark.write_text(source, "utf-8")
    return work


def _check_files(job: _Job, work: Path, files: Sequence[RemoteFile]) -> None:
    """Every selected file present and matching the listing; a mismatch installs nothing."""
    for rf in files:
        path = work / rf.path
        if not path.is_file():  # huggingface_hub returns what it has when the hub went away
            raise job.interrupted(f"{rf.path} is missing")
        problem = verify_file(path, rf)
        if problem is not None:
            shutil.rmtree(work, ignore_errors=True)
            raise ModelDownloadError(
                f"{job.repo}: {rf.path} failed its checksum ({problem}); nothing was installed"
            )
    wanted = {work / rf.path for rf in files}
    shutil.rmtree(work / _HF_DIR, ignore_errors=True)
    (work / _SOURCE_MARK).unlink(missing_ok=True)
    for path in sorted(work.rglob("*"), reverse=True):  # files of an older commit, empty dirs
        if path.is_file() and path not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def _check_loadable(repo: str, work: Path) -> None:
    """Files that passed their checksums can still be a layout we cannot read; say so now."""
    from core.errors import BundleError
    from core.models.bundle import load_bundle

    try:
        load_bundle(work)
    except BundleError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise ModelDownloadError(f"{repo}: downloaded, but not a usable bundle: {exc}") from None


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
