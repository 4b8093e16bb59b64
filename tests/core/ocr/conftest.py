"""The real OCR engine for these tests: tesserocr with the distribution's tessdata. Without the
data the tests are skipped with the reason, unless IMAGE_FINDER_REQUIRE_OCR=1 (CI) makes a
missing install a failure."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.ocr import APT_PACKAGES, OcrReader, find_tessdata

LANGUAGES = "rus+eng"


@pytest.fixture(scope="session")
def tessdata() -> Path:
    found = find_tessdata(LANGUAGES)
    if found is None:
        reason = f"no tesseract data for {LANGUAGES}: apt-get install {APT_PACKAGES}"
        if os.environ.get("IMAGE_FINDER_REQUIRE_OCR") == "1":
            pytest.fail(f"IMAGE_FINDER_REQUIRE_OCR=1 but {reason}")
        pytest.skip(reason)
    return found


@pytest.fixture(scope="session")
def reader(tessdata: Path) -> Iterator[OcrReader]:
    r = OcrReader(tessdata, languages=LANGUAGES, threads=2)
    try:
        yield r
    finally:
        r.close()
