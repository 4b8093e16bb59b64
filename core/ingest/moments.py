"""Which of a video's sampled frames are moments of their own, as the models see them."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["distinct_moments"]


def distinct_moments(vectors: Mapping[str, np.ndarray], similarity: float) -> list[int]:
    """Indices of the frames that are moments of their own: a frame whose vector is at least
    ``similarity`` (cosine) like the last kept frame's, for every model, shows the model
    nothing new and merges into it. The sampler compares pixels, which cannot tell a pan or a
    gesture from a new subject; the model can. ``similarity >= 1`` keeps every frame."""
    count = min(len(v) for v in vectors.values())
    keep = [0] if count else []
    for i in range(1, count):
        last = keep[-1]
        if similarity >= 1.0 or any(float(v[i] @ v[last]) < similarity for v in vectors.values()):
            keep.append(i)
    return keep
