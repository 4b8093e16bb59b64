"""Files for the hostile suite: unique photos, and the decoder fuzz corpus
(``tests/core/fuzz_corpus.py``, ``tests/core/fuzz_regressions.py``) sent the ways a Telegram
client can send them (compressed photo, document with a MIME type that may lie, animation,
video)."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

from tests.core.fuzz_corpus import JUNK, cases
from tests.core.fuzz_regressions import gif_canvas, png_declared
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


@dataclass
class FuzzCase:
    """One file and the way it is sent."""

    name: str
    data: bytes
    how: str  # photo | document | animation | video
    mime: str | None = None

    def send(self, server: FakeTelegramServer, user: FakeUser) -> dict[str, Any]:
        if self.how == "photo":
            return server.send_photo(user, self.data, width=640, height=480)
        if self.how == "animation":
            return server.send_animation(
                user, self.data, file_name="a.gif", mime_type=self.mime or "image/gif"
            )
        if self.how == "video":
            return server.send_video(user, self.data)
        return server.send_document(
            user, self.data, file_name=f"{self.name}.bin", mime_type=self.mime or "image/png"
        )


def crafted() -> list[FuzzCase]:
    """The files the issue reported, and MIME types that lie."""
    return [
        FuzzCase("gif-6000x6000x200", gif_canvas(6000, 6000, 200), "animation"),
        FuzzCase("gif-8000x8000x50", gif_canvas(8000, 8000, 50), "document", "image/gif"),
        FuzzCase("png-strip", png_declared(1, 100_000_000, rows=1), "document"),
        FuzzCase("text-as-jpeg", JUNK["text"], "document", "image/jpeg"),
        FuzzCase("zip-as-png", JUNK["zip"], "document", "image/png"),
    ]


def fuzz_cases(rng: random.Random, n: int) -> Iterator[FuzzCase]:
    """The crafted cases, then the decoder corpus (seeded by ``rng``), ``n`` in all."""
    made = crafted()[:n]
    yield from made
    for case in cases(rng.randrange(2**32), n - len(made)):
        if case.entry == "video":
            how = "video" if "mp4" in case.name else "animation"
        else:
            how = rng.choice(("photo", "document"))
        mime = rng.choice(("image/jpeg", "image/png", "application/octet-stream"))
        yield FuzzCase(case.name, case.data, how, mime)
