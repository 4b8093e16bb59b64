"""Pick the frames of a video worth embedding: one per scene, spaced between two limits.

Videos, Telegram animations (silent MP4), video notes (round, square MP4) and animated GIF/WebP
all go through :func:`sample_video`. How frames are chosen, and why:

* Decoding is sequential: every frame is ``grab()``-ed (decoded, not converted) and only the
  frames we look at are ``retrieve()``-d. Seeking with ``CAP_PROP_POS_FRAMES`` costs 40-170 ms
  per seek on H.264, far more than decoding the frames in between.
* Scene changes are found on a few frames per second (``analysis_fps``), each shrunk to a 64x36
  colour thumbnail; a frame differs from the last kept one by
  :func:`~core.media.shots.difference` (0..1): the whole frame's mean absolute difference, or
  that of its most changed region, so a new subject before the same background counts too;
  aligned first when the camera moved. Colour rather than grey, so a cut between two equally
  bright scenes is still seen. Comparing with the last *kept* frame, not the previous one, also
  catches slow changes that never jump between two neighbouring frames.
* A candidate is confirmed on a frame ``FLASH_S`` later: if the picture is back to the last
  kept one, it was a flash and is dropped.
* The first frame is always kept, unless it is blank (black): then the first non-blank one.
  Blank frames are never kept while anything else exists, since they match no query.
* A frame is kept when it differs enough from the last kept one and at least ``min_gap_s`` has
  passed; one is forced when ``max_gap_s`` has passed without any. When the duration is known
  up front the forced spacing is widened to ``duration / max_frames``, so a long video spreads
  its frames over its whole length instead of running out early. A short clip is also looked
  at ``FLOOR_CANDIDATES`` times (:meth:`~core.media.shots.Selector.floor_gap`), taking a frame
  wherever anything visible changed, however little; the ingest pipeline then merges frames the
  model sees as the same moment (``VIDEO_MERGE_SIMILARITY``).
* Past ``max_frames``, the kept frame least different from its predecessor is dropped, one at a
  time, so the most distinct moments survive.
* Timestamps are ``frame index / fps`` (the frame clock of :mod:`core.media.frame_clock`, shared
  with re-embedding); ``CAP_PROP_POS_MSEC`` is only used when the container gives no usable
  frame rate. GIF and WebP are read with Pillow, which knows each frame's own duration (OpenCV
  reports only an average rate for them).

Decoding is CPU-bound and blocking: call it from a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final

import cv2
from PIL import Image, ImageFile

from core.errors import EmptyVideoError, UnreadableVideoError, VideoTooComplexError
from core.media.decode_guard import (
    DECODE_TIMEOUT_S,
    MAX_ANIMATION_FRAMES,
    MAX_ANIMATION_WORK,
    DecodeDeadline,
    deadline,
)
from core.media.frame_clock import ASSUMED_FPS, AnimationFrames, Capture, CaptureFrames, Frame
from core.media.image import decode_image
from core.media.shots import FLASH_S, Selector, signature
from core.media.video_probe import check_video
from core.media.video_source import (
    as_path,
    check_canvas,
    check_source,
    is_pillow_animation,
    open_animation,
    size_of,
)
from core.settings import VideoSettings

__all__ = [
    "DEFAULT_ANALYSIS_FPS",
    "Frame",
    "ProgressCallback",
    "VideoInfo",
    "VideoSample",
    "frame_from_thumbnail",
    "sample_frames",
    "sample_video",
]

DEFAULT_ANALYSIS_FPS: Final = 5.0
"""Frames per second compared for scene changes: finds a cut within 0.2 s while converting only
one frame in six of a 30 fps video."""

ProgressCallback = Callable[[float], None]


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


def _read_capture(
    cap: Capture,
    selector: Selector,
    progress: _Progress,
    *,
    analysis_fps: float,
    target_size: int | None,
) -> VideoInfo:
    frames = CaptureFrames(cap)
    clock = frames.clock
    declared = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    declared_frames = int(declared) if math.isfinite(declared) and declared > 0 else 0
    if clock.fps_known and declared_frames:
        selector.duration = declared_frames / clock.fps
        selector.max_gap = max(selector.max_gap, selector.duration / selector.max_frames)
    step = 1.0 / analysis_fps

    next_due = next_step = 0.0
    width = height = 0
    for t in frames:
        if frames.reached(next_due):
            bgr = frames.pixels()
            if bgr is not None:
                height, width = bgr.shape[:2]
                if frames.reached(next_step):
                    next_step = t + step
                image = partial(frames.picture, bgr, target_size)
                selector.offer(t, signature(bgr), image)
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
        duration = clock.t + 1 / ASSUMED_FPS
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
    selector: Selector,
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
    frames = AnimationFrames(img, _animation_budget(img, progress, file_size, started))
    step = 1.0 / analysis_fps
    next_due = 0.0
    broken = False
    for t in frames:
        # Compare frames on the same schedule as a video; skip the conversion otherwise.
        if not frames.reached(next_due):
            continue
        try:
            arr = frames.pixels()
            frame_signature = signature(arr)
        except Exception:  # a damaged frame: keep what came before it
            broken = True
            break
        next_due = t + step
        selector.offer(t, frame_signature, partial(frames.picture, arr, target_size))

    count, duration = frames.count, frames.duration
    if count == 0:
        raise UnreadableVideoError("no frame of the animation could be decoded")
    width, height = img.size
    return VideoInfo(
        duration=duration,
        fps=count / duration if duration > 0 else 0.0,
        frame_count=count,
        width=width,
        height=height,
        truncated=broken or frames.damaged or frames.cut,
    )


def _animation_budget(
    img: Image.Image, progress: _Progress, file_size: int, started: float
) -> Callable[[int], bool]:
    """Asked before each frame: reports progress, and says whether another frame may be
    decoded (within ``MAX_ANIMATION_FRAMES``, the canvas work and the soft time budget)."""
    width, height = img.size
    limit = max(1, min(MAX_ANIMATION_FRAMES, MAX_ANIMATION_WORK // (width * height)))
    soft_deadline = started + _SOFT_TIME_SHARE * DECODE_TIMEOUT_S
    fraction = _animation_progress(img, file_size)

    def proceed(count: int) -> bool:
        if count:
            progress.update(fraction(count))
        return not (count >= limit or (count and _clock() > soft_deadline))

    return proceed


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
        fp = img.fp if isinstance(img, ImageFile.ImageFile) else None  # Image.open's file
        try:
            return fp.tell() / file_size if fp is not None and file_size else 0.0
        except (OSError, ValueError):
            return 0.0

    return position


# --- public API ---------------------------------------------------------------------------------


def sample_video(
    source: Path | bytes,
    sampling: VideoSettings | None = None,
    *,
    progress: ProgressCallback | None = None,
    target_size: int | None = None,
    analysis_fps: float = DEFAULT_ANALYSIS_FPS,
) -> VideoSample:
    """Read a video, animation or video note and return the frames to embed, in time order.

    ``sampling``: the gaps, frame cap and scene threshold (the VIDEO_* settings; None: their
    defaults). ``target_size`` (the model input side) shrinks kept frames to a shorter side of
    ``DRAFT_MARGIN * target_size``, which keeps memory small for long HD videos; without it
    frames keep their full resolution. ``progress`` receives increasing fractions and 1.0 at
    the end (only intermediate values when the container declares its frame count); an
    exception it raises stops the work and propagates, temporary files removed.

    Raises EmptyVideoError (no bytes, no frames) or UnreadableVideoError (not a video we can
    decode, damaged beyond the first frame).
    """
    if analysis_fps <= 0:
        raise ValueError(f"analysis_fps must be positive, got {analysis_fps}")

    head = check_source(source)
    s = sampling if sampling is not None else VideoSettings()
    selector = Selector(s.min_gap_s, s.max_gap_s, s.max_frames, s.scene_threshold)
    tracker = _Progress(progress)
    if is_pillow_animation(head):
        info = _sample_animation(
            source, selector, tracker, analysis_fps=analysis_fps, target_size=target_size
        )
    else:
        with as_path(source, head) as path:
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
    selector: Selector,
    tracker: _Progress,
    *,
    analysis_fps: float,
    target_size: int | None,
) -> VideoInfo:
    """GIF / WebP frames within the decode budgets: canvas checked before any frame is decoded,
    frames capped, and a hard deadline for files made of millions of tiny blocks."""
    started = _clock()
    try:
        with deadline(DECODE_TIMEOUT_S), open_animation(source) as img:
            check_canvas(img)
            return _read_animation(
                img,
                selector,
                tracker,
                analysis_fps=analysis_fps,
                target_size=target_size,
                file_size=size_of(source),
                started=started,
            )
    except DecodeDeadline:
        raise VideoTooComplexError(
            f"decoding the animation took longer than {DECODE_TIMEOUT_S:g} s"
        ) from None


def sample_frames(
    source: Path | bytes,
    sampling: VideoSettings | None = None,
    *,
    progress: ProgressCallback | None = None,
    target_size: int | None = None,
) -> list[Frame]:
    """The frames of :func:`sample_video` without the video's description."""
    return sample_video(source, sampling, progress=progress, target_size=target_size).frames


def frame_from_thumbnail(data: bytes, *, target_size: int | None = None) -> Frame:
    """The one frame of a video known only by its thumbnail (too large to download).

    Raises the :class:`~core.errors.ImageError` family, like any picture.
    """
    return Frame(0.0, decode_image(data, target_size=target_size))
