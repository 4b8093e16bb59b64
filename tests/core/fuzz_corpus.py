"""Seeded fuzzing of the decoders: small valid seed files, mutations of them, and a runner.

Shared by ``tests/core/test_fuzz.py`` (a few hundred cases) and ``bench/fuzz.py`` (thousands).
Seeds are generated, not committed; every case is reproducible from ``(seed, index)``.

A case's memory is the peak resident set above the one before it, measured by resetting the
kernel's high-water mark (``/proc/self/clear_refs``): it sees the C decoders' allocations,
which tracemalloc does not.
"""

from __future__ import annotations

import random
import struct
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image

from core.errors import ImageError, VideoError
from core.media.image import decode_image, prepare_image
from core.media.video import sample_video
from core.media.video_probe import proc_status_bytes
from core.models.config import ImageConfig
from tests.core.image_samples import encode, photo_like, raw_png

Entry = Literal["image", "image_exact", "video"]
CFG = ImageConfig(size=224)
TIME_BUDGET_S = 5.0
MEMORY_BUDGET = 256 * 2**20


# --- seeds --------------------------------------------------------------------------------------


def _frames(n: int, size: tuple[int, int]) -> list[Image.Image]:
    return [photo_like(*size, seed=i).quantize(16).convert("RGB") for i in range(n)]


def _mp4() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seed.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
        for i in range(12):
            writer.write(np.full((48, 64, 3), 20 * i, dtype=np.uint8))
        writer.release()
        return path.read_bytes()


@cache
def seeds() -> dict[str, bytes]:
    """Small valid files of every family the decoders see."""
    photo = photo_like(48, 32, seed=1)
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(photo.size))
    anim = _frames(4, (32, 24))
    grey16 = (np.arange(24 * 20, dtype=np.uint16).reshape(20, 24) * 97).astype(np.uint16)
    return {
        "png": encode(photo, "PNG"),
        "png_rgba": encode(rgba, "PNG"),
        "png_palette": encode(photo.quantize(8), "PNG", transparency=0),
        "png_16bit": raw_png(grey16),
        "jpeg": encode(photo, "JPEG", quality=80),
        "jpeg_progressive": encode(photo, "JPEG", quality=80, progressive=True),
        "jpeg_grey": encode(photo.convert("L"), "JPEG"),
        "gif": encode(anim[0], "GIF"),
        "gif_anim": encode(anim[0], "GIF", save_all=True, append_images=anim[1:], duration=80),
        "webp": encode(photo, "WEBP", quality=70),
        "webp_anim": encode(
            anim[0], "WEBP", save_all=True, append_images=anim[1:], duration=80, lossless=True
        ),
        "bmp": encode(photo, "BMP"),
        "tiff": encode(photo, "TIFF", compression="tiff_lzw"),
        "mp4": _mp4(),
    }


ANIMATED = ("gif_anim", "webp_anim", "gif")
VIDEO_ONLY = ("mp4",)
JUNK: dict[str, bytes] = {
    "empty": b"",
    "text": "Привет, это не картинка\n".encode() * 20,
    "zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)) * 2,
    "pdf": b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n",
    "html": b"<!DOCTYPE html><html><body>not an image</body></html>",
}


# --- mutations ----------------------------------------------------------------------------------

EXTREMES = (0, 1, 2, 255, 256, 4096, 9999, 30000, 65535, 2**24 - 1, 2**31 - 1, 2**32 - 1)
Mutator = Callable[[random.Random, bytes, str], bytes]


def bit_flips(rng: random.Random, data: bytes, _: str) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 2, 4, 16))):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncation(rng: random.Random, data: bytes, _: str) -> bytes:
    return data[: rng.randrange(len(data))]


def duplication(rng: random.Random, data: bytes, _: str) -> bytes:
    """A slice copied back in, up to many times: repeated chunks, frames or scans."""
    start = rng.randrange(len(data))
    piece = data[start : start + rng.choice((4, 16, 64, 512))]
    at = rng.randrange(len(data))
    return data[:at] + piece * rng.choice((1, 2, 50, 2000)) + data[at:]


def overwrite(rng: random.Random, data: bytes, _: str) -> bytes:
    at = rng.randrange(len(data))
    junk = rng.randbytes(rng.choice((1, 4, 32)))
    return data[:at] + junk + data[at + len(junk) :]


def _fix_png_crc(out: bytearray, chunk_at: int) -> None:
    length = struct.unpack_from(">I", out, chunk_at)[0]
    body = bytes(out[chunk_at + 4 : chunk_at + 8 + length])
    struct.pack_into(">I", out, chunk_at + 8 + length, zlib.crc32(body))


def _dims(rng: random.Random, bits: int) -> tuple[int, int]:
    top = 2**bits - 1
    return min(rng.choice(EXTREMES), top), min(rng.choice(EXTREMES), top)


def header_fields(rng: random.Random, data: bytes, kind: str) -> bytes:
    """Width, height (and so the declared canvas) set to extreme values, checksums fixed, so
    the file gets past the header checks into the decoder."""
    out = bytearray(data)
    w, h = _dims(rng, 32)
    if kind.startswith("png"):
        struct.pack_into(">II", out, 16, w, h)
        _fix_png_crc(out, 8)
    elif kind.startswith("gif"):
        w, h = _dims(rng, 16)
        struct.pack_into("<HH", out, 6, w, h)
        at = out.find(b"\x2c", 13)
        if at > 0 and rng.random() < 0.5 and at + 9 <= len(out):
            struct.pack_into("<HH", out, at + 5, *_dims(rng, 16))
    elif kind.startswith("jpeg"):
        at = max(out.find(b"\xff\xc0"), out.find(b"\xff\xc2"))
        if at > 0:
            struct.pack_into(">HH", out, at + 5, *_dims(rng, 16))
    elif kind.startswith("webp"):
        at = out.find(b"VP8X")
        if at > 0:
            cw, ch = _dims(rng, 24)
            out[at + 12 : at + 15] = max(cw - 1, 0).to_bytes(3, "little")
            out[at + 15 : at + 18] = max(ch - 1, 0).to_bytes(3, "little")
        else:
            at = out.find(b"\x9d\x01\x2a")
            if at > 0:
                struct.pack_into("<HH", out, at + 3, *(v & 0x3FFF for v in _dims(rng, 16)))
    elif kind == "bmp":
        struct.pack_into("<ii", out, 18, w & 0x7FFFFFFF, (h & 0xFFFFFFFF) - 2**31)
    else:
        return bit_flips(rng, data, kind)
    return bytes(out)


def frame_count(rng: random.Random, data: bytes, kind: str) -> bytes:
    """An animation's frames repeated many times (GIF), or its declared count edited (WebP)."""
    if kind.startswith("gif"):
        start = data.find(b"\x21\xf9")
        start = start if start > 0 else data.find(b"\x2c", 13)
        if start < 0:
            return duplication(rng, data, kind)
        body = data[start:-1]  # every frame, without the trailer
        return data[:start] + body * rng.choice((10, 200, 3000)) + b"\x3b"
    return duplication(rng, data, kind)


MUTATORS: dict[str, Mutator] = {
    "bitflip": bit_flips,
    "truncate": truncation,
    "duplicate": duplication,
    "overwrite": overwrite,
    "header": header_fields,
    "frames": frame_count,
}


# --- cases --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    data: bytes
    entry: Entry


def _entries(kind: str) -> tuple[Entry, ...]:
    if kind in VIDEO_ONLY:
        return ("video",)
    if kind in ANIMATED:
        return ("video", "image")
    return ("image", "image", "image_exact")


def cases(seed: int, count: int) -> Iterator[Case]:
    """``count`` mutated files, the same for the same ``seed``; junk files come first."""
    rng = random.Random(seed)
    n = 0
    for name, data in JUNK.items():
        for entry in ("image", "video"):
            if n < count:
                yield Case(f"junk-{name}-{entry}", data, entry)
                n += 1
    kinds = sorted(seeds())
    while n < count:
        kind = rng.choice(kinds)
        mutator = rng.choice(sorted(MUTATORS))
        data = seeds()[kind]
        if kind in VIDEO_ONLY and mutator in ("header", "frames"):
            mutator = "bitflip"
        mutated = MUTATORS[mutator](rng, data, kind)
        entry = rng.choice(_entries(kind))
        yield Case(f"{n}-{kind}-{mutator}-{entry}", mutated, entry)
        n += 1


# --- running ------------------------------------------------------------------------------------


class PeakMeter:
    """Peak resident memory of a block above the resident memory before it (Linux)."""

    def __init__(self) -> None:
        self.available = self._reset()

    @staticmethod
    def _reset() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset the high-water mark to the current RSS
        except OSError:
            return False
        return True

    def start(self) -> int:
        self._reset()
        return proc_status_bytes("VmRSS:")

    def extra(self, before: int) -> int:
        return max(0, proc_status_bytes("VmHWM:") - before)


@dataclass(frozen=True, slots=True)
class Outcome:
    case: Case
    code: str  # the typed error's code, or "ok"
    escape: str | None  # an exception that is not the entry point's typed family
    seconds: float
    extra_rss: int | None


def _call(case: Case) -> None:
    if case.entry == "image":
        prepare_image(case.data, CFG)
    elif case.entry == "image_exact":
        decode_image(case.data)
    else:
        sample_video(case.data, target_size=CFG.size)


def run(case: Case, meter: PeakMeter | None = None) -> Outcome:
    """Feed one case to its entry point; never raises for what the decoder does."""
    typed = VideoError if case.entry == "video" else ImageError
    before = meter.start() if meter and meter.available else 0
    t0 = time.perf_counter()
    code, escape = "ok", None
    try:
        _call(case)
    except typed as e:
        code = e.code
    except Exception as e:
        code, escape = "untyped", f"{type(e).__name__}: {e}"
    seconds = time.perf_counter() - t0
    extra = meter.extra(before) if meter and meter.available else None
    return Outcome(case, code, escape, seconds, extra)


def dump(case: Case, folder: Path) -> Path:
    """Write a case's bytes for a regression file (names stay short and stable)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{case.name}.bin"
    path.write_bytes(case.data)
    return path
