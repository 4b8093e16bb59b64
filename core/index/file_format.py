"""The index file: where it lives, its layout, and writing it so a crash never tears it.

SQLite is the source of truth; an index file is a cache of one (owner, model) pair. A file
records the ``index_version`` it reflects (see :mod:`core.index.versions`), so a file that
disagrees with SQLite is rebuilt instead of answering with stale or missing items.

Layout: ``MAGIC``, a little-endian u32 header length, a JSON header (owner, model, kind,
dimension, count, versions, build parameters, payload size and CRC-32), then FAISS's own
serialisation of the index. Every field is checked on load; any defect is
:class:`~core.errors.IndexFileError` and the caller rebuilds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import struct
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from core.errors import IndexFileError
from core.index.kinds import KINDS, IndexState
from core.index.versions import VersionTracker

MAGIC = b"IFVIDX01"
FORMAT = 1
_LEN = struct.Struct("<I")
MAX_HEADER = 1 << 20


@dataclass(frozen=True, slots=True)
class IndexFileContents:
    """What a verified file restores: the FAISS state and the versions it reflects."""

    state: IndexState
    versions: VersionTracker


def index_path(index_dir: Path, owner_id: int, model_id: str) -> Path:
    """``index_dir/<owner_id>/<model id, sanitised>-<hash>.faiss`` (the hash keeps names unique)."""
    safe = re.sub(r"[^A-Za-z0-9._@-]+", "_", model_id).strip("._")[:80] or "model"
    digest = hashlib.sha1(model_id.encode()).hexdigest()[:8]
    return index_dir / str(int(owner_id)) / f"{safe}-{digest}.faiss"


def encode_index(
    owner_id: int, model_id: str, state: IndexState, versions: VersionTracker
) -> tuple[bytes, np.ndarray]:
    """(header, payload) of one index; the caller holds whatever keeps ``state`` still."""
    index = state.index
    payload = np.zeros(0, dtype=np.uint8) if index is None else faiss.serialize_index(index)
    crc = zlib.crc32(payload.data) if payload.size else 0  # .data: the array's own memoryview
    header = {
        "format": FORMAT,
        "owner_id": owner_id,
        "model_id": model_id,
        "kind": state.kind,
        "dim": state.dim,
        "ntotal": state.ntotal,
        "version": versions.version,
        "ahead": sorted(versions.ahead),
        "uncertain_upto": versions.uncertain_upto,
        "params": state.params,
        "payload_bytes": int(payload.size),
        "crc32": crc,
    }
    meta = json.dumps(header, sort_keys=True).encode()
    return MAGIC + _LEN.pack(len(meta)) + meta, payload


def read_index_file(path: Path, owner_id: int, model_id: str) -> IndexFileContents:
    """Load and verify a file written from :func:`encode_index`; any defect is IndexFileError
    (a missing file stays :class:`FileNotFoundError`)."""
    try:
        meta, payload = _read_parts(path)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise IndexFileError(path, f"cannot read: {e}") from e
    except (KeyError, TypeError, ValueError) as e:
        raise IndexFileError(path, f"bad header: {e}") from e
    try:
        return _restore(path, meta, payload, owner_id, model_id)
    except (KeyError, TypeError, ValueError) as e:
        raise IndexFileError(path, f"bad header: {e}") from e


def _read_parts(path: Path) -> tuple[dict[str, Any], np.ndarray]:
    """The JSON header and the raw payload, with the framing checked."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(len(MAGIC) + _LEN.size)
        if len(head) < len(MAGIC) + _LEN.size or head[: len(MAGIC)] != MAGIC:
            raise IndexFileError(path, "not an index file (bad magic)")
        (meta_len,) = _LEN.unpack(head[len(MAGIC) :])
        if meta_len > MAX_HEADER:
            raise IndexFileError(path, "header too large")
        raw = f.read(meta_len)
        if len(raw) != meta_len:
            raise IndexFileError(path, "truncated header")
        try:
            meta = json.loads(raw)
        except ValueError as e:
            raise IndexFileError(path, f"unreadable header: {e}") from e
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise IndexFileError(path, "unknown format")
        payload_len = int(meta.get("payload_bytes", -1))
        if size != len(head) + meta_len + payload_len:
            raise IndexFileError(path, "truncated or oversized file")
        payload = np.fromfile(f, dtype=np.uint8, count=payload_len)
    return meta, payload


def _restore(
    path: Path, meta: dict[str, Any], payload: np.ndarray, owner_id: int, model_id: str
) -> IndexFileContents:
    """Check the header against the payload and the expected pair, then rebuild the state."""
    if meta["owner_id"] != owner_id or meta["model_id"] != model_id:
        raise IndexFileError(path, "file belongs to another owner or model")
    kind = meta["kind"]
    if kind not in KINDS:
        raise IndexFileError(path, f"unknown index kind {kind!r}")
    dim, ntotal = int(meta["dim"]), int(meta["ntotal"])
    if payload.size != int(meta["payload_bytes"]):
        raise IndexFileError(path, "truncated payload")
    if (zlib.crc32(payload.data) if payload.size else 0) != int(meta["crc32"]):
        raise IndexFileError(path, "checksum mismatch")
    index = None if kind == "empty" else _deserialize(path, payload, kind, dim)
    if (0 if index is None else int(index.ntotal)) != ntotal:
        raise IndexFileError(path, "vector count differs from header")
    state = IndexState(kind, dim, index, dict(meta.get("params") or {}))
    version = int(meta["version"])
    versions = VersionTracker(
        version,
        ahead=(int(v) for v in meta.get("ahead", [])),
        uncertain_upto=int(meta.get("uncertain_upto", version)),
    )
    return IndexFileContents(state, versions)


def _deserialize(path: Path, payload: np.ndarray, kind: str, dim: int) -> faiss.Index:
    """The FAISS index in ``payload``, checked to be of ``kind`` and dimension ``dim``."""
    try:
        index = faiss.deserialize_index(payload)
    except RuntimeError as e:
        raise IndexFileError(path, f"faiss cannot read it: {e}") from e
    expected = faiss.IndexIDMap2 if kind.startswith("exact") else faiss.IndexIVF
    if not isinstance(index, expected):
        raise IndexFileError(path, f"payload is {type(index).__name__}, not {kind}")
    if index.d != dim:
        raise IndexFileError(path, f"dimension {index.d} != header {dim}")
    return index


def write_atomic(path: Path, header: bytes, payload: np.ndarray) -> None:
    """Temp file in the same directory, fsync, rename over the old file, fsync the directory.

    A crash at any point leaves either the old file or the new one, never a torn one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in temp_files(path):
        with contextlib.suppress(OSError):
            stale.unlink()
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(header)
            if payload.size:
                f.write(payload.data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def temp_files(path: Path) -> list[Path]:
    """Leftover temporary files of interrupted writes of ``path``."""
    return list(path.parent.glob(f".{path.name}.*.tmp"))


def unlink_index_file(path: Path) -> None:
    """Remove the file and any leftover temporary files of it (missing ones are fine)."""
    for p in [path, *temp_files(path)]:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
