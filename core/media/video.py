"""Pick the frames of a video worth embedding: one per scene, spaced between two limits.

Videos, Telegram animations (silent MP4), video notes (round, square MP4) and animated GIF/WebP
all go through :func:`sample_video`. How frames are chosen, and why:

* Decoding is sequential: every frame is ``grab()``-ed (decoded, not converted) and only the
  frames we look at are ``retrieve()``-d. Seeking with ``CAP_PROP_POS_FRAMES`` costs 40-170 ms
  per seek on H.264, far more than decoding the frames in between.
* Scene changes are found on a few frames per second (``analysis_fps``), each shrunk to a 64x36
  colour thumbnail; a frame differs from the last kept one by :func:`_difference` (0..1): the
  whole frame's mean absolute difference, or that of its most changed region, so a new subject
  before the same background counts too; aligned first when the camera moved. Colour rather
  than grey, so a cut between two equally bright scenes is still seen. Comparing with the last
  *kept* frame, not the previous one, also catches slow changes that never jump between two
  neighbouring frames.
* A candidate is confirmed on a frame ``FLASH_S`` later: if the picture is back to the last
  kept one, it was a flash and is dropped.
* The first frame is always kept, unless it is blank (black): then the first non-blank one.
  Blank frames are never kept while anything else exists, since they match no query.
* A frame is kept when it differs enough from the last kept one and at least ``min_gap_s`` has
  passed; one is forced when ``max_gap_s`` has passed without any. When the duration is known
  up front the forced spacing is widened to ``duration / max_frames``, so a long video spreads
  its frames over its whole length instead of running out early. A short clip is also looked
  at ``FLOOR_CANDIDATES`` times (:meth:`_Selector.floor_gap`), taking a frame wherever
  anything visible changed, however little; the ingest pipeline then merges frames the model
  sees as the same moment (``video_merge_similarity``).
* Past ``max_frames``, the kept frame least different from its predecessor is dropped, one at a
  time, so the most distinct moments survive.
* Timestamps are ``frame index / fps``; ``CAP_PROP_POS_MSEC`` is only used when the container
  gives no usable frame rate. GIF and WebP are read with Pillow, which knows each frame's own
  duration (OpenCV reports only an average rate for them).

Decoding is CPU-bound and blocking: call it from a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import cv2
import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from core.errors import (
    EmptyVideoError,
    UnreadableVideoError,
    VideoTooComplexError,
    VideoTooLargeError,
)
from core.media.decode_guard import (
    DECODE_TIMEOUT_S,
    MAX_ANIMATION_CANVAS_COST,
    MAX_ANIMATION_FRAMES,
    MAX_ANIMATION_WORK,
    MAX_DECODE_BYTES,
    DecodeDeadline,
    deadline,
    format_extra,
)
from core.media.image import DEFAULT_MAX_PIXELS, DRAFT_MARGIN, decode_image, to_rgb
from core.media.video_probe import check_video

__all__ = [
    "DEFAULT_ANALYSIS_FPS",
    "DEFAULT_MAX_FRAMES",
    "DEFAULT_MAX_GAP_S",
    "DEFAULT_MIN_GAP_S",
    "DEFAULT_SCENE_THRESHOLD",
    "Frame",
    "ProgressCallback",
    "VideoInfo",
    "VideoSample",
    "frame_from_thumbnail",
    "sample_frames",
    "sample_video",
]

DEFAULT_MIN_GAP_S: Final = 1.0
DEFAULT_MAX_GAP_S: Final = 10.0
DEFAULT_MAX_FRAMES: Final = 120
DEFAULT_SCENE_THRESHOLD: Final = 0.10
"""Difference (0..1, :func:`_difference`) of two 64x36 thumbnails that counts as a new scene: a
cut between two unrelated shots scores well above it, sensor noise and small motion well below."""
DEFAULT_ANALYSIS_FPS: Final = 5.0
"""Frames per second compared for scene changes: finds a cut within 0.2 s while converting only
one frame in six of a 30 fps video."""

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
_ASSUMED_FPS: Final = 25.0
_MAX_SANE_FPS: Final = 1000.0
_DEFAULT_GIF_FRAME_MS: Final = 100  # what browsers show for a GIF frame declaring 0 ms
_TIME_TOLERANCE: Final = 1e-3  # seconds; absorbs rounding in summed frame durations

ProgressCallback = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class Frame:
    """One sampled frame: its time from the start of the video and the picture (RGB)."""

    timestamp: float
    image: Image.Image


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What was learnt about a video while reading it.

    ``frame_count`` and ``duration`` are measured (frames actually decoded), not the container's
    claims; ``truncated`` is set when clearly fewer frames could be decoded than it declared.
    """

    duration: float
    fps: float
    frame_count: int
    width: int
    height: int
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class VideoSample:
    info: VideoInfo
    frames: list[Frame]


# --- frame selection ----------------------------------------------------------------------------


def _signature(rgb_or_bgr: np.ndarray) -> np.ndarray:
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


def _difference(a: np.ndarray, b: np.ndarray) -> float:
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
    whole = float(changed.sum()) / (hh * ww)
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
class _Selector:
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
        if gap < self.min_gap - _TIME_TOLERANCE:
            return
        diff = _difference(signature, last.signature)
        due = gap >= self.max_gap - _TIME_TOLERANCE
        floor = gap >= self.floor_gap(last.t) - _TIME_TOLERANCE
        if diff >= self.threshold or due or (floor and diff >= FLOOR_SHARE * self.threshold):
            self.pending = _Kept(t, signature, diff, image())

    def _settle(self, signature: np.ndarray) -> None:
        """Keep the waiting candidate unless ``signature`` shows it was a flash."""
        candidate, self.pending = self.pending, None
        assert candidate is not None
        last = self.kept[-1].signature
        back = _difference(signature, last) < self.threshold
        if back and _difference(signature, candidate.signature) >= self.threshold:
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
                nxt.score = _difference(nxt.signature, self.kept[i - 1].signature)

    def result(self) -> list[Frame]:
        if self.pending is not None:  # the last analysed frame: nothing left to refute it
            self._keep(self.pending)
            self.pending = None
        if not self.kept and self.blank is not None:
            t, _, img = self.blank
            return [Frame(t, img)]
        return [Frame(k.t, k.image) for k in self.kept]


class _Progress:
    """Monotone, throttled progress; 1.0 is only reported by ``done``."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._last = 0.0

    def update(self, fraction: float) -> None:
        if self._callback is None:
            return
        fraction = min(max(fraction, 0.0), 0.99)
        if fraction >= self._last + 0.01:
            self._last = fraction
            self._callback(fraction)

    def done(self) -> None:
        if self._callback is not None:
            self._callback(1.0)


# --- readers ------------------------------------------------------------------------------------


def _shrink(arr: np.ndarray, target_size: int | None) -> np.ndarray:
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


class _Capture(Protocol):
    """The part of ``cv2.VideoCapture`` we use (a protocol so tests can feed odd containers)."""

    def isOpened(self) -> bool: ...
    def get(self, prop_id: int) -> float: ...
    def grab(self) -> bool: ...
    def retrieve(self) -> tuple[bool, np.ndarray | None]: ...
    def release(self) -> None: ...


def _sane_fps(fps: float) -> bool:
    return math.isfinite(fps) and 0.0 < fps <= _MAX_SANE_FPS


class _CaptureClock:
    """The time of each grabbed frame, shared with :func:`core.ingest.reembed.frames_at` so a stored
    timestamp finds the very frame that was sampled: ``index / fps``, or, when the container
    gives no usable rate (some WebM and GIF muxers), the decoder's clock when it moves forward,
    else a common rate."""

    def __init__(self, cap: _Capture) -> None:
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps_known = _sane_fps(fps)
        self.fps = fps if self.fps_known else 0.0
        self.half_frame = 0.5 / fps if self.fps_known else 0.0
        self.index = 0  # frames ticked so far
        self.t = 0.0

    def tick(self, cap: _Capture) -> float:
        """Call once after each successful ``grab()``: the time of that frame."""
        if self.fps_known:
            self.t = self.index / self.fps
        else:
            msec = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if math.isfinite(msec) and (msec > self.t or (self.index == 0 and msec >= 0)):
                self.t = msec
            elif self.index:
                self.t += 1 / _ASSUMED_FPS
        self.index += 1
        return self.t

    def reached(self, due: float) -> bool:
        """The last ticked frame is at or past ``due`` (within half a frame)."""
        return self.t + self.half_frame + _TIME_TOLERANCE >= due


def _bgr_picture(bgr: np.ndarray, target_size: int | None) -> Image.Image:
    """A decoded frame as the RGB picture to embed, shrunk for the model."""
    small = _shrink(bgr, target_size)
    if small.ndim == 2:
        return Image.fromarray(small).convert("RGB")
    return Image.fromarray(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))


def _read_capture(
    cap: _Capture,
    selector: _Selector,
    progress: _Progress,
    *,
    analysis_fps: float,
    target_size: int | None,
) -> VideoInfo:
    clock = _CaptureClock(cap)
    declared = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    declared_frames = int(declared) if math.isfinite(declared) and declared > 0 else 0
    if clock.fps_known and declared_frames:
        selector.duration = declared_frames / clock.fps
        selector.max_gap = max(selector.max_gap, selector.duration / selector.max_frames)
    step = 1.0 / analysis_fps

    next_due = next_step = 0.0
    width = height = 0
    while cap.grab():
        t = clock.tick(cap)
        if clock.reached(next_due):
            ok, bgr = cap.retrieve()
            if ok and bgr is not None and bgr.size:
                height, width = bgr.shape[:2]
                frame = bgr

                def image(frame: np.ndarray = frame) -> Image.Image:
                    return _bgr_picture(frame, target_size)

                if clock.reached(next_step):
                    next_step = t + step
                selector.offer(t, _signature(frame), image)
                # A waiting candidate is checked against a frame soon after it, off the steps.
                next_due = (
                    min(next_step, t + FLASH_S) if selector.pending is not None else next_step
                )
        if declared_frames:
            progress.update(clock.index / declared_frames)

    index = clock.index
    if index == 0:
        raise EmptyVideoError("the video has no frames")
    if not width:
        raise UnreadableVideoError("no frame of the video could be decoded")
    if clock.fps_known:
        duration = index / clock.fps
        fps = clock.fps
    else:
        duration = clock.t + 1 / _ASSUMED_FPS
        fps = index / duration
    return VideoInfo(
        duration=duration,
        fps=fps,
        frame_count=index,
        width=width,
        height=height,
        truncated=bool(declared_frames) and index < 0.9 * declared_frames,
    )


def _read_animation(
    img: Image.Image,
    selector: _Selector,
    progress: _Progress,
    *,
    analysis_fps: float,
    target_size: int | None,
    file_size: int,
    started: float,
) -> VideoInfo:
    """GIF / animated WebP through Pillow, with each frame's own duration.

    Every GIF frame is composited on the whole canvas, so the frames decoded are capped by
    canvas pixels (``MAX_ANIMATION_WORK``) and by a soft share of the time budget; frames past
    either cap are left out, as if the file ended there (``truncated``).
    """
    width, height = img.size
    limit = max(1, min(MAX_ANIMATION_FRAMES, MAX_ANIMATION_WORK // (width * height)))
    soft_deadline = started + _SOFT_TIME_SHARE * DECODE_TIMEOUT_S
    fraction = _animation_progress(img, file_size)
    step = 1.0 / analysis_fps
    t = 0.0
    next_due = 0.0
    count = 0
    truncated = False
    frames: Iterator[Image.Image] = ImageSequence.Iterator(img)
    while True:
        if count >= limit or (count and _clock() > soft_deadline):
            truncated = _has_more_frames(img)
            break
        try:
            frame = next(frames)
            frame.load()  # every frame: GIF frames build on the previous one; WebP sets duration
            duration = float(frame.info.get("duration") or _DEFAULT_GIF_FRAME_MS)
            # Compare frames on the same schedule as a video; skip the conversion otherwise.
            if t + _TIME_TOLERANCE >= next_due:
                arr: np.ndarray | None = np.asarray(to_rgb(frame))
                signature = _signature(arr)
            else:
                arr = None
        except StopIteration:
            break
        except Exception:  # a damaged frame: keep what came before it
            truncated = True
            break
        if arr is not None:
            next_due = t + step

            def image(arr: np.ndarray = arr) -> Image.Image:
                return Image.fromarray(_shrink(arr, target_size))

            selector.offer(t, signature, image)
        t += max(duration, 0.0) / 1000.0
        count += 1
        progress.update(fraction(count))

    if count == 0:
        raise UnreadableVideoError("no frame of the animation could be decoded")
    return VideoInfo(
        duration=t,
        fps=count / t if t > 0 else 0.0,
        frame_count=count,
        width=width,
        height=height,
        truncated=truncated,
    )


_SOFT_TIME_SHARE: Final = 0.6
"""Share of the time budget after which an animation stops decoding and keeps what it has;
the rest is headroom before the hard deadline, which fails the file."""
_clock = time.monotonic  # the soft deadline's clock (tests replace it, not the process's)


def _animation_progress(img: Image.Image, file_size: int) -> Callable[[int], float]:
    """Progress after ``count`` frames: WebP declares its frame count, a GIF is read in order,
    so its file position tells (counting GIF frames would mean reading the file twice)."""
    if img.format == "WEBP":
        total = max(1, int(getattr(img, "n_frames", 1)))
        return lambda count: count / total

    def position(_: int) -> float:
        try:
            return img.fp.tell() / file_size if img.fp is not None and file_size else 0.0
        except (OSError, ValueError):
            return 0.0

    return position


def _has_more_frames(img: Image.Image) -> bool:
    try:
        img.seek(img.tell() + 1)
    except Exception:
        return False
    return True


# --- public API ---------------------------------------------------------------------------------


def _head(source: Path | bytes) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source[:16])
    with open(source, "rb") as f:
        return f.read(16)


def _is_pillow_animation(head: bytes) -> bool:
    return head.startswith(b"GIF8") or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _suffix(head: bytes) -> str:
    """A file name extension for the temporary copy; FFmpeg probes the content anyway."""
    if head[4:8] == b"ftyp":
        return ".mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return ".webm"
    if head[:4] == b"RIFF" and head[8:11] == b"AVI":
        return ".avi"
    return ".bin"


@contextlib.contextmanager
def _as_path(source: Path | bytes, head: bytes) -> Iterator[Path]:
    """OpenCV reads only from files: bytes go to a temporary file, removed whatever happens."""
    if not isinstance(source, (bytes, bytearray, memoryview)):
        yield Path(source)
        return
    fd, name = tempfile.mkstemp(prefix="video-", suffix=_suffix(head))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(source)
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def _check_source(source: Path | bytes) -> bytes:
    """Reject empty or missing input early, with the typed error; return the first bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise EmptyVideoError("the video file is empty")
    elif isinstance(source, (str, os.PathLike)):
        try:
            size = os.path.getsize(source)
        except OSError as e:
            raise UnreadableVideoError(f"cannot read {source}: {e.strerror or e}") from e
        if size == 0:
            raise EmptyVideoError("the video file is empty")
    else:
        raise TypeError(f"expected bytes or a path, got {type(source).__name__}")
    try:
        return _head(source)
    except OSError as e:
        raise UnreadableVideoError(f"cannot read {source}: {e.strerror or e}") from e


def sample_video(
    source: Path | bytes,
    *,
    min_gap_s: float = DEFAULT_MIN_GAP_S,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    max_frames: int = DEFAULT_MAX_FRAMES,
    scene_threshold: float = DEFAULT_SCENE_THRESHOLD,
    progress: ProgressCallback | None = None,
    target_size: int | None = None,
    analysis_fps: float = DEFAULT_ANALYSIS_FPS,
) -> VideoSample:
    """Read a video, animation or video note and return the frames to embed, in time order.

    ``target_size`` (the model input side) shrinks kept frames to a shorter side of
    ``DRAFT_MARGIN * target_size``, which keeps memory small for long HD videos; without it
    frames keep their full resolution. ``progress`` receives increasing fractions and 1.0 at
    the end (only intermediate values when the container declares its frame count); an
    exception it raises stops the work and propagates, temporary files removed.

    Raises EmptyVideoError (no bytes, no frames) or UnreadableVideoError (not a video we can
    decode, damaged beyond the first frame).
    """
    if min_gap_s < 0 or max_gap_s <= 0 or min_gap_s > max_gap_s:
        raise ValueError(
            f"need 0 <= min_gap_s <= max_gap_s and max_gap_s > 0, got {min_gap_s}, {max_gap_s}"
        )
    if max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    if not 0.0 < scene_threshold <= 1.0:
        raise ValueError(f"scene_threshold must be in (0, 1], got {scene_threshold}")
    if analysis_fps <= 0:
        raise ValueError(f"analysis_fps must be positive, got {analysis_fps}")

    head = _check_source(source)
    selector = _Selector(min_gap_s, max_gap_s, max_frames, scene_threshold)
    tracker = _Progress(progress)
    if _is_pillow_animation(head):
        info = _sample_animation(
            source, selector, tracker, analysis_fps=analysis_fps, target_size=target_size
        )
    else:
        with _as_path(source, head) as path:
            check_video(path)  # FFmpeg's open, tried first within memory and time limits
            cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
            try:
                if not cap.isOpened():
                    raise UnreadableVideoError("not a video format we can read, or damaged")
                info = _read_capture(
                    cap,
                    selector,
                    tracker,
                    analysis_fps=analysis_fps,
                    target_size=target_size,
                )
            finally:
                cap.release()

    frames = selector.result()
    tracker.done()
    return VideoSample(info=info, frames=frames)


def _sample_animation(
    source: Path | bytes,
    selector: _Selector,
    tracker: _Progress,
    *,
    analysis_fps: float,
    target_size: int | None,
) -> VideoInfo:
    """GIF / WebP frames within the decode budgets: canvas checked before any frame is decoded,
    frames capped, and a hard deadline for files made of millions of tiny blocks."""
    started = _clock()
    try:
        with deadline(DECODE_TIMEOUT_S), _open_animation(source) as img:
            _check_canvas(img)
            return _read_animation(
                img,
                selector,
                tracker,
                analysis_fps=analysis_fps,
                target_size=target_size,
                file_size=_size_of(source),
                started=started,
            )
    except DecodeDeadline:
        raise VideoTooComplexError(
            f"decoding the animation took longer than {DECODE_TIMEOUT_S:g} s"
        ) from None


def _size_of(source: Path | bytes) -> int:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return len(source)
    try:
        return os.path.getsize(source)
    except OSError:
        return 0


def _open_animation(source: Path | bytes) -> Image.Image:
    data: io.BytesIO | Path = (
        io.BytesIO(bytes(source))
        if isinstance(source, (bytes, bytearray, memoryview))
        else Path(source)
    )
    try:
        return Image.open(data, formats=("GIF", "WEBP"))
    except Image.DecompressionBombError as e:
        raise VideoTooLargeError(f"the animation is too large: {e}") from e
    except OSError as e:
        if isinstance(data, Path) and not isinstance(e, UnidentifiedImageError):
            raise UnreadableVideoError(f"cannot read {data}: {e.strerror or e}") from e
        raise UnreadableVideoError(f"the animation is damaged: {e}") from e
    except Exception as e:  # Pillow's plugins raise ValueError, IndexError, struct.error, ...
        raise UnreadableVideoError(f"the animation is damaged: {e}") from e


def _check_canvas(img: Image.Image) -> None:
    """Refuse, before decoding, a canvas whose every frame would cost too much memory."""
    w, h = img.size
    if w < 1 or h < 1:
        raise UnreadableVideoError(f"the animation declares an empty size {w}x{h}")
    per_pixel = MAX_ANIMATION_CANVAS_COST + format_extra(img.format)
    if w * h > DEFAULT_MAX_PIXELS or w * h * per_pixel > MAX_DECODE_BYTES:
        raise VideoTooLargeError(f"the animation is too large: {w}x{h} pixels per frame")


def sample_frames(
    source: Path | bytes,
    *,
    min_gap_s: float = DEFAULT_MIN_GAP_S,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    max_frames: int = DEFAULT_MAX_FRAMES,
    scene_threshold: float = DEFAULT_SCENE_THRESHOLD,
    progress: ProgressCallback | None = None,
    target_size: int | None = None,
) -> list[Frame]:
    """The frames of :func:`sample_video` without the video's description."""
    return sample_video(
        source,
        min_gap_s=min_gap_s,
        max_gap_s=max_gap_s,
        max_frames=max_frames,
        scene_threshold=scene_threshold,
        progress=progress,
        target_size=target_size,
    ).frames


def frame_from_thumbnail(data: bytes, *, target_size: int | None = None) -> Frame:
    """The one frame of a video known only by its thumbnail (too large to download).

    Raises the :class:`~core.errors.ImageError` family, like any picture.
    """
    return Frame(0.0, decode_image(data, target_size=target_size))
