"""The OCR benchmark's evaluation set (bench/ocr_set.py) is what its numbers rest on: the same
seed must give the same pictures, and the manifest must hold what it says (queries made of the
picture's own words, text-free pictures without words, neutral file names)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
FONTS = Path("/usr/share/fonts/truetype")

pytestmark = pytest.mark.skipif(
    not (FONTS / "dejavu" / "DejaVuSans.ttf").is_file(), reason="Debian's fonts are not installed"
)


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ocr_set", ROOT / "bench" / "ocr_set.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ocr_set"] = module  # dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return load_generator()


def test_same_seed_same_bytes_other_seed_other_set(gen: ModuleType, tmp_path: Path) -> None:
    a = gen.generate(tmp_path / "a", n_text=6, n_free=3, seed=5)
    gen.generate(tmp_path / "b", n_text=6, n_free=3, seed=5)
    c = gen.generate(tmp_path / "c", n_text=6, n_free=3, seed=6)
    for item in a:
        assert (tmp_path / "a" / item.name).read_bytes() == (
            tmp_path / "b" / item.name
        ).read_bytes()
    manifest = (tmp_path / "a" / "manifest.json").read_bytes()
    assert manifest == (tmp_path / "b" / "manifest.json").read_bytes()
    assert [i.text for i in a] != [i.text for i in c]


def test_manifest_holds_what_it_claims(gen: ModuleType, tmp_path: Path) -> None:
    items = gen.generate(tmp_path, n_text=12, n_free=5, seed=3)
    assert gen.load(tmp_path) == items
    text = [i for i in items if i.has_text]
    assert len(text) == 12 and len(items) == 17
    assert {i.layout for i in text} == set(gen.TEXT_LAYOUTS)
    assert {i.lang for i in text} == {"ru", "en"}
    for item in items:
        assert item.name.startswith("img_") and item.name.endswith(".jpg")
        with Image.open(tmp_path / item.name) as img:
            assert img.format == "JPEG" and img.size == tuple(item.size)
        if not item.has_text:
            assert item.words == [] and item.queries == [] and item.lang is None
            continue
        assert item.words == gen.words_of(item.text) and item.queries
        own = {gen.stem(w, item.lang) for w in item.words}
        for query in item.queries:
            words = query.split()
            assert 2 <= len(words) <= 3
            assert all(gen.stem(w, item.lang) in own for w in words), (query, item.text)


def test_inflected_forms_keep_the_stem(gen: ModuleType) -> None:
    assert gen.inflect("квитанция", "ru") == "квитанции"
    assert gen.inflect("задержка", "ru") == "задержки"  # и, not ы, after к
    assert gen.inflect("invoice", "en") == "invoices"
    assert gen.inflect("boxes", "en") is None
