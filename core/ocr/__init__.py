"""Text inside pictures: a cheap text detector (:mod:`~core.ocr.detect`), tesseract through
``tesserocr`` (:mod:`~core.ocr.reader`) and the durable background stage that reads every stored
item and puts its text into the text index (:mod:`~core.ocr.stage`)."""

from core.ocr.reader import OcrReader, OcrResult, OcrWord
from core.ocr.stage import OcrStage
from core.ocr.tessdata import APT_PACKAGES, find_tessdata

__all__ = ["APT_PACKAGES", "OcrReader", "OcrResult", "OcrStage", "OcrWord", "find_tessdata"]
