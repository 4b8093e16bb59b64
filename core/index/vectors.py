"""Array hygiene shared by building, changing and searching an index.

FAISS wants C-contiguous float32 rows and int64 ids, and answers cosine only for unit-length
rows; these helpers are the one place that guarantees it, so every entry point agrees.
"""

from __future__ import annotations

from collections.abc import Iterable

import faiss
import numpy as np

from core.errors import VectorIndexError

Hit = tuple[int, float]
"""One search answer: (unit id, cosine similarity)."""


def as_ids(ids: Iterable[int] | np.ndarray) -> np.ndarray:
    """Flat C-contiguous int64 ids, the only id layout FAISS accepts."""
    return np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))


def as_vectors(vecs: np.ndarray, dim: int | None = None) -> np.ndarray:
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


def normalised_view(vecs: np.ndarray) -> np.ndarray:
    """Like :func:`as_vectors` but avoids the copy when the rows are already unit length."""
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
    return as_vectors(arr)


def dedupe_last(ids: np.ndarray, vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep the last occurrence of each id, so an index never holds one id twice."""
    if len(ids) < 2:
        return ids, vecs
    rev_unique, rev_index = np.unique(ids[::-1], return_index=True)
    if len(rev_unique) == len(ids):
        return ids, vecs
    keep = np.sort(len(ids) - 1 - rev_index)
    return ids[keep], vecs[keep]
