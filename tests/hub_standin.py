"""A stand-in for the Hugging Face Hub on 127.0.0.1, answering exactly what huggingface_hub 2.x
asks while downloading a model (read from its ``hf_api.py``, ``file_download.py``,
``_snapshot_download.py`` and ``utils/_http.py``), so pulls are tested offline end to end:

* ``GET /api/models/{repo}[/revision/{rev}]``: model info; ``sha`` is the commit a download pins;
* ``GET /api/models/{repo}/tree/{rev}?recursive=..``: the file listing with sizes, git blob ids and
  LFS sha256, ``page_size`` entries a page, the next page named by ``Link: <...>; rel="next"``;
* ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``: a plain file answers itself (``ETag`` = its blob
  id, ``X-Repo-Commit``, ``Content-Length``); an LFS file answers ``302`` with ``X-Linked-Etag``
  (its sha256), ``X-Linked-Size`` and a ``Location`` on a second port, the "CDN": another origin,
  as on the real hub, so the client must not send its token there;
* ``GET /blobs/{sha256}`` on the CDN, with ``Range`` (``206`` + ``Content-Range``) for resuming;
* errors as the hub words them: an unknown repository is ``401`` with ``X-Error-Code:
  RepoNotFound``, an unknown revision or file ``404`` with ``RevisionNotFound`` /
  ``EntryNotFound``.

Every request is recorded (method, path, the file it is for, ``Range``, ``Authorization``), and a
file can be served corrupted (one byte flipped), cut halfway once (the connection then closes)
or refused once with a ``503``.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".onnx", ".armnn", ".rknn", ".bin", ".safetensors")
POINTER_SIZE = 134  # what a Git LFS pointer file weighs


def git_blob_id(data: bytes) -> str:
    """The id git gives a blob: what the hub lists as a plain file's ``oid``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def unused_port() -> int:
    """A 127.0.0.1 port nothing listens on (a hub that cannot be reached)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by its path relative to it, as a repository would hold them."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@dataclass(frozen=True)
class Request:
    """One request the stand-in received."""

    method: str
    path: str  # without the query
    origin: str  # "hub" or "cdn"
    file: str | None  # the repository file it is for (resolve and CDN requests)
    range: str | None
    authorization: str | None


@dataclass
class Repo:
    """A repository: its files and the commit that names this state."""

    files: dict[str, bytes]

    @property
    def commit(self) -> str:
        digest = hashlib.sha1()
        for path, data in sorted(self.files.items()):
            digest.update(path.encode() + b"\0" + hashlib.sha256(data).digest())
        return digest.hexdigest()

    def is_lfs(self, path: str) -> bool:
        return _lfs(path)

    def listing(self) -> list[dict[str, object]]:
        """The tree endpoint's entries (directories too), sorted as the hub sorts them."""
        dirs = sorted({p.rsplit("/", 1)[0] for p in self.files if "/" in p})
        entries: list[dict[str, object]] = [
            {"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in dirs
        ]
        for path, data in sorted(self.files.items()):
            entry: dict[str, object] = {"type": "file", "size": len(data), "path": path}
            if self.is_lfs(path):
                entry["oid"] = "1" * 40  # the pointer file's blob id, not the content's
                entry["lfs"] = {
                    "oid": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                    "pointerSize": POINTER_SIZE,
                }
            else:
                entry["oid"] = git_blob_id(data)
            entries.append(entry)
        return entries


@dataclass
class HubState:
    """What the stand-in serves, the faults it injects and what it saw."""

    repos: dict[str, Repo] = field(default_factory=dict)
    corrupt: set[str] = field(default_factory=set)  # served with the first byte flipped
    cut_once: set[str] = field(default_factory=set)  # half the body, then the connection closes
    fail_once: set[str] = field(default_factory=set)  # the next GET of the file answers 503
    page_size: int = 4
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, faults: set[str], path: str) -> bool:
        """True once for a file listed in ``faults`` (the fault is then used up)."""
        with self.lock:
            hit = path in faults
            faults.discard(path)
        return hit

    def blob(self, sha256: str) -> tuple[str, bytes] | None:
        for repo in self.repos.values():
            for path, data in repo.files.items():
                if repo.is_lfs(path) and hashlib.sha256(data).hexdigest() == sha256:
                    return path, data
        return None


_MODEL_INFO = re.compile(r"^/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?$")
_TREE = re.compile(r"^/api/models/([^/]+/[^/]+)/tree/([^/]+)$")
_RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")
_BLOB = re.compile(r"^/blobs/([0-9a-f]{64})$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class _Handler(BaseHTTPRequestHandler):
    """Both ports' requests; ``origin`` says which one this server is."""

    state: HubState
    origin: str
    hub_url: str
    cdn_url: str

    def log_message(self, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    # --- routing --------------------------------------------------------------------------

    def _route(self, *, head: bool) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        if self.origin == "cdn":
            blob = _BLOB.match(path)
            found = self.state.blob(blob.group(1)) if blob else None
            self._record(path, found[0] if found else None)
            if found is None:
                self._error(404, "EntryNotFound", "Blob not found")
            else:
                self._body(found[0], found[1], head=head)
            return
        resolve = _RESOLVE.match(path)
        self._record(path, resolve.group(3) if resolve else None)
        if resolve:
            self._resolve(resolve.group(1), resolve.group(2), resolve.group(3), head=head)
        elif tree := _TREE.match(path):
            self._tree(tree.group(1), tree.group(2), parse_qs(url.query))
        elif info := _MODEL_INFO.match(path):
            self._model_info(info.group(1), info.group(2) or "main")
        else:
            self._error(404, None, "Not found")

    def _record(self, path: str, file: str | None) -> None:
        request = Request(
            self.command,
            path,
            self.origin,
            file,
            self.headers.get("Range"),
            self.headers.get("Authorization"),
        )
        with self.state.lock:
            self.state.requests.append(request)

    def _repo(self, name: str, revision: str) -> Repo | None:
        """The repository at ``revision``; an error answer already sent when there is none."""
        repo = self.state.repos.get(name)
        if repo is None:  # the hub answers 401 so as not to reveal private repositories
            self._error(401, "RepoNotFound", "Repository not found")
            return None
        if revision not in ("main", repo.commit):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        return repo

    # --- API ------------------------------------------------------------------------------

    def _model_info(self, name: str, revision: str) -> None:
        repo = self._repo(name, revision)
        if repo is None:
            return
        info = {
            "_id": hashlib.md5(name.encode()).hexdigest()[:24],
            "id": name,
            "modelId": name,
            "sha": repo.commit,
            "private": False,
            "gated": False,
            "disabled": False,
            "siblings": [{"rfilename": p} for p in sorted(repo.files)],
        }
        self._json(info)

    def _tree(self, name: str, revision: str, query: dict[str, list[str]]) -> None:
        repo = self._repo(name, revision)
        if repo is None:
            return
        entries = repo.listing()
        if query.get("recursive", ["false"])[0].lower() != "true":
            entries = [e for e in entries if "/" not in str(e["path"])]
        cursor = int(query.get("cursor", ["0"])[0])
        end = cursor + self.state.page_size
        headers = {}
        if end < len(entries):
            rest = f"recursive={query.get('recursive', ['false'])[0]}&cursor={end}"
            headers["Link"] = (
                f'<{self.hub_url}/api/models/{name}/tree/{revision}?{rest}>; rel="next"'
            )
        self._json(entries[cursor:end], headers)

    # --- files ----------------------------------------------------------------------------

    def _resolve(self, name: str, revision: str, path: str, *, head: bool) -> None:
        repo = self._repo(name, revision)
        if repo is None:
            return
        data = repo.files.get(path)
        if data is None:
            self._error(404, "EntryNotFound", f"{path} does not exist on {revision}")
            return
        headers = {"X-Repo-Commit": repo.commit}
        if repo.is_lfs(path):
            sha256 = hashlib.sha256(data).hexdigest()
            headers |= {
                "ETag": f'"{"1" * 40}"',
                "X-Linked-Etag": f'"{sha256}"',
                "X-Linked-Size": str(len(data)),
                "Location": f"{self.cdn_url}/blobs/{sha256}",
            }
            self._send(302, b"", "text/plain", headers)
            return
        headers["ETag"] = f'"{git_blob_id(data)}"'
        self._body(path, data, head=head, headers=headers)

    def _body(
        self, path: str, data: bytes, *, head: bool, headers: dict[str, str] | None = None
    ) -> None:
        """A file's bytes (or a Range of them), with the faults the test asked for."""
        state = self.state
        if path in state.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        if not head and state.take(state.fail_once, path):
            self._error(503, None, "Service temporarily unavailable")
            return
        start, status, extra = 0, 200, dict(headers or {})
        wanted = _RANGE.match(self.headers.get("Range") or "")
        if wanted:
            start, status = int(wanted.group(1)), 206
            if start >= len(data):
                extra["Content-Range"] = f"bytes */{len(data)}"
                self._send(416, b"", "text/plain", extra)
                return
            extra["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        if head:
            self._send(status, b"", "application/octet-stream", extra, length=len(body))
            return
        if state.take(state.cut_once, path):
            self._send(status, body[: len(body) // 2], "application/octet-stream", extra, len(body))
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(status, body, "application/octet-stream", extra)

    # --- answers --------------------------------------------------------------------------

    def _json(self, payload: object, headers: dict[str, str] | None = None) -> None:
        self._send(200, json.dumps(payload).encode(), "application/json", headers)

    def _error(self, code: int, error_code: str | None, message: str) -> None:
        headers = {"X-Error-Message": message}
        if error_code is not None:
            headers["X-Error-Code"] = error_code
        self._send(code, json.dumps({"error": message}).encode(), "application/json", headers)

    def _send(
        self,
        code: int,
        body: bytes,
        ctype: str,
        headers: dict[str, str] | None = None,
        length: int | None = None,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
            self.wfile.flush()


class HubStandin:
    """The stand-in hub: two servers (hub API + files, and the CDN) on 127.0.0.1 threads.

    ``with HubStandin() as hub: hub.add_repo("owner/name", files)``; ``hub.url`` is the endpoint.
    """

    def __init__(self, page_size: int = 4) -> None:
        self.state = HubState(page_size=page_size)
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self.url = ""
        self.cdn_url = ""

    # --- content and faults ---------------------------------------------------------------

    def add_repo(self, name: str, files: dict[str, bytes]) -> Repo:
        repo = Repo(dict(files))
        self.state.repos[name] = repo
        return repo

    @property
    def requests(self) -> list[Request]:
        with self.state.lock:
            return list(self.state.requests)

    def file_gets(self, path: str) -> list[Request]:
        """The GETs that fetched ``path``'s bytes (from the hub or from the CDN)."""
        return [
            r
            for r in self.requests
            if r.method == "GET" and r.file == path and (r.origin == "cdn" or not _lfs(path))
        ]

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> HubStandin:
        hub = self._serve("hub")
        cdn = self._serve("cdn")
        self.url = f"http://127.0.0.1:{hub.server_port}"
        self.cdn_url = f"http://127.0.0.1:{cdn.server_port}"
        for server in self._servers:
            server.RequestHandlerClass.hub_url = self.url  # type: ignore[attr-defined]
            server.RequestHandlerClass.cdn_url = self.cdn_url  # type: ignore[attr-defined]
        for server in self._servers:
            thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _serve(self, origin: str) -> ThreadingHTTPServer:
        handler = type(f"{origin}Handler", (_Handler,), {"state": self.state, "origin": origin})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._servers.append(server)
        return server

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> HubStandin:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _lfs(path: str) -> bool:
    """Stored in Git LFS on the hub (so served from the CDN, checked by sha256)."""
    return path.endswith(LFS_SUFFIXES)
