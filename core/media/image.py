"""Image decoding and model-input preprocessing.

Two steps, kept apart so each can be tested on its own:

* :func:`decode_image` turns untrusted bytes into an upright RGB :class:`PIL.Image.Image`, or
  raises one of the typed :class:`~core.errors.ImageError` subclasses. It never lets a Pillow
  exception escape and never touches Pillow's global settings (``MAX_IMAGE_PIXELS``,
  ``LOAD_TRUNCATED_IMAGES``), so its behaviour does not depend on what other code did.
* :func:`preprocess` is a pure function of the image and the bundle's
  :class:`~core.models.config.ImageConfig`. It replays, with the same Pillow calls and the same
  integer arithmetic, the eval transforms the models were trained with (open_clip's
  ``image_transform(is_train=False)`` and ruCLIP's processor), so its output equals theirs.

Choices worth knowing:

* Transparent pixels are composited on **white**. Dropping alpha (what ``convert("RGB")`` does)
  exposes whatever colour the encoder left under transparent pixels, often black or noise;
  stickers, logos and screenshots are meant to be seen on a light background.
* 16-bit and 32-bit greyscale images are scaled into 0..255 (Pillow's ``convert`` clips them).
* Animated images (GIF, APNG, WebP) and multi-page TIFFs give their first frame.
* Only common raster formats are opened (:data:`FORMATS`): a public bot should not feed user
  uploads to Pillow's rarer decoders or to Ghostscript (EPS).
* HEIC/HEIF is read when the optional ``pillow-heif`` package is installed; AVIF is native.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import threading
from pathlib import Path
from typing import Final

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import (
    EmptyImageError,
    ImageTooComplexError,
    ImageTooLargeError,
    TruncatedImageError,
    UnsupportedImageError,
)
from core.media.decode_guard import (
    DECODE_TIMEOUT_S,
    MAX_DECODE_BYTES,
    MAX_JPEG_SCANS,
    DecodeDeadline,
    deadline,
    jpeg_coefficient_bytes,
    jpeg_scan_count,
    reduced_cost,
    still_cost,
)
from core.models.config import ImageConfig, Interpolation

__all__ = [
    "DECODE_MARGIN",
    "DEFAULT_MAX_PIXELS",
    "DRAFT_MARGIN",
    "FORMATS",
    "decode_image",
    "prepare_image",
    "preprocess",
    "to_rgb",
]

DEFAULT_MAX_PIXELS: Final = 120_000_000
"""Declared pixel count above which an image is refused before its pixels are decoded.

Large enough for 108 MP phone photos, small enough that one decode stays far below a gigabyte.
Pillow's own, process-wide limit (``2 * Image.MAX_IMAGE_PIXELS``, about 179 MP by default) still
applies on top and is reported as the same error."""

DRAFT_MARGIN: Final = 2
"""Reduced copies made of decoded pictures (video frames kept for embedding) keep their shorter
side at least this many times the model input, so the model's own antialiased resize still has
enough pixels to work with."""

DECODE_MARGIN: Final = 1.5
"""With ``target_size``, :func:`decode_image` keeps the decoded image's shorter side at least
this many times the model input: reduced decoding is box-like, and the final antialiased
resize from >= 1.5x the target hides most of the difference (see the tests of the fast path).

1.5 rather than :data:`DRAFT_MARGIN` lets a 12 MP photo be decoded at 1/8 scale instead of 1/4
for a 224 model (1/4 instead of 1/2 for 384): about 10 ms less CPU per photo on a 2-core AVX2
machine, a tenth of the whole ingest cost with an int8 ViT-B/32. The price, on 12 MP photo-like
JPEGs at 224: the model input moves by a mean of 0.010 from the exact transform (normalised
units, under one grey level; 0.0035 at 2), cosine 0.9997 (0.99994 at 2); random-weight CLIP
vectors 0.99997."""

FORMATS: Final = (
    "JPEG",  # MPO (multi-picture phone JPEGs) is opened by the JPEG plugin
    "PNG",
    "GIF",
    "WEBP",
    "BMP",
    "TIFF",
    "AVIF",
    "HEIF",
    "ICO",
    "PPM",
    "JPEG2000",
    "QOI",
)
"""Pillow format names we open; names unknown to the installed Pillow are skipped."""

_RESAMPLE: Final[dict[Interpolation, Image.Resampling]] = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}

# Magic numbers of the formats above: bytes that start like one of them but that Pillow cannot
# identify were cut short or damaged, rather than being some other kind of file.
_SIGNATURES: Final[tuple[tuple[int, bytes, str], ...]] = (
    (0, b"\xff\xd8", "JPEG"),
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"GIF8", "GIF"),
    (8, b"WEBP", "WEBP"),
    (0, b"BM", "BMP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (4, b"ftypavif", "AVIF"),
    (4, b"ftypavis", "AVIF"),
    (4, b"ftypheic", "HEIF"),
    (4, b"ftypheix", "HEIF"),
    (4, b"ftypmif1", "HEIF"),
    (0, b"\x00\x00\x00\x0cjP  ", "JPEG2000"),
    (0, b"\xff\x4f\xff\x51", "JPEG2000"),
    (0, b"qoif", "QOI"),
)

_formats_lock = threading.Lock()
_formats: tuple[str, ...] | None = None


def enabled_formats() -> tuple[str, ...]:
    """Formats the installed Pillow (plus pillow-heif, if present) can open; computed once."""
    global _formats
    if _formats is None:
        with _formats_lock:
            if _formats is None:
                try:  # optional: HEIC/HEIF from iPhones
                    from pillow_heif import register_heif_opener
                except ImportError:
                    pass
                else:
                    register_heif_opener()
                Image.init()
                _formats = tuple(f for f in FORMATS if f in Image.OPEN)
    return _formats


def _looks_like(data: bytes, formats: tuple[str, ...]) -> bool:
    return any(
        data[off : off + len(sig)] == sig and fmt in formats for off, sig, fmt in _SIGNATURES
    )


# Formats that are always one still picture (GIF and WebP may be animations).
_STILL: Final[tuple[str, ...]] = ("JPEG", "PNG", "BMP", "TIFF", "AVIF", "HEIF", "JPEG2000", "QOI")


def looks_like_still_image(head: bytes) -> bool:
    """True when ``head`` (a file's first bytes) starts like a still picture we can decode: a
    message's MIME type can lie (an image sent as "video/mp4"), the bytes cannot."""
    return _looks_like(head, tuple(f for f in enabled_formats() if f in _STILL))


def _read(data: bytes | bytearray | memoryview | os.PathLike[str]) -> bytes:
    if isinstance(data, os.PathLike):
        return Path(data).read_bytes()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"expected bytes or a path, got {type(data).__name__}")


def decode_image(
    data: bytes | Path,
    *,
    target_size: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = MAX_DECODE_BYTES,
    timeout_s: float | None = DECODE_TIMEOUT_S,
) -> Image.Image:
    """Decode an image file into an upright RGB image, in bounded memory and time.

    ``target_size`` (the model input side) allows a cheaper decode of a much larger image: JPEGs
    are decoded at 1/2, 1/4 or 1/8 scale and other formats are box-reduced, as long as the
    shorter side stays at least ``DECODE_MARGIN * target_size``. Without it the full image is
    returned, which is what :func:`preprocess` needs to match the reference transforms exactly.

    The format is told by the bytes, never by a name or MIME type. ``max_bytes`` bounds the
    estimated memory of decoding (see :mod:`core.media.decode_guard`), ``timeout_s`` the wall time.

    Raises EmptyImageError, UnsupportedImageError, TruncatedImageError, ImageTooLargeError or
    ImageTooComplexError. A missing file raises the usual OSError.
    """
    raw = _read(data)
    if not raw:
        raise EmptyImageError("the file is empty")
    try:
        with deadline(timeout_s):
            return _decode(raw, target_size, max_pixels, max_bytes)
    except DecodeDeadline:
        raise ImageTooComplexError(f"decoding took longer than {timeout_s:g} s") from None


def _open(raw: bytes) -> Image.Image:
    formats = enabled_formats()
    try:
        return Image.open(io.BytesIO(raw), formats=formats)
    except Image.DecompressionBombError as e:
        raise ImageTooLargeError(str(e)) from e
    except UnidentifiedImageError as e:
        if _looks_like(raw, formats):
            raise TruncatedImageError("the image is cut short or damaged") from e
        raise UnsupportedImageError("not an image format we can read") from e
    except Exception as e:  # Pillow's plugins raise OSError, ValueError, struct.error, ...
        raise TruncatedImageError(f"the image is damaged: {e}") from e


def _transparent(img: Image.Image) -> bool:
    """Whether the image has alpha, known from its header (before decoding)."""
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def _check_declared(img: Image.Image, raw: bytes, max_pixels: int) -> None:
    width, height = img.size
    if width < 1 or height < 1:
        raise TruncatedImageError(f"the image declares an empty size {width}x{height}")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"the image has {width}x{height} = {width * height} pixels, limit {max_pixels}"
        )
    if img.format in ("JPEG", "MPO") and jpeg_scan_count(raw) > MAX_JPEG_SCANS:
        raise ImageTooComplexError(f"the JPEG has more than {MAX_JPEG_SCANS} scans")


def _jpeg_coefficients(img: Image.Image) -> int:
    if img.format not in ("JPEG", "MPO"):
        return 0
    progressive = bool(img.info.get("progressive") or img.info.get("progression"))
    layers = getattr(img, "layer", [])
    return jpeg_coefficient_bytes(img.size, layers, progressive=progressive)


def _reduce_first(img: Image.Image, needed: int) -> Image.Image:
    """Box-reduce a loaded image before any full-size conversion, for images too large to
    convert at full size; ``reduce`` premultiplies alpha itself."""
    if img.mode.startswith("I;16"):
        img = img.convert("I")
    elif img.mode not in ("L", "RGB", "RGBA", "LA", "I", "F") or "transparency" in img.info:
        img = img.convert("RGBA" if img.has_transparency_data else "RGB")
    factor = min(img.size) // needed
    return img.reduce(factor) if factor >= 2 else img


def _decode(raw: bytes, target_size: int | None, max_pixels: int, max_bytes: int) -> Image.Image:
    img = _open(raw)
    _check_declared(img, raw, max_pixels)
    needed = math.ceil(DECODE_MARGIN * target_size) if target_size else 0
    coefficients = _jpeg_coefficients(img)
    try:
        if needed and img.format in ("JPEG", "MPO"):
            img.draft("RGB", (needed, needed))  # picks the largest DCT scale still >= needed
    except Exception as e:
        raise TruncatedImageError(f"the image is damaged: {e}") from e
    alpha = _transparent(img)
    mode, size, fmt = img.mode, img.size, img.format
    budget = max_bytes - coefficients
    early = still_cost(mode, size, transparent=alpha, fmt=fmt) > budget
    if early and not (needed and reduced_cost(mode, size, transparent=alpha, fmt=fmt) <= budget):
        w, h = img.size
        raise ImageTooLargeError(f"a {w}x{h} {img.mode} image needs too much memory to decode")
    try:
        img.load()
    except Image.DecompressionBombError as e:
        raise ImageTooLargeError(str(e)) from e
    except Exception as e:
        raise TruncatedImageError(f"the image is cut short or damaged: {e}") from e

    try:
        if early:
            img = _reduce_first(img, needed)
        with contextlib.suppress(Exception):  # unreadable EXIF must not lose a readable picture
            ImageOps.exif_transpose(img, in_place=True)
        img = to_rgb(img)
    except Exception as e:
        raise UnsupportedImageError(f"cannot convert a {img.mode!r} image to RGB: {e}") from e

    if needed:
        factor = min(img.size) // needed
        if factor >= 2:
            img = img.reduce(factor)
    return img


def _high_depth_to_l(img: Image.Image) -> Image.Image:
    """Scale 16/32-bit integer and float greyscale into 8 bits, which ``convert`` only clips."""
    arr = np.asarray(img)
    if img.mode == "F":
        a = arr.astype(np.float64)
        finite = a[np.isfinite(a)]
        peak = float(finite.max()) if finite.size else 0.0
        a = np.nan_to_num(a * 255.0 if peak <= 1.0 else a, nan=0.0, posinf=255.0, neginf=0.0)
    else:
        a = arr.astype(np.float64)
        peak = float(a.max()) if a.size else 0.0
        if img.mode.startswith("I;16") or peak > 255:
            top = 65535.0 if peak <= 65535 else peak
            a = a * (255.0 / top)
    out = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return Image.fromarray(out, mode="L")


def to_rgb(img: Image.Image) -> Image.Image:
    """Return ``img`` as RGB: alpha composited on white, high bit depths scaled, palettes
    expanded, CMYK/YCbCr/LAB converted. An RGB image without a colour key is returned as is."""
    if img.mode == "RGB" and "transparency" not in img.info:
        return img
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        img = _high_depth_to_l(img)
    if img.has_transparency_data:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


_MAX_RESIZE_AREA: Final = 16
"""Above this many model inputs' worth of pixels, "shortest" resizes only the cropped window."""


def _resize(img: Image.Image, size: tuple[int, int], resample: Image.Resampling) -> Image.Image:
    # torchvision returns the input untouched when the size already matches; so do we.
    if img.size == size:
        return img
    return img.resize(size, resample)


def _shortest(img: Image.Image, s: int, resample: Image.Resampling) -> Image.Image:
    """torchvision ``Resize(s)`` (shorter side to s, longer side truncated) + ``CenterCrop(s)``."""
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = s, int(s * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    # new_short == s and new_long >= s, so CenterCrop never pads here.
    top = round((new_h - s) / 2.0)
    left = round((new_w - s) / 2.0)
    if new_w * new_h > _MAX_RESIZE_AREA * s * s:
        # A panorama or a 1-pixel strip: resizing the whole strip could take gigabytes, so
        # resample only the window that survives the crop. Pillow's box resize still reads
        # the pixels around the box, so this differs from the full resize by float rounding.
        sx, sy = w / new_w, h / new_h
        box = (left * sx, top * sy, (left + s) * sx, (top + s) * sy)
        return img.resize((s, s), resample, box=box)
    img = _resize(img, (new_w, new_h), resample)
    return img.crop((left, top, left + s, top + s))


def _longest(img: Image.Image, s: int, resample: Image.Resampling, fill: int) -> Image.Image:
    """open_clip ``ResizeKeepRatio(s, longest=1)`` + ``CenterCropOrPad(s, fill)``."""
    w, h = img.size
    ratio_h, ratio_w = h / s, w / s
    ratio = max(ratio_h, ratio_w) * 1.0 + min(ratio_h, ratio_w) * 0.0
    new_h, new_w = (max(1, round(x * 1.0 / ratio)) for x in (h, w))
    img = _resize(img, (new_w, new_h), resample)
    if new_w < s or new_h < s:
        left = (s - new_w) // 2 if s > new_w else 0
        top = (s - new_h) // 2 if s > new_h else 0
        canvas = Image.new("RGB", (max(s, new_w), max(s, new_h)), (fill, fill, fill))
        canvas.paste(img, (left, top))
        img = canvas
        new_w, new_h = img.size
        if (new_w, new_h) == (s, s):
            return img
    top = round((new_h - s) / 2.0)
    left = round((new_w - s) / 2.0)
    return img.crop((left, top, left + s, top + s))


def _crop_resize(img: Image.Image, s: int, resample: Image.Resampling) -> Image.Image:
    """torchvision ``RandomResizedCrop(s, scale=(1, 1), ratio=(1, 1))`` as ruCLIP evaluates it.

    Its sampler asks for a square of the full image's area, which fits only when the sides
    differ by at most one pixel (then the offset is random, 0 or 1; we take 0); otherwise it
    falls back to the largest centred square, offset floored. The crop is then resized to s.
    """
    w, h = img.size
    side = round(math.sqrt(w * h * 1.0))
    if not (0 < side <= w and 0 < side <= h):
        if w < h:
            cw, ch = w, round(w / 1.0)
        elif w > h:
            cw, ch = round(h * 1.0), h
        else:
            cw, ch = w, h
    else:
        cw = ch = side
    top, left = (h - ch) // 2, (w - cw) // 2
    img = img.crop((left, top, left + cw, top + ch))
    return _resize(img, (s, s), resample)


def preprocess(img: Image.Image, cfg: ImageConfig) -> np.ndarray:
    """Turn an image into the model input: float32 [3, S, S], normalised with cfg's mean/std.

    Pure: ``img`` is not modified. A non-RGB image is first converted with :func:`to_rgb`.
    """
    if img.mode != "RGB":
        img = to_rgb(img)
    s = cfg.size
    resample = _RESAMPLE[cfg.interpolation]
    if cfg.resize_mode == "shortest":
        out = _shortest(img, s, resample)
    elif cfg.resize_mode == "longest":
        out = _longest(img, s, resample, cfg.fill)
    elif cfg.resize_mode == "squash":
        out = _resize(img, (s, s), resample)
    else:
        out = _crop_resize(img, s, resample)

    # Same float32 operations as torchvision's ToTensor + Normalize.
    x: np.ndarray = np.asarray(out, dtype=np.uint8).astype(np.float32) / np.float32(255.0)
    x = (x - np.asarray(cfg.mean, dtype=np.float32)) / np.asarray(cfg.std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def prepare_image(
    data: bytes | Path,
    cfg: ImageConfig,
    *,
    fast: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode and preprocess in one go. ``fast`` allows the reduced decode of large images;
    ``fast=False`` reproduces the reference transforms exactly."""
    img = decode_image(data, target_size=cfg.size if fast else None, max_pixels=max_pixels)
    return preprocess(img, cfg)
