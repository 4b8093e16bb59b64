"""The OCR reader with the real tesseract and the distribution's Russian and English data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from core.errors import OcrUnavailableError
from core.ocr import OcrReader, find_tessdata
from core.ocr.reader import looks_like_word
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
    "meme over a calm picture, ru": (
        lambda: s.calm_meme("Я ПОСЛЕ ОТПУСКА", "ПЕРВЫЙ ДЕНЬ НА РАБОТЕ"),
        0.8,
    ),
    "meme over a calm picture, en": (
        lambda: s.calm_meme("STUDENTS BEFORE EXAMS", "OPENING THE BOOK", 58, 5),
        0.9,
    ),
    "receipt on a table": (s.receipt_on_a_table, 0.9),
    "slide with an underlined title": (s.underlined_slide, 0.9),
    "huge letters": (lambda: s.document(["Огромные буквы", "Huge letters"], 220), 1.0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reads_rendered_russian_and_english(reader: OcrReader, name: str) -> None:
    make, least = CASES[name]
    sample = make()
    result = reader.read(sample.image)
    assert s.word_recall(sample.lines, result.text) >= least, (name, result.text)
    assert result.regions > 0
    assert all(
        w.confidence >= reader.min_confidence or looks_like_word(w.text) for w in result.words
    )


def test_an_unsure_word_is_kept_only_when_it_looks_like_a_word_on_a_sure_line(
    reader: OcrReader,
) -> None:
    """Tesseract may give a word it read right a confidence of 0 (the first word of a block,
    its box taking in a rule under it): judged by its text and its line instead."""
    assert reader.keeps("Бюджет", 0.0, 66.8)
    assert reader.keeps("OPENING", 12.0, 58.0)
    assert reader.keeps("42", 95.0, 95.0)
    assert not reader.keeps("Бюджет", 0.0, 30.0)  # an unsure line: noise, most likely
    assert not reader.keeps("CoSaKa", 10.0, 90.0)  # odd case pattern
    assert not reader.keeps("рaбота", 10.0, 90.0)  # scripts mixed: a Latin "a"
    assert not reader.keeps("^-,", 99.0, 99.0)  # no letter or digit
    assert not reader.keeps("4521", 10.0, 90.0)  # an unsure number stays out
    assert looks_like_word("«Привет»,") and not looks_like_word("ab")


def test_a_slide_title_over_a_rule_keeps_its_first_word(reader: OcrReader) -> None:
    sample = s.underlined_slide()
    assert "бюджет" in s.words(reader.read(sample.image).text)


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
