"""Opening untrusted video input: typed errors for empty or unreadable sources, a temporary file
for OpenCV (it reads only from files), and GIF / animated WebP opened with Pillow within the
decode budgets before any frame is decoded."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from core.errors import EmptyVideoError, UnreadableVideoError, VideoTooLargeError
from core.media.decode_guard import MAX_ANIMATION_CANVAS_COST, MAX_DECODE_BYTES, format_extra
from core.media.image import DEFAULT_MAX_PIXELS

__all__ = [
    "as_path",
    "check_canvas",
    "check_source",
    "is_pillow_animation",
    "open_animation",
    "size_of",
]


def _head(source: Path | bytes) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source[:16])
    with open(source, "rb") as f:
        return f.read(16)


def is_pillow_animation(head: bytes) -> bool:
    """GIF or WebP, read with Pillow, which knows each frame's own duration (OpenCV reports
    only an average rate for them)."""
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
def as_path(source: Path | bytes, head: bytes) -> Iterator[Path]:
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


def check_source(source: Path | bytes) -> bytes:
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
    except OSError as e:  # only a path can fail here, so source is shown as one
        raise UnreadableVideoError(f"cannot read {source!s}: {e.strerror or e}") from e


def size_of(source: Path | bytes) -> int:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return len(source)
    try:
        return os.path.getsize(source)
    except OSError:
        return 0


def open_animation(source: Path | bytes) -> Image.Image:
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


def check_canvas(img: Image.Image) -> None:
    """Refuse, before decoding, a canvas whose every frame would cost too much memory."""
    w, h = img.size
    if w < 1 or h < 1:
        raise UnreadableVideoError(f"the animation declares an empty size {w}x{h}")
    per_pixel = MAX_ANIMATION_CANVAS_COST + format_extra(img.format)
    if w * h > DEFAULT_MAX_PIXELS or w * h * per_pixel > MAX_DECODE_BYTES:
        raise VideoTooLargeError(f"the animation is too large: {w}x{h} pixels per frame")
