"""Per owner, per model FAISS indexes over L2-normalised vectors (inner product = cosine).

SQLite is the source of truth; an index file is a cache of one (owner, model) pair. A file
records the ``index_version`` it reflects, which storage bumps in the same transaction as any
vector insert or delete of that pair, so a file that disagrees with SQLite is rebuilt instead of
answering with stale or missing items.

Two index kinds:

* **exact** (default): ``IndexIDMap2(IndexScalarQuantizer(d, QT_fp16, IP))`` — 1 KB per vector,
  recall 1.0, cheap add/remove. ``fp32`` uses ``IndexFlatIP`` instead.
* **approximate** past ``approx_threshold`` vectors: ``IndexIVFScalarQuantizer`` (fp16 codes,
  inner product, ids stored natively in the inverted lists). IVF was chosen over HNSW by
  measurement (``bench/search.py --hnsw``): both meet the latency goal at 1M, but IVF removes ids
  natively (HNSW cannot: tombstones and periodic rebuilds), builds about 10x faster (100k: 4 s
  vs 41 s) and needs 1.03 KB per vector instead of 1.3 KB. IVF keeps its ids itself: wrapping it
  in ``IndexIDMap2`` returns wrong ids after ``remove_ids`` (IVF does not renumber its internal
  ids the way ``IDMap`` expects). ``nprobe`` is tuned at build time on held-out vectors of the
  owner's own data so that recall@10 against exact search reaches ``target_recall``.

Version contract with storage (what makes a cached index trustworthy):

* every transaction that changes the vectors of (owner, model) bumps its ``index_version`` by
  exactly one, and the caller passes that new version to :meth:`IndexManager.add` /
  :meth:`IndexManager.remove` after the commit;
* an operation whose version the index already reflects is skipped (the index may have been
  rebuilt from SQLite after the commit), out-of-order operations are applied and the version
  advances only over a contiguous run, so a file never claims a version it does not fully
  reflect.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import re
import shutil
import struct
import threading
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import faiss
import numpy as np

from core.errors import IndexFileError, VectorIndexError

log = logging.getLogger(__name__)

T = TypeVar("T")
ExactKind = Literal["fp16", "fp32"]
Hit = tuple[int, float]

DEFAULT_APPROX_THRESHOLD = 200_000
# Back to exact only well below the threshold, so an owner hovering around it does not flip.
EXACT_FRACTION = 0.8
# An approximate index is retrained when it has grown or shrunk this much since it was built.
RETRAIN_FACTOR = 2.0
# Never go approximate for tiny indexes: IVF needs enough vectors to train.
MIN_APPROX_N = 1_000
DEFAULT_TARGET_RECALL = 0.97
TUNE_QUERIES = 100
NPROBE_LADDER = (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024)
# Out-of-order operations waiting for a gap to fill; past this the version contract is broken
# (e.g. bumps of more than one) and the index is rebuilt from SQLite.
MAX_AHEAD = 64
# Work below these sizes is sub-millisecond and runs inline; above, in a thread.
INLINE_SCAN = 8_192
INLINE_ADD = 256

MAGIC = b"IFVIDX01"
FORMAT = 1
_LEN = struct.Struct("<I")
MAX_HEADER = 1 << 20

_KINDS = ("empty", "exact-fp16", "exact-fp32", "ivf-fp16", "ivf-fp32")


class VectorSource(Protocol):
    """What the index needs from storage (SQLite holds the vectors).

    A source may also offer ``async vector_snapshot(owner_id, model_id)`` returning an object
    with ``version``, ``ids`` and ``vectors`` read in one transaction; it is then preferred over
    reading the version around :meth:`load_vectors`.
    """

    async def index_version(self, owner_id: int, model_id: str) -> int: ...

    async def load_vectors(self, owner_id: int, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """All vectors of the pair: int64 ids [n] and float32 vectors [n, d]."""
        ...


# --- helpers ------------------------------------------------------------------------------------


def _as_ids(ids: Iterable[int] | np.ndarray) -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
    return arr


def _as_vectors(vecs: np.ndarray, dim: int | None = None) -> np.ndarray:
    """Float32 C-contiguous copy, L2-normalised so inner product is cosine (zero rows stay 0)."""
    arr = np.array(vecs, dtype=np.float32, copy=True, order="C")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise VectorIndexError(f"vectors must be [n, d], got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise VectorIndexError(f"vector dimension {arr.shape[1]} != index dimension {dim}")
    if arr.size:
        faiss.normalize_L2(arr)
    return arr


def _normalised_view(vecs: np.ndarray) -> np.ndarray:
    """Like :func:`_as_vectors` but avoids the copy when the rows are already unit length."""
    arr = np.asarray(vecs, dtype=np.float32)
    if arr.ndim != 2:
        if arr.size == 0:
            return np.zeros((0, 0), dtype=np.float32)
        raise VectorIndexError(f"vectors must be [n, d], got shape {arr.shape}")
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    if arr.shape[0] == 0:
        return arr
    norms = np.einsum("ij,ij->i", arr, arr)
    if np.all(np.abs(norms - 1.0) < 1e-3):
        return arr
    return _as_vectors(arr)


def _dedupe_last(ids: np.ndarray, vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep the last occurrence of each id, so an index never holds one id twice."""
    if len(ids) < 2:
        return ids, vecs
    rev_unique, rev_index = np.unique(ids[::-1], return_index=True)
    if len(rev_unique) == len(ids):
        return ids, vecs
    keep = np.sort(len(ids) - 1 - rev_index)
    return ids[keep], vecs[keep]


@contextlib.contextmanager
def _one_omp_thread() -> Iterator[None]:
    """Run FAISS single-threaded in this thread for the duration (OpenMP ICVs are per thread).

    One query is memory-bound, so a second thread does not speed it up, and FAISS's split of
    one query across threads costs 2-4x when the cores are busy with other work (measured).
    """
    previous = faiss.omp_get_max_threads()
    if previous == 1:
        yield
        return
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def choose_nlist(n: int) -> int:
    """About sqrt(n) inverted lists (a power of two), with >= 39 training points per list."""
    nlist = 2 ** round(math.log2(max(math.sqrt(max(n, 1)), 1.0)))
    nlist = min(nlist, 4096, max(n // 39, 1))
    return max(nlist, 1)


def _exact_index(dim: int, kind: ExactKind) -> faiss.Index:
    if kind == "fp32":
        inner = faiss.IndexFlatIP(dim)
    else:
        inner = faiss.IndexScalarQuantizer(
            dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
        )
    return faiss.IndexIDMap2(inner)


def _ivf_index(dim: int, nlist: int, kind: ExactKind) -> faiss.IndexIVF:
    quantizer = faiss.IndexFlatIP(dim)
    if kind == "fp32":
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    else:
        # fp16 is precise enough to encode vectors directly; residuals only cost search time.
        index = faiss.IndexIVFScalarQuantizer(
            quantizer,
            dim,
            nlist,
            faiss.ScalarQuantizer.QT_fp16,
            faiss.METRIC_INNER_PRODUCT,
            False,
        )
    index.cp.niter = 10
    return index


def _recall_at(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean overlap of two [nq, k] label arrays (FAISS's -1 padding ignored)."""
    total = 0.0
    for a_row, e_row in zip(approx, exact, strict=True):
        e = {int(i) for i in e_row if i >= 0}
        a = {int(i) for i in a_row if i >= 0}
        total += len(a & e) / len(e) if e else 1.0
    return total / max(len(exact), 1)


def _tune_nprobe(
    index: faiss.IndexIVF, queries: np.ndarray, target: float, k: int = 10
) -> tuple[int, float]:
    """Smallest nprobe whose recall@k for ``queries`` reaches ``target``.

    The ground truth is the same index probing every list (an exact scan of the same codes).
    """
    index.nprobe = index.nlist
    _, exact = index.search(queries, k)
    for candidate in NPROBE_LADDER:
        if candidate >= index.nlist:
            break
        index.nprobe = candidate
        _, approx = index.search(queries, k)
        recall = _recall_at(approx, exact)
        if recall >= target:
            return candidate, recall
    index.nprobe = index.nlist
    return index.nlist, 1.0


# --- one index ----------------------------------------------------------------------------------


@dataclass
class _State:
    """Everything that is swapped at once when an index is rebuilt."""

    kind: str
    dim: int
    index: faiss.Index | None
    params: dict[str, Any] = field(default_factory=dict)


class OwnerIndex:
    """One FAISS index for an (owner, model) pair. Thread-safe; FAISS calls happen under a lock.

    ``search`` never returns FAISS's ``-1`` padding: with fewer than ``k`` items (or an IVF probe
    that found fewer) the lists are simply shorter.
    """

    def __init__(
        self,
        owner_id: int,
        model_id: str,
        state: _State,
        version: int,
        *,
        exact_kind: ExactKind = "fp16",
    ) -> None:
        self.owner_id = owner_id
        self.model_id = model_id
        self.exact_kind: ExactKind = exact_kind  # used when an empty index gets its first vector
        self._state = state
        self._version = version
        self._ahead: set[int] = set()
        self._uncertain_upto = version
        self._lock = threading.Lock()
        self._mutations = 0

    # -- construction

    @classmethod
    def build(
        cls,
        owner_id: int,
        model_id: str,
        ids: np.ndarray,
        vecs: np.ndarray,
        version: int,
        *,
        approx_threshold: int = DEFAULT_APPROX_THRESHOLD,
        exact_kind: ExactKind = "fp16",
        target_recall: float = DEFAULT_TARGET_RECALL,
        approximate: bool | None = None,
    ) -> OwnerIndex:
        """Build from all vectors of the pair (CPU-heavy for big owners: call in a thread).

        ``approximate=None`` decides by size; training, adding and tuning run here.
        """
        ids = _as_ids(ids)
        vecs = _normalised_view(vecs)
        if len(ids) != vecs.shape[0]:
            raise VectorIndexError(f"{len(ids)} ids but {vecs.shape[0]} vectors")
        ids, vecs = _dedupe_last(ids, vecs)
        n = len(ids)
        dim = int(vecs.shape[1]) if vecs.ndim == 2 else 0
        if n == 0 and dim == 0:
            return cls(owner_id, model_id, _State("empty", 0, None), version, exact_kind=exact_kind)
        if approximate is None:
            approximate = n > approx_threshold
        approximate = approximate and n >= MIN_APPROX_N
        if not approximate:
            index = _exact_index(dim, exact_kind)
            if n:
                index.add_with_ids(vecs, ids)
            state = _State(f"exact-{exact_kind}", dim, index)
            return cls(owner_id, model_id, state, version, exact_kind=exact_kind)
        nlist = choose_nlist(n)
        index = _ivf_index(dim, nlist, exact_kind)
        seed = zlib.crc32(f"{owner_id}/{model_id}".encode())
        rng = np.random.default_rng(seed)
        n_train = min(n, 48 * nlist)
        sample = vecs if n_train == n else vecs[np.sort(rng.choice(n, n_train, replace=False))]
        index.train(np.ascontiguousarray(sample))
        index.add_with_ids(vecs, ids)
        # Tune on held-out vectors: taken out of the index, they behave like fresh queries
        # from this owner's own distribution (a vector that finds itself would flatter recall).
        rows = np.sort(rng.choice(n, size=min(TUNE_QUERIES, n // 10), replace=False))
        index.remove_ids(faiss.IDSelectorBatch(ids[rows]))
        queries = np.ascontiguousarray(vecs[rows])
        nprobe, recall = _tune_nprobe(index, queries, target_recall)
        index.add_with_ids(queries, ids[rows])
        params = {"nlist": nlist, "nprobe": nprobe, "built_n": n, "tuned_recall": round(recall, 4)}
        state = _State(f"ivf-{exact_kind}", dim, index, params)
        return cls(owner_id, model_id, state, version, exact_kind=exact_kind)

    def replace_with(self, other: OwnerIndex) -> None:
        """Take another index's contents (a rebuild) without invalidating references to self."""
        with self._lock:
            self._state = other._state
            self._version = other._version
            self._ahead = set(other._ahead)
            self._uncertain_upto = other._uncertain_upto
            self._mutations += 1

    # -- properties

    @property
    def kind(self) -> str:
        return self._state.kind

    @property
    def approximate(self) -> bool:
        return self._state.kind.startswith("ivf")

    @property
    def dim(self) -> int:
        return self._state.dim

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._state.params)

    @property
    def ntotal(self) -> int:
        index = self._state.index
        return 0 if index is None else int(index.ntotal)

    @property
    def version(self) -> int:
        """The highest ``index_version`` up to which every change is reflected."""
        return self._version

    @property
    def pending_versions(self) -> frozenset[int]:
        """Versions applied out of order, waiting for an earlier one."""
        return frozenset(self._ahead)

    @property
    def memory_bytes(self) -> int:
        """Estimated resident size: codes + ids (+ IDMap2's reverse map, IVF centroids)."""
        state = self._state
        if state.index is None:
            return 0
        n = int(state.index.ntotal)
        code = state.dim * (2 if state.kind.endswith("fp16") else 4)
        if state.kind.startswith("exact"):
            return n * (code + 8 + 48)
        nlist = int(state.params.get("nlist", 0))
        return n * (code + 8) + nlist * (state.dim * 4 + 64)

    @property
    def search_cost(self) -> int:
        """About how many vectors one query scans (decides inline vs thread)."""
        state = self._state
        if state.index is None:
            return 0
        n = int(state.index.ntotal)
        if state.kind.startswith("exact"):
            return n
        nlist = max(int(state.params.get("nlist", 1)), 1)
        return nlist + n * int(state.params.get("nprobe", nlist)) // nlist

    def wants_rebuild(self, approx_threshold: int, exact_kind: ExactKind) -> str | None:
        """Why this index should be rebuilt from the source under these settings, or None."""
        n = self.ntotal
        if len(self._ahead) > MAX_AHEAD:
            return "too many out-of-order versions"
        if self.kind.startswith("exact"):
            if self.kind != f"exact-{exact_kind}":
                return "exact kind changed"
            if n > approx_threshold and n >= MIN_APPROX_N:
                return "grew past the approximate threshold"
            return None
        if self.approximate:
            if n < EXACT_FRACTION * approx_threshold or n < MIN_APPROX_N:
                return "shrank below the exact threshold"
            built = int(self._state.params.get("built_n", n)) or 1
            if n > RETRAIN_FACTOR * built or n * RETRAIN_FACTOR < built:
                return "size changed since training"
        return None

    # -- version bookkeeping

    def _accept(self, version: int | None) -> tuple[bool, bool]:
        """(apply?, deduplicate first?) for an operation carrying ``version``."""
        if version is None:
            return True, False
        if version <= self._version or version in self._ahead:
            return False, False
        return True, version <= self._uncertain_upto

    def _advance(self, version: int | None) -> None:
        if version is None:
            return
        self._ahead.add(version)
        while self._version + 1 in self._ahead:
            self._version += 1
            self._ahead.discard(self._version)

    # -- mutations

    def add(
        self, ids: Iterable[int] | np.ndarray, vecs: np.ndarray, *, version: int | None = None
    ) -> bool:
        """Add vectors (normalised here); returns False when ``version`` was already reflected."""
        ids_arr = _as_ids(ids)
        with self._lock:
            apply, dedupe = self._accept(version)
            if not apply:
                return False
            if len(ids_arr):
                arr = _as_vectors(vecs, self._state.dim or None)
                if len(ids_arr) != arr.shape[0]:
                    raise VectorIndexError(f"{len(ids_arr)} ids but {arr.shape[0]} vectors")
                ids_arr, arr = _dedupe_last(ids_arr, arr)
                if self._state.index is None:
                    dim = int(arr.shape[1])
                    kind = self.exact_kind
                    self._state = _State(f"exact-{kind}", dim, _exact_index(dim, kind))
                index = self._state.index
                assert index is not None
                if dedupe and index.ntotal:
                    index.remove_ids(faiss.IDSelectorBatch(ids_arr))
                index.add_with_ids(arr, ids_arr)
            self._advance(version)
            self._mutations += 1
            return True

    def remove(self, ids: Iterable[int] | np.ndarray, *, version: int | None = None) -> int:
        """Remove ids (unknown ids are ignored); returns how many vectors went away."""
        ids_arr = _as_ids(ids)
        with self._lock:
            apply, _ = self._accept(version)
            if not apply:
                return 0
            removed = 0
            index = self._state.index
            if index is not None and len(ids_arr) and index.ntotal:
                removed = int(index.remove_ids(faiss.IDSelectorBatch(ids_arr)))
            self._advance(version)
            self._mutations += 1
            return removed

    # -- search

    def search(self, query: np.ndarray, k: int) -> list[list[Hit]]:
        """Top-k (id, cosine) per query row; a 1-D query counts as one row. No -1 padding."""
        q = np.asarray(query, dtype=np.float32)
        nq = 1 if q.ndim == 1 else int(q.shape[0])
        with self._lock:
            index = self._state.index
            if index is None or index.ntotal == 0 or k <= 0 or q.size == 0:
                return [[] for _ in range(nq)]
            q = _as_vectors(q, self._state.dim)
            kk = min(int(k), int(index.ntotal))
            if q.shape[0] == 1:
                with _one_omp_thread():
                    scores, labels = index.search(q, kk)
            else:
                scores, labels = index.search(q, kk)
        out: list[list[Hit]] = []
        for row_ids, row_scores in zip(labels, scores, strict=True):
            keep = row_ids >= 0
            out.append(
                list(
                    zip(
                        row_ids[keep].tolist(),
                        row_scores[keep].astype(np.float64).tolist(),
                        strict=True,
                    )
                )
            )
        return out

    # -- persistence

    def _header(self, payload_len: int, crc: int) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "owner_id": self.owner_id,
            "model_id": self.model_id,
            "kind": self._state.kind,
            "dim": self._state.dim,
            "ntotal": self.ntotal,
            "version": self._version,
            "ahead": sorted(self._ahead),
            "uncertain_upto": self._uncertain_upto,
            "params": self._state.params,
            "payload_bytes": payload_len,
            "crc32": crc,
        }

    def serialize(self) -> tuple[bytes, np.ndarray, int]:
        """(header, payload, mutation counter) of a consistent snapshot, for writing a file."""
        with self._lock:
            index = self._state.index
            empty = np.zeros(0, dtype=np.uint8)
            payload = empty if index is None else faiss.serialize_index(index)
            crc = zlib.crc32(memoryview(payload)) if payload.size else 0
            meta = json.dumps(self._header(int(payload.size), crc), sort_keys=True).encode()
            return MAGIC + _LEN.pack(len(meta)) + meta, payload, self._mutations

    def write_file(self, path: Path) -> int:
        """Write atomically (see :func:`_write_atomic`); returns the mutation counter written."""
        header, payload, mutations = self.serialize()
        _write_atomic(path, header, payload)
        return mutations

    @classmethod
    def read_file(
        cls, path: Path, owner_id: int, model_id: str, *, exact_kind: ExactKind = "fp16"
    ) -> OwnerIndex:
        """Load and verify a file written by :meth:`serialize`; any defect is IndexFileError."""
        try:
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
        except FileNotFoundError:
            raise
        except OSError as e:
            raise IndexFileError(path, f"cannot read: {e}") from e
        except (KeyError, TypeError, ValueError) as e:
            raise IndexFileError(path, f"bad header: {e}") from e
        return cls._from_parts(path, meta, payload, owner_id, model_id, exact_kind)

    @classmethod
    def _from_parts(
        cls,
        path: Path,
        meta: dict[str, Any],
        payload: np.ndarray,
        owner_id: int,
        model_id: str,
        exact_kind: ExactKind,
    ) -> OwnerIndex:
        try:
            if meta["owner_id"] != owner_id or meta["model_id"] != model_id:
                raise IndexFileError(path, "file belongs to another owner or model")
            kind = meta["kind"]
            if kind not in _KINDS:
                raise IndexFileError(path, f"unknown index kind {kind!r}")
            dim, ntotal = int(meta["dim"]), int(meta["ntotal"])
            if payload.size != int(meta["payload_bytes"]):
                raise IndexFileError(path, "truncated payload")
            if (zlib.crc32(memoryview(payload)) if payload.size else 0) != int(meta["crc32"]):
                raise IndexFileError(path, "checksum mismatch")
            index: faiss.Index | None = None
            if kind != "empty":
                try:
                    index = faiss.deserialize_index(payload)
                except RuntimeError as e:
                    raise IndexFileError(path, f"faiss cannot read it: {e}") from e
                expected = faiss.IndexIDMap2 if kind.startswith("exact") else faiss.IndexIVF
                if not isinstance(index, expected):
                    raise IndexFileError(path, f"payload is {type(index).__name__}, not {kind}")
                if index.d != dim:
                    raise IndexFileError(path, f"dimension {index.d} != header {dim}")
            if (0 if index is None else int(index.ntotal)) != ntotal:
                raise IndexFileError(path, "vector count differs from header")
            state = _State(kind, dim, index, dict(meta.get("params") or {}))
            out = cls(owner_id, model_id, state, int(meta["version"]), exact_kind=exact_kind)
            out._ahead = {int(v) for v in meta.get("ahead", [])}
            out._uncertain_upto = int(meta.get("uncertain_upto", out._version))
            return out
        except (KeyError, TypeError, ValueError) as e:
            raise IndexFileError(path, f"bad header: {e}") from e


# --- the manager --------------------------------------------------------------------------------


def index_path(index_dir: Path, owner_id: int, model_id: str) -> Path:
    """``index_dir/<owner_id>/<model id, sanitised>-<hash>.faiss`` (the hash keeps names unique)."""
    safe = re.sub(r"[^A-Za-z0-9._@-]+", "_", model_id).strip("._")[:80] or "model"
    digest = hashlib.sha1(model_id.encode()).hexdigest()[:8]
    return index_dir / str(int(owner_id)) / f"{safe}-{digest}.faiss"


def _write_atomic(path: Path, header: bytes, payload: np.ndarray) -> None:
    """Temp file in the same directory, fsync, rename over the old file, fsync the directory.

    A crash at any point leaves either the old file or the new one, never a torn one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(header)
            if payload.size:
                f.write(memoryview(payload))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


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


@dataclass
class IndexStats:
    """Counters for tests and monitoring."""

    loads: int = 0
    rebuilds: int = 0
    evictions: int = 0
    writes: int = 0
    rebuild_reasons: list[str] = field(default_factory=list)


Key = tuple[int, str]


class IndexManager:
    """Lazily loaded, LRU-cached indexes of every (owner, model), bounded by a memory budget.

    FAISS work that may take more than about a millisecond runs in a thread (or ``executor``),
    never on the event loop. A per-pair asyncio lock makes a concurrent load happen once and
    serialises mutations; searches do not wait for a rebuild, they use the old index meanwhile.
    """

    def __init__(
        self,
        source: VectorSource,
        index_dir: Path,
        *,
        memory_budget_bytes: int = 1024 * 1024 * 1024,
        approx_threshold: int = DEFAULT_APPROX_THRESHOLD,
        exact_kind: ExactKind = "fp16",
        target_recall: float = DEFAULT_TARGET_RECALL,
        executor: Executor | None = None,
    ) -> None:
        self.source = source
        self.index_dir = Path(index_dir)
        self.memory_budget_bytes = int(memory_budget_bytes)
        self.approx_threshold = int(approx_threshold)
        self.exact_kind: ExactKind = exact_kind
        self.target_recall = float(target_recall)
        self._executor = executor
        self._cache: OrderedDict[Key, OwnerIndex] = OrderedDict()
        self._dirty: set[Key] = set()  # changed in memory since last written
        self._locks: dict[Key, asyncio.Lock] = {}
        self.stats = IndexStats()

    @classmethod
    def from_settings(
        cls, source: VectorSource, settings: Any, *, executor: Executor | None = None
    ) -> IndexManager:
        """Manager configured from :class:`core.settings.Settings` (indexes under DATA_DIR)."""
        return cls(
            source,
            Path(settings.data_dir) / "indexes",
            memory_budget_bytes=int(settings.index_memory_budget_mb) * 1024 * 1024,
            approx_threshold=int(settings.index_approx_threshold),
            exact_kind=settings.index_exact_kind,
            executor=executor,
        )

    # -- plumbing

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        call = functools.partial(fn, *args, **kwargs)
        if self._executor is None:
            return await asyncio.to_thread(call)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _lock(self, key: Key) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def path(self, owner_id: int, model_id: str) -> Path:
        return index_path(self.index_dir, owner_id, model_id)

    @property
    def memory_bytes(self) -> int:
        return sum(idx.memory_bytes for idx in self._cache.values())

    def cached(self) -> list[Key]:
        """Loaded (owner, model) pairs, least recently used first."""
        return list(self._cache)

    # -- loading

    async def get(self, owner_id: int, model_id: str) -> OwnerIndex:
        """The index of the pair, loaded from its file or rebuilt from the source if needed."""
        key = (int(owner_id), model_id)
        idx = self._cache.get(key)
        if idx is not None:
            self._cache.move_to_end(key)
            return idx
        async with self._lock(key):
            idx = await self._ensure(key)
        await self._enforce_budget(keep=key)
        return idx

    async def _ensure(self, key: Key, *, next_version: int | None = None) -> OwnerIndex:
        """Cached index, else the file if it is current, else a rebuild. Caller holds the lock.

        ``next_version``: the version of an operation about to be applied; a file exactly one
        version behind it is current for that purpose.
        """
        idx = self._cache.get(key)
        if idx is not None:
            self._cache.move_to_end(key)
            return idx
        owner_id, model_id = key
        path = self.path(owner_id, model_id)
        source_version = await self.source.index_version(owner_id, model_id)
        reason: str | None
        try:
            idx = await self._run(
                OwnerIndex.read_file, path, owner_id, model_id, exact_kind=self.exact_kind
            )
        except FileNotFoundError:
            idx, reason = None, "missing"
        except IndexFileError as e:
            log.warning("index file unusable, rebuilding: %s", e)
            idx, reason = None, f"corrupt: {e.problem}"
        if idx is not None:
            if idx.version == source_version or (
                next_version is not None and idx.version == next_version - 1
            ):
                reason = idx.wants_rebuild(self.approx_threshold, self.exact_kind)
            else:
                reason = f"stale: file version {idx.version}, source {source_version}"
        if idx is not None and reason is None:
            self.stats.loads += 1
            self._cache[key] = idx
            self._dirty.discard(key)
            return idx
        assert reason is not None
        log.info("rebuilding index owner=%s model=%s: %s", owner_id, model_id, reason)
        idx = await self._rebuild(key, reason)
        self._cache[key] = idx
        await self._write(key, idx)
        return idx

    async def _snapshot(self, key: Key) -> tuple[int, int, np.ndarray, np.ndarray]:
        """(version, uncertain_upto, ids, vecs): a version read before and after the vectors.

        When a commit slips between the reads the window (v1, v2] is remembered, and operations
        in it are applied idempotently.
        """
        owner_id, model_id = key
        snapshot = getattr(self.source, "vector_snapshot", None)
        if snapshot is not None:
            snap = await snapshot(owner_id, model_id)
            return int(snap.version), int(snap.version), snap.ids, snap.vectors
        v1 = v2 = 0
        ids = vecs = np.zeros(0)
        for _ in range(3):
            v1 = await self.source.index_version(owner_id, model_id)
            ids, vecs = await self.source.load_vectors(owner_id, model_id)
            v2 = await self.source.index_version(owner_id, model_id)
            if v1 == v2:
                break
        return v1, v2, ids, vecs

    async def _rebuild(self, key: Key, reason: str) -> OwnerIndex:
        v1, v2, ids, vecs = await self._snapshot(key)
        idx = await self._run(
            OwnerIndex.build,
            key[0],
            key[1],
            ids,
            vecs,
            v1,
            approx_threshold=self.approx_threshold,
            exact_kind=self.exact_kind,
            target_recall=self.target_recall,
        )
        idx._uncertain_upto = v2
        self.stats.rebuilds += 1
        self.stats.rebuild_reasons.append(reason)
        return idx

    # -- mutations

    async def add(
        self, owner_id: int, model_id: str, ids: np.ndarray, vecs: np.ndarray, version: int
    ) -> None:
        """Add committed vectors; ``version`` is the index_version of the committing transaction."""
        key = (int(owner_id), model_id)
        ids_arr = _as_ids(ids)
        async with self._lock(key):
            idx = await self._ensure(key, next_version=version)
            small = len(ids_arr) <= INLINE_ADD and idx.ntotal + len(ids_arr) <= INLINE_SCAN
            if small and not idx.approximate:
                changed = idx.add(ids_arr, vecs, version=version)
            else:
                changed = await self._run(idx.add, ids_arr, vecs, version=version)
            if changed:
                self._dirty.add(key)
                await self._maybe_rebuild(key, idx)
        await self._enforce_budget(keep=key)

    async def remove(self, owner_id: int, model_id: str, ids: np.ndarray, version: int) -> None:
        """Remove deleted units' ids; ``version`` as for :meth:`add`."""
        key = (int(owner_id), model_id)
        ids_arr = _as_ids(ids)
        async with self._lock(key):
            idx = await self._ensure(key, next_version=version)
            before = idx._mutations
            if idx.ntotal <= INLINE_SCAN:
                idx.remove(ids_arr, version=version)
            else:
                await self._run(idx.remove, ids_arr, version=version)
            if idx._mutations != before:
                self._dirty.add(key)
                await self._maybe_rebuild(key, idx)
        await self._enforce_budget(keep=key)

    async def _maybe_rebuild(self, key: Key, idx: OwnerIndex) -> None:
        reason = idx.wants_rebuild(self.approx_threshold, self.exact_kind)
        if reason is None:
            return
        log.info("rebuilding index owner=%s model=%s: %s", key[0], key[1], reason)
        fresh = await self._rebuild(key, reason)
        idx.replace_with(fresh)
        self._dirty.add(key)
        await self._write(key, idx)

    # -- search

    async def search(
        self, owner_id: int, model_id: str, query: np.ndarray, k: int
    ) -> list[list[Hit]]:
        """Top-k (unit id, cosine) per query row, only among this owner's vectors."""
        idx = await self.get(owner_id, model_id)
        if idx.search_cost <= INLINE_SCAN:
            return idx.search(query, k)
        return await self._run(idx.search, query, k)

    # -- persistence and memory

    async def _write(self, key: Key, idx: OwnerIndex) -> None:
        """Write one index atomically; caller holds the key's lock."""
        mutations = await self._run(idx.write_file, self.path(*key))
        self.stats.writes += 1
        if idx._mutations == mutations:
            self._dirty.discard(key)

    async def flush(self) -> None:
        """Write every changed index to disk (atomically); raises the first failure."""
        errors: list[BaseException] = []
        for key in list(self._dirty):
            async with self._lock(key):
                idx = self._cache.get(key)
                if idx is None or key not in self._dirty:
                    self._dirty.discard(key)
                    continue
                try:
                    await self._write(key, idx)
                except OSError as e:
                    log.warning("cannot write index %s: %s", self.path(*key), e)
                    errors.append(e)
        if errors:
            raise errors[0]

    async def close(self) -> None:
        """Flush; the manager stays usable (indexes are reloaded on demand)."""
        await self.flush()

    async def _enforce_budget(self, keep: Key) -> None:
        """Evict least recently used indexes (writing them first) until within the budget."""
        while self.memory_bytes > self.memory_budget_bytes:
            victim = next(
                (k for k in self._cache if k != keep and not self._lock(k).locked()),
                None,
            )
            if victim is None:
                return
            await self._evict(victim)

    async def _evict(self, key: Key) -> None:
        async with self._lock(key):
            idx = self._cache.get(key)
            if idx is None:
                return
            if key in self._dirty:
                try:
                    await self._write(key, idx)
                except OSError as e:
                    # SQLite still has everything; the stale file will be rebuilt on next load.
                    log.warning("evicting index %s without writing it: %s", self.path(*key), e)
            self._cache.pop(key, None)
            self._dirty.discard(key)
            self.stats.evictions += 1

    async def drop(self, owner_id: int, model_id: str) -> None:
        """Forget one pair's index in memory and on disk (e.g. after a model switch)."""
        key = (int(owner_id), model_id)
        async with self._lock(key):
            self._cache.pop(key, None)
            self._dirty.discard(key)
            path = self.path(*key)
            await self._run(self._unlink_all, path)

    @staticmethod
    def _unlink_all(path: Path) -> None:
        for p in [path, *path.parent.glob(f".{path.name}.*.tmp")]:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()

    async def drop_owner(self, owner_id: int) -> None:
        """Forget every index of an owner, in memory and on disk."""
        owner_id = int(owner_id)
        keys = sorted({k for k in [*self._locks, *self._cache] if k[0] == owner_id})
        async with contextlib.AsyncExitStack() as stack:
            for key in keys:
                await stack.enter_async_context(self._lock(key))
            for key in keys:
                self._cache.pop(key, None)
                self._dirty.discard(key)
            await self._run(shutil.rmtree, self.index_dir / str(owner_id), ignore_errors=True)
