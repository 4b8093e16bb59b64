"""Train the fixture models: a tiny CLIP (English) and a tiny ruCLIP (Russian), from scratch.

Tests need a small but *real* model: random weights cannot tell "a blue square" from "a red
star", and real CLIP weights are hundreds of megabytes. So we render a synthetic bilingual data
set (coloured shapes and two-shape scenes with English and Russian captions, Russian with
gender and case agreement: "красный круг", "красная звезда", "красное сердце", "над синей
звездой"), train an ``open_clip.CLIP`` on the English captions and a ``ruclip.model.CLIP`` on
the Russian ones, and export both with :mod:`core.models.export`. Both models see the same
pictures, so they are trained together around one image tower, copied into each at the end
(see :func:`train_pair`); the ruCLIP's YouTokenToMe vocabulary is trained on its captions.
Some captions name only the shape or only the colour ("a circle", "что-то красное"), as people
ask.

Run it with the export extra; about 20 minutes on one core of a 2-vCPU machine (the data takes
two, training 6000 steps the rest: half as many steps leave a model that confuses shapes of one
colour; ``--threads 2`` is about 1.3x faster on an idle machine and far slower on a busy one)::

    .venv-export/bin/python -m core.models train-fixture --out tests/fixtures/models
    .venv-export/bin/python -m core.models.fixture --out tests/fixtures/models   # same

Seeds are fixed, so a re-run with the same torch build and thread count gives the same
bundles. It writes ``clip-fixture/`` and ``ruclip-fixture/``, each with a ``metrics.json``:
held-out text->image recall@1, the cosine statistics the relevance floor came from, and the
ONNX-vs-torch check.

The data half (rendering, captions) imports no torch: tests render their photos with
:func:`render_shape_photo`. Torch, open_clip, ruclip and youtokentome are imported inside the
training functions.
"""

from __future__ import annotations

import argparse
import colorsys
import io
import json
import logging
import math
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from core.models.config import ImageConfig

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

SEED = 20261129

# --- vocabulary: colours and shapes in both languages ------------------------------------------

Gender = Literal["m", "f", "n"]
Case = Literal["nom", "ins", "gen"]


@dataclass(frozen=True)
class Colour:
    name: str  # English
    rgb: tuple[int, int, int]
    ru_stem: str  # Russian adjective stem, e.g. "красн"
    soft: bool = False  # soft-stem adjective ("синий": синяя, синее, синим, синего)

    def ru(self, gender: Gender, case: Case = "nom") -> str:
        endings = _SOFT_ENDINGS if self.soft else _HARD_ENDINGS
        return self.ru_stem + endings[case][gender]


_HARD_ENDINGS: dict[str, dict[str, str]] = {
    "nom": {"m": "ый", "f": "ая", "n": "ое"},
    "ins": {"m": "ым", "f": "ой", "n": "ым"},
    "gen": {"m": "ого", "f": "ой", "n": "ого"},
}
_SOFT_ENDINGS: dict[str, dict[str, str]] = {
    "nom": {"m": "ий", "f": "яя", "n": "ее"},
    "ins": {"m": "им", "f": "ей", "n": "им"},
    "gen": {"m": "его", "f": "ей", "n": "его"},
}


@dataclass(frozen=True)
class Shape:
    name: str  # English
    gender: Gender
    ru_nom: str
    ru_ins: str
    ru_gen: str
    max_rotation: float  # degrees either way, so the shape keeps looking like its name
    quarter_turns: bool = False  # also turned by a random multiple of 90 degrees (arrows)

    def ru(self, case: Case = "nom") -> str:
        return {"nom": self.ru_nom, "ins": self.ru_ins, "gen": self.ru_gen}[case]


COLOURS: dict[str, Colour] = {
    c.name: c
    for c in (
        Colour("red", (220, 30, 35), "красн"),
        Colour("green", (35, 165, 60), "зелён"),
        Colour("blue", (30, 75, 225), "син", soft=True),
        Colour("yellow", (250, 215, 30), "жёлт"),
        Colour("orange", (250, 125, 15), "оранжев"),
        Colour("purple", (135, 45, 185), "фиолетов"),
        Colour("white", (248, 248, 248), "бел"),
        Colour("black", (18, 18, 18), "чёрн"),
    )
}

SHAPES: dict[str, Shape] = {
    s.name: s
    for s in (
        Shape("circle", "m", "круг", "кругом", "круга", 0.0),
        Shape("square", "m", "квадрат", "квадратом", "квадрата", 15.0),
        Shape("triangle", "m", "треугольник", "треугольником", "треугольника", 25.0),
        Shape("star", "f", "звезда", "звездой", "звезды", 25.0),
        Shape("heart", "n", "сердце", "сердцем", "сердца", 20.0),
        Shape("cross", "m", "крест", "крестом", "креста", 12.0),
        Shape("arrow", "f", "стрелка", "стрелкой", "стрелки", 15.0, quarter_turns=True),
    )
}

# Colour x shape combinations never shown in training: they measure compositional
# generalisation (a purple heart from purple things and hearts), reported separately.
HELD_OUT_COMBOS: frozenset[tuple[str, str]] = frozenset(
    {("purple", "heart"), ("orange", "triangle"), ("white", "star"), ("yellow", "cross")}
)

Obj = tuple[str, str]  # (colour, shape)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def en_phrase(obj: Obj) -> str:
    """ "a red circle", "an orange star"."""
    colour, shape = obj
    return f"{_article(colour)} {colour} {shape}"


def ru_phrase(obj: Obj, case: Case = "nom") -> str:
    """ "красная звезда" (nom), "красной звездой" (ins), "красной звезды" (gen)."""
    colour, shape = COLOURS[obj[0]], SHAPES[obj[1]]
    return f"{colour.ru(shape.gender, case)} {shape.ru(case)}"


# Caption templates: {a} is the article-led phrase "a red circle", {c}/{s} colour and shape.
EN_SINGLE: tuple[str, ...] = (
    "{a}",
    "{c} {s}",
    "a photo of {a}",
    "a picture of {a}",
    "an image of {a}",
    "a drawing of {a}",
    "the {c} {s}",
    "{sa} that is {c}",
    "a {c} {s} shape",
)
# Russian: {nom}/{ins}/{gen} are the agreed phrase in that case; {pp} the agreed participle.
RU_SINGLE: tuple[str, ...] = (
    "{nom}",
    "фото: {nom}",
    "фотография: {nom}",
    "картинка с {ins}",
    "изображение: {nom}",
    "на картинке {nom}",
    "на фото {pp} {nom}",
    "{noun} {adj}",
    "рисунок {gen}",
)
_RU_PARTICIPLE = {"m": "изображён", "f": "изображена", "n": "изображено"}

Relation = Literal["above", "below", "left", "right", "and", "next"]
EN_RELATION = {
    "above": "{A} above {B}",
    "below": "{A} below {B}",
    "left": "{A} to the left of {B}",
    "right": "{A} to the right of {B}",
    "and": "{A} and {B}",
    "next": "{A} next to {B}",
}
RU_RELATION = {
    "above": "{A} над {B_ins}",
    "below": "{A} под {B_ins}",
    "left": "{A} слева от {B_gen}",
    "right": "{A} справа от {B_gen}",
    "and": "{A} и {B}",
    "next": "{A} рядом с {B_ins}",
}
EN_SCENE_PREFIX = ("", "a photo of ", "a picture of ")
RU_SCENE_PREFIX = ("", "фото: ", "на картинке ")


def en_single_captions(obj: Obj) -> list[str]:
    colour, shape = obj
    fields = {"a": en_phrase(obj), "c": colour, "s": shape, "sa": f"{_article(shape)} {shape}"}
    return [t.format(**fields) for t in EN_SINGLE]


def ru_single_captions(obj: Obj) -> list[str]:
    colour, shape = COLOURS[obj[0]], SHAPES[obj[1]]
    fields = {
        "nom": ru_phrase(obj, "nom"),
        "ins": ru_phrase(obj, "ins"),
        "gen": ru_phrase(obj, "gen"),
        "pp": _RU_PARTICIPLE[shape.gender],
        "noun": shape.ru_nom,
        "adj": colour.ru(shape.gender),
    }
    return [t.format(**fields) for t in RU_SINGLE]


# Queries that name only the shape or only the colour ("a circle", "что-то красное"): people
# ask like that, and a picture of a red circle answers both.
EN_SHAPE_ONLY: tuple[str, ...] = ("{sa}", "a photo of {sa}", "{s}")
EN_COLOUR_ONLY: tuple[str, ...] = ("something {c}", "a {c} thing", "{c}")
RU_SHAPE_ONLY: tuple[str, ...] = ("{noun}", "фото: {noun}", "на картинке {noun}")
RU_COLOUR_ONLY: tuple[str, ...] = ("что-то {n}", "{n}", "всё {n}")


def partial_captions(obj: Obj, language: str, keep: Literal["shape", "colour"]) -> list[str]:
    """Captions of ``obj`` that name only its shape or only its colour."""
    colour, shape = obj
    if language == "en":
        fields = {"c": colour, "s": shape, "sa": f"{_article(shape)} {shape}"}
        templates = EN_SHAPE_ONLY if keep == "shape" else EN_COLOUR_ONLY
        return [t.format(**fields) for t in templates]
    fields = {"noun": SHAPES[shape].ru_nom, "n": COLOURS[colour].ru("n")}
    templates = RU_SHAPE_ONLY if keep == "shape" else RU_COLOUR_ONLY
    return _with_yo_variants([t.format(**fields) for t in templates])


def _scene_facts(first: Obj, second: Obj, layout: str) -> list[tuple[Relation, Obj, Obj]]:
    """Every true statement about a two-shape scene, as (relation, A, B)."""
    near, far = ("above", "below") if layout == "vertical" else ("left", "right")
    return [
        (near, first, second),
        (far, second, first),
        ("and", first, second),
        ("and", second, first),
        ("next", first, second),
    ]


def en_scene_captions(first: Obj, second: Obj, layout: str) -> list[str]:
    out = []
    for rel, a, b in _scene_facts(first, second, layout):
        body = EN_RELATION[rel].format(A=en_phrase(a), B=en_phrase(b))
        out.extend(p + body for p in EN_SCENE_PREFIX)
    return out


def ru_scene_captions(first: Obj, second: Obj, layout: str) -> list[str]:
    out = []
    for rel, a, b in _scene_facts(first, second, layout):
        body = RU_RELATION[rel].format(
            A=ru_phrase(a), B=ru_phrase(b), B_ins=ru_phrase(b, "ins"), B_gen=ru_phrase(b, "gen")
        )
        out.extend(p + body for p in RU_SCENE_PREFIX)
    return out


def _with_yo_variants(captions: list[str]) -> list[str]:
    """People type "зеленый" as often as "зелёный": train on both spellings."""
    return captions + [c.replace("ё", "е") for c in captions if "ё" in c]


# --- rendering --------------------------------------------------------------------------------


def _unit_polygon(shape: str) -> list[tuple[float, float]]:
    """Outline in a unit circle (y down), before rotation; the circle is drawn as an ellipse."""
    if shape == "square":
        r = 1 / math.sqrt(2)
        return [(-r, -r), (r, -r), (r, r), (-r, r)]
    if shape == "triangle":
        return [(math.cos(a), math.sin(a)) for a in np.radians([-90, 30, 150])]
    if shape == "star":
        pts = []
        for i in range(10):
            radius = 1.0 if i % 2 == 0 else 0.42
            a = math.radians(-90 + 36 * i)
            pts.append((radius * math.cos(a), radius * math.sin(a)))
        return pts
    if shape == "heart":
        t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        x, y = x / 17.0, (y + 2.5) / 17.0
        return list(zip(x.tolist(), y.tolist(), strict=True))
    if shape == "cross":
        w, r = 0.3, 0.9
        return [
            (-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w),
            (w, r), (-w, r), (-w, w), (-r, w), (-r, -w), (-w, -w),
        ]  # fmt: skip
    if shape == "arrow":
        return [
            (-0.95, -0.2), (0.15, -0.2), (0.15, -0.6), (0.95, 0.0),
            (0.15, 0.6), (0.15, 0.2), (-0.95, 0.2),
        ]  # fmt: skip
    raise ValueError(f"unknown shape {shape!r}")


def _jitter_colour(colour: str, rng: np.random.Generator) -> tuple[int, int, int]:
    """A nearby shade, so the model learns colour names rather than exact RGB values."""
    if colour == "white":
        v = int(rng.integers(228, 256))
        return (v, v, v)
    if colour == "black":
        v = int(rng.integers(0, 40))
        return (v, v, v)
    r, g, b = (x / 255 for x in COLOURS[colour].rgb)
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    h = (h + rng.uniform(-0.015, 0.015)) % 1.0
    s = min(1.0, s * rng.uniform(0.85, 1.05))
    v = min(1.0, v * rng.uniform(0.82, 1.05))
    return tuple(round(x * 255) for x in colorsys.hsv_to_rgb(h, s, v))  # type: ignore[return-value]


def _background_colour(
    rng: np.random.Generator, avoid: Sequence[tuple[int, int, int]]
) -> np.ndarray:
    """A muted colour far from every shape colour, so backgrounds never name a colour."""
    for _ in range(100):
        h, s, v = rng.uniform(0, 1), rng.uniform(0, 0.22), rng.uniform(0.12, 0.97)
        rgb = np.array(colorsys.hsv_to_rgb(h, s, v)) * 255
        if all(np.linalg.norm(rgb - np.array(c)) > 120 for c in avoid):
            return rgb
    return np.array([128.0, 128.0, 128.0])


def _background(
    w: int, h: int, rng: np.random.Generator, avoid: Sequence[tuple[int, int, int]]
) -> np.ndarray:
    kind = rng.choice(["plain", "gradient", "noise", "blotches"])
    base = _background_colour(rng, avoid)
    img = np.broadcast_to(base, (h, w, 3)).astype(np.float32)
    if kind == "gradient":
        other = _background_colour(rng, avoid)
        angle = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = (xx / w - 0.5) * math.cos(angle) + (yy / h - 0.5) * math.sin(angle)
        t = np.clip(t + 0.5, 0, 1)[..., None]
        img = base * (1 - t) + other * t
    elif kind == "noise":
        img = img + rng.standard_normal((h, w, 1), dtype=np.float32) * rng.uniform(6, 20)
    elif kind == "blotches":
        small = rng.normal(0, rng.uniform(10, 28), (4, 4, 1)).astype(np.float32)
        low = np.asarray(Image.fromarray(small[..., 0]).resize((w, h), Image.Resampling.BICUBIC))
        img = img + low[..., None]
    return np.clip(img, 0, 255)


def _draw(
    canvas: Image.Image,
    obj: Obj,
    centre: tuple[float, float],
    size: float,
    rng: np.random.Generator,
) -> None:
    """Paint one anti-aliased shape (2x supersampled mask) onto ``canvas`` in place."""
    colour, shape = obj
    ss = 2  # supersampling factor of the mask
    r = size / 2
    x0, y0 = math.floor(centre[0] - r) - 1, math.floor(centre[1] - r) - 1
    box = math.ceil(size) + 3
    mask = Image.new("L", (box * ss, box * ss), 0)
    draw = ImageDraw.Draw(mask)
    cx, cy, rs = (centre[0] - x0) * ss, (centre[1] - y0) * ss, r * ss
    if shape == "circle":
        draw.ellipse([cx - rs, cy - rs, cx + rs, cy + rs], fill=255)
    else:
        spec = SHAPES[shape]
        turn = 90 * int(rng.integers(4)) if spec.quarter_turns else 0
        a = math.radians(turn + rng.uniform(-spec.max_rotation, spec.max_rotation))
        cos_a, sin_a = math.cos(a), math.sin(a)
        pts = [
            (cx + rs * (x * cos_a - y * sin_a), cy + rs * (x * sin_a + y * cos_a))
            for x, y in _unit_polygon(shape)
        ]
        draw.polygon(pts, fill=255)
    mask = mask.resize((box, box), Image.Resampling.BOX)
    canvas.paste(_jitter_colour(colour, rng), (x0, y0, x0 + box, y0 + box), mask)


def _photo_effects(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Blur, sensor noise and JPEG artefacts, so photos from a phone look like training data."""
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    if rng.random() < 0.4:
        arr = np.asarray(img, dtype=np.float32) + np.float32(rng.normal(0, 5))
        arr += rng.standard_normal(arr.shape, dtype=np.float32) * np.float32(rng.uniform(1, 6))
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.5:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(rng.integers(45, 96)))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img


def _random_canvas_size(rng: np.random.Generator) -> tuple[int, int]:
    side = int(rng.integers(64, 161))
    aspect = rng.choice([1.0, 1.0, 4 / 3, 3 / 4, 16 / 9, 3 / 2])
    return (round(side * aspect), side) if aspect >= 1 else (side, round(side / aspect))


POSITION_JITTER = 0.12  # of the side: how far a lone shape's centre may stray from the middle


def render_scene(
    objects: Sequence[Obj],
    rng: np.random.Generator,
    *,
    layout: str = "single",
    size: tuple[int, int] | None = None,
    effects: bool = True,
) -> Image.Image:
    """Render one or two shapes inside the centred square of the canvas.

    Keeping the shapes inside the centred square means both the centre crop (CLIP) and the
    square crop (ruCLIP) see all of them, whatever the canvas aspect ratio.
    """
    w, h = size or _random_canvas_size(rng)
    side = min(w, h)
    ox, oy = (w - side) / 2, (h - side) / 2
    colours = [_jitter_colour(c, rng) for c, _ in objects]
    canvas = Image.fromarray(_background(w, h, rng, colours).astype(np.uint8))
    margin = 0.06 * side
    if layout == "single":
        (obj,) = objects
        s = rng.uniform(0.42, 0.8) * side
        # Near the middle, as people frame a subject; a tiny ViT learns shapes faster so.
        room = min(POSITION_JITTER * side, max(0.0, side / 2 - s / 2 - margin))
        cx, cy = (side / 2 + rng.uniform(-room, room) for _ in range(2))
        _draw(canvas, obj, (ox + cx, oy + cy), s, rng)
    else:
        first, second = objects
        for i, obj in enumerate((first, second)):
            s = rng.uniform(0.26, 0.4) * side
            along = rng.uniform(s / 2 + margin, side / 2 - s / 2) + i * side / 2
            across = rng.uniform(s / 2 + margin, side - s / 2 - margin)
            x, y = (across, along) if layout == "vertical" else (along, across)
            _draw(canvas, obj, (ox + x, oy + y), s, rng)
    return _photo_effects(canvas, rng) if effects else canvas


def render_shape_photo(
    colour: str, shape: str, *, seed: int, size: tuple[int, int] = (320, 240)
) -> Image.Image:
    """A clean synthetic photo of one coloured shape (what the tests search through)."""
    return render_scene([(colour, shape)], np.random.default_rng(seed), size=size, effects=False)


@dataclass
class Sample:
    image: Image.Image
    key: str  # what the picture shows; samples with equal keys are interchangeable
    objects: tuple[Obj, ...]
    en: list[str]
    ru: list[str]


def all_objects() -> list[Obj]:
    return [(c, s) for c in COLOURS for s in SHAPES]


def iter_samples(
    n: int, seed: int, *, objects: Sequence[Obj], scene_fraction: float = 0.0
) -> Iterator[Sample]:
    """``n`` deterministic samples: single shapes from ``objects`` and two-shape scenes."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        if rng.random() < scene_fraction:
            a, b = rng.choice(len(objects), size=2, replace=False)
            first, second = objects[a], objects[b]
            layout = "vertical" if rng.random() < 0.5 else "horizontal"
            img = render_scene([first, second], rng, layout=layout)
            key = f"{layout}:{first[0]} {first[1]}|{second[0]} {second[1]}"
            en = en_scene_captions(first, second, layout)
            ru = _with_yo_variants(ru_scene_captions(first, second, layout))
            yield Sample(img, key, (first, second), en, ru)
        else:
            obj = objects[i % len(objects)]  # balanced classes
            img = render_scene([obj], rng)
            en, ru = en_single_captions(obj), _with_yo_variants(ru_single_captions(obj))
            yield Sample(img, f"{obj[0]} {obj[1]}", (obj,), en, ru)


# --- training ---------------------------------------------------------------------------------

IMAGE_SIZE = 48
CLIP_IMAGE = ImageConfig(size=IMAGE_SIZE, resize_mode="shortest", interpolation="bicubic")
RUCLIP_IMAGE = ImageConfig(size=IMAGE_SIZE, resize_mode="crop_resize", interpolation="bilinear")
IMAGE_CONFIGS = {"clip": CLIP_IMAGE, "ruclip": RUCLIP_IMAGE}
CONTEXT_LENGTH = 32
# The two bundles differ in width on purpose: code that mixes up models fails loudly.
CLIP_EMBED_DIM = 64
RUCLIP_EMBED_DIM = 48
PATCH = 8
VISION_WIDTH = 64  # ruclip gives its ViT width // 64 heads
VISION_LAYERS = 3
RU_VOCAB_SIZE = 400  # more than the captions can fill: each of their words becomes one token
RU_BOS, RU_EOS, RU_PAD = 2, 3, 0


@dataclass(frozen=True)
class TrainConfig:
    train_samples: int = 15000
    scene_fraction: float = 0.2
    eval_per_class: int = 4
    eval_scenes: int = 240
    steps: int = 6000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: int = 100
    image_loss: float = 1.0  # weight of :func:`_image_loss`
    threads: int = 1
    seed: int = SEED


@dataclass
class Split:
    """Rendered samples reduced to what training needs: model inputs, keys and captions."""

    pixels: dict[str, np.ndarray]  # per image config name: float32 [N, 3, S, S]
    keys: list[str]
    objects: list[tuple[Obj, ...]]
    captions: dict[str, list[list[str]]]  # per language


def build_split(samples: Iterator[Sample], image_cfgs: dict[str, ImageConfig]) -> Split:
    """Preprocess each rendered image with the runtime's own code, once per image config."""
    from core.image import preprocess

    pixels: dict[str, list[np.ndarray]] = {name: [] for name in image_cfgs}
    split = Split({}, [], [], {"en": [], "ru": []})
    for sample in samples:
        for name, cfg in image_cfgs.items():
            pixels[name].append(preprocess(sample.image, cfg))
        split.keys.append(sample.key)
        split.objects.append(sample.objects)
        split.captions["en"].append(sample.en)
        split.captions["ru"].append(sample.ru)
    split.pixels = {name: np.stack(arrs).astype(np.float32) for name, arrs in pixels.items()}
    return split


class CaptionTokens:
    """Caption -> padded int64 ids, cached: templates repeat, tokenizing them once is enough."""

    def __init__(self, encode: Callable[[str], list[int]], context_length: int) -> None:
        self._encode = encode
        self._length = context_length
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, captions: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(captions), self._length), dtype=np.int64)
        for i, caption in enumerate(captions):
            ids = self._cache.get(caption)
            if ids is None:
                ids = self._cache[caption] = np.asarray(self._encode(caption), dtype=np.int64)
            out[i, : len(ids)] = ids
        return out


def english_tokens(context_length: int = CONTEXT_LENGTH) -> CaptionTokens:
    from open_clip.tokenizer import SimpleTokenizer

    tok = SimpleTokenizer(context_length=context_length)

    def encode(text: str) -> list[int]:
        row = tok([text])[0].tolist()
        return row[: row.index(tok.eot_token_id) + 1]

    return CaptionTokens(encode, context_length)


def train_yttm(captions: Sequence[str], model_path: Path, vocab_size: int = RU_VOCAB_SIZE) -> Path:
    """Train ruCLIP's YouTokenToMe BPE on the (lowercased) Russian captions.

    One thread: the merge order is then a pure function of the corpus, so the vocabulary is
    reproducible.
    """
    import youtokentome as yttm

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "captions.txt"
        corpus.write_text("\n".join(c.lower() for c in captions) + "\n", encoding="utf-8")
        yttm.BPE.train(
            data=str(corpus),
            model=str(model_path),
            vocab_size=vocab_size,
            n_threads=1,
            pad_id=RU_PAD,
            unk_id=1,
            bos_id=RU_BOS,
            eos_id=RU_EOS,
        )
    return model_path


def russian_tokens(bpe_model: Path, context_length: int = CONTEXT_LENGTH) -> CaptionTokens:
    """ruCLIP's framing: lowercase, [bos] + ids + [eos], truncated to the context, pad 0."""
    import youtokentome as yttm

    bpe = yttm.BPE(str(bpe_model))

    def encode(text: str) -> list[int]:
        ids = bpe.encode([text.lower()], output_type=yttm.OutputType.ID)[0]
        return [RU_BOS, *ids[: context_length - 2], RU_EOS]

    return CaptionTokens(encode, context_length)


def build_clip() -> Any:
    """A tiny open_clip ViT CLIP; the 49408-token embedding is most of its size.

    Its image tower has exactly the layout of ruclip's (QuickGELU, 64-wide heads), so the
    ruCLIP fixture can start from it.
    """
    import open_clip

    vision = open_clip.CLIPVisionCfg(
        layers=VISION_LAYERS,
        width=VISION_WIDTH,
        head_width=64,
        patch_size=PATCH,
        image_size=CLIP_IMAGE.size,
    )
    text = open_clip.CLIPTextCfg(
        context_length=CONTEXT_LENGTH, vocab_size=49408, width=32, heads=2, layers=2
    )
    return open_clip.CLIP(
        embed_dim=CLIP_EMBED_DIM, vision_cfg=vision, text_cfg=text, quick_gelu=True
    )


def build_ruclip(vocab_size: int) -> Any:
    """A tiny ``ruclip.model.CLIP`` whose image tower has the layout of :func:`build_clip`'s."""
    from core.models.export import import_ruclip_model

    return import_ruclip_model().CLIP(
        embed_dim=RUCLIP_EMBED_DIM,
        image_resolution=RUCLIP_IMAGE.size,
        vision_layers=VISION_LAYERS,
        vision_width=VISION_WIDTH,
        vision_patch_size=PATCH,
        context_length=CONTEXT_LENGTH,
        vocab_size=vocab_size,
        transformer_width=64,
        transformer_heads=2,
        transformer_layers=2,
        eos_id=RU_EOS,
    )


def _contrastive_loss(
    image: torch.Tensor, text: torch.Tensor, positive: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE where every (image, caption) pair that is true is a positive.

    ``positive[i, j]``: caption j describes image i. With 52 classes a batch holds many
    pictures of the same class, and "a circle" describes every circle; calling those negatives
    (plain CLIP loss) would fight the labels we know are right.
    """
    import torch.nn.functional as F

    image, text = F.normalize(image, dim=-1), F.normalize(text, dim=-1)
    logits = scale * image @ text.t()
    i2t_target = positive / positive.sum(dim=1, keepdim=True)
    t2i_target = positive.t() / positive.t().sum(dim=1, keepdim=True)
    i2t = -(i2t_target * logits.log_softmax(dim=1)).sum(dim=1).mean()
    t2i = -(t2i_target * logits.t().log_softmax(dim=1)).sum(dim=1).mean()
    return (i2t + t2i) / 2


def _image_loss(image: torch.Tensor, same: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """InfoNCE among the batch's pictures: other renders of the same thing are the positives.

    Aligning with captions alone leaves backgrounds and sizes in the image vectors, and
    /similar (image to image) ranks by those; this pulls pictures of one thing together.
    """
    import torch
    import torch.nn.functional as F

    image = F.normalize(image, dim=-1)
    eye = torch.eye(len(image), dtype=torch.bool)
    positive = same & ~eye
    rows = positive.any(dim=1)
    if not bool(rows.any()):
        return image.sum() * 0
    logits = (scale * image @ image.t()).masked_fill(eye, float("-inf"))
    log_p = logits[rows].log_softmax(dim=1).masked_fill(eye[rows], 0.0)
    target = positive[rows].float() / positive[rows].sum(dim=1, keepdim=True)
    return -(target * log_p).sum(dim=1).mean()


PARTIAL_CAPTIONS = 0.2  # of the single-shape samples in a batch: captioned by shape or colour only


def _pick_captions(
    split: Split, idx: np.ndarray, rng: np.random.Generator
) -> tuple[list[str], list[str], np.ndarray]:
    """A caption per sample in both languages, and ``positive[i, j]`` (caption j is true of
    image i). Some single shapes get a shape-only or colour-only caption."""
    en, ru = [], []
    colour, shape, scene = [], [], []  # what each caption asks for; "" = anything
    for i in idx:
        objs = split.objects[i]
        mode = rng.random() if len(objs) == 1 else 1.0
        if mode < PARTIAL_CAPTIONS:
            keep: Literal["shape", "colour"] = "shape" if mode < PARTIAL_CAPTIONS / 2 else "colour"
            caps_en, caps_ru = (partial_captions(objs[0], lang, keep) for lang in ("en", "ru"))
            colour.append(objs[0][0] if keep == "colour" else "")
            shape.append(objs[0][1] if keep == "shape" else "")
        else:
            caps_en, caps_ru = split.captions["en"][i], split.captions["ru"][i]
            colour.append(objs[0][0] if len(objs) == 1 else "")
            shape.append(objs[0][1] if len(objs) == 1 else "")
        scene.append(split.keys[i] if len(objs) > 1 else "")
        en.append(caps_en[rng.integers(len(caps_en))])
        ru.append(caps_ru[rng.integers(len(caps_ru))])
    img_scene = np.array([split.keys[i] if len(split.objects[i]) > 1 else "" for i in idx])
    img_colour = np.array([split.objects[i][0][0] for i in idx])
    img_shape = np.array([split.objects[i][0][1] for i in idx])
    c, sh, sc = np.array(colour)[None, :], np.array(shape)[None, :], np.array(scene)[None, :]
    single = (img_scene[:, None] == "") & (sc == "")
    fits = ((c == "") | (c == img_colour[:, None])) & ((sh == "") | (sh == img_shape[:, None]))
    positive = (single & fits) | ((sc != "") & (sc == img_scene[:, None]))
    return en, ru, positive


def _batches(split: Split, rng: np.random.Generator, size: int) -> Iterator[np.ndarray]:
    """Endless batches: half random, half single shapes of two colours.

    The same-colour half makes shape the only way to tell those pictures apart; without it the
    easy colour cue satisfies most of the loss and shape is learned more slowly.
    """
    singles: dict[str, list[int]] = {}
    for i, objs in enumerate(split.objects):
        if len(objs) == 1:
            singles.setdefault(objs[0][0], []).append(i)
    colours = sorted(singles)
    pools = {c: np.array(v) for c, v in singles.items()}
    n = len(split.keys)
    while True:
        grouped = [rng.choice(pools[c], size // 4) for c in rng.choice(colours, 2, replace=False)]
        yield np.concatenate([*grouped, rng.integers(0, n, size - 2 * (size // 4))])


def train_pair(
    clip: Any,
    ruclip: Any,
    split: Split,
    en_tokens: CaptionTokens,
    ru_tokens: CaptionTokens,
    cfg: TrainConfig,
) -> float:
    """Train both models at once around one image tower; returns the seconds it took.

    Both fixtures see the same pictures, so one image tower (the CLIP's) learns from the English
    and the Russian captions together, with a linear map ``to_ru`` into the ruCLIP's narrower
    embedding; afterwards it is copied into the ruCLIP, ``proj @ to_ru`` becoming its projection.
    Each batch is preprocessed at random the CLIP's or the ruCLIP's way, so the tower knows the
    exact inputs of both runtimes. Half the work of two separate trainings for the same steps.
    """
    import torch

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    to_ru = torch.nn.Parameter(torch.randn(CLIP_EMBED_DIM, RUCLIP_EMBED_DIM) / CLIP_EMBED_DIM**0.5)
    pixels = {name: torch.from_numpy(arr) for name, arr in split.pixels.items()}
    keys = np.array(split.keys)
    # A mirror image is still "a red star"; left and right would swap in a side-by-side scene.
    flippable = np.array([not k.startswith("horizontal:") for k in split.keys])

    params = [(n, p) for n, p in clip.named_parameters()]
    params += [(f"ru.{n}", p) for n, p in ruclip.named_parameters() if not n.startswith("visual.")]
    params.append(("to_ru", to_ru))
    decay = [p for n, p in params if p.ndim >= 2 and "embedding" not in n]
    other = [p for n, p in params if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": other, "weight_decay": 0}],
        lr=cfg.lr,
        betas=(0.9, 0.98),
        fused=True,
    )

    def schedule(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    clip.train()
    ruclip.train()
    start = time.monotonic()
    batches = _batches(split, rng, cfg.batch_size)
    for step in range(cfg.steps):
        idx = next(batches)
        x = pixels["clip" if rng.random() < 0.5 else "ruclip"][idx]
        flip = torch.from_numpy(flippable[idx] & (rng.random(len(idx)) < 0.5))
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        en, ru, positive = _pick_captions(split, idx, rng)
        pos = torch.from_numpy(positive.astype(np.float32))
        image = clip.encode_image(x)
        loss_en = _contrastive_loss(
            image, clip.encode_text(torch.from_numpy(en_tokens(en))), pos, clip.logit_scale.exp()
        )
        loss_ru = _contrastive_loss(
            image @ to_ru,
            ruclip.encode_text(torch.from_numpy(ru_tokens(ru))),
            pos,
            ruclip.logit_scale.exp(),
        )
        loss = loss_en + loss_ru
        if cfg.image_loss > 0:
            same = torch.from_numpy(keys[idx][:, None] == keys[idx][None, :])
            loss = loss + cfg.image_loss * _image_loss(image, same, clip.logit_scale.exp())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            clip.logit_scale.clamp_(0, math.log(100))
            ruclip.logit_scale.clamp_(0, math.log(100))
        if step % 100 == 0 or step == cfg.steps - 1:
            log.info(
                "step %d/%d loss en %.3f ru %.3f (%.0f s)",
                step, cfg.steps, loss_en.item(), loss_ru.item(), time.monotonic() - start,
            )  # fmt: skip
    clip.eval()
    ruclip.eval()
    with torch.no_grad():
        state = {k: v for k, v in clip.visual.state_dict().items() if k != "proj"}
        state["proj"] = clip.visual.proj @ to_ru
        ruclip.visual.load_state_dict(state)
    return time.monotonic() - start


def _embed(fn: Callable[[Any], Any], arr: np.ndarray, batch: int = 256) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(arr), batch):
            out.append(fn(torch.from_numpy(arr[i : i + batch])).numpy())
    emb = np.concatenate(out).astype(np.float32)
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


@dataclass
class Evaluation:
    metrics: dict[str, Any]
    relevance_floor: float
    image_emb: np.ndarray
    query_tokens: np.ndarray
    query_emb: np.ndarray


# What the runtime's tests search through: a dozen clean photos, several sharing a colour or a
# shape with another (tests/core/test_search.py holds the same set).
PHOTO_SET: tuple[Obj, ...] = (
    ("blue", "square"),
    ("red", "square"),
    ("green", "square"),
    ("blue", "circle"),
    ("red", "circle"),
    ("yellow", "circle"),
    ("blue", "triangle"),
    ("green", "triangle"),
    ("red", "star"),
    ("purple", "star"),
    ("orange", "heart"),
    ("white", "arrow"),
)


def photo_set_recall(
    model: Any, image_cfg: ImageConfig, language: str, tokens: CaptionTokens, sets: int = 30
) -> float:
    """Text->image recall@1 of the plainest query within :data:`PHOTO_SET`, rendered clean
    (as :func:`render_shape_photo` draws test photos) with ``sets`` different seeds."""
    from core.image import preprocess

    caption = en_single_captions if language == "en" else ru_single_captions
    text_emb = _embed(model.encode_text, tokens([caption(o)[0] for o in PHOTO_SET]))
    hits = []
    for seed in range(sets):
        pixels = np.stack(
            [
                preprocess(render_shape_photo(*o, seed=10_000 + 100 * seed + i), image_cfg)
                for i, o in enumerate(PHOTO_SET)
            ]
        ).astype(np.float32)
        image_emb = _embed(model.encode_image, pixels)
        hits.append((text_emb @ image_emb.T).argmax(axis=1) == np.arange(len(PHOTO_SET)))
    return float(np.mean(hits))


def _image_recall(image_emb: np.ndarray, keys: np.ndarray) -> float:
    """How often a picture's nearest other picture shows the same thing (what /similar does)."""
    sim = image_emb @ image_emb.T
    np.fill_diagonal(sim, -np.inf)
    return float((keys[sim.argmax(axis=1)] == keys).mean())


def _example(keep: str, name: str) -> Obj:
    """Some object with this shape or colour (the other half is not in its partial caption)."""
    return ("red", name) if keep == "shape" else (name, "circle")


def evaluate(
    model: Any,
    gallery: Split,
    scenes: Split,
    image_cfg: str,
    language: str,
    tokens: CaptionTokens,
) -> Evaluation:
    """Held-out text->image recall@1 and the cosine statistics the relevance floor comes from.

    Queries are every caption template of every colour x shape; the gallery holds fresh renders
    of all classes. A hit is a top-1 image of the query's class (colour and shape).
    """
    image_emb = _embed(model.encode_image, gallery.pixels[image_cfg])
    classes = sorted(set(gallery.keys))
    templates = {k: gallery.captions[language][gallery.keys.index(k)] for k in classes}
    queries = [(cap, k) for k in classes for cap in templates[k]]
    query_tokens = tokens([q for q, _ in queries])
    query_emb = _embed(model.encode_text, query_tokens)
    top1 = (query_emb @ image_emb.T).argmax(axis=1)
    keys = np.array(gallery.keys)
    hits = keys[top1] == np.array([k for _, k in queries])
    unseen = np.array([tuple(k.split()) in HELD_OUT_COMBOS for _, k in queries])

    # Cosines of the plainest query ("a red circle" / "красный круг") against every image. The
    # floor sits halfway between the weak end of the matches and the strong end of pictures
    # that share nothing with the query (neither colour nor shape): below it is noise, so a
    # collection without the thing asked for answers "nothing matched". Pictures sharing one
    # of the two fall in between; the search's margin below its best hit handles those.
    plain_emb = _embed(model.encode_text, tokens([templates[k][0] for k in classes]))
    cos = plain_emb @ image_emb.T
    q_colour = np.array([k.split()[0] for k in classes])[:, None]
    q_shape = np.array([k.split()[1] for k in classes])[:, None]
    i_colour = np.array([k.split()[0] for k in gallery.keys])[None, :]
    i_shape = np.array([k.split()[1] for k in gallery.keys])[None, :]
    same = np.array(classes)[:, None] == keys[None, :]
    unrelated = (q_colour != i_colour) & (q_shape != i_shape)
    seen_rows = np.array([tuple(k.split()) not in HELD_OUT_COMBOS for k in classes])
    match, other = cos[seen_rows][same[seen_rows]], cos[seen_rows][~same[seen_rows]]
    noise = cos[seen_rows][unrelated[seen_rows]]
    # Queries naming only a shape or only a colour ("a circle", "что-то красное") count too.
    partial_match, partial_noise = [], []
    for keep, names, of_image in (("shape", SHAPES, i_shape), ("colour", COLOURS, i_colour)):
        captions = [partial_captions(_example(keep, n), language, keep)[0] for n in names]
        pcos = _embed(model.encode_text, tokens(captions)) @ image_emb.T
        fits = np.array(list(names))[:, None] == of_image
        partial_match.append(pcos[fits])
        partial_noise.append(pcos[~fits])
    p_match, p_noise = np.concatenate(partial_match), np.concatenate(partial_noise)
    all_match, all_noise = np.concatenate([match, p_match]), np.concatenate([noise, p_noise])
    floor = round(float(np.percentile(all_match, 5) + np.percentile(all_noise, 95)) / 2, 2)

    scene_img = _embed(model.encode_image, scenes.pixels[image_cfg])
    scene_txt = _embed(model.encode_text, tokens([c[0] for c in scenes.captions[language]]))
    scene_keys = np.array(scenes.keys)
    scene_hits = scene_keys[(scene_txt @ scene_img.T).argmax(axis=1)] == scene_keys

    metrics = {
        "language": language,
        "recall_at_1": round(float(hits[~unseen].mean()), 4),
        "queries": int((~unseen).sum()),
        "gallery_images": len(keys),
        "recall_at_1_unseen_combinations": round(float(hits[unseen].mean()), 4),
        "unseen_combinations": sorted(" ".join(c) for c in HELD_OUT_COMBOS),
        "photo_set_recall_at_1": round(
            photo_set_recall(model, IMAGE_CONFIGS[image_cfg], language, tokens), 4
        ),
        "image_to_image_recall_at_1": round(_image_recall(image_emb, keys), 4),
        "scene_recall_at_1": round(float(scene_hits.mean()), 4),
        "scene_gallery_images": len(scene_keys),
        "cosine": {
            "matching_mean": round(float(match.mean()), 4),
            "matching_p05": round(float(np.percentile(match, 5)), 4),
            "non_matching_mean": round(float(other.mean()), 4),
            "non_matching_p95": round(float(np.percentile(other, 95)), 4),
            "unrelated_p95": round(float(np.percentile(noise, 95)), 4),
            "partial_matching_mean": round(float(p_match.mean()), 4),
            "partial_matching_p05": round(float(np.percentile(p_match, 5)), 4),
            "partial_unrelated_p95": round(float(np.percentile(p_noise, 95)), 4),
            "matches_above_floor": round(float((match > floor).mean()), 4),
            "partial_matches_above_floor": round(float((p_match > floor).mean()), 4),
            "unrelated_above_floor": round(float((all_noise > floor).mean()), 4),
        },
        "relevance_floor": floor,
    }
    return Evaluation(metrics, floor, image_emb, query_tokens, query_emb)


def onnx_parity(bundle_dir: Path, pixels: np.ndarray, ev: Evaluation, n: int = 64) -> float:
    """Largest cosine gap between the exported ONNX towers and the torch model we trained."""
    import onnxruntime as ort

    config = json.loads((bundle_dir / "config.json").read_text(encoding="utf-8"))
    gap = 0.0
    for file, inputs, ref in (
        (config.get("visual_file", "visual.onnx"), pixels[:n], ev.image_emb[:n]),
        (config.get("textual_file", "textual.onnx"), ev.query_tokens[:n], ev.query_emb[:n]),
    ):
        session = ort.InferenceSession(str(bundle_dir / file), providers=["CPUExecutionProvider"])
        out = session.run(None, {session.get_inputs()[0].name: inputs})[0]
        out = out / np.linalg.norm(out, axis=1, keepdims=True)
        gap = max(gap, float((1 - (out * ref).sum(axis=1)).max()))
    return gap


SOURCE = "trained from scratch on synthetic coloured shapes by core/models/fixture.py (seed {})"


def build_data(cfg: TrainConfig) -> dict[str, Split]:
    """Train, held-out gallery and held-out scenes; different seeds, so different renders."""
    seen = [o for o in all_objects() if o not in HELD_OUT_COMBOS]
    cfgs = IMAGE_CONFIGS
    n_gallery = len(all_objects()) * cfg.eval_per_class
    train = iter_samples(
        cfg.train_samples, cfg.seed, objects=seen, scene_fraction=cfg.scene_fraction
    )
    gallery = iter_samples(n_gallery, cfg.seed + 1, objects=all_objects())
    scenes = iter_samples(cfg.eval_scenes, cfg.seed + 2, objects=seen, scene_fraction=1.0)
    return {
        "train": build_split(train, cfgs),
        "gallery": build_split(gallery, cfgs),
        "scenes": build_split(scenes, cfgs),
    }


@dataclass
class Trained:
    name: str
    model: Any
    tokens: CaptionTokens
    image_cfg: str
    language: str
    bpe_model: Path | None = None


def train(
    data: dict[str, Split], work: Path, cfg: TrainConfig
) -> tuple[list[Trained], float | None]:
    """Both models, from a checkpoint in ``work`` when an earlier run left one there."""
    import torch
    import youtokentome as yttm

    bpe_model = work / "ruclip-fixture.bpe.model"
    if not bpe_model.exists():
        partial = [
            c
            for o in all_objects()
            for k in ("shape", "colour")
            for c in partial_captions(o, "ru", k)
        ]
        train_yttm([c for caps in data["train"].captions["ru"] for c in caps] + partial, bpe_model)
    en_tokens, ru_tokens = english_tokens(), russian_tokens(bpe_model)
    torch.manual_seed(cfg.seed)  # the initial weights
    clip, ruclip = build_clip(), build_ruclip(yttm.BPE(str(bpe_model)).vocab_size())
    checkpoint = work / "fixture-models.pt"
    seconds = None
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu")
        clip.load_state_dict(state["clip"])
        ruclip.load_state_dict(state["ruclip"])
        seconds = state.get("seconds")
        clip.eval()
        ruclip.eval()
        log.info("loaded %s", checkpoint)
    else:
        seconds = train_pair(clip, ruclip, data["train"], en_tokens, ru_tokens, cfg)
        state = {"clip": clip.state_dict(), "ruclip": ruclip.state_dict(), "seconds": seconds}
        torch.save(state, checkpoint)
    return [
        Trained("clip-fixture", clip, en_tokens, "clip", "en"),
        Trained("ruclip-fixture", ruclip, ru_tokens, "ruclip", "ru", bpe_model),
    ], seconds


def export(trained: Trained, out: Path, floor: float, cfg: TrainConfig) -> Path:
    from core.models.export import export_open_clip_model, export_ruclip_model

    common: dict[str, Any] = {
        "name": trained.name,
        "version": "1",
        "languages": (trained.language,),
        "relevance_floor": floor,
        "source": SOURCE.format(cfg.seed),
    }
    if trained.bpe_model is None:
        return Path(
            export_open_clip_model(trained.model, out / trained.name, image=CLIP_IMAGE, **common)
        )
    return Path(
        export_ruclip_model(
            trained.model, trained.bpe_model, out / trained.name, image=RUCLIP_IMAGE, **common
        )
    )


def report(
    ev: Evaluation,
    cfg: TrainConfig,
    seconds: float | None,
    bundle: Path | None,
    pixels: np.ndarray,
) -> dict[str, Any]:
    """The metrics, with the ONNX parity check when exported; written as ``metrics.json``."""
    metrics = dict(ev.metrics)
    metrics["train"] = {
        "seconds_both_models": None if seconds is None else round(seconds, 1),
        "steps": cfg.steps,
        "batch_size": cfg.batch_size,
        "train_samples": cfg.train_samples,
        "threads": cfg.threads,
        "seed": cfg.seed,
        "command": "python -m core.models train-fixture --out tests/fixtures/models",
    }
    if bundle is not None:
        metrics["onnx_max_cosine_gap"] = round(onnx_parity(bundle, pixels, ev), 6)
        text = json.dumps(metrics, ensure_ascii=False, indent=2) + "\n"
        (bundle / "metrics.json").write_text(text, encoding="utf-8")
    return metrics


def main(argv: list[str] | None = None) -> int:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m core.models train-fixture",
        description="Train the tiny fixture CLIP and ruCLIP on synthetic shapes and export them.",
    )
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/models"))
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="keep the checkpoint and the BPE model here; a later run reuses them (re-export)",
    )
    parser.add_argument("--no-export", action="store_true", help="train and evaluate only")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--train-samples", type=int, default=defaults.train_samples)
    parser.add_argument(
        "--threads", type=int, default=defaults.threads, help="1 is faster on a busy machine"
    )
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")

    import torch

    cfg = TrainConfig(steps=args.steps, train_samples=args.train_samples, threads=args.threads)
    torch.set_num_threads(cfg.threads)
    start = time.monotonic()
    data = build_data(cfg)
    log.info("rendered and preprocessed the data in %.0f s", time.monotonic() - start)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        models, seconds = train(data, work, cfg)
        for t in models:
            gallery = data["gallery"]
            ev = evaluate(t.model, gallery, data["scenes"], t.image_cfg, t.language, t.tokens)
            bundle = None if args.no_export else export(t, args.out, ev.relevance_floor, cfg)
            results[t.name] = report(ev, cfg, seconds, bundle, gallery.pixels[t.image_cfg])
    for name, m in results.items():
        print(
            f"{name} ({m['language']}): held-out text->image recall@1 {m['recall_at_1']:.3f} "
            f"over {m['queries']} queries; unseen combinations "
            f"{m['recall_at_1_unseen_combinations']:.3f}; scenes {m['scene_recall_at_1']:.3f}; "
            f"relevance floor {m['relevance_floor']}"
        )
    print(f"trained in {seconds} s; total {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
