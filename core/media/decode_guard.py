"""Bounds on what one untrusted file may cost to decode: memory by pre-checks, time by a deadline.

Memory is bounded before any pixel is decoded: ``Image.open`` only reads headers, so the
declared size and mode give the bytes Pillow will allocate (:func:`still_cost`), and an
animation's canvas gives the cost of every frame. Pillow stores RGB as 4 bytes per pixel and
keeps one pointer per row, so a 1-pixel-wide strip costs far more than its pixel count says.

Time is bounded twice. Work that scales with pixels is refused or cut up front (pixel budgets,
progressive JPEG scan count). What remains scales with the *number of structures* in the file
(millions of empty PNG chunks, JPEG markers, GIF comment blocks), which Pillow walks in Python:
:func:`deadline` raises :class:`DecodeDeadline` inside the decoding thread once the time is up.
Python checks for it between bytecodes, which is exactly where those loops run; C-level work is
already bounded by the pixel budgets.
"""

from __future__ import annotations

import contextlib
import ctypes
import heapq
import itertools
import math
import threading
import time
from collections.abc import Iterator
from typing import Final

__all__ = [
    "DECODE_TIMEOUT_S",
    "MAX_ANIMATION_CANVAS_COST",
    "MAX_ANIMATION_FRAMES",
    "MAX_ANIMATION_WORK",
    "MAX_DECODE_BYTES",
    "MAX_JPEG_SCANS",
    "MAX_VIDEO_FRAME_PIXELS",
    "DecodeDeadline",
    "deadline",
    "format_extra",
    "jpeg_coefficient_bytes",
    "jpeg_scan_count",
    "reduced_cost",
    "still_cost",
]

MAX_DECODE_BYTES: Final = 192 * 2**20
"""Estimated pixel memory one still image may take while decoded and converted: keeps a file's
peak under a quarter gigabyte (a 48 MP RGB PNG fits; JPEGs are costed after reduced decoding)."""

MAX_ANIMATION_CANVAS_COST: Final = 28
"""Bytes per canvas pixel an animation frame costs while read: Pillow's frame and the previous
one for disposal (4 each), the RGB(A) conversion and the array compared for scene changes."""

MAX_ANIMATION_WORK: Final = 300_000_000
"""Canvas pixels x frames decoded per animation. Every GIF frame is composited on the full
canvas, so this is what decoding time follows; frames past it are left out (as if truncated)."""

MAX_ANIMATION_FRAMES: Final = 5_000
"""Frames decoded per animation, whatever their size: each costs a fixed Python overhead."""

MAX_JPEG_SCANS: Final = 100
"""Progressive JPEG scans accepted. Encoders write about 10; each scan re-walks the whole
coefficient buffer, so thousands of tiny scans make a small file take minutes."""

MAX_VIDEO_FRAME_PIXELS: Final = 4096 * 4096
"""Declared video frame size accepted (4K phone video fits); the decoder keeps several
reference frames of this size, per thread."""

DECODE_TIMEOUT_S: Final = 5.0
"""Wall time one still image or animation may take to decode."""

# Bytes per pixel of Pillow's storage; every row also costs one pointer.
_STORAGE: Final[dict[str, int]] = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2}
_ROW_POINTER: Final = 8
# Extra bytes per pixel of core.media.image.to_rgb's conversion: alpha compositing makes RGBA
# copies, high bit depths go through float64 arrays, anything else is one RGB copy.
_ALPHA_EXTRA: Final = 16
_HIGH_DEPTH_EXTRA: Final = 40
_CONVERT_EXTRA: Final = 4
# Decoders that keep buffers of their own: libwebp's animation decoder (which Pillow uses for
# every WebP) holds the canvas, the previous canvas and the frame being decoded, RGBA each.
_FORMAT_EXTRA: Final[dict[str, int]] = {"WEBP": 12}


def _storage(mode: str) -> int:
    return _STORAGE.get(mode, 4)


def format_extra(fmt: str | None) -> int:
    """Bytes per pixel a format's decoder allocates beside Pillow's image."""
    return _FORMAT_EXTRA.get(fmt or "", 0)


def still_cost(mode: str, size: tuple[int, int], *, transparent: bool, fmt: str | None) -> int:
    """Estimated peak bytes of decoding an image of ``mode`` and ``size`` and making it RGB."""
    width, height = size
    rows = height * _ROW_POINTER
    if mode == "RGB" and not transparent:
        return rows + width * height * (_storage(mode) + format_extra(fmt))
    if transparent or mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        extra = _ALPHA_EXTRA
    elif mode in ("I", "F") or mode.startswith("I;16"):
        extra = _HIGH_DEPTH_EXTRA
    else:
        extra = _CONVERT_EXTRA
    return 2 * rows + width * height * (_storage(mode) + extra + format_extra(fmt))


def reduced_cost(mode: str, size: tuple[int, int], *, transparent: bool, fmt: str | None) -> int:
    """Estimated peak bytes when the image is box-reduced before it is made RGB: the full-size
    image plus at most one full-size copy (a conversion Pillow's ``reduce`` needs first)."""
    width, height = size
    if mode in ("L", "RGB", "I", "F") and not transparent:
        extra = 0
    elif mode in ("RGBA", "LA"):
        extra = 4  # premultiplied copy
    else:
        extra = 8 if transparent else 4
    return 2 * height * _ROW_POINTER + width * height * (_storage(mode) + extra + format_extra(fmt))


def jpeg_coefficient_bytes(
    size: tuple[int, int], layers: list[tuple[int, int, int, int]], *, progressive: bool
) -> int:
    """Bytes libjpeg holds for a progressive JPEG's DCT coefficients: 2 per pixel of every
    component at full resolution, whatever scale it is decoded at. Baseline JPEGs stream.

    ``layers`` are the components' (id, horizontal, vertical sampling, table) from the header.
    """
    if not progressive or not layers:
        return 0
    width, height = size
    h_max = max(layer[1] for layer in layers) or 1
    v_max = max(layer[2] for layer in layers) or 1
    return sum(
        2 * math.ceil(width * layer[1] / h_max) * math.ceil(height * layer[2] / v_max)
        for layer in layers
    )


def jpeg_scan_count(data: bytes) -> int:
    """Upper bound of a JPEG's scans: SOS markers (0xFFDA) cannot occur inside entropy-coded
    data, where every 0xFF is followed by 0x00 or a restart marker."""
    return data.count(b"\xff\xda")


# --- deadline -----------------------------------------------------------------------------------


class DecodeDeadline(BaseException):
    """Raised inside a decoding thread whose time is up. A BaseException so that the decoders'
    own ``except Exception`` clauses cannot swallow it; :func:`deadline` turns it into the
    caller's typed error."""


def _interrupt(thread_id: int, exc: type[BaseException] | None) -> None:
    """Have ``thread_id`` raise ``exc`` at its next bytecode; ``None`` withdraws a pending one."""
    arg = ctypes.py_object(exc) if exc is not None else None  # None is passed as NULL
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), arg)


class _Watch:
    __slots__ = ("done", "fired", "thread_id")

    def __init__(self, thread_id: int) -> None:
        self.thread_id = thread_id
        self.done = False
        self.fired = False


class _Watchdog:
    """One daemon thread that interrupts every watched thread whose deadline has passed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> _Watch:
        watch = _Watch(threading.get_ident())
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._seq), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="decode-watchdog")
                self._thread.daemon = True
                self._thread.start()
            self._cond.notify()
        return watch

    def disarm(self, watch: _Watch) -> bool:
        """Stop watching; True when the deadline fired (any pending interrupt is withdrawn)."""
        with self._cond:
            watch.done = True
            if watch.fired:
                _interrupt(watch.thread_id, None)
            return watch.fired

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                due, _, watch = self._heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                watch.fired = True
                _interrupt(watch.thread_id, DecodeDeadline)


_watchdog = _Watchdog()


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise :class:`DecodeDeadline` in this thread if the block runs longer than ``seconds``.

    ``None`` or a non-positive value means no limit. Blocks must not nest in one thread.
    """
    if not seconds or seconds <= 0:
        yield
        return
    watch = _watchdog.arm(seconds)
    try:
        yield
    finally:
        fired = _watchdog.disarm(watch)
    if fired:  # the time ran out just as the block finished
        raise DecodeDeadline
