"""Pick the frames of a video worth embedding: one per scene, spaced between two limits.

Videos, Telegram animations (silent MP4), video notes (round, square MP4) and animated GIF/WebP
all go through :func:`sample_video`. How frames are chosen, and why:

* Decoding is sequential: every frame is ``grab()``-ed (decoded, not converted) and only the
  frames we look at are ``retrieve()``-d. Seeking with ``CAP_PROP_POS_FRAMES`` costs 40-170 ms
  per seek on H.264, far more than decoding the frames in between.
* Scene changes are found on a few frames per second (``analysis_fps``), each shrunk to a 64x36
  colour thumbnail; a frame differs from the last kept one by the mean absolute difference of
  those thumbnails (0..1). Colour rather than grey, so a cut between two equally bright scenes
  is still seen. Comparing with the last *kept* frame, not the previous one, also catches slow
  changes (fades, pans) that never jump between two neighbouring frames.
* The first frame is always kept, unless it is blank (black): then the first non-blank one.
  Blank frames are never kept while anything else exists, since they match no query.
* A frame is kept when it differs enough from the last kept one and at least ``min_gap_s`` has
  passed; one is forced when ``max_gap_s`` has passed without any. When the duration is known
  up front the forced spacing is widened to ``duration / max_frames``, so a long video spreads
  its frames over its whole length instead of running out early.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import cv2
import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from core.errors import EmptyVideoError, UnreadableVideoError
from core.image import DEFAULT_MAX_PIXELS, DRAFT_MARGIN, decode_image, to_rgb

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
"""Mean absolute difference (0..1) of two 64x36 thumbnails that counts as a new scene. A cut
between two unrelated shots scores 0.15-0.4; sensor noise and small motion stay below 0.05."""
DEFAULT_ANALYSIS_FPS: Final = 5.0
"""Frames per second compared for scene changes: finds a cut within 0.2 s while converting only
one frame in six of a 30 fps video."""

SIGNATURE_SIZE: Final = (64, 36)
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


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(cv2.absdiff(a, b).mean()) / 255.0


@dataclass(slots=True)
class _Kept:
    t: float
    signature: np.ndarray
    score: float  # difference from the previous kept frame; inf for the first
    image: Image.Image


@dataclass(slots=True)
class _Selector:
    """Streaming frame choice: ``offer`` every analysed frame in time order, then ``result``."""

    min_gap: float
    max_gap: float
    max_frames: int
    threshold: float
    kept: list[_Kept] = field(default_factory=list)
    blank: tuple[float, np.ndarray, Image.Image] | None = None

    def offer(self, t: float, signature: np.ndarray, image: Callable[[], Image.Image]) -> None:
        if int(signature.max()) <= BLANK_LEVEL:
            if self.blank is None and not self.kept:
                self.blank = (t, signature, image())
            return
        if not self.kept:
            self._keep(t, signature, math.inf, image)
            return
        last = self.kept[-1]
        gap = t - last.t
        if gap < self.min_gap - _TIME_TOLERANCE:
            return
        diff = _difference(signature, last.signature)
        if diff >= self.threshold or gap >= self.max_gap - _TIME_TOLERANCE:
            self._keep(t, signature, diff, image)

    def _keep(
        self, t: float, signature: np.ndarray, score: float, image: Callable[[], Image.Image]
    ) -> None:
        self.kept.append(_Kept(t, signature, score, image()))
        if len(self.kept) > self.max_frames:
            # Drop the frame that adds least; its successor is then compared with the frame
            # before it, which may raise that successor's score.
            i = min(range(1, len(self.kept)), key=lambda k: self.kept[k].score)
            del self.kept[i]
            if i < len(self.kept):
                nxt = self.kept[i]
                nxt.score = _difference(nxt.signature, self.kept[i - 1].signature)

    def result(self) -> list[Frame]:
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


def _read_capture(
    cap: _Capture,
    selector: _Selector,
    progress: _Progress,
    *,
    analysis_fps: float,
    target_size: int | None,
) -> VideoInfo:
    fps = cap.get(cv2.CAP_PROP_FPS)
    declared = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    declared_frames = int(declared) if math.isfinite(declared) and declared > 0 else 0
    fps_known = _sane_fps(fps)
    if fps_known and declared_frames:
        selector.max_gap = max(selector.max_gap, declared_frames / fps / selector.max_frames)
    step = 1.0 / analysis_fps
    half_frame = 0.5 / fps if fps_known else 0.0

    index = 0
    t = 0.0
    next_due = 0.0
    width = height = 0
    while cap.grab():
        if fps_known:
            t = index / fps
        else:
            # No usable rate (some WebM and GIF muxers): trust the decoder's clock when it moves
            # forward, else assume a common rate.
            msec = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if math.isfinite(msec) and (msec > t or (index == 0 and msec >= 0)):
                t = msec
            elif index:
                t += 1 / _ASSUMED_FPS
        if t + half_frame + _TIME_TOLERANCE >= next_due:
            ok, bgr = cap.retrieve()
            if ok and bgr is not None and bgr.size:
                next_due = t + step
                height, width = bgr.shape[:2]
                frame = bgr

                def image(frame: np.ndarray = frame) -> Image.Image:
                    small = _shrink(frame, target_size)
                    if small.ndim == 2:
                        return Image.fromarray(small).convert("RGB")
                    return Image.fromarray(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))

                selector.offer(t, _signature(frame), image)
        index += 1
        if declared_frames:
            progress.update(index / declared_frames)

    if index == 0:
        raise EmptyVideoError("the video has no frames")
    if not width:
        raise UnreadableVideoError("no frame of the video could be decoded")
    if fps_known:
        duration = index / fps
    else:
        duration = t + 1 / _ASSUMED_FPS
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
) -> VideoInfo:
    """GIF / animated WebP through Pillow, with each frame's own duration."""
    total = getattr(img, "n_frames", 1)
    step = 1.0 / analysis_fps
    t = 0.0
    next_due = 0.0
    count = 0
    truncated = False
    frames: Iterator[Image.Image] = ImageSequence.Iterator(img)
    while True:
        try:
            frame = next(frames)
            frame.load()  # every frame: GIF frames build on the previous one; WebP sets duration
            duration = frame.info.get("duration") or _DEFAULT_GIF_FRAME_MS
            # Compare frames on the same schedule as a video; skip the conversion otherwise.
            arr = np.asarray(to_rgb(frame)) if t + _TIME_TOLERANCE >= next_due else None
        except StopIteration:
            break
        except Exception:  # a damaged frame: keep what came before it
            truncated = True
            break
        if arr is not None:
            next_due = t + step

            def image(arr: np.ndarray = arr) -> Image.Image:
                return Image.fromarray(_shrink(arr, target_size))

            selector.offer(t, _signature(arr), image)
        t += float(duration) / 1000.0
        count += 1
        progress.update(count / max(total, 1))

    if count == 0:
        raise UnreadableVideoError("no frame of the animation could be decoded")
    width, height = img.size
    return VideoInfo(
        duration=t,
        fps=count / t if t > 0 else 0.0,
        frame_count=count,
        width=width,
        height=height,
        truncated=truncated,
    )


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
    data: io.BytesIO | Path = (
        io.BytesIO(bytes(source))
        if isinstance(source, (bytes, bytearray, memoryview))
        else Path(source)
    )
    try:
        img = Image.open(data, formats=("GIF", "WEBP"))
    except Image.DecompressionBombError as e:
        raise UnreadableVideoError(f"the animation is too large: {e}") from e
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise UnreadableVideoError(f"the animation is damaged: {e}") from e
    with img:
        w, h = img.size
        if w < 1 or h < 1:
            raise UnreadableVideoError(f"the animation declares an empty size {w}x{h}")
        if w * h > DEFAULT_MAX_PIXELS:
            raise UnreadableVideoError(f"the animation is too large: {w}x{h} pixels per frame")
        return _read_animation(
            img,
            selector,
            tracker,
            analysis_fps=analysis_fps,
            target_size=target_size,
        )


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
