"""Deterministic test images, generated rather than committed.

``photo_like`` imitates the statistics that matter for resampling: a 1/f amplitude spectrum
(natural images' power falls as 1/f^2), sharp-edged shapes and a little sensor noise, so
downscaling and reduced JPEG decoding behave as they would on a photo.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def photo_like(width: int, height: int, seed: int = 0) -> Image.Image:
    """An RGB image with photo-like detail at every scale."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(height).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(width).astype(np.float32)[None, :]
    inv_f = 1.0 / np.maximum(np.sqrt(fx * fx + fy * fy), np.float32(1e-6))
    inv_f[0, 0] = 0.0
    channels: list[np.ndarray] = []
    for _ in range(3):
        spec = np.empty(inv_f.shape, dtype=np.complex64)
        spec.real = rng.standard_normal(inv_f.shape, dtype=np.float32) * inv_f
        spec.imag = rng.standard_normal(inv_f.shape, dtype=np.float32) * inv_f
        ch = np.fft.irfft2(spec, s=(height, width)).astype(np.float32)
        ch *= 1.0 / (ch.std() + 1e-12)
        # Correlated channels, like real colour images.
        channels.append(ch if not channels else 0.6 * channels[-1] + 0.4 * ch)
    img = np.stack(channels, axis=-1) * np.float32(40.0) + np.float32(128.0)

    for _ in range(12):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.03, 0.2) * min(width, height)
        color = rng.uniform(0, 255, size=3)
        x0, x1 = max(0, int(cx - r)), min(width, int(cx + r) + 1)
        y0, y1 = max(0, int(cy - r)), min(height, int(cy + r) + 1)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        if rng.random() < 0.5:
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        else:
            mask = (np.abs(xx - cx) < r) & (np.abs(yy - cy) < r * 0.6)
        patch = img[y0:y1, x0:x1]
        patch[mask] = 0.3 * patch[mask] + 0.7 * color
    img += rng.standard_normal(img.shape, dtype=np.float32) * 3.0
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), mode="RGB")


def gradient(width: int, height: int) -> Image.Image:
    """A cheap smooth RGB image; small ones have no two equal pixels (for orientation tests)."""
    x = np.linspace(0, 255, width)[None, :]
    y = np.linspace(0, 255, height)[:, None]
    r = np.broadcast_to(x, (height, width))
    g = np.broadcast_to(y, (height, width))
    b = np.broadcast_to((x + y) / 2, (height, width))
    return Image.fromarray(np.stack([r, g, b], axis=-1).astype(np.uint8), mode="RGB")


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    """Save ``img`` in ``fmt`` and return the file's bytes."""
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def raw_png(arr: np.ndarray) -> bytes:
    """A PNG written by hand, for what Pillow cannot save: 16-bit RGB/RGBA (``uint16`` arrays
    of shape [H, W, 3|4]) as well as 8/16-bit grey [H, W]."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    h, w, c = arr.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    depth = 16 if arr.dtype == np.uint16 else 8
    rows = arr.astype(">u2" if depth == 16 else "u1").reshape(h, -1).view(np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` but carries almost no pixel data: what a
    decompression bomb looks like before decoding."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )
