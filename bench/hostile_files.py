"""Files for the hostile suite: unique photos, and mutated or crafted files sent the ways a
Telegram client can send them (compressed photo, document with a MIME type that may lie,
animation)."""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

from tests.e2e.fake_telegram import FakeTelegramServer, FakeUser

COLORS = ((220, 30, 30), (30, 200, 40), (30, 40, 220), (240, 220, 20), (150, 40, 200))


def unique_photo(rng: random.Random, size: tuple[int, int] = (320, 240)) -> bytes:
    """A JPEG of a coloured shape on a noisy background: every call gives new bytes."""
    img = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    draw = ImageDraw.Draw(img)
    for _ in range(40):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        draw.point((x, y), fill=(rng.randrange(256),) * 3)
    w, h = size
    box = (w // 4, h // 4, 3 * w // 4, 3 * h // 4)
    color = rng.choice(COLORS)
    (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=color)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


# --- seeds ---------------------------------------------------------------------------------------


def _encode(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kw)
    return out.getvalue()


def _gif(frames: int = 4) -> bytes:
    images = [Image.new("P", (48, 36), i * 40) for i in range(frames)]
    return _encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=100)


def seeds() -> dict[str, bytes]:
    base = Image.new("RGB", (64, 48), (200, 60, 60))
    ImageDraw.Draw(base).ellipse((16, 12, 48, 36), fill=(20, 20, 220))
    return {
        "jpeg": _encode(base, "JPEG", quality=80),
        "png": _encode(base, "PNG"),
        "webp": _encode(base, "WEBP"),
        "gif": _gif(),
        "bmp": _encode(base, "BMP"),
        "tiff": _encode(base, "TIFF"),
    }


# --- crafted files that are valid headers with absurd sizes --------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` with a few bytes of real data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    sig = b"\x89PNG\r\n\x1a\n"
    return sig + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def gif_canvas(width: int, height: int, frames: int) -> bytes:
    """A GIF with a huge logical screen and many tiny frames: small file, big decode."""
    head = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    loop = b"!\xff\x0bNETSCAPE2.0\x03\x01\0\0\0"
    frame = (
        b"!\xf9\x04\x04\x0a\0\0\0"  # graphic control: 100 ms
        + b","
        + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
        + b"\x02\x02\x44\x01\0"  # LZW min code 2, one 1x1 pixel
    )
    return head + loop + frame * frames + b";"


# --- mutations -----------------------------------------------------------------------------------


def _flip(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    return bytes(buf)


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(1, max(2, len(data)))]


def _duplicate(data: bytes, rng: random.Random) -> bytes:
    a = rng.randrange(len(data))
    b = min(len(data), a + rng.randint(1, 256))
    return data[:b] + data[a:b] * rng.randint(1, 20) + data[b:]


def _header(data: bytes, rng: random.Random) -> bytes:
    """Overwrite a few bytes near the start, where sizes and counts live."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        buf[rng.randrange(min(len(buf), 40))] = rng.choice((0, 0xFF, rng.randrange(256)))
    return bytes(buf)


MUTATIONS: tuple[Callable[[bytes, random.Random], bytes], ...] = (
    _flip,
    _truncate,
    _duplicate,
    _header,
)


# --- cases ---------------------------------------------------------------------------------------


@dataclass
class FuzzCase:
    """One file and the way it is sent."""

    name: str
    data: bytes
    how: str  # photo | document | animation
    mime: str | None = None

    def send(self, server: FakeTelegramServer, user: FakeUser) -> dict[str, Any]:
        if self.how == "photo":
            return server.send_photo(user, self.data, width=640, height=480)
        if self.how == "animation":
            return server.send_animation(
                user, self.data, file_name="a.gif", mime_type=self.mime or "image/gif"
            )
        return server.send_document(
            user, self.data, file_name=f"{self.name}.bin", mime_type=self.mime or "image/png"
        )


def crafted() -> list[FuzzCase]:
    return [
        FuzzCase("gif-6000x6000x200", gif_canvas(6000, 6000, 200), "animation"),
        FuzzCase("gif-8000x8000x50", gif_canvas(8000, 8000, 50), "document", "image/gif"),
        FuzzCase("png-strip", png_declaring(1, 100_000_000), "document", "image/png"),
        FuzzCase("png-65535-square", png_declaring(65535, 65535), "document", "image/png"),
        FuzzCase("text-as-jpeg", b"hello, this is not a picture\n" * 20, "document", "image/jpeg"),
        FuzzCase("zip-as-png", b"PK\x03\x04" + bytes(200), "document", "image/png"),
    ]


def fuzz_cases(rng: random.Random, n: int) -> Iterator[FuzzCase]:
    """The crafted cases, then seeded mutations of small valid files, ``n`` in all."""
    made = crafted()[:n]
    yield from made
    pool = seeds()
    names = sorted(pool)
    for i in range(n - len(made)):
        fmt = rng.choice(names)
        mutate = rng.choice(MUTATIONS)
        data = mutate(pool[fmt], rng) or b"\0"
        how = rng.choice(("photo", "document", "document", "animation"))
        mime = rng.choice((f"image/{fmt}", "image/jpeg", "application/octet-stream"))
        yield FuzzCase(f"{fmt}-{mutate.__name__.strip('_')}-{i}", data, how, mime)
