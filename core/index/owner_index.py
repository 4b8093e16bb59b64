"""One owner's live FAISS index for one model: search, add, remove, versions, its file.

Per owner, per model FAISS indexes hold L2-normalised vectors (inner product = cosine). The
FAISS kinds and when they switch are in :mod:`core.index.kinds`, the file layout in
:mod:`core.index.file_format`, the version contract in :mod:`core.index.versions`, and the
cache of every loaded index in :mod:`core.index.manager`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from core.errors import VectorIndexError
from core.index.file_format import encode_index, read_index_file, write_atomic
from core.index.kinds import (
    DEFAULT_APPROX_THRESHOLD,
    DEFAULT_TARGET_RECALL,
    ExactKind,
    IndexState,
    build_state,
    exact_index,
)
from core.index.vectors import Hit, as_ids, as_vectors, dedupe_last
from core.index.versions import VersionTracker


@contextlib.contextmanager
def one_omp_thread() -> Iterator[None]:
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


def held_ids(index: faiss.Index | None) -> np.ndarray:
    """Every id in an exact (IDMap2) or IVF index, unordered; a copy."""
    if index is None or index.ntotal == 0:
        return np.zeros(0, dtype=np.int64)
    if isinstance(index, faiss.IndexIDMap2):
        return faiss.vector_to_array(index.id_map).astype(np.int64, copy=False)
    invlists = faiss.extract_index_ivf(index).invlists
    assert invlists is not None
    parts = [np.zeros(0, dtype=np.int64)]
    for i in range(invlists.nlist):
        n = invlists.list_size(i)
        if n:
            parts.append(faiss.rev_swig_ptr(invlists.get_ids(i), n).astype(np.int64))
    return np.concatenate(parts)


class OwnerIndex:
    """One FAISS index for an (owner, model) pair. Thread-safe; FAISS calls happen under a lock.

    ``search`` never returns FAISS's ``-1`` padding: with fewer than ``k`` items (or an IVF probe
    that found fewer) the lists are simply shorter.
    """

    def __init__(
        self,
        owner_id: int,
        model_id: str,
        state: IndexState,
        versions: VersionTracker,
        *,
        exact_kind: ExactKind = "fp16",
    ) -> None:
        self.owner_id = owner_id
        self.model_id = model_id
        self.exact_kind: ExactKind = exact_kind  # used when an empty index gets its first vector
        self._state = state
        self._versions = versions
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
        uncertain_upto: int | None = None,
    ) -> OwnerIndex:
        """Build from all vectors of the pair (CPU-heavy for big owners: call in a thread).

        ``approximate=None`` decides by size; training, adding and tuning run here.
        ``uncertain_upto``: the storage version read after the vectors, when it moved on (see
        :class:`~core.index.versions.VersionTracker`).
        """
        state = build_state(
            f"{owner_id}/{model_id}",
            ids,
            vecs,
            approx_threshold=approx_threshold,
            exact_kind=exact_kind,
            target_recall=target_recall,
            approximate=approximate,
        )
        versions = VersionTracker(version, uncertain_upto=uncertain_upto)
        return cls(owner_id, model_id, state, versions, exact_kind=exact_kind)

    @classmethod
    def read_file(
        cls, path: Path, owner_id: int, model_id: str, *, exact_kind: ExactKind = "fp16"
    ) -> OwnerIndex:
        """Load and verify a file written by :meth:`write_file`; any defect is IndexFileError."""
        contents = read_index_file(path, owner_id, model_id)
        return cls(owner_id, model_id, contents.state, contents.versions, exact_kind=exact_kind)

    def replace_with(self, other: OwnerIndex) -> None:
        """Take another index's contents (a rebuild) without invalidating references to self."""
        with self._lock:
            self._state = other._state
            self._versions = other._versions.copy()
            self._mutations += 1

    # -- properties

    @property
    def kind(self) -> str:
        return self._state.kind

    @property
    def approximate(self) -> bool:
        return self._state.approximate

    @property
    def dim(self) -> int:
        return self._state.dim

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._state.params)

    @property
    def ntotal(self) -> int:
        return self._state.ntotal

    @property
    def version(self) -> int:
        """The highest ``index_version`` up to which every change is reflected."""
        return self._versions.version

    @property
    def pending_versions(self) -> frozenset[int]:
        """Versions applied out of order, waiting for an earlier one."""
        return self._versions.ahead

    @property
    def mutations(self) -> int:
        """Counts every applied change, so a writer can tell whether it wrote the latest."""
        return self._mutations

    @property
    def memory_bytes(self) -> int:
        """Estimated resident size: codes + ids (+ IDMap2's reverse map, IVF centroids)."""
        return self._state.memory_bytes

    @property
    def search_cost(self) -> int:
        """About how many vectors one query scans (decides inline vs thread)."""
        return self._state.search_cost

    def wants_rebuild(self, approx_threshold: int, exact_kind: ExactKind) -> str | None:
        """Why this index should be rebuilt from the source under these settings, or None."""
        if self._versions.broken:
            return "too many out-of-order versions"
        return self._state.rebuild_reason(approx_threshold, exact_kind)

    # -- mutations

    def add(
        self, ids: Iterable[int] | np.ndarray, vecs: np.ndarray, *, version: int | None = None
    ) -> bool:
        """Add vectors (normalised here); returns False when ``version`` was already reflected."""
        ids_arr = as_ids(ids)
        with self._lock:
            apply, dedupe = self._versions.accept(version)
            if not apply:
                return False
            if len(ids_arr):
                self._add_locked(ids_arr, vecs, dedupe=dedupe)
            self._versions.advance(version)
            self._mutations += 1
            return True

    def _add_locked(self, ids: np.ndarray, vecs: np.ndarray, *, dedupe: bool) -> None:
        """Normalise and add; ``dedupe`` removes the ids first (they may be in already)."""
        arr = as_vectors(vecs, self._state.dim or None)
        if len(ids) != arr.shape[0]:
            raise VectorIndexError(f"{len(ids)} ids but {arr.shape[0]} vectors")
        ids, arr = dedupe_last(ids, arr)
        if self._state.index is None:
            dim = int(arr.shape[1])
            kind = self.exact_kind
            self._state = IndexState(f"exact-{kind}", dim, exact_index(dim, kind))
        index = self._state.index
        assert index is not None
        if dedupe and index.ntotal:
            index.remove_ids(faiss.IDSelectorBatch(ids))
        index.add_with_ids(arr, ids)

    def remove(self, ids: Iterable[int] | np.ndarray, *, version: int | None = None) -> int:
        """Remove ids (unknown ids are ignored); returns how many vectors went away."""
        ids_arr = as_ids(ids)
        with self._lock:
            apply, _ = self._versions.accept(version)
            if not apply:
                return 0
            removed = 0
            index = self._state.index
            if index is not None and len(ids_arr) and index.ntotal:
                removed = int(index.remove_ids(faiss.IDSelectorBatch(ids_arr)))
            self._versions.advance(version)
            self._mutations += 1
            return removed

    def fingerprint(self) -> tuple[int, int, int, int]:
        """(count, largest id, sum of ids, mutation counter) of the ids held: what storage's
        ids up to the largest must match for a top-up (see :meth:`top_up`) to be exact."""
        with self._lock:
            ids = held_ids(self._state.index)
            high = int(ids.max()) if len(ids) else 0
            return len(ids), high, int(ids.sum(dtype=np.int64)), self._mutations

    def top_up(self, ids: np.ndarray, vecs: np.ndarray, *, version: int, mutations: int) -> bool:
        """Add vectors past the held ids and reflect exactly ``version`` (storage's, read with
        them); refused (False) if the index changed since ``mutations`` was read."""
        ids_arr = as_ids(ids)
        with self._lock:
            if self._mutations != mutations:
                return False
            if len(ids_arr):
                self._add_locked(ids_arr, vecs, dedupe=False)
            self._versions = VersionTracker(version)
            self._mutations += 1
            return True

    # -- search

    def search(self, query: np.ndarray, k: int) -> list[list[Hit]]:
        """Top-k (id, cosine) per query row; a 1-D query counts as one row. No -1 padding."""
        q = np.asarray(query, dtype=np.float32)
        nq = 1 if q.ndim == 1 else int(q.shape[0])
        with self._lock:
            index = self._state.index
            if index is None or index.ntotal == 0 or k <= 0 or q.size == 0:
                return [[] for _ in range(nq)]
            q = as_vectors(q, self._state.dim)
            kk = min(int(k), int(index.ntotal))
            if q.shape[0] == 1:
                with one_omp_thread():
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

    def serialize(self) -> tuple[bytes, np.ndarray, int]:
        """(header, payload, mutation counter) of a consistent snapshot, for writing a file."""
        with self._lock:
            header, payload = encode_index(
                self.owner_id, self.model_id, self._state, self._versions
            )
            return header, payload, self._mutations

    def write_file(self, path: Path) -> int:
        """Write atomically (see :func:`~core.index.file_format.write_atomic`); returns the
        mutation counter written."""
        header, payload, mutations = self.serialize()
        write_atomic(path, header, payload)
        return mutations
