"""Shot detection: which analysed frames of a video are new moments (see
:mod:`core.media.video` for how and why frames are chosen).

Frames are compared as tiny colour thumbnails (:func:`signature`); :func:`difference` scores two
of them 0..1, whole frame or its most changed region, aligned first when the camera moved; the
:class:`Selector` streams the analysed frames and keeps the moments.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import cv2
import numpy as np
from PIL import Image

from core.media.frame_clock import TIME_TOLERANCE, Frame

__all__ = ["BLANK_LEVEL", "FLASH_S", "FLOOR_CANDIDATES", "Selector", "difference", "signature"]

SIGNATURE_SIZE: Final = (64, 36)
GRID: Final = (8, 6)
"""Cells (across, down) of a signature compared region by region: 8x6 thumbnail pixels each."""
REGION_CELLS: Final = 3
"""The most changed cells that make up a region: about a sixteenth of the frame."""
REGION_BAR: Final = 1.5
"""A region counts as a change when it differs this many times the threshold."""
MAX_SHIFT: Final = (12, 6)
"""Thumbnail pixels (x, y) a camera move may shift the picture between compared frames."""
FLOOR_CANDIDATES: Final = 6
"""Frames a short clip is looked at, at least, for changes too small for the threshold."""
FLOOR_SHARE: Final = 0.25
"""A floor frame is only taken when it differs by this share of the threshold: a still shot
gets no extra frames."""
FLASH_S: Final = 0.1
"""A candidate still gone this long after it (a flash, a glitch) is not a moment; a shot lasts
longer."""
_SHIFT_GAIN: Final = 0.5
BLANK_LEVEL: Final = 16
"""A frame whose brightest thumbnail pixel (0..255, any channel) is at most this is blank."""


# --- frame selection ----------------------------------------------------------------------------


def signature(rgb_or_bgr: np.ndarray) -> np.ndarray:
    """Tiny colour thumbnail used to compare frames; channel order only has to be consistent."""
    if rgb_or_bgr.ndim == 2:
        rgb_or_bgr = cv2.cvtColor(rgb_or_bgr, cv2.COLOR_GRAY2BGR)
    # Area-averaging a full HD frame costs ~10 ms; every n-th pixel first, still >= 4 source
    # pixels per thumbnail pixel each way, gives the same thumbnail for ~1 ms.
    h, w = rgb_or_bgr.shape[:2]
    stride = max(1, min(h // (4 * SIGNATURE_SIZE[1]), w // (4 * SIGNATURE_SIZE[0])))
    if stride > 1:
        rgb_or_bgr = rgb_or_bgr[::stride, ::stride]
    return cv2.resize(rgb_or_bgr, SIGNATURE_SIZE, interpolation=cv2.INTER_AREA)


def _camera_shift(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """How far (x, y) the picture of ``a`` moved in ``b`` when the camera moved, else (0, 0).

    Template matching of ``a``'s centre within ``b``; a shift only counts when it explains at
    least half of the mismatch, so noise, a cut or a subject change on a still background keep
    (0, 0) and are compared in place.
    """
    mx, my = MAX_SHIFT
    ga = a.mean(axis=2, dtype=np.float32)
    gb = b.mean(axis=2, dtype=np.float32)
    ssd = cv2.matchTemplate(gb, ga[my:-my, mx:-mx], cv2.TM_SQDIFF)
    best, _, (x, y), _ = cv2.minMaxLoc(ssd)
    if best < _SHIFT_GAIN * float(ssd[my, mx]):
        return x - mx, y - my
    return 0, 0


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """How different two signatures look, 0..1: the larger of the whole-frame mean difference
    and the mean difference of the most changed sixteenth of the frame (``REGION_CELLS`` cells
    of an 8x6 grid), the latter counted at ``1 / REGION_BAR``.

    A whole-frame mean misses a cut that changes only part of the picture (a new subject before
    the same background, a slide, a screen recording, someone stepping into a still scene); a
    region's mean still averages out sensor noise, and holding it to a higher bar keeps small
    motion (a gesture, leaves) from counting. After a camera move (pan, shake) the frames are
    compared where they overlap, aligned, so the picture sliding by does not count as new.
    """
    dx, dy = _camera_shift(a, b)
    h, w = a.shape[:2]
    hh, ww = h - abs(dy), w - abs(dx)
    ya, xa = max(0, -dy), max(0, -dx)
    yb, xb = max(0, dy), max(0, dx)
    changed = np.zeros((h, w), np.float32)  # uncovered borders: new to the eye, not a change
    changed[ya : ya + hh, xa : xa + ww] = cv2.absdiff(
        a[ya : ya + hh, xa : xa + ww], b[yb : yb + hh, xb : xb + ww]
    ).mean(axis=2)
    whole: float = float(changed.sum()) / (hh * ww)
    cells = cv2.resize(changed, GRID, interpolation=cv2.INTER_AREA).ravel()
    region = float(np.partition(cells, -REGION_CELLS)[-REGION_CELLS:].mean())
    return max(whole, region / REGION_BAR) / 255.0


@dataclass(slots=True)
class _Kept:
    t: float
    signature: np.ndarray
    score: float  # difference from the previous kept frame; inf for the first
    image: Image.Image


@dataclass(slots=True)
class Selector:
    """Streaming frame choice: ``offer`` every analysed frame in time order, then ``result``.

    A frame that qualifies waits for the next analysed one before it is kept: when that one
    looks like the last kept frame again, the candidate was a flash (a camera flash, a glitch,
    one white frame) and is dropped. ``duration``, when known up front, sets the floor spacing
    of short clips (:meth:`floor_gap`).
    """

    min_gap: float
    max_gap: float
    max_frames: int
    threshold: float
    duration: float | None = None
    kept: list[_Kept] = field(default_factory=list)
    blank: tuple[float, np.ndarray, Image.Image] | None = None
    pending: _Kept | None = None

    def floor_gap(self, t: float) -> float:
        """Spacing of floor frames: ``FLOOR_CANDIDATES`` over a short clip, never closer than
        ``min_gap`` nor wider than ``max_gap``. Without a known duration the time seen so far
        stands in for it (a third of it, so the floor is as dense for the first seconds)."""
        span = self.duration / FLOOR_CANDIDATES if self.duration else t / 3
        return min(self.max_gap, max(self.min_gap, span))

    def offer(self, t: float, signature: np.ndarray, image: Callable[[], Image.Image]) -> None:
        if int(signature.max()) <= BLANK_LEVEL:
            if self.blank is None and not self.kept:
                self.blank = (t, signature, image())
            return
        if not self.kept:
            self._keep(_Kept(t, signature, math.inf, image()))
            return
        if self.pending is not None:
            self._settle(signature)
        last = self.kept[-1]
        gap = t - last.t
        if gap < self.min_gap - TIME_TOLERANCE:
            return
        diff = difference(signature, last.signature)
        due = gap >= self.max_gap - TIME_TOLERANCE
        floor = gap >= self.floor_gap(last.t) - TIME_TOLERANCE
        if diff >= self.threshold or due or (floor and diff >= FLOOR_SHARE * self.threshold):
            self.pending = _Kept(t, signature, diff, image())

    def _settle(self, signature: np.ndarray) -> None:
        """Keep the waiting candidate unless ``signature`` shows it was a flash."""
        candidate, self.pending = self.pending, None
        assert candidate is not None
        last = self.kept[-1].signature
        back = difference(signature, last) < self.threshold
        if back and difference(signature, candidate.signature) >= self.threshold:
            return
        self._keep(candidate)

    def _keep(self, frame: _Kept) -> None:
        self.kept.append(frame)
        if len(self.kept) > self.max_frames:
            # Drop the frame that adds least; its successor is then compared with the frame
            # before it, which may raise that successor's score.
            i = min(range(1, len(self.kept)), key=lambda k: self.kept[k].score)
            del self.kept[i]
            if i < len(self.kept):
                nxt = self.kept[i]
                nxt.score = difference(nxt.signature, self.kept[i - 1].signature)

    def result(self) -> list[Frame]:
        if self.pending is not None:  # the last analysed frame: nothing left to refute it
            self._keep(self.pending)
            self.pending = None
        if not self.kept and self.blank is not None:
            t, _, img = self.blank
            return [Frame(t, img)]
        return [Frame(k.t, k.image) for k in self.kept]
