"""The OCR evaluation set: Russian and English text rendered with Debian's fonts (DejaVu,
Liberation, Noto) as the pictures people forward — chat screenshots, receipts, slides, memes,
notes and tickets on plain paper, text over photo-like backgrounds — plus text-free photo-like
pictures (gradients, textures, blurred shapes, noise), all from one seed.

Every picture gets its ground truth in ``manifest.json``: its text and words, language, layout
kind, font, size, rotation, JPEG quality, and for a text picture a few queries (2-3 of its words,
the rarest in the set first, sometimes in another grammatical form with the same Snowball stem)
a user could type to find it. File names are neutral (``img_0001.jpg``) so that a file-name
index cannot answer for the OCR.

    .venv/bin/python bench/ocr_set.py --out /tmp/ocr-set            # 200 text + 800 text-free
    .venv/bin/python bench/ocr_set.py --out /tmp/ocr-set --small    # 30 + 120
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import snowballstemmer
from PIL import Image, ImageDraw, ImageFilter, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ocr_phrases as P

FONT_DIR = Path("/usr/share/fonts/truetype")
FONTS = {
    "sans": [
        "dejavu/DejaVuSans.ttf", "dejavu/DejaVuSans-Bold.ttf",
        "liberation/LiberationSans-Regular.ttf", "liberation/LiberationSans-Bold.ttf",
        "noto/NotoSans-Regular.ttf", "noto/NotoSans-Bold.ttf",
        "dejavu/DejaVuSansCondensed.ttf", "liberation/LiberationSansNarrow-Regular.ttf",
    ],
    "serif": [
        "dejavu/DejaVuSerif.ttf", "liberation/LiberationSerif-Regular.ttf",
        "noto/NotoSerif-Regular.ttf", "liberation/LiberationSerif-Bold.ttf",
    ],
    "mono": ["dejavu/DejaVuSansMono.ttf", "liberation/LiberationMono-Regular.ttf"],
    "bold": ["dejavu/DejaVuSans-Bold.ttf", "liberation/LiberationSans-Bold.ttf",
             "noto/NotoSans-Bold.ttf"],
}  # fmt: skip
TEXT_LAYOUTS = ("chat", "receipt", "slide", "meme", "photo", "plain")
FREE_LAYOUTS = ("gradient", "texture", "shapes", "noise", "scene")
QUALITIES = (55, 70, 85, 95)
WORD = re.compile(r"[^\W_]+")
# Words nobody would search a picture by.
STOP = {
    "from", "with", "your", "this", "that", "will", "what", "when", "again", "please", "have",
    "just", "about", "before", "after", "only", "yet", "are", "the", "and", "for",
    "только", "после", "уже", "снова", "когда", "тебя", "меня", "через", "опять", "очень",
}  # fmt: skip
STEMMERS = {"ru": snowballstemmer.stemmer("russian"), "en": snowballstemmer.stemmer("english")}


@dataclass
class EvalImage:
    """One picture of the set and its ground truth (the manifest's rows)."""

    name: str
    has_text: bool
    layout: str
    lang: str | None = None
    text: str = ""
    words: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    font: str = ""
    font_px: int = 0
    angle: float = 0.0
    quality: int = 90
    size: tuple[int, int] = (0, 0)


def words_of(text: str) -> list[str]:
    """Word tokens that count for recall: case-folded, ``ё`` as ``е``, at least two characters
    and at least one letter (prices and dates are not words a user searches by)."""
    folded = text.casefold().replace("ё", "е")
    return [w for w in WORD.findall(folded) if len(w) >= 2 and not w.isdigit()]


def stem(word: str, lang: str) -> str:
    return str(STEMMERS[lang].stemWord(word))


# --- text content -------------------------------------------------------------------------------


def money(rng: np.random.Generator, lang: str) -> tuple[float, str]:
    value = round(float(rng.choice([rng.uniform(20, 300), rng.uniform(300, 2500)])), 2)
    text = f"{value:,.2f}".replace(",", " ").replace(".", ",") if lang == "ru" else f"{value:.2f}"
    return value, text


def receipt_lines(rng: np.random.Generator, lang: str) -> list[str]:
    w = P.RECEIPT_WORDS[lang]
    lines = [
        str(rng.choice(P.SHOPS[lang])),
        str(rng.choice(w["title"])),
        str(rng.choice(w["kind"])),
    ]
    total = 0.0
    for item in rng.choice(P.ITEMS[lang], size=int(rng.integers(3, 7)), replace=False):
        value, shown = money(rng, lang)
        total += value
        lines.append(f"{item}  {shown}")
    shown = f"{total:,.2f}".replace(",", " ").replace(".", ",") if lang == "ru" else f"{total:.2f}"
    cur = w["currency"]
    lines.append(f"{w['total']}  {shown} {cur}" if lang == "ru" else f"{w['total']}  {cur}{shown}")
    lines += [
        str(rng.choice(w["paid"])),
        str(rng.choice(w["cashier"])),
        str(rng.choice(w["thanks"])),
    ]
    return lines


def chat_lines(rng: np.random.Generator, lang: str) -> list[str]:
    name = str(rng.choice(P.CHAT_NAMES[lang]))
    picked = rng.choice(P.CHAT[lang], size=int(rng.integers(3, 6)), replace=False)
    return [name, *[str(s) for s in picked]]


def slide_lines(rng: np.random.Generator, lang: str) -> list[str]:
    title, bullets = P.SLIDES[lang][int(rng.integers(len(P.SLIDES[lang])))]
    return [title, *bullets]


def meme_lines(rng: np.random.Generator, lang: str) -> list[str]:
    top, bottom = P.MEMES[lang][int(rng.integers(len(P.MEMES[lang])))]
    return [top.upper(), bottom.upper()]


def plain_lines(rng: np.random.Generator, lang: str) -> list[str]:
    if rng.random() < 0.5:
        return list(P.NOTES[lang][int(rng.integers(len(P.NOTES[lang])))])
    t = P.TICKETS[lang]
    a, b = (str(c) for c in rng.choice(t["cities"], size=2, replace=False))
    k = rng.choice(len(t["words"]), size=3, replace=False)
    labels = [t["words"][int(i)] for i in k]
    return [
        str(rng.choice(t["title"])),
        f"{a} — {b}",
        f"{labels[0]} {int(rng.integers(10, 99))}  {labels[1]} {int(rng.integers(1, 40))}",
        f"{labels[2]} {int(rng.integers(6, 23)):02d}:{int(rng.integers(0, 59)):02d}",
    ]


def photo_lines(rng: np.random.Generator, lang: str) -> list[str]:
    picked = rng.choice(P.POSTERS[lang], size=int(rng.integers(1, 3)), replace=False)
    return [str(s) for s in picked]


CONTENT: dict[str, Callable[[np.random.Generator, str], list[str]]] = {
    "chat": chat_lines,
    "receipt": receipt_lines,
    "slide": slide_lines,
    "meme": meme_lines,
    "photo": photo_lines,
    "plain": plain_lines,
}


# --- queries ------------------------------------------------------------------------------------


def inflect(word: str, lang: str) -> str | None:
    """Another form of ``word`` with the same Snowball stem, or None (what a user types is
    rarely the exact form printed: "квитанции" for "квитанция")."""
    if lang == "ru":
        endings = {
            "ия": ["ии", "ию"], "ая": ["ой", "ую"], "ый": ["ого", "ые"], "ий": ["его", "ие"],
            "ой": ["ого", "ые"], "а": ["ы", "у", "е"], "я": ["и", "ю"], "о": ["а", "ом"],
            "и": ["ам", "ей"], "ы": ["ам", "ов"], "е": ["ем"],
        }  # fmt: skip
        for end, repl in endings.items():
            if word.endswith(end):
                candidates = [word[: -len(end)] + r for r in repl]
                break
        else:
            candidates = [] if word.endswith(("ь", "й")) else [word + "а", word + "ом"]
        candidates = [re.sub("([кгхжшщч])ы", r"\1и", c) for c in candidates]  # spelling rule
    else:
        candidates = [word[:-1] + "ies"] if word.endswith("y") else []
        candidates += [] if word.endswith("s") else [word + "s"]
    target = stem(word, lang)
    for c in candidates:
        if c != word and len(c) > 2 and stem(c, lang) == target:
            return c
    return None


def make_queries(item: EvalImage, df: Counter[str], rng: np.random.Generator) -> list[str]:
    """Two queries: its two rarest words, and three words with one inflected when possible."""
    assert item.lang is not None
    lang = item.lang
    seen: dict[str, str] = {}
    for w in item.words:
        if len(w) >= 4 and w not in STOP and not any(ch.isdigit() for ch in w):
            seen.setdefault(stem(w, lang), w)
    if len(seen) < 2:
        return [" ".join(seen.values())] if seen else []
    ranked = sorted(seen.items(), key=lambda kv: (df[kv[0]], float(rng.random())))
    first = [w for _, w in ranked[:2]]
    second = [w for _, w in ranked[1:4]] if len(ranked) >= 4 else [w for _, w in ranked[:3]]
    i = int(rng.integers(len(second)))
    other = inflect(second[i], lang) if rng.random() < 0.6 else None
    if other is not None:
        second[i] = other
    queries = [" ".join(first), " ".join(second)]
    return list(dict.fromkeys(queries))


# --- pictures -----------------------------------------------------------------------------------


@cache
def font(path: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / path), px)


def photo_background(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A photo-like picture: smooth colour fields, a few blurred shapes, fine texture, noise."""
    w, h = size
    coarse = rng.integers(0, 256, (int(rng.integers(3, 7)), int(rng.integers(3, 7)), 3))
    grey = coarse.mean(axis=2, keepdims=True)
    coarse = 0.6 * coarse + 0.4 * grey  # photos are less saturated than random colours
    img = Image.fromarray(coarse.astype(np.uint8)).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 9))):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(min(w, h) // 12, min(w, h) // 3))
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        else:
            draw.rectangle((x - r, y - r // 2, x + r, y + r // 2), fill=fill)
    img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(4, 14))))
    fine = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1)).astype(np.uint8)
    texture = np.asarray(Image.fromarray(fine).resize(size, Image.Resampling.BILINEAR), np.int16)
    arr = np.asarray(img, np.int16) + ((texture - 128) * float(rng.uniform(0.05, 0.25)))[..., None]
    arr = arr + rng.normal(0, float(rng.uniform(2, 8)), arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def text_free(rng: np.random.Generator, layout: str, size: tuple[int, int]) -> Image.Image:
    w, h = size
    if layout == "gradient":
        a, b = rng.integers(0, 256, (2, 3))
        t = np.linspace(0, 1, w if rng.random() < 0.5 else h)[:, None]
        line = (a + (b - a) * t).astype(np.uint8)[None]
        img = Image.fromarray(line).resize(size, Image.Resampling.BILINEAR)
        arr = np.asarray(img, np.int16) + rng.normal(0, 3, (h, w, 3))
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if layout == "texture":
        octaves = np.zeros((h, w), np.float32)
        for k, amp in ((4, 1.0), (16, 0.5), (64, 0.25), (256, 0.12)):
            small = rng.random((max(2, h * k // w), k)).astype(np.float32)
            octaves += amp * np.asarray(
                Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
            )
        tint = rng.uniform(0.4, 1.0, 3)
        arr = (octaves / octaves.max())[..., None] * tint * 255
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if layout == "noise":
        base = np.asarray(photo_background(rng, size), np.int16)
        return Image.fromarray(
            np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
        )
    return photo_background(rng, size)  # shapes, scene: blurred shapes over colour fields


def text_width(f: ImageFont.FreeTypeFont, text: str) -> int:
    return int(f.getlength(text))


def wrap(text: str, f: ImageFont.FreeTypeFont, width: int) -> list[str]:
    out: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and text_width(f, trial) > width:
            out.append(line)
            line = word
        else:
            line = trial
    return [*out, line] if line else out


def render_chat(
    rng: np.random.Generator, lines: list[str], f: ImageFont.FreeTypeFont
) -> Image.Image:
    size = (720, 1280)
    img = Image.new("RGB", size, (int(rng.integers(220, 245)), int(rng.integers(225, 240)), 235))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, size[0], 110), fill=(84, 126, 168))
    d.text((40, 35), lines[0], font=f, fill="white")
    y = 150
    for k, msg in enumerate(lines[1:]):
        mine = k % 2 == 1
        rows = wrap(msg, f, 460)
        step = int(f.size * 1.3)
        bw = max(text_width(f, r) for r in rows) + 40
        bh = step * len(rows) + 30
        x = size[0] - bw - 30 if mine else 30
        d.rounded_rectangle((x, y, x + bw, y + bh), 18, fill=(220, 248, 198) if mine else "white")
        for i, r in enumerate(rows):
            d.text((x + 20, y + 15 + i * step), r, font=f, fill=(20, 20, 20))
        y += bh + 24
    return img


def render_receipt(
    rng: np.random.Generator, lines: list[str], f: ImageFont.FreeTypeFont
) -> Image.Image:
    step = int(f.size * 1.45)
    width = max(560, max(text_width(f, s) for s in lines) + 80)
    paper = Image.new("RGB", (width, step * (len(lines) + 3)), (250, 248, 240))
    d = ImageDraw.Draw(paper)
    for i, s in enumerate(lines):
        if "  " in s:  # an item or the total: name left, price right
            name, price = s.rsplit("  ", 1)
            d.text((40, step * (i + 1)), name, font=f, fill=(30, 30, 30))
            d.text(
                (width - 40 - text_width(f, price), step * (i + 1)), price, font=f, fill=(30,) * 3
            )
        else:
            d.text(((width - text_width(f, s)) // 2, step * (i + 1)), s, font=f, fill=(30, 30, 30))
    table = photo_background(rng, (paper.width + 240, paper.height + 160))
    table.paste(paper, (120, 80))
    return table


def render_slide(
    rng: np.random.Generator, lines: list[str], f: ImageFont.FreeTypeFont
) -> Image.Image:
    size = (1280, 720)
    dark = rng.random() < 0.5
    bg = (30, 40, 70) if dark else (245, 245, 250)
    ink = (240, 240, 240) if dark else (25, 25, 40)
    img = Image.new("RGB", size, bg)
    d = ImageDraw.Draw(img)
    big = font(Path(str(f.path)).relative_to(FONT_DIR).as_posix(), int(f.size * 1.6))
    d.text((80, 70), lines[0], font=big, fill=ink)
    d.rectangle((80, 80 + big.size + 20, 400, 80 + big.size + 26), fill=(220, 90, 60))
    y = 80 + big.size + 80
    for s in lines[1:]:
        d.text((110, y), "• " + s, font=f, fill=ink)
        y += int(f.size * 1.8)
    return img


def outlined(
    d: ImageDraw.ImageDraw, xy: tuple[int, int], s: str, f: ImageFont.FreeTypeFont
) -> None:
    d.text(xy, s, font=f, fill="white", stroke_width=max(2, f.size // 14), stroke_fill="black")


def render_meme(
    rng: np.random.Generator, lines: list[str], f: ImageFont.FreeTypeFont
) -> Image.Image:
    img = photo_background(rng, (900, 900))
    d = ImageDraw.Draw(img)
    for k, s in enumerate(lines):
        rows = wrap(s, f, 820)
        step = int(f.size * 1.15)
        y0 = 30 if k == 0 else 900 - 40 - step * len(rows)
        for i, r in enumerate(rows):
            outlined(d, ((900 - text_width(f, r)) // 2, y0 + i * step), r, f)
    return img


def render_photo(
    rng: np.random.Generator, lines: list[str], f: ImageFont.FreeTypeFont
) -> Image.Image:
    img = photo_background(rng, (1200, 900))
    d = ImageDraw.Draw(img)
    y = int(rng.integers(60, 400))
    for s in lines:
        rows = wrap(s, f, 1000)
        step = int(f.size * 1.3)
        boxed = rng.random() < 0.6  # a sign or a poster; else text straight on the picture
        bw = max(text_width(f, r) for r in rows) + 50
        x = int(rng.integers(40, max(41, 1160 - bw)))
        if boxed:
            fill = tuple(int(c) for c in rng.integers(200, 256, 3))
            d.rectangle((x - 10, y - 10, x + bw, y + step * len(rows) + 10), fill=fill)
            for i, r in enumerate(rows):
                d.text((x + 15, y + i * step), r, font=f, fill=(20, 20, 20))
        else:
            for i, r in enumerate(rows):
                outlined(d, (x + 15, y + i * step), r, f)
        y += step * len(rows) + 60
    return img


def render_plain(
    rng: np.random.Generator, lines: list[str], f: ImageFont.FreeTypeFont
) -> Image.Image:
    size = (1000, 750)
    paper = [(255, 253, 208), (250, 250, 250), (235, 242, 250)][int(rng.integers(3))]
    img = Image.new("RGB", size, paper)
    d = ImageDraw.Draw(img)
    step = int(f.size * 1.6)
    for i in range(1, size[1] // step):
        d.line((0, 40 + i * step + 8, size[0], 40 + i * step + 8), fill=(200, 210, 230), width=1)
    for i, s in enumerate(lines):
        d.text((60, 40 + i * step + 8 - f.size), s, font=f, fill=(30, 30, 90))
    return img


RENDER = {
    "chat": (render_chat, "sans", (26, 38)),
    "receipt": (render_receipt, "mono", (20, 30)),
    "slide": (render_slide, "sans", (34, 50)),
    "meme": (render_meme, "bold", (52, 80)),
    "photo": (render_photo, "sans", (34, 60)),
    "plain": (render_plain, "serif", (28, 42)),
}


def has_glyph(f: ImageFont.FreeTypeFont, ch: str) -> bool:
    """Whether ``f`` draws ``ch`` as itself rather than its missing-glyph box."""
    return f.getmask(ch).getbbox() != f.getmask("\ue000").getbbox() or ch == "\ue000"


def finish(
    img: Image.Image, rng: np.random.Generator, angle: float, quality: int, path: Path
) -> None:
    if angle:
        edge = tuple(int(c) for c in np.asarray(img)[0, 0])
        img = img.rotate(angle, Image.Resampling.BICUBIC, expand=False, fillcolor=edge)
    img.save(path, "JPEG", quality=quality)


# --- the set ------------------------------------------------------------------------------------


def plan(n_text: int, n_free: int, seed: int) -> list[EvalImage]:
    """The set's ground truth without pixels: layouts and languages alternate, content from
    the seed; queries use each word's document frequency over the text pictures."""
    rng = np.random.default_rng(seed)
    items: list[EvalImage] = []
    for i in range(n_text):
        layout = TEXT_LAYOUTS[i % len(TEXT_LAYOUTS)]
        lang = ("ru", "en")[(i // len(TEXT_LAYOUTS)) % 2]
        _, family, (lo, hi) = RENDER[layout]
        path = FONTS[family][int(rng.integers(len(FONTS[family])))]
        lines = CONTENT[layout](rng, lang)
        px = int(rng.integers(lo, hi + 1))
        if layout == "receipt" and not has_glyph(font(path, px), "₽"):
            lines = [s.replace(" ₽", " руб.") for s in lines]
        text = "\n".join(lines)
        items.append(
            EvalImage(
                name="",
                has_text=True,
                layout=layout,
                lang=lang,
                text=text,
                words=words_of(text),
                font=path,
                font_px=px,
                angle=round(float(rng.uniform(-3, 3)), 2) if rng.random() < 0.6 else 0.0,
                quality=int(rng.choice(QUALITIES)),
            )
        )
    for i in range(n_free):
        w, h = [(1280, 960), (960, 1280), (1200, 900), (1024, 1024)][int(rng.integers(4))]
        items.append(
            EvalImage(
                name="",
                has_text=False,
                layout=FREE_LAYOUTS[i % len(FREE_LAYOUTS)],
                quality=int(rng.choice(QUALITIES)),
                size=(w, h),
            )
        )
    order = rng.permutation(len(items))  # text and text-free interleaved on disk
    items = [items[int(k)] for k in order]
    for k, item in enumerate(items):
        item.name = f"img_{k + 1:04d}.jpg"
    df: Counter[str] = Counter()
    for item in items:
        if item.lang is not None:
            df.update({stem(w, item.lang) for w in item.words})
    for item in items:
        if item.has_text:
            item.queries = make_queries(item, df, rng)
    return items


def generate(out: Path, *, n_text: int = 200, n_free: int = 800, seed: int = 11) -> list[EvalImage]:
    """Write the pictures and ``manifest.json`` under ``out``; the same arguments give the same
    bytes."""
    out.mkdir(parents=True, exist_ok=True)
    items = plan(n_text, n_free, seed)
    for k, item in enumerate(items):
        rng = np.random.default_rng([seed, k])
        if item.has_text:
            render, _, _ = RENDER[item.layout]
            img = render(rng, item.text.split("\n"), font(item.font, item.font_px))
        else:
            img = text_free(rng, item.layout, item.size)
        item.size = img.size
        finish(img, rng, item.angle, item.quality, out / item.name)
    manifest = {
        "seed": seed,
        "n_text": n_text,
        "n_free": n_free,
        "images": [asdict(i) for i in items],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), "utf-8")
    return items


def load(out: Path) -> list[EvalImage]:
    """The manifest of a set written by :func:`generate`."""
    data: dict[str, Any] = json.loads((out / "manifest.json").read_text("utf-8"))
    rows = []
    for row in data["images"]:
        row["size"] = tuple(row["size"])
        rows.append(EvalImage(**row))
    return rows


def summary(items: Sequence[EvalImage]) -> dict[str, Any]:
    text = [i for i in items if i.has_text]
    vocab = {lang: {w for i in text if i.lang == lang for w in i.words} for lang in ("ru", "en")}
    return {
        "text_images": len(text),
        "text_free": len(items) - len(text),
        "by_layout": dict(Counter(i.layout for i in text)),
        "by_lang": dict(Counter(i.lang for i in text)),
        "distinct_words": {k: len(v) for k, v in vocab.items()},
        "queries": sum(len(i.queries) for i in text),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--small", action="store_true", help="30 text + 120 text-free pictures")
    ap.add_argument("--text", type=int, default=200)
    ap.add_argument("--free", type=int, default=800)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    n_text, n_free = (30, 120) if args.small else (args.text, args.free)
    items = generate(args.out, n_text=n_text, n_free=n_free, seed=args.seed)
    print(json.dumps(summary(items), ensure_ascii=False))


if __name__ == "__main__":
    main()
