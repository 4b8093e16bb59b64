"""The video frame clock: every frame of a video, in decoding order, with its capture time.

One clock for everything that reads frames, so a timestamp stored at ingest finds the very frame
that was embedded when the video is read again (:func:`frames_at`, background re-embedding):

* an OpenCV capture (MP4, WebM, ...): ``frame index / fps``; when the container gives no usable
  rate (some WebM and GIF muxers), the decoder's clock when it moves forward, else a common
  rate (:class:`CaptureClock`, :class:`CaptureFrames`);
* GIF / animated WebP through Pillow: each frame starts where the durations before it end (a
  frame declaring 0 ms lasts ``DEFAULT_GIF_FRAME_MS``, as browsers show it;
  :class:`AnimationFrames`).

Both are :class:`FrameStream` s: iterate for the times, look at a frame with :meth:`pixels`
(only the frames looked at are converted) and make the picture to embed with :meth:`picture`.
Blocking and CPU-bound: call from a worker thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import cv2
import numpy as np
from PIL import Image, ImageSequence

from core.errors import UnreadableVideoError
from core.media.decode_guard import DECODE_TIMEOUT_S, DecodeDeadline, deadline
from core.media.image import DRAFT_MARGIN, to_rgb
from core.media.video_source import (
    as_path,
    check_canvas,
    check_source,
    is_pillow_animation,
    open_animation,
)

__all__ = [
    "ASSUMED_FPS",
    "DEFAULT_GIF_FRAME_MS",
    "TIME_TOLERANCE",
    "AnimationFrames",
    "Capture",
    "CaptureClock",
    "CaptureFrames",
    "Frame",
    "FrameStream",
    "frames_at",
    "pick_frames",
    "shrink_frame",
]

ASSUMED_FPS: Final = 25.0
_MAX_SANE_FPS: Final = 1000.0
DEFAULT_GIF_FRAME_MS: Final = 100  # what browsers show for a GIF frame declaring 0 ms
TIME_TOLERANCE: Final = 1e-3  # seconds; absorbs rounding in summed frame durations


@dataclass(frozen=True, slots=True)
class Frame:
    """One sampled frame: its time from the start of the video and the picture (RGB)."""

    timestamp: float
    image: Image.Image


def shrink_frame(arr: np.ndarray, target_size: int | None) -> np.ndarray:
    """Downscale so the shorter side is ``DRAFT_MARGIN * target_size`` (frames keep more margin
    than JPEG decoding's 1.5x), keeping enough pixels for the model's own antialiased resize."""
    if not target_size:
        return arr
    h, w = arr.shape[:2]
    needed = DRAFT_MARGIN * target_size
    if min(h, w) <= needed:
        return arr
    scale = needed / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(arr, size, interpolation=cv2.INTER_AREA)


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` we use (a protocol so tests can feed odd containers)."""

    def isOpened(self) -> bool: ...
    def get(self, prop_id: int) -> float: ...
    def grab(self) -> bool: ...
    def retrieve(self) -> tuple[bool, np.ndarray | None]: ...
    def release(self) -> None: ...


def _sane_fps(fps: float) -> bool:
    return math.isfinite(fps) and 0.0 < fps <= _MAX_SANE_FPS


class CaptureClock:
    """The time of each grabbed frame: ``index / fps``, or, when the container gives no usable
    rate (some WebM and GIF muxers), the decoder's clock when it moves forward, else a common
    rate."""

    def __init__(self, cap: Capture) -> None:
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps_known = _sane_fps(fps)
        self.fps = fps if self.fps_known else 0.0
        self.half_frame = 0.5 / fps if self.fps_known else 0.0
        self.index = 0  # frames ticked so far
        self.t = 0.0

    def tick(self, cap: Capture) -> float:
        """Call once after each successful ``grab()``: the time of that frame."""
        if self.fps_known:
            self.t = self.index / self.fps
        else:
            msec = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if math.isfinite(msec) and (msec > self.t or (self.index == 0 and msec >= 0)):
                self.t = msec
            elif self.index:
                self.t += 1 / ASSUMED_FPS
        self.index += 1
        return self.t

    def reached(self, due: float) -> bool:
        """The last ticked frame is at or past ``due`` (within half a frame)."""
        return self.t + self.half_frame + TIME_TOLERANCE >= due


class FrameStream(Protocol):
    """Frames in decoding order: iterating gives each frame's time; while a frame is current,
    :meth:`reached` compares its time and :meth:`pixels` decodes it for a look."""

    def __iter__(self) -> Iterator[float]: ...
    def reached(self, due: float) -> bool: ...
    def pixels(self) -> np.ndarray | None: ...
    def picture(self, pixels: np.ndarray, target_size: int | None) -> Image.Image: ...


class CaptureFrames:
    """An OpenCV capture's frames on :class:`CaptureClock`. Every frame is ``grab()``-ed
    (decoded, not converted); only those looked at are ``retrieve()``-d. Sequential on
    purpose: seeking costs 40-170 ms per seek on H.264 and lands imprecisely."""

    def __init__(self, cap: Capture) -> None:
        self._cap = cap
        self.clock = CaptureClock(cap)

    def __iter__(self) -> Iterator[float]:
        while self._cap.grab():
            yield self.clock.tick(self._cap)

    def reached(self, due: float) -> bool:
        return self.clock.reached(due)

    def pixels(self) -> np.ndarray | None:
        """The current frame (BGR or grey), None when it cannot be converted."""
        ok, bgr = self._cap.retrieve()
        return bgr if ok and bgr is not None and bgr.size else None

    def picture(self, pixels: np.ndarray, target_size: int | None) -> Image.Image:
        """A decoded frame as the RGB picture to embed, shrunk for the model."""
        small = shrink_frame(pixels, target_size)
        if small.ndim == 2:
            return Image.fromarray(small).convert("RGB")
        return Image.fromarray(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))


class AnimationFrames:
    """A GIF / animated WebP's frames (opened with Pillow), each starting where the durations
    before it end. Every frame is loaded (GIF frames build on the previous one; WebP sets the
    duration then); only those looked at are converted.

    ``proceed(count)`` is asked before each frame with the number of frames passed so far;
    False ends the stream (``cut`` is set when frames were left). A frame that fails to decode
    ends it too (``damaged``): what came before it is all there is. ``duration`` and ``count``
    cover the frames passed so far (the whole animation once the stream ended by itself).
    """

    def __init__(self, img: Image.Image, proceed: Callable[[int], bool] | None = None) -> None:
        self._img = img
        self._proceed = proceed
        self._frame: Image.Image | None = None
        self.t = 0.0
        self.duration = 0.0
        self.count = 0
        self.cut = False
        self.damaged = False

    def __iter__(self) -> Iterator[float]:
        frames = ImageSequence.Iterator(self._img)
        while True:
            if self._proceed is not None and not self._proceed(self.count):
                self.cut = self._has_more_frames()
                return
            try:
                frame = next(frames)
                frame.load()
                length = float(frame.info.get("duration") or DEFAULT_GIF_FRAME_MS)
            except StopIteration:
                return
            except Exception:  # a damaged frame: what came before it is all there is
                self.damaged = True
                return
            self._frame = frame
            self.t = self.duration
            yield self.t
            self.duration += max(length, 0.0) / 1000.0
            self.count += 1

    def _has_more_frames(self) -> bool:
        try:
            self._img.seek(self._img.tell() + 1)
        except Exception:
            return False
        return True

    def reached(self, due: float) -> bool:
        return self.t + TIME_TOLERANCE >= due

    def pixels(self) -> np.ndarray:
        """The current frame as RGB pixels (raises what Pillow raises for a broken frame)."""
        assert self._frame is not None, "iterate first"
        return np.asarray(to_rgb(self._frame))

    def picture(self, pixels: np.ndarray, target_size: int | None) -> Image.Image:
        return Image.fromarray(shrink_frame(pixels, target_size))


def pick_frames(
    stream: FrameStream, wanted: Sequence[float], target_size: int | None
) -> dict[float, Frame]:
    """The frame for each of the sorted times ``wanted``: the first frame whose time reaches it
    (within half a frame), with that frame's own time. Times past the end are left out."""
    found: dict[float, Frame] = {}
    i = 0
    if not wanted:
        return found
    for t in stream:
        if not stream.reached(wanted[i]):
            continue
        pixels = stream.pixels()
        if pixels is None:
            continue
        frame = Frame(t, stream.picture(pixels, target_size))
        while i < len(wanted) and stream.reached(wanted[i]):
            found[wanted[i]] = frame
            i += 1
        if i >= len(wanted):
            break
    return found


def frames_at(
    source: Path | bytes, timestamps: Sequence[float], *, target_size: int | None = None
) -> list[Frame]:
    """The frames at ``timestamps`` (seconds), in that order, shrunk like the sampler's
    (:func:`core.media.video.sample_video`), so the same time gives the same picture; each
    :class:`Frame` carries the time of the frame found.

    Raises ``EmptyVideoError`` / ``UnreadableVideoError``, the latter also when the video ends
    before a timestamp.
    """
    wanted = sorted({float(t) for t in timestamps})
    head = check_source(source)
    if is_pillow_animation(head):
        found = _animation_frames_at(source, wanted, target_size)
    else:
        with as_path(source, head) as path:
            cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
            try:
                if not cap.isOpened():
                    raise UnreadableVideoError("not a video format we can read, or damaged")
                found = pick_frames(CaptureFrames(cap), wanted, target_size)
            finally:
                cap.release()
    missing = [t for t in wanted if t not in found]
    if missing:
        raise UnreadableVideoError(
            f"the video ends before {missing[0]:.2f} s, a moment that was indexed"
        )
    return [found[float(t)] for t in timestamps]


def _animation_frames_at(
    source: Path | bytes, wanted: list[float], target_size: int | None
) -> dict[float, Frame]:
    """Opened, checked and bounded in time as the sampler does: the stored file is no more
    trusted now than at ingest."""
    try:
        with deadline(DECODE_TIMEOUT_S), open_animation(source) as img:
            check_canvas(img)
            return pick_frames(AnimationFrames(img), wanted, target_size)
    except DecodeDeadline as e:
        raise UnreadableVideoError("the animation takes too long to decode") from e
