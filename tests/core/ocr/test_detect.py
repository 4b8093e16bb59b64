"""The text detector: finds the rendered lines of every kind of text picture (recall over the
line boxes) and nothing, or next to nothing, on text-free pictures."""

from __future__ import annotations

import numpy as np
import pytest

from core.ocr.blocks import merge_regions
from core.ocr.detect import TextRegion, detect_text
from tests.core.ocr import samples as s

Box = tuple[int, int, int, int]


def _covered(box: Box, regions: tuple[TextRegion, ...], size: tuple[int, int]) -> float:
    mask = np.zeros((size[1], size[0]), dtype=bool)
    for r in regions:
        mask[r.top : r.bottom, r.left : r.right] = True
    left, top, right, bottom = box
    return float(mask[top:bottom, left:right].mean())


TEXT = {
    "document_en_14": lambda: s.document(s.EN, 14),
    "document_ru_20": lambda: s.document(s.RU, 20, "liberation/LiberationSerif-Regular.ttf"),
    "document_ru_56": lambda: s.document(s.RU, 56),
    "grey_on_grey": lambda: s.document(s.EN, 22, bg=(200, 200, 200), fg=(110, 110, 110)),
    "meme_ru": lambda: s.meme("КОГДА ВЫКАТИЛ В ПРОДАКШН", "А ТАМ ВСЁ ГОРИТ"),
    "meme_en": lambda: s.meme("WHEN THE BUILD IS GREEN", "WORKS ON MY MACHINE", seed=5, size=40),
    "chat": lambda: s.chat(["Привет! Как дела?", "Send me the invoice", "Ок, сейчас"]),
    "receipt": s.receipt,
    "slide": s.slide,
}


@pytest.mark.parametrize("name", sorted(TEXT))
def test_every_rendered_line_is_inside_a_region(name: str) -> None:
    sample = TEXT[name]()
    found = detect_text(sample.image)
    assert found.found
    for box, line in zip(sample.boxes, sample.lines, strict=True):
        assert _covered(box, found.regions, sample.image.size) >= 0.8, line


def test_outlined_text_over_a_photo_is_found_as_its_own_band() -> None:
    """A meme's captions must not turn the whole photo into one region (tesseract reads the
    whole photo as nothing) but stay bands, marked busy when over texture."""
    sample = TEXT["meme_ru"]()
    found = detect_text(sample.image)
    assert found.coverage < 0.3
    assert any(r.busy for r in found.regions)


def test_the_lines_of_a_receipt_on_a_table_are_found_inside_its_edges() -> None:
    """The sheet's long straight edges surround every line; they must not tie the lines into
    one box (which is then too empty to pass as text, and the receipt is lost)."""
    sample = s.receipt_on_a_table()
    found = detect_text(sample.image)
    paper = [r for r in found.regions if r.left >= 110 and r.right <= 700 and r.top >= 60]
    assert len(paper) >= len(sample.lines)
    assert all(r.height < 80 for r in paper)


@pytest.mark.parametrize("name", sorted(s.plain_pictures()))
def test_text_free_pictures_give_no_or_tiny_regions(name: str) -> None:
    found = detect_text(s.plain_pictures()[name])
    assert found.coverage < 0.03
    assert len(found.regions) <= 10  # each costs a small tesseract call


def test_regions_of_a_paragraph_merge_into_one_block() -> None:
    sample = s.document(s.EN, 20)
    found = detect_text(sample.image)
    assert len(found.regions) == len(s.EN)
    assert len(merge_regions(list(found.regions), found.size)) == 1


def test_boxes_are_in_the_pixels_of_the_given_picture() -> None:
    """Detection runs on a small copy; the boxes come back in the caller's coordinates."""
    small = s.document(s.EN, 20)
    big = small.image.resize((small.image.width * 3, small.image.height * 3))
    found = detect_text(big)
    assert found.size == big.size
    for box in small.boxes:
        scaled = (box[0] * 3, box[1] * 3, box[2] * 3, box[3] * 3)
        assert _covered(scaled, found.regions, big.size) >= 0.8
