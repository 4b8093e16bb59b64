"""Image helpers: sizes from headers, test JPEGs, and the downscaled sizes Telegram makes."""

from __future__ import annotations

import io

from PIL import Image


def image_size(data: bytes) -> tuple[int, int] | None:
    """Pixel size from the image header, or None when it is not an image Pillow knows."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except Exception:  # any undecodable input
        return None


def make_jpeg(
    width: int = 640, height: int = 480, color: tuple[int, int, int] = (200, 40, 40)
) -> bytes:
    """A small real JPEG (a colour field with a darker square) for file round trips."""
    img = Image.new("RGB", (width, height), color)
    img.paste(tuple(c // 3 for c in color), (width // 4, height // 4, width // 2, height // 2))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


def thumbnail_jpeg(data: bytes, side: int) -> bytes | None:
    """A JPEG at most ``side`` pixels wide and high, or None when Pillow cannot read ``data``."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (side, side))
            small = img.convert("RGB")
            small.thumbnail((side, side))
            out = io.BytesIO()
            small.save(out, "JPEG", quality=80)
            return out.getvalue()
    except Exception:  # truncated or corrupt: Telegram would have only the original
        return None
