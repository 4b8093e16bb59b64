"""Rendered test pictures with their text, from fonts Debian ships (DejaVu, Liberation, Noto),
and text-free photo-likes; generated, never committed."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from tests.core.image_samples import gradient, photo_like

FONTS = Path("/usr/share/fonts/truetype")
EN = ["The quick brown fox jumps over", "the lazy dog near the river", "Invoice number 4521"]
RU = ["Съешь же ещё этих мягких", "французских булок да выпей чаю", "Квитанция об оплате"]


@dataclass(frozen=True, slots=True)
class Sample:
    image: Image.Image
    lines: tuple[str, ...]
    boxes: tuple[tuple[int, int, int, int], ...]  # left, top, right, bottom of each line


def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    path = FONTS / name
    if not path.is_file():
        pytest.skip(f"font {path} is not installed (fonts-dejavu-core, fonts-liberation)")
    return ImageFont.truetype(str(path), size)


def _draw(
    img: Image.Image,
    lines: list[str],
    xy: tuple[int, int],
    f: ImageFont.FreeTypeFont,
    fill: object,
    step: float = 1.5,
    **kw: object,
) -> list[tuple[int, int, int, int]]:
    d = ImageDraw.Draw(img)
    x, y = xy
    boxes = []
    for line in lines:
        d.text((x, y), line, font=f, fill=fill, **kw)  # type: ignore[arg-type]
        box = d.textbbox((x, y), line, font=f, **kw)  # type: ignore[arg-type]
        boxes.append(tuple(round(v) for v in box))
        y += int(f.size * step)
    return boxes  # type: ignore[return-value]


def document(
    lines: list[str],
    size: int = 28,
    name: str = "dejavu/DejaVuSans.ttf",
    bg: tuple[int, int, int] = (255, 255, 255),
    fg: tuple[int, int, int] = (0, 0, 0),
) -> Sample:
    f = font(name, size)
    width = int(max(f.getlength(line) for line in lines)) + 80
    img = Image.new("RGB", (width, int(len(lines) * size * 1.5) + 60), bg)
    return Sample(img, tuple(lines), tuple(_draw(img, lines, (40, 30), f, fg)))


def meme(top: str, bottom: str, seed: int = 1, size: int = 36) -> Sample:
    """White capitals with a black outline over a photo, the way meme generators draw them."""
    img = photo_like(640, 480, seed=seed)
    f = font("liberation/LiberationSans-Bold.ttf", size)
    d = ImageDraw.Draw(img)
    boxes = []
    for text, y in ((top, 15), (bottom, 480 - size - 25)):
        x = int((640 - d.textlength(text, font=f)) / 2)
        d.text((x, y), text, font=f, fill="white", stroke_width=3, stroke_fill="black")
        boxes.append(d.textbbox((x, y), text, font=f, stroke_width=3))
    return Sample(img, (top, bottom), tuple(boxes))  # type: ignore[arg-type]


def chat(messages: list[str]) -> Sample:
    """A messenger screenshot: bubbles left and right, small grey times."""
    img = Image.new("RGB", (720, 1280), (230, 235, 240))
    d = ImageDraw.Draw(img)
    f, small = font("noto/NotoSans-Regular.ttf", 26), font("noto/NotoSans-Regular.ttf", 12)
    boxes = []
    for i, text in enumerate(messages):
        x, y = (30 if i % 2 == 0 else 250), 40 + i * 78
        w = int(d.textlength(text, font=f))
        d.rounded_rectangle((x, y, x + w + 30, y + 52), 16, fill=(255, 255, 255))
        d.text((x + 15, y + 8), text, font=f, fill=(20, 20, 20))
        boxes.append(d.textbbox((x + 15, y + 8), text, font=f))
        d.text((x + w - 40, y + 38), f"12:3{i}", font=small, fill=(120, 120, 120))
    return Sample(img, tuple(messages), tuple(boxes))  # type: ignore[arg-type]


def slide() -> Sample:
    img = Image.new("RGB", (1280, 720), (30, 60, 120))
    title = font("dejavu/DejaVuSans-Bold.ttf", 64)
    boxes = _draw(img, ["Quarterly results"], (80, 80), title, "white")
    lines = ["Revenue grew in March", "Новые клиенты"]
    boxes += _draw(img, lines, (120, 240), font("dejavu/DejaVuSans.ttf", 44), (230, 230, 230), 2)
    return Sample(img, ("Quarterly results", *lines), tuple(boxes))


def receipt() -> Sample:
    lines = ["МАГАЗИН ПРОДУКТЫ", "Молоко 89.90", "Хлеб 45.00", "ИТОГО 134.90"]
    return document(lines, 22, "dejavu/DejaVuSansMono.ttf", bg=(250, 248, 240))


def noise(seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8), "RGB")


def blurred_shapes(seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = gradient(1024, 768)
    d = ImageDraw.Draw(img)
    for _ in range(20):
        x, y, r = rng.uniform(0, 1024), rng.uniform(0, 768), rng.uniform(20, 150)
        d.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return img.filter(ImageFilter.GaussianBlur(6))


def plain_pictures() -> dict[str, Image.Image]:
    """Text-free pictures: photo-likes, a gradient, blurred shapes, noise."""
    found = {f"photo{s}": photo_like(1024, 768, seed=s) for s in range(4)}
    found.update(gradient=gradient(1024, 768), blurred=blurred_shapes(), noise=noise())
    return found


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def word_recall(lines: tuple[str, ...], text: str) -> float:
    """Share of the rendered words found in the text read."""
    wanted = [w for line in lines for w in words(line)]
    got = set(words(text))
    return sum(w in got for w in wanted) / max(1, len(wanted))


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def underlined_slide() -> Sample:
    """A dark slide whose title has an accent rule under it, slightly turned, as JPEG: read as
    one block, tesseract took the rule into the first word's box and gave that word a
    confidence of 0, though it read it right."""
    bg = (30, 40, 70)
    img = Image.new("RGB", (1280, 720), bg)
    d = ImageDraw.Draw(img)
    title = font("liberation/LiberationSans-Regular.ttf", 59)
    d.text((80, 70), "Бюджет на следующий год", font=title, fill=(240, 240, 240))
    d.rectangle((80, 159, 400, 165), fill=(220, 90, 60))
    body = font("liberation/LiberationSans-Regular.ttf", 37)
    lines = ["Зарплаты и премии", "Аренда офиса", "Обучение сотрудников"]
    for i, line in enumerate(lines):
        d.text((110, 219 + i * 66), "• " + line, font=body, fill=(240, 240, 240))
    img = img.rotate(-2.53, Image.Resampling.BICUBIC, fillcolor=bg)
    return Sample(_jpeg(img, 55), ("Бюджет на следующий год", *lines), ())


def receipt_on_a_table(seed: int = 3) -> Sample:
    """A slip of paper photographed on a colourful table, slightly turned: the paper's edges
    are long straight lines around every line of text."""
    img = photo_like(800, 600, seed=seed).filter(ImageFilter.GaussianBlur(4))
    lines = ["Trader Joe's", "RECEIPT", "Sourdough bread 5.62", "Avocado 3.28", "TOTAL 8.90",
             "Cashier Jack", "Please come again"]  # fmt: skip
    paper = Image.new("RGB", (560, 440), (250, 248, 240))
    f = font("dejavu/DejaVuSansMono.ttf", 24)
    _draw(paper, lines, (40, 30), f, (20, 20, 20))
    mask = Image.new("L", paper.size, 255)
    turned = paper.rotate(3, expand=True, resample=Image.Resampling.BICUBIC)
    img.paste(turned, (110, 60), mask.rotate(3, expand=True))
    return Sample(img, tuple(lines), ())


def calm_meme(top: str, bottom: str, size: int = 74, seed: int = 2) -> Sample:
    """Big white capitals with a black outline over a blurred, calm picture (long captions
    wrapped), slightly turned, as JPEG."""
    img = blurred_shapes(seed).resize((900, 900)).filter(ImageFilter.GaussianBlur(10))
    f = font("noto/NotoSans-Bold.ttf", size)
    d = ImageDraw.Draw(img)
    for k, text in enumerate((top, bottom)):
        rows: list[str] = []
        for word in text.split():
            if rows and d.textlength(f"{rows[-1]} {word}", font=f) <= 820:
                rows[-1] += f" {word}"
            else:
                rows.append(word)
        step = int(size * 1.15)
        y0 = 30 if k == 0 else 900 - 40 - step * len(rows)
        for i, row in enumerate(rows):
            x = int((900 - d.textlength(row, font=f)) / 2)
            d.text((x, y0 + i * step), row, font=f, fill="white", stroke_width=max(2, size // 14),
                   stroke_fill="black")  # fmt: skip
    edge = img.getpixel((0, 0))
    img = img.rotate(-2.5, Image.Resampling.BICUBIC, fillcolor=edge)
    return Sample(_jpeg(img, 70), (top, bottom), ())
