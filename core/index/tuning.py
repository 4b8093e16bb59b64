"""Sizing and tuning of approximate (IVF) indexes: how many lists, how many to probe.

``nprobe`` is tuned at build time on held-out vectors of the owner's own data, so that
recall@10 against exact search reaches the target on the distribution the owner really has,
not on a synthetic one.
"""

from __future__ import annotations

import math

import faiss
import numpy as np

TUNE_QUERIES = 100
NPROBE_LADDER = (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024)


def choose_nlist(n: int) -> int:
    """About sqrt(n) inverted lists (a power of two), with >= 39 training points per list."""
    nlist = int(2 ** round(math.log2(max(math.sqrt(max(n, 1)), 1.0))))
    nlist = min(nlist, 4096, max(n // 39, 1))
    return max(nlist, 1)


def recall_at(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean overlap of two [nq, k] label arrays (FAISS's -1 padding ignored)."""
    total = 0.0
    for a_row, e_row in zip(approx, exact, strict=True):
        e = {int(i) for i in e_row if i >= 0}
        a = {int(i) for i in a_row if i >= 0}
        total += len(a & e) / len(e) if e else 1.0
    return total / max(len(exact), 1)


def tune_nprobe(
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
        recall = recall_at(approx, exact)
        if recall >= target:
            return candidate, recall
    index.nprobe = index.nlist
    return index.nlist, 1.0
