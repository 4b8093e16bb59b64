"""End-to-end retrieval with the committed fixture bundles, through the runtime only.

The fixture models are small but trained (``python -m tools train-fixture``), so these
tests check what the real thing must do: a query in either language ranks the right photo
first, and a re-sized, re-compressed copy of a photo finds the original.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.models.bundle import load_bundle
from core.models.embedder import OnnxEmbedder
from tests.fixtures.tooling.shapes import render_shape_photo

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models"
BUNDLES = ("clip-fixture", "ruclip-fixture")
MAX_BUNDLE_BYTES = 20_000_000  # both bundles together

# A dozen distinct colour x shape photos; several share the blue square's colour or shape.
PHOTOS: list[tuple[str, str]] = [
    ("blue", "square"),
    ("red", "square"),
    ("green", "square"),
    ("blue", "circle"),
    ("blue", "star"),
    ("red", "star"),
    ("green", "circle"),
    ("yellow", "triangle"),
    ("orange", "heart"),
    ("purple", "arrow"),
    ("white", "cross"),
    ("black", "heart"),
]
SIZES = [(320, 240), (240, 320), (256, 256), (400, 300)]


@dataclass
class Library:
    embedders: dict[str, OnnxEmbedder]
    photos: list[bytes]
    vectors: dict[str, np.ndarray]  # bundle name -> [len(PHOTOS), D]

    def rank(self, bundle: str, query: np.ndarray) -> list[tuple[str, str]]:
        scores = self.vectors[bundle] @ query
        return [PHOTOS[i] for i in np.argsort(-scores, kind="stable")]

    def text_rank(self, bundle: str, text: str) -> list[tuple[str, str]]:
        return self.rank(bundle, self.embedders[bundle].encode_texts([text])[0])


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def library() -> Iterator[Library]:
    embedders = {name: OnnxEmbedder(load_bundle(FIXTURES / name), threads=1) for name in BUNDLES}
    photos = [
        _png(render_shape_photo(colour, shape, seed=1000 + i, size=SIZES[i % len(SIZES)]))
        for i, (colour, shape) in enumerate(PHOTOS)
    ]
    vectors = {name: e.encode_images(photos) for name, e in embedders.items()}
    try:
        yield Library(embedders, photos, vectors)
    finally:
        for e in embedders.values():
            e.close()


@pytest.mark.parametrize(
    ("bundle", "text", "expected"),
    [
        ("clip-fixture", "a blue square", ("blue", "square")),
        ("ruclip-fixture", "синий квадрат", ("blue", "square")),
        ("ruclip-fixture", "красная звезда", ("red", "star")),
        ("ruclip-fixture", "красный квадрат", ("red", "square")),
        ("ruclip-fixture", "оранжевое сердце", ("orange", "heart")),
        ("ruclip-fixture", "фото: зеленый круг", ("green", "circle")),
        ("ruclip-fixture", "картинка с синей звездой", ("blue", "star")),
        ("clip-fixture", "a green circle", ("green", "circle")),
        ("clip-fixture", "a photo of a red star", ("red", "star")),
        ("clip-fixture", "Yellow Triangle", ("yellow", "triangle")),
        ("clip-fixture", "a black heart", ("black", "heart")),
    ],
)
def test_text_query_ranks_the_matching_photo_first(
    library: Library, bundle: str, text: str, expected: tuple[str, str]
) -> None:
    ranking = library.text_rank(bundle, text)
    assert ranking[0] == expected, ranking[:3]


@pytest.mark.parametrize("bundle", BUNDLES)
def test_resized_recompressed_copy_finds_the_original(library: Library, bundle: str) -> None:
    original = Image.open(io.BytesIO(library.photos[0]))
    assert PHOTOS[0] == ("blue", "square")
    bigger = original.resize((original.width * 3, original.height * 3), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    bigger.save(buf, "JPEG", quality=70)
    query = library.embedders[bundle].encode_images([buf.getvalue()])[0]
    ranking = library.rank(bundle, query)
    assert ranking[0] == ("blue", "square"), ranking[:3]
    assert float(library.vectors[bundle][0] @ query) > 0.95


@pytest.mark.parametrize(
    ("bundle", "text"), [("clip-fixture", "a blue square"), ("ruclip-fixture", "синий квадрат")]
)
def test_relevance_floor_separates_a_match_from_an_unrelated_photo(
    library: Library, bundle: str, text: str
) -> None:
    embedder = library.embedders[bundle]
    floor = embedder.config.relevance_floor
    scores = library.vectors[bundle] @ embedder.encode_texts([text])[0]
    unrelated = PHOTOS.index(("yellow", "triangle"))
    assert scores[0] > floor > scores[unrelated], (scores[0], floor, scores[unrelated])


def test_bundles_are_distinct_models_with_recorded_quality() -> None:
    configs = [load_bundle(FIXTURES / name).config for name in BUNDLES]
    assert [c.languages for c in configs] == [("en",), ("ru",)]
    assert [c.text.tokenizer for c in configs] == ["clip", "yttm"]
    # Different widths, so code that mixes up the two models' vectors fails loudly.
    assert configs[0].embed_dim != configs[1].embed_dim
    for name in BUNDLES:
        metrics = json.loads((FIXTURES / name / "metrics.json").read_text(encoding="utf-8"))
        assert metrics["recall_at_1"] >= 0.9, (name, metrics["recall_at_1"])
    total = sum(f.stat().st_size for name in BUNDLES for f in (FIXTURES / name).iterdir())
    assert total < MAX_BUNDLE_BYTES
