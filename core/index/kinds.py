"""The FAISS index kinds an owner's vectors live in, how each is built, and when to switch.

Two index kinds:

* **exact** (default): ``IndexIDMap2(IndexScalarQuantizer(d, QT_fp16, IP))`` — 1 KB per vector,
  recall 1.0, cheap add/remove. ``fp32`` uses ``IndexFlatIP`` instead.
* **approximate** past ``approx_threshold`` vectors: ``IndexIVFScalarQuantizer`` (fp16 codes,
  inner product, ids stored natively in the inverted lists). IVF was chosen over HNSW by
  measurement (``bench/search.py --hnsw``): both meet the latency goal at 1M, but IVF removes ids
  natively (HNSW cannot: tombstones and periodic rebuilds), builds about 10x faster (100k: 4 s
  vs 41 s) and needs 1.03 KB per vector instead of 1.3 KB. IVF keeps its ids itself: wrapping it
  in ``IndexIDMap2`` returns wrong ids after ``remove_ids`` (IVF does not renumber its internal
  ids the way ``IDMap`` expects). ``nprobe`` is tuned at build time (:mod:`core.index.tuning`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

import faiss
import numpy as np

from core.errors import VectorIndexError
from core.index.tuning import TUNE_QUERIES, choose_nlist, tune_nprobe
from core.index.vectors import as_ids, dedupe_last, normalised_view
from core.settings import IndexSettings

ExactKind = Literal["fp16", "fp32"]

# INDEX_APPROX_THRESHOLD's default, whose one home is the settings section.
DEFAULT_APPROX_THRESHOLD = IndexSettings().approx_threshold
# Back to exact only well below the threshold, so an owner hovering around it does not flip.
EXACT_FRACTION = 0.8
# An approximate index is retrained when it has grown or shrunk this much since it was built.
RETRAIN_FACTOR = 2.0
# Never go approximate for tiny indexes: IVF needs enough vectors to train.
MIN_APPROX_N = 1_000
DEFAULT_TARGET_RECALL = 0.97

KINDS = ("empty", "exact-fp16", "exact-fp32", "ivf-fp16", "ivf-fp32")


@dataclass(frozen=True, slots=True)
class BuildPolicy:
    """The settings that decide an index's kind; an index built under others is rebuilt."""

    approx_threshold: int = DEFAULT_APPROX_THRESHOLD
    exact_kind: ExactKind = "fp16"
    target_recall: float = DEFAULT_TARGET_RECALL


def exact_index(dim: int, kind: ExactKind) -> faiss.Index:
    """An empty exact index with ids (fp16 codes unless ``kind`` asks for fp32)."""
    inner: faiss.Index
    if kind == "fp32":
        inner = faiss.IndexFlatIP(dim)
    else:
        inner = faiss.IndexScalarQuantizer(
            dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
        )
    return faiss.IndexIDMap2(inner)


def ivf_index(dim: int, nlist: int, kind: ExactKind) -> faiss.IndexIVF:
    """An untrained IVF index over inner product with ``nlist`` lists."""
    quantizer = faiss.IndexFlatIP(dim)
    index: faiss.IndexIVF
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


@dataclass
class IndexState:
    """Everything that is swapped at once when an index is rebuilt."""

    kind: str
    dim: int
    index: faiss.Index | None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def approximate(self) -> bool:
        return self.kind.startswith("ivf")

    @property
    def ntotal(self) -> int:
        return 0 if self.index is None else int(self.index.ntotal)

    @property
    def memory_bytes(self) -> int:
        """Estimated resident size: codes + ids (+ IDMap2's reverse map, IVF centroids)."""
        if self.index is None:
            return 0
        n = int(self.index.ntotal)
        code = self.dim * (2 if self.kind.endswith("fp16") else 4)
        if self.kind.startswith("exact"):
            return n * (code + 8 + 48)
        nlist = int(self.params.get("nlist", 0))
        return n * (code + 8) + nlist * (self.dim * 4 + 64)

    @property
    def search_cost(self) -> int:
        """About how many vectors one query scans (decides inline vs thread)."""
        if self.index is None:
            return 0
        n = int(self.index.ntotal)
        if self.kind.startswith("exact"):
            return n
        nlist = max(int(self.params.get("nlist", 1)), 1)
        return nlist + n * int(self.params.get("nprobe", nlist)) // nlist

    def rebuild_reason(self, approx_threshold: int, exact_kind: ExactKind) -> str | None:
        """Why this kind no longer fits its size under these settings, or None."""
        n = self.ntotal
        if self.kind.startswith("exact"):
            if self.kind != f"exact-{exact_kind}":
                return "exact kind changed"
            if n > approx_threshold and n >= MIN_APPROX_N:
                return "grew past the approximate threshold"
            return None
        if self.approximate:
            if n < EXACT_FRACTION * approx_threshold or n < MIN_APPROX_N:
                return "shrank below the exact threshold"
            built = int(self.params.get("built_n", n)) or 1
            if n > RETRAIN_FACTOR * built or n * RETRAIN_FACTOR < built:
                return "size changed since training"
        return None


def build_state(
    seed_key: str,
    ids: np.ndarray,
    vecs: np.ndarray,
    *,
    approx_threshold: int = DEFAULT_APPROX_THRESHOLD,
    exact_kind: ExactKind = "fp16",
    target_recall: float = DEFAULT_TARGET_RECALL,
    approximate: bool | None = None,
) -> IndexState:
    """Index all of ``vecs`` (CPU-heavy for big owners: call in a thread).

    ``approximate=None`` decides by size; ``seed_key`` seeds the training sample so a rebuild
    of the same data gives the same index.
    """
    ids = as_ids(ids)
    vecs = normalised_view(vecs)
    if len(ids) != vecs.shape[0]:
        raise VectorIndexError(f"{len(ids)} ids but {vecs.shape[0]} vectors")
    ids, vecs = dedupe_last(ids, vecs)
    n = len(ids)
    dim = int(vecs.shape[1]) if vecs.ndim == 2 else 0
    if n == 0 and dim == 0:
        return IndexState("empty", 0, None)
    if approximate is None:
        approximate = n > approx_threshold
    if approximate and n >= MIN_APPROX_N:
        return _build_ivf(seed_key, ids, vecs, exact_kind, target_recall)
    index = exact_index(dim, exact_kind)
    if n:
        index.add_with_ids(vecs, ids)
    return IndexState(f"exact-{exact_kind}", dim, index)


def _build_ivf(
    seed_key: str, ids: np.ndarray, vecs: np.ndarray, kind: ExactKind, target_recall: float
) -> IndexState:
    """Train, fill and tune an IVF index over unique, unit-length ``vecs``."""
    n, dim = vecs.shape
    nlist = choose_nlist(n)
    index = ivf_index(dim, nlist, kind)
    rng = np.random.default_rng(zlib.crc32(seed_key.encode()))
    n_train = min(n, 48 * nlist)
    sample = vecs if n_train == n else vecs[np.sort(rng.choice(n, n_train, replace=False))]
    index.train(np.ascontiguousarray(sample))
    index.add_with_ids(vecs, ids)
    # Tune on held-out vectors: taken out of the index, they behave like fresh queries
    # from this owner's own distribution (a vector that finds itself would flatter recall).
    rows = np.sort(rng.choice(n, size=min(TUNE_QUERIES, n // 10), replace=False))
    index.remove_ids(faiss.IDSelectorBatch(ids[rows]))
    queries = np.ascontiguousarray(vecs[rows])
    nprobe, recall = tune_nprobe(index, queries, target_recall)
    index.add_with_ids(queries, ids[rows])
    params = {"nlist": nlist, "nprobe": nprobe, "built_n": n, "tuned_recall": round(recall, 4)}
    return IndexState(f"ivf-{kind}", int(dim), index, params)
