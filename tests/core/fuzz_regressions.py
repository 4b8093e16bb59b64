"""Every file that ever broke a decoder's bounds, as a generator of its bytes (or a small file
in ``tests/fixtures/fuzz``), with the outcome it must now have.

Bombs are built in code from tiny LZW streams and zlib runs: a few kilobytes that declare
gigabytes.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image

from tests.core.fuzz_corpus import Entry
from tests.core.image_samples import encode, photo_like

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fuzz"
COMMENT_BLOCKS = 600_000
EMPTY_CHUNKS = 400_000


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def gif_canvas(width: int, height: int, frames: int, *, comments: int = 0) -> bytes:
    """An animated GIF of ``frames`` 1x1 frames on a ``width`` x ``height`` canvas: every frame
    is composited on the whole canvas, so decoding costs canvas x frames. ``comments`` empty
    comment blocks come first (each one a Python-level step in Pillow's parser)."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0))
    out += b"\x00\x00\x00\xff\xff\xff"  # a 2-colour global palette
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    out += b"\x21\xfe\x01x\x00" * comments
    for i in range(frames):
        out += b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # 100 ms
        out += b"\x2c" + struct.pack("<HHHHB", i % width, 0, 1, 1, 0)
        codes = 4 | ((i % 2) << 3) | (5 << 6)  # clear, one pixel, end (3-bit codes)
        out += b"\x02\x02" + codes.to_bytes(2, "little") + b"\x00"
    return bytes(out + b"\x3b")


def png_declared(width: int, height: int, *, color_type: int = 2, rows: int | None = None) -> bytes:
    """A PNG of ``width`` x ``height`` zero pixels (``rows`` of them only, if given)."""
    bands = {0: 1, 2: 3, 6: 4}[color_type]
    row = b"\x00" * (1 + width * bands)
    raw = zlib.compressobj(9)
    body = b"".join(raw.compress(row) for _ in range(height if rows is None else rows))
    body += raw.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")
    )


def png_many_chunks(chunks: int) -> bytes:
    """A valid 8x8 PNG behind ``chunks`` empty ancillary chunks, each parsed in Python."""
    ihdr = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    filler = _chunk(b"abCd", b"") * chunks
    idat = _chunk(b"IDAT", zlib.compress((b"\x00" + b"\x80" * 24) * 8))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + filler + idat + _chunk(b"IEND", b"")


def jpeg_many_scans(scans: int) -> bytes:
    """A progressive JPEG whose last scan is repeated: each scan re-walks every coefficient."""
    data = encode(photo_like(64, 48, seed=2), "JPEG", progressive=True)
    last = data.rfind(b"\xff\xda")
    return data[:last] + data[last:-2] * scans + b"\xff\xd9"


def jpeg_declared(width: int, height: int) -> bytes:
    """A small progressive JPEG whose frame header declares ``width`` x ``height``."""
    data = bytearray(encode(photo_like(64, 48, seed=2), "JPEG", progressive=True))
    at = data.find(b"\xff\xc2")
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


def webp_canvas(width: int, height: int) -> bytes:
    """An animated WebP of tiny frames whose canvas (VP8X) declares ``width`` x ``height``."""
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue", "green")]
    data = bytearray(
        encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)
    )
    at = data.find(b"VP8X")
    data[at + 12 : at + 15] = (width - 1).to_bytes(3, "little")
    data[at + 15 : at + 18] = (height - 1).to_bytes(3, "little")
    return bytes(data)


@cache
def rgba_png(width: int, height: int) -> bytes:
    """A half-transparent red PNG (fast to encode: one colour)."""
    return encode(Image.new("RGBA", (width, height), (255, 0, 0, 128)), "PNG")


def fixture(name: str) -> Callable[[], bytes]:
    return lambda: (FIXTURES / name).read_bytes()


@dataclass(frozen=True, slots=True)
class Regression:
    name: str
    build: Callable[[], bytes]
    entry: Entry
    code: str  # "ok" when it must decode
    note: str


REGRESSIONS: tuple[Regression, ...] = (
    Regression(
        "gif-6000x6000x200",
        lambda: gif_canvas(6000, 6000, 200),
        "video",
        "video_too_large",
        "took 20 s and 2.1 GB: every frame composited on a 36 MP canvas",
    ),
    Regression(
        "gif-8000x8000x50",
        lambda: gif_canvas(8000, 8000, 50),
        "video",
        "video_too_large",
        "took 18 s",
    ),
    Regression(
        "gif-8000x8000-first-frame",
        lambda: gif_canvas(8000, 8000, 2),
        "image",
        "image_too_large",
        "its first frame alone is 64 MP of palette pixels",
    ),
    Regression(
        "gif-2000x1500x400",
        lambda: gif_canvas(2000, 1500, 400),
        "video",
        "ok",
        "a large canvas is decoded up to the frame budget, then cut",
    ),
    Regression(
        "gif-1x1x20000",
        lambda: gif_canvas(1, 1, 20_000),
        "video",
        "ok",
        "tiny frames cost a fixed overhead each; capped by count",
    ),
    Regression(
        "gif-comment-blocks",
        lambda: gif_canvas(8, 8, 1, comments=COMMENT_BLOCKS),
        "video",
        "video_too_complex",
        "hundreds of thousands of blocks walked in Python (run with a short deadline)",
    ),
    Regression(
        "png-strip-1x100M",
        lambda: png_declared(1, 100_000_000, color_type=0, rows=1),
        "image",
        "image_too_large",
        "took 4.9 s and 1.8 GB: one row pointer per pixel (refused from the header)",
    ),
    Regression(
        "png-strip-1x100M-rgb",
        lambda: png_declared(1, 100_000_000, rows=1),
        "image",
        "image_too_large",
        "as above, RGB",
    ),
    Regression(
        "png-declared-10000x10000",
        lambda: png_declared(10_000, 10_000, rows=1),
        "image",
        "image_too_large",
        "one row of data for 100 MP",
    ),
    Regression(
        "png-rgba-9000x9000",
        lambda: png_declared(9000, 9000, color_type=6, rows=1),
        "image",
        "image_too_large",
        "1.2 GB while compositing 81 MP of alpha",
    ),
    Regression(
        "png-rgba-5000x4000-reduced",
        lambda: rgba_png(5000, 4000),
        "image",
        "ok",
        "too big to composite at full size, decoded by reducing first",
    ),
    Regression(
        "png-rgba-5000x4000-exact",
        lambda: rgba_png(5000, 4000),
        "image_exact",
        "image_too_large",
        "no target size: nothing to reduce to",
    ),
    Regression(
        "png-many-chunks",
        lambda: png_many_chunks(EMPTY_CHUNKS),
        "image",
        "image_too_complex",
        "4.4 s for 20 MB of empty chunks (run with a short deadline)",
    ),
    Regression(
        "jpeg-many-scans",
        lambda: jpeg_many_scans(500),
        "image",
        "image_too_complex",
        "scan bomb: thousands of progressive scans",
    ),
    Regression(
        "jpeg-progressive-9999x9999",
        lambda: jpeg_declared(9999, 9999),
        "image",
        "image_too_large",
        "287 MB: libjpeg keeps every coefficient of a progressive JPEG, even at 1/8 scale",
    ),
    Regression(
        "jpeg-progressive-3000x2000",
        lambda: jpeg_declared(3000, 2000),
        "image",
        "ok",
        "an ordinary size is still decoded (libjpeg pads what is missing)",
    ),
    Regression(
        "webp-canvas-16000x16000",
        lambda: webp_canvas(16_000, 16_000),
        "video",
        "video_too_large",
        "canvas over Pillow's own bomb limit",
    ),
    Regression(
        "webp-canvas-9000x9000",
        lambda: webp_canvas(9000, 9000),
        "image",
        "image_too_large",
        "took 5.6 s and 1.2 GB in libwebp's canvas buffers",
    ),
    Regression(
        "gif-frame-header-cut",
        fixture("gif-frame-header-cut.gif"),
        "video",
        "ok",
        "IndexError out of n_frames; now the frames before the damage are kept",
    ),
    Regression(
        "gif-block-duplicated",
        fixture("gif-block-duplicated.gif"),
        "video",
        "ok",
        "IndexError out of n_frames",
    ),
    Regression(
        "gif-canvas-widened",
        fixture("gif-canvas-widened.gif"),
        "video",
        "video_too_large",
        "491 MB: a 4096x9999 canvas",
    ),
    Regression(
        "mp4-sample-table-bomb",
        fixture("mp4-sample-table-bomb.mp4"),
        "video",
        "video_too_complex",
        "815 MB inside FFmpeg's open: a flipped bit in an MP4 table size",
    ),
    Regression(
        "webp-canvas-widened",
        fixture("webp-canvas-widened.webp"),
        "video",
        "video_too_large",
        "386 MB: a 65535x256 canvas",
    ),
)

SHORT_DEADLINE = ("gif-comment-blocks", "png-many-chunks")
"""Built small enough to stay fast in tests; a short deadline shows the deadline works."""


def by_name(name: str) -> Regression:
    return next(r for r in REGRESSIONS if r.name == name)
