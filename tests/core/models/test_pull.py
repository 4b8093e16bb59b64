"""``pull`` against a local stand-in for the model hub (API listing + file endpoint with Range)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.errors import ModelDownloadError
from core.models.__main__ import main
from core.models.bundle import load_bundle
from core.models.pull import Progress, RemoteFile, pull, resolve_repo, select_bundle_files
from tests.core.onnx_builders import write_immich_bundle

REPO = "immich-app/Tiny-CLIP__test"
LFS_SUFFIXES = (".onnx", ".armnn")


@dataclass
class Hub:
    """What the fake hub serves and what it saw."""

    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)
    corrupt: set[str] = field(default_factory=set)  # served with one byte changed
    cut_once: set[str] = field(default_factory=set)  # connection dropped halfway, once
    page_size: int = 4
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def listing(self, repo: str) -> list[dict[str, object]]:
        entries: list[dict[str, object]] = []
        dirs = sorted({p.rsplit("/", 1)[0] for p in self.repos[repo] if "/" in p})
        entries += [{"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in dirs]
        for path, data in sorted(self.repos[repo].items()):
            entry: dict[str, object] = {"type": "file", "size": len(data), "path": path}
            if path.endswith(LFS_SUFFIXES):
                entry["oid"] = "1" * 40  # the pointer file's blob id: not the content's
                entry["lfs"] = {
                    "oid": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                    "pointerSize": 134,
                }
            else:
                entry["oid"] = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            entries.append(entry)
        return entries


class _Handler(BaseHTTPRequestHandler):
    hub: Hub

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        hub = self.hub
        with hub.lock:
            hub.requests.append((self.path, self.headers.get("Range")))
        tree = re.match(
            r"^/api/models/([^/]+/[^/]+)/tree/main\?recursive=true(?:&cursor=(\d+))?$", self.path
        )
        if tree:
            self._tree(tree.group(1), int(tree.group(2) or 0))
            return
        resolve = re.match(r"^/([^/]+/[^/]+)/resolve/main/(.+)$", self.path)
        if resolve and resolve.group(1) in hub.repos:
            files = hub.repos[resolve.group(1)]
            if resolve.group(2) in files:
                self._file(resolve.group(2), files[resolve.group(2)])
                return
        self._send(404, b'{"error":"Repository not found"}', "application/json")

    def _tree(self, repo: str, cursor: int) -> None:
        if repo not in self.hub.repos:
            self._send(401, b'{"error":"Repository not found"}', "application/json")
            return
        listing = self.hub.listing(repo)
        page = listing[cursor : cursor + self.hub.page_size]
        headers = {}
        if cursor + self.hub.page_size < len(listing):
            nxt = (
                f"/api/models/{repo}/tree/main?recursive=true&cursor={cursor + self.hub.page_size}"
            )
            headers["Link"] = f'<http://127.0.0.1:{self.server.server_port}{nxt}>; rel="next"'
        self._send(200, json.dumps(page).encode(), "application/json", headers)

    def _file(self, path: str, data: bytes) -> None:
        hub = self.hub
        if path in hub.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(re.match(r"bytes=(\d+)-$", rng).group(1))
            if start >= len(data):
                self._send(416, b"", "text/plain")
                return
        body = data[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        with hub.lock:
            cut = path in hub.cut_once
            hub.cut_once.discard(path)
        if cut:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def _send(
        self, code: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def source_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A tiny Immich-layout model plus the extras a real repository holds."""
    root = write_immich_bundle(tmp_path_factory.mktemp("immich") / "Tiny-CLIP__test")
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    files["README.md"] = b"# tiny\n"
    files[".gitattributes"] = b"*.onnx filter=lfs\n"
    files["visual/fp16/model.armnn"] = b"\x00" * 64  # another runtime's format: not wanted
    files["textual/rknpu/rk3588/model.rknn"] = b"\x01" * 64
    return files


@pytest.fixture
def hub(source_files: dict[str, bytes]) -> Iterator[tuple[Hub, str]]:
    state = Hub(repos={REPO: dict(source_files)})
    handler = type("Handler", (_Handler,), {"hub": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


WANTED = {
    "config.json",
    "visual/model.onnx",
    "visual/preprocess_cfg.json",
    "textual/model.onnx",
    "textual/tokenizer.json",
    "textual/tokenizer_config.json",
    "textual/special_tokens_map.json",
}


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _file_requests(state: Hub, path: str) -> list[str | None]:
    return [rng for url, rng in state.requests if url.endswith(f"/resolve/main/{path}")]


def test_full_download_gives_a_loadable_bundle(hub: tuple[Hub, str], tmp_path: Path) -> None:
    state, base = hub
    log = io.StringIO()
    dest = pull(REPO, tmp_path / "models" / "tiny", base_url=base, progress_stream=log)

    assert _tree(dest) == WANTED  # README, .gitattributes, ARM NN / RKNN files skipped
    for rel in WANTED:
        assert (dest / rel).read_bytes() == state.repos[REPO][rel]
    assert load_bundle(dest).layout == "immich"
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["tiny"]  # no leftovers
    tree_pages = [u for u, _ in state.requests if "/api/models/" in u]
    assert len(tree_pages) > 1  # followed the Link pagination
    assert "fetching visual/model.onnx" in log.getvalue()
    assert "100%" in log.getvalue()


def test_interrupted_download_resumes_with_range(hub: tuple[Hub, str], tmp_path: Path) -> None:
    state, base = hub
    state.cut_once.add("textual/model.onnx")
    dest = pull(REPO, tmp_path / "tiny", base_url=base, progress_stream=io.StringIO())

    data = state.repos[REPO]["textual/model.onnx"]
    assert (dest / "textual/model.onnx").read_bytes() == data
    ranges = _file_requests(state, "textual/model.onnx")
    assert ranges == [None, f"bytes={len(data) // 2}-"]


def test_resume_survives_a_failed_run(hub: tuple[Hub, str], tmp_path: Path) -> None:
    state, base = hub
    state.cut_once.add("visual/model.onnx")
    with pytest.raises(ModelDownloadError, match=r"interrupted.*run the same command again"):
        pull(REPO, tmp_path / "tiny", base_url=base, retries=0, progress_stream=io.StringIO())
    assert not (tmp_path / "tiny").exists()
    done_before = {u for u, _ in state.requests if "/resolve/" in u}

    dest = pull(REPO, tmp_path / "tiny", base_url=base, progress_stream=io.StringIO())
    data = state.repos[REPO]["visual/model.onnx"]
    assert (dest / "visual/model.onnx").read_bytes() == data
    assert _file_requests(state, "visual/model.onnx") == [None, f"bytes={len(data) // 2}-"]
    # Files finished by the first run are not fetched again.
    again = [u for u, _ in state.requests if "/resolve/" in u]
    assert all(again.count(u) == 1 for u in done_before if "visual/model.onnx" not in u)


@pytest.mark.parametrize("bad", ["visual/model.onnx", "textual/tokenizer.json"])
def test_checksum_mismatch_installs_nothing(hub: tuple[Hub, str], tmp_path: Path, bad: str) -> None:
    state, base = hub
    state.corrupt.add(bad)  # LFS file (sha256) and plain file (git blob id)
    with pytest.raises(ModelDownloadError, match=re.escape(f"{bad} failed its checksum")):
        pull(REPO, tmp_path / "tiny", base_url=base, progress_stream=io.StringIO())
    assert list(tmp_path.iterdir()) == []  # neither the bundle nor the download directory


def test_unreachable_hub_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ModelDownloadError) as info:
        pull(REPO, tmp_path / "tiny", base_url=f"http://127.0.0.1:{port}")
    message = str(info.value)
    assert message.startswith(f"cannot reach http://127.0.0.1:{port} (")
    assert "python -m core.models export" in message
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_unknown_repository_is_a_clear_error(hub: tuple[Hub, str], tmp_path: Path) -> None:
    _, base = hub
    with pytest.raises(ModelDownloadError, match=r"no-such/model: no such model repository"):
        pull("no-such/model", tmp_path / "x", base_url=base)
    assert list(tmp_path.iterdir()) == []


def test_existing_destination_needs_force(hub: tuple[Hub, str], tmp_path: Path) -> None:
    _, base = hub
    dest = tmp_path / "tiny"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with pytest.raises(ModelDownloadError, match="already exists"):
        pull(REPO, dest, base_url=base, progress_stream=io.StringIO())
    pull(REPO, dest, base_url=base, force=True, progress_stream=io.StringIO())
    assert _tree(dest) == WANTED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]


def test_base_url_comes_from_the_environment(
    hub: tuple[Hub, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, base = hub
    monkeypatch.setenv("MODEL_HUB_URL", base + "/")
    dest = pull(REPO, tmp_path / "tiny", progress_stream=io.StringIO())
    assert _tree(dest) == WANTED


def test_cli_reports_errors_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = main(
        ["pull", REPO, "--out", str(tmp_path / "x"), "--base-url", f"http://127.0.0.1:{port}"]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: cannot reach") and err.count("\n") == 1


def test_names_resolve_to_repositories() -> None:
    assert resolve_repo("immich-app/ViT-B-32__openai") == "immich-app/ViT-B-32__openai"
    assert resolve_repo("ViT-B-32__openai") == "immich-app/ViT-B-32__openai"
    assert resolve_repo("XLM-Roberta-Large-Vit-B-32") == "immich-app/XLM-Roberta-Large-Vit-B-32"
    assert resolve_repo("nllb-clip-base-siglip") == "immich-app/nllb-clip-base-siglip__v1"
    for bad in ("../etc", "a/b/c", "", "owner/"):
        with pytest.raises(ModelDownloadError):
            resolve_repo(bad)


def test_selection_takes_our_layout_too() -> None:
    files = [
        RemoteFile(p, 1)
        for p in (
            "config.json",
            "visual.onnx",
            "textual.onnx",
            "bpe.model",
            "README.md",
            "x/y.onnx",
        )
    ]
    chosen = {f.path for f in select_bundle_files("o/n", files)}
    assert chosen == {"config.json", "visual.onnx", "textual.onnx", "bpe.model"}
    with pytest.raises(ModelDownloadError, match="not a model bundle"):
        select_bundle_files("o/n", [RemoteFile("README.md", 1)])


def test_progress_draws_a_bar_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    progress = Progress(2_000_000, out)
    progress.advance(2_000_000)
    progress.close()
    assert out.getvalue().startswith("\r[" + "#" * 30 + "]")
    assert "2.0/2.0 MB 100%" in out.getvalue()
