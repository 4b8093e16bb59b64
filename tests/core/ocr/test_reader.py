"""The OCR reader with the real tesseract and the distribution's Russian and English data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from core.errors import OcrUnavailableError
from core.ocr import OcrReader, find_tessdata
from tests.core.ocr import samples as s

SERIF = "liberation/LiberationSerif-Regular.ttf"
CASES: dict[str, tuple[Callable[[], s.Sample], float]] = {
    "english document": (lambda: s.document(s.EN, 24), 0.9),
    "russian document": (lambda: s.document(s.RU, 24), 0.9),
    "russian serif": (lambda: s.document(s.RU, 32, SERIF), 0.9),
    "chat screenshot": (lambda: s.chat(["Привет! Как дела?", "Send me the invoice please"]), 0.8),
    "receipt": (s.receipt, 0.8),
    "slide": (s.slide, 0.8),
    "meme": (lambda: s.meme("WHEN THE BUILD IS GREEN", "WORKS ON MY MACHINE", 5, 40), 0.7),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reads_rendered_russian_and_english(reader: OcrReader, name: str) -> None:
    make, least = CASES[name]
    sample = make()
    result = reader.read(sample.image)
    assert s.word_recall(sample.lines, result.text) >= least, (name, result.text)
    assert result.regions > 0
    assert all(w.confidence >= reader.min_confidence for w in result.words)


def test_a_plain_picture_is_not_read(reader: OcrReader) -> None:
    for name, picture in s.plain_pictures().items():
        result = reader.read(picture)
        assert result.text == "", name


def test_without_the_detector_the_whole_picture_is_read(tessdata: Path) -> None:
    sample = s.document(s.EN, 24)
    whole = OcrReader(tessdata, detect=False)
    try:
        assert s.word_recall(sample.lines, whole.read(sample.image).text) >= 0.9
    finally:
        whole.close()


def test_reads_run_in_several_threads_at_once(reader: OcrReader) -> None:
    """One tesseract object per thread at a time: parallel reads give the same texts."""
    from concurrent.futures import ThreadPoolExecutor

    docs = [s.document(s.EN, 24), s.document(s.RU, 24)] * 3
    with ThreadPoolExecutor(4) as pool:
        texts = list(pool.map(lambda d: reader.read(d.image).text, docs))
    assert texts[0] == texts[2] == texts[4]
    assert texts[1] == texts[3] == texts[5]
    assert s.word_recall(docs[1].lines, texts[1]) >= 0.9


def test_missing_language_data_is_a_typed_error(tmp_path: Path) -> None:
    assert find_tessdata("rus+eng", tmp_path) is None
    with pytest.raises(OcrUnavailableError, match="rus"):
        OcrReader(tmp_path)
