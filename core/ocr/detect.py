"""A cheap pass that says whether, and where, a picture may hold text, so that a plain photo
costs a few milliseconds instead of a full OCR run, and text over a busy photo (a meme's
outlined caption) is read from its own band rather than lost in the whole picture.

How it works, on a grey copy whose longer side is at most ``side`` pixels (numpy only):

1. local contrast: the range (max - min) of each 3x3 neighbourhood. Glyph edges have a high
   range; flat background none.
2. where the neighbourhood is *busy* (many moderate ranges: photo texture, foliage, noise),
   an edge must have a much higher range to count, which photo texture rarely reaches and
   outlined or printed text nearly always does (white on black, black on paper).
3. text lines are places dense in such edges, but not solid with them (pure noise is): the
   edge density over a line-shaped window must fall between two bounds.
4. boxes come from cutting that mask into horizontal bands and each band into runs along x
   (an XY cut), then back along y; tiny or implausibly filled boxes are dropped.

False alarms only cost OCR time; misses lose text, so the bounds lean to recall.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = ["DETECT_SIDE", "Detection", "TextRegion", "detect_text"]

DETECT_SIDE = 640
# A 3x3 range at or above this counts as a glyph edge on a calm background ...
EDGE = 60
# ... and at or above this where the neighbourhood is busy.
BUSY_EDGE = 120
# Ranges from WEAK up to EDGE are texture; a neighbourhood this full of them is busy.
WEAK = 16
BUSY_SHARE = 0.25
# Edge density over a line-shaped window that looks like text rather than nothing or noise.
DENSITY_LOW, DENSITY_HIGH = 0.10, 0.80
LINE_WINDOW = (5, 15)  # rows x columns, at the detection scale
BUSY_WINDOW = (15, 41)
# Fill of a final box with edges (computed over the box).
BOX_FILL_LOW, BOX_FILL_HIGH = 0.08, 0.75
MIN_BOX = (6, 4)  # width, height at the detection scale


@dataclass(frozen=True, slots=True)
class TextRegion:
    """A box that may hold a line (or a few lines) of text, in the pixels of the image given
    to :func:`detect_text`. ``busy``: over a textured background, where OCR needs the text
    separated from the picture first."""

    left: int
    top: int
    right: int
    bottom: int
    busy: bool = False

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return max(0, self.right - self.left) * max(0, self.bottom - self.top)

    def padded(self, pad: int, size: tuple[int, int]) -> TextRegion:
        """This box grown by ``pad`` pixels on every side, clipped to ``size`` (width, height)."""
        return TextRegion(
            max(0, self.left - pad),
            max(0, self.top - pad),
            min(size[0], self.right + pad),
            min(size[1], self.bottom + pad),
            self.busy,
        )


@dataclass(frozen=True, slots=True)
class Detection:
    regions: tuple[TextRegion, ...]
    size: tuple[int, int]  # width, height of the image the boxes refer to

    @property
    def found(self) -> bool:
        return bool(self.regions)

    @property
    def coverage(self) -> float:
        """Share of the image inside at least one region (0..1)."""
        w, h = self.size
        if not self.regions or w < 1 or h < 1:
            return 0.0
        mask = np.zeros((h, w), dtype=bool)
        for r in self.regions:
            mask[r.top : r.bottom, r.left : r.right] = True
        return float(mask.mean())


def detect_text(image: Image.Image, *, side: int = DETECT_SIDE) -> Detection:
    """Candidate text regions of ``image`` (see the module docstring); blocking, a few ms."""
    grey = image if image.mode == "L" else image.convert("L")
    scale = min(1.0, side / max(grey.size))
    if scale < 1.0:
        small = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
        grey = grey.resize(small, Image.Resampling.BOX)
    edges, busy = _edges(np.asarray(grey))
    density = _box_mean(edges, *LINE_WINDOW)
    mask = (density >= DENSITY_LOW) & (density <= DENSITY_HIGH)
    back = 1.0 / scale
    regions = []
    for top, bottom, left, right in _cut(mask):
        fill = float(edges[top:bottom, left:right].mean())
        if not BOX_FILL_LOW <= fill <= BOX_FILL_HIGH:
            continue
        is_busy = bool(busy[top:bottom, left:right].mean() >= 0.5)
        regions.append(
            TextRegion(
                int(left * back),
                int(top * back),
                min(image.width, int(np.ceil(right * back))),
                min(image.height, int(np.ceil(bottom * back))),
                is_busy,
            )
        )
    return Detection(tuple(regions), image.size)


def _edges(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Glyph-edge mask (float32 0/1) and the busy-neighbourhood mask (bool)."""
    contrast = _local_range(grey)
    texture = ((contrast >= WEAK) & (contrast < EDGE)).astype(np.float32)
    busy = _box_mean(texture, *BUSY_WINDOW) >= BUSY_SHARE
    edges = contrast >= np.where(busy, BUSY_EDGE, EDGE)
    return edges.astype(np.float32), busy


def _local_range(grey: np.ndarray) -> np.ndarray:
    """max - min over each pixel's 3x3 neighbourhood (edges replicated), as int16."""
    p = np.pad(grey, 1, mode="edge")
    row_max = np.maximum(np.maximum(p[:, :-2], p[:, 1:-1]), p[:, 2:])
    row_min = np.minimum(np.minimum(p[:, :-2], p[:, 1:-1]), p[:, 2:])
    hi = np.maximum(np.maximum(row_max[:-2], row_max[1:-1]), row_max[2:])
    lo = np.minimum(np.minimum(row_min[:-2], row_min[1:-1]), row_min[2:])
    contrast: np.ndarray = hi.astype(np.int16) - lo.astype(np.int16)
    return contrast


def _box_sum(x: np.ndarray, k: int, axis: int) -> np.ndarray:
    """Sum over a centred window of ``k`` along ``axis`` (zeros beyond the border)."""
    r = k // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (r + 1, k - r - 1)
    c = np.cumsum(np.pad(x, pad), axis=axis, dtype=np.float32)
    n = x.shape[axis]
    if axis == 0:
        return c[k : k + n] - c[:n]
    return c[:, k : k + n] - c[:, :n]


def _box_mean(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    summed: np.ndarray = _box_sum(_box_sum(x, rows, 0), cols, 1)
    return summed / np.float32(rows * cols)


def _runs(flags: np.ndarray, gap: int = 0) -> list[tuple[int, int]]:
    """``(start, stop)`` of the runs of True in a 1-d array, bridging gaps of <= ``gap``."""
    idx = np.flatnonzero(flags)
    if idx.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(idx) > gap + 1)
    starts = np.r_[idx[0], idx[cuts + 1]]
    stops = np.r_[idx[cuts], idx[-1]] + 1
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


def _cut(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes ``(top, bottom, left, right)`` of the mask: bands of rows, runs of columns within
    a band (words of a line stay together, columns far apart split), then rows again."""
    boxes = []
    for top, bottom in _runs(mask.sum(axis=1) >= 3, gap=1):
        band = mask[top:bottom]
        columns = np.asarray(band.any(axis=0))
        for left, right in _runs(columns, gap=max(4, (bottom - top) // 2)):
            part = band[:, left:right]
            for y0, y1 in _runs(part.sum(axis=1) >= 2, gap=1):
                if right - left >= MIN_BOX[0] and y1 - y0 >= MIN_BOX[1]:
                    boxes.append((top + y0, top + y1, left, right))
    return boxes
