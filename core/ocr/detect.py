"""A cheap pass that says whether, and where, a picture may hold text, so that a plain photo
costs a few milliseconds instead of a full OCR run, and text over a busy photo (a meme's
outlined caption) is read from its own band rather than lost in the whole picture.

How it works, on a grey copy whose longer side is at most ``side`` pixels (OpenCV's
morphology and box filters, which are the whole cost):

1. local contrast: the range (max - min) of each 3x3 neighbourhood. Glyph edges have a high
   range; flat background none.
2. where the neighbourhood is *busy* (many moderate ranges: photo texture, foliage, noise),
   an edge must have a much higher range to count, which photo texture rarely reaches and
   outlined or printed text nearly always does (white on black, black on paper).
3. long straight edges are no glyphs: the border of a sheet of paper, a frame, a table rule,
   a slide's underline. They are removed first, since they would tie every line they pass
   into one box (a receipt photographed on a table).
4. text lines are places dense in such edges, but not solid with them (pure noise is): the
   edge density over a line-shaped window must fall between two bounds.
5. boxes are the connected parts of that mask; tiny, implausibly filled, or tall and narrow
   ones (a strip along the picture's edge) are dropped.

False alarms only cost OCR time; misses lose text, so the bounds lean to recall.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

__all__ = ["DETECT_SIDE", "Detection", "TextRegion", "detect_text"]

DETECT_SIDE = 512
# A 3x3 range at or above this counts as a glyph edge on a calm background ...
EDGE = 60
# ... and at or above this where the neighbourhood is busy.
BUSY_EDGE = 120
# Ranges from WEAK up to EDGE are texture; a neighbourhood this full of them is busy, and so
# is one with hardly a flat pixel (noise, gravel: text always has some background around it).
WEAK = 16
BUSY_SHARE = 0.25
ROUGH_SHARE = 0.9
# Edge density over a line-shaped window that looks like text rather than nothing or noise.
DENSITY_LOW, DENSITY_HIGH = 0.10, 0.80
LINE_WINDOW = (5, 15)  # rows x columns, at the detection scale
BUSY_WINDOW = (15, 41)
# Straight edges at least this long (share of the longer side, at the detection scale) are
# lines, not glyphs; vertical ones are shorter: glyphs are wider than their strokes are tall.
RULE_V, RULE_H = 0.08, 0.25
# Fill of a final box with edges (computed over the box).
BOX_FILL_LOW, BOX_FILL_HIGH = 0.08, 0.75
MIN_BOX = (6, 4)  # width, height at the detection scale
BUSY_MIN_BOX = (12, 6)  # over texture: smaller specks are the texture's own
# A box this much taller than wide is an edge strip or a stray stroke, not a line of text.
TALL = 1.5


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
    grey = np.asarray(image if image.mode == "L" else image.convert("L"))
    scale = min(1.0, side / max(grey.shape))
    if scale < 1.0:
        small = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
        grey = cv2.resize(grey, small, interpolation=cv2.INTER_AREA)
    edges, busy = _edges(grey)
    density = cv2.blur(edges, (LINE_WINDOW[1], LINE_WINDOW[0]))
    mask = ((density >= DENSITY_LOW) & (density <= DENSITY_HIGH)).astype(np.uint8)
    back = 1.0 / scale
    regions = []
    for left, top, right, bottom in _components(mask):
        fill = float(edges[top:bottom, left:right].mean())
        if not BOX_FILL_LOW <= fill <= BOX_FILL_HIGH:
            continue
        is_busy = bool(busy[top:bottom, left:right].mean() >= 0.5)
        if is_busy and (right - left < BUSY_MIN_BOX[0] or bottom - top < BUSY_MIN_BOX[1]):
            continue
        regions.append(
            TextRegion(
                int(left * back),
                int(top * back),
                min(image.width, int(np.ceil(right * back))),
                min(image.height, int(np.ceil(bottom * back))),
                is_busy,
            )
        )
    regions.sort(key=lambda r: (r.top, r.left))
    return Detection(tuple(regions), image.size)


def _edges(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Glyph-edge mask (float32 0/1, long straight lines removed) and the busy mask (bool)."""
    contrast = cv2.morphologyEx(grey, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    window = (BUSY_WINDOW[1], BUSY_WINDOW[0])
    texture = ((contrast >= WEAK) & (contrast < EDGE)).astype(np.float32)
    rough = (contrast >= WEAK).astype(np.float32)
    busy = (cv2.blur(texture, window) >= BUSY_SHARE) | (cv2.blur(rough, window) >= ROUGH_SHARE)
    edges = (contrast >= np.where(busy, BUSY_EDGE, EDGE)).astype(np.uint8)
    edges &= ~_rules(edges)
    return edges.astype(np.float32), busy


def _rules(edges: np.ndarray) -> np.ndarray:
    """The pixels of ``edges`` (uint8 0/1) on long straight vertical or horizontal runs,
    slightly widened (a tilted line is a staircase of runs), as uint8 0/1."""
    longer = max(edges.shape)
    vertical = max(12, round(RULE_V * longer))
    horizontal = max(24, round(RULE_H * longer))
    upright = cv2.morphologyEx(edges, cv2.MORPH_OPEN, np.ones((vertical, 1), np.uint8))
    level = cv2.morphologyEx(edges, cv2.MORPH_OPEN, np.ones((1, horizontal), np.uint8))
    widened: np.ndarray = cv2.dilate(cv2.bitwise_or(upright, level), np.ones((3, 3), np.uint8))
    return widened


def _components(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes ``(left, top, right, bottom)`` of the mask's connected parts that may be lines
    of text: not tiny, not a tall narrow strip."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    boxes = []
    for left, top, width, height, _area in stats[1:count].tolist():
        if width < MIN_BOX[0] or height < MIN_BOX[1] or height > TALL * width:
            continue
        boxes.append((left, top, left + width, top + height))
    return boxes
