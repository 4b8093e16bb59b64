"""Reading text off a picture with tesseract (through ``tesserocr``), Russian and English.

    reader = OcrReader(tessdata, languages="rus+eng", threads=2)
    result = reader.read(image)          # blocking: call it in a worker thread
    reader.close()

What :meth:`OcrReader.read` does with a picture:

1. a grey copy, its longer side at most ``max_side`` (tesseract reads text a few dozen pixels
   high well; more pixels only cost time);
2. :func:`core.ocr.detect.detect_text`: no candidate region -> nothing to read, done in a few
   milliseconds (most photos);
3. :func:`core.ocr.blocks.plan_blocks`: calm regions grouped into blocks, busy ones alone;
   each block is cropped, and shrunk when its lines are much taller than tesseract needs;
4. a calm block is read as it is, with tesseract's page layout analysis; a busy one (a meme's
   outlined caption, a sign in a photo) first from a black-on-white mask of its light pixels.
   Only when that reading is unsure are the other readings tried (the crop itself, masks of
   its light or dark pixels), keeping the one with the most confident text.

Words below ``min_confidence`` (0..100) are dropped: false regions on a photo produce a few
low-confidence fragments, which would otherwise pollute the text index. Tesseract gives some
correctly read words a very low confidence, though (a title whose box takes in an underline
or a bullet); such a word is kept when it looks like a word (letters of one script, in one
case pattern) on a line tesseract is sure enough of.

``PyTessBaseAPI`` is not thread safe: the reader keeps a small pool, one API object per
thread that is reading at the moment, at most ``threads`` of them; each loads the models once.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tesserocr import OEM, PSM, RIL, PyTessBaseAPI, iterate_level

from core.errors import OcrError, OcrUnavailableError
from core.ocr.blocks import Block, merge_regions, plan_blocks
from core.ocr.detect import TextRegion, detect_text
from core.ocr.tessdata import missing_languages
from core.settings import OcrSettings

__all__ = ["OcrReader", "OcrResult", "OcrWord", "looks_like_word", "merge_regions"]

# A reading whose words are this confident on average is not tried another way.
SURE = 80.0
# Grey levels that make a light (meme caption) or dark (print over a photo) text mask.
LIGHT, DARK = 200, 60
# A mask with less or more than this share of its pixels set holds no text shape.
MASK_SHARE = (0.03, 0.7)
# Lines taller than this (pixels) are shrunk to it: tesseract reads them as well, faster.
MAX_LINE_PX = 64
# A word below min_confidence is kept when its line is at least this sure, less that margin.
LINE_MARGIN = 15.0


@dataclass(frozen=True, slots=True)
class OcrWord:
    text: str
    confidence: float  # 0..100, tesseract's
    box: tuple[int, int, int, int] | None = None  # left, top, right, bottom in the picture


@dataclass(frozen=True, slots=True)
class OcrResult:
    """What was read: ``text`` (lines joined by newlines), the mean ``confidence`` of its
    words, the words, and how many candidate ``regions`` the detector found (0: nothing was
    read because the picture shows no sign of text)."""

    text: str
    confidence: float
    words: tuple[OcrWord, ...]
    regions: int

    @classmethod
    def of_lines(cls, lines: list[list[OcrWord]], regions: int) -> OcrResult:
        kept = [line for line in lines if line]
        words = tuple(w for line in kept for w in line)
        text = "\n".join(" ".join(w.text for w in line) for line in kept)
        conf = float(np.mean([w.confidence for w in words])) if words else 0.0
        return cls(text, conf, words, regions)


class OcrReader:
    """See the module docstring. ``detect=False`` skips the detector (every picture is read
    whole; for measurements)."""

    def __init__(
        self,
        tessdata: Path,
        *,
        languages: str = "rus+eng",
        threads: int = 1,
        min_confidence: float = 60.0,
        max_side: int = 1600,
        detect: bool = True,
    ) -> None:
        missing = missing_languages(tessdata, languages)
        if missing:
            raise OcrUnavailableError(f"{tessdata} has no tesseract data for {', '.join(missing)}")
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.tessdata = tessdata
        self.languages = languages
        self.threads = threads
        self.min_confidence = min_confidence
        self.max_side = max_side
        self.detect = detect
        self._free: queue.LifoQueue[PyTessBaseAPI] = queue.LifoQueue()
        self._made: list[PyTessBaseAPI] = []
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_settings(cls, tessdata: Path, settings: OcrSettings) -> OcrReader:
        """The reader the OCR settings describe (the engine's and the benchmark's)."""
        return cls(
            tessdata,
            languages=settings.languages,
            threads=settings.threads,
            min_confidence=settings.min_confidence,
            max_side=settings.max_side,
        )

    # --- the pool -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _api(self) -> Iterator[PyTessBaseAPI]:
        """An API object for this thread alone while the block runs."""
        api = self._take()
        try:
            yield api
        finally:
            api.Clear()
            self._free.put(api)

    def _take(self) -> PyTessBaseAPI:
        with self._lock:
            if self._closed:
                raise OcrError("the OCR reader is closed")
            try:
                return self._free.get_nowait()
            except queue.Empty:
                pass
            if len(self._made) < self.threads:
                api = self._new_api()
                self._made.append(api)
                return api
        return self._free.get()

    def _new_api(self) -> PyTessBaseAPI:
        try:
            return PyTessBaseAPI(
                path=f"{self.tessdata}/", lang=self.languages, psm=PSM.AUTO, oem=OEM.LSTM_ONLY
            )
        except RuntimeError as exc:  # tesserocr's way of saying Init failed
            raise OcrUnavailableError(f"tesseract cannot start: {exc}") from exc

    def close(self) -> None:
        """Free every API object (call when no read is running)."""
        with self._lock:
            self._closed = True
            for api in self._made:
                api.End()
            self._made.clear()

    # --- reading --------------------------------------------------------------------------------

    def read(self, image: Image.Image) -> OcrResult:
        """The text of ``image`` (blocking; see the module docstring)."""
        grey = _grey(image, self.max_side)
        if not self.detect:
            with self._api() as api:
                api.SetPageSegMode(PSM.AUTO)
                api.SetImage(grey)
                return OcrResult.of_lines(self._lines(api), 1)
        found = detect_text(grey)
        blocks = plan_blocks(found)
        if not blocks:
            return OcrResult("", 0.0, (), len(found.regions))
        pixels = np.asarray(grey)
        lines: list[list[OcrWord]] = []
        with self._api() as api:
            for block in blocks:
                read = self._block(api, pixels, block)
                lines += read
                if len(block.regions) > 1:  # a region the block's reading passed over
                    for region in _missed(block, read):
                        lines += self._block(api, pixels, block.alone(region, found.size))
        return OcrResult.of_lines(lines, len(found.regions))

    def _block(self, api: PyTessBaseAPI, pixels: np.ndarray, block: Block) -> list[list[OcrWord]]:
        """The block's first reading; when it is unsure, also the others (see
        :func:`_readings`), keeping the one with the most confident text."""
        box = block.box
        crop, scale = _shrunk(pixels[box.top : box.bottom, box.left : box.right], block.line_px)
        best: list[list[OcrWord]] = []
        for picture, mode in _readings(crop, block.busy):
            api.SetPageSegMode(mode)
            api.SetImage(Image.fromarray(picture, "L"))
            lines = self._lines(api, (box.left, box.top, 1.0 / scale))
            if _score(lines) > _score(best):
                best = lines
            if _mean(lines) >= SURE:
                break
        return best

    def _lines(
        self, api: PyTessBaseAPI, place: tuple[int, int, float] = (0, 0, 1.0)
    ) -> list[list[OcrWord]]:
        """Recognise what is set and return its lines of kept words, their boxes placed in
        the picture by ``place`` (the left, top and scale of what was set)."""
        api.Recognize()
        it = api.GetIterator()
        lines: list[list[OcrWord]] = []
        if it is None:
            return lines
        line_conf = 0.0
        for word in iterate_level(it, RIL.WORD):
            if word.IsAtBeginningOf(RIL.TEXTLINE) or not lines:
                lines.append([])
                line_conf = float(word.Confidence(RIL.TEXTLINE))
            try:
                text = (word.GetUTF8Text(RIL.WORD) or "").strip()
            except RuntimeError:  # tesserocr's "No text returned" for an empty word
                continue
            conf = float(word.Confidence(RIL.WORD))
            if self.keeps(text, conf, line_conf):
                lines[-1].append(OcrWord(text, conf, _placed(word.BoundingBox(RIL.WORD), place)))
        return lines

    def keeps(self, text: str, confidence: float, line_confidence: float) -> bool:
        """Whether a word read with ``confidence`` on a line read with ``line_confidence``
        goes into the text (see the module docstring)."""
        if not any(c.isalnum() for c in text):
            return False
        if confidence >= self.min_confidence:
            return True
        return line_confidence >= self.min_confidence - LINE_MARGIN and looks_like_word(text)


def looks_like_word(text: str) -> bool:
    """Three or more letters of one script (Latin or Cyrillic), all lower case, all upper
    case or capitalised: what a misread fragment rarely is."""
    core = text.strip(".,:;!?\"'()«»")
    if len(core) < 3 or not all(c.isalpha() for c in core):
        return False
    scripts = {"cyrillic" if "\u0400" <= c <= "\u04ff" else "latin" if c.isascii() else "other"
               for c in core}  # fmt: skip
    if len(scripts) != 1 or "other" in scripts:
        return False
    return core.islower() or core.isupper() or (core[0].isupper() and core[1:].islower())


def _readings(crop: np.ndarray, busy: bool) -> Iterator[tuple[np.ndarray, PSM]]:
    """The ways to read a block, most promising first: a calm block as it is, with layout
    analysis; a busy one from the mask of its light pixels (outlined captions) as one block.
    Then the crop as one block, and the light and the dark masks."""
    light, dark = crop >= LIGHT, crop <= DARK
    if not busy:
        yield crop, PSM.AUTO
    if _textlike(light):
        yield _black_on_white(light), PSM.SINGLE_BLOCK
    if busy:
        yield crop, PSM.SINGLE_BLOCK
    if _textlike(dark):
        yield _black_on_white(dark), PSM.SINGLE_BLOCK


def _placed(
    box: tuple[int, int, int, int] | None, place: tuple[int, int, float]
) -> tuple[int, int, int, int] | None:
    if box is None:
        return None
    left, top, scale = place
    return (
        left + round(box[0] * scale),
        top + round(box[1] * scale),
        left + round(box[2] * scale),
        top + round(box[3] * scale),
    )


def _missed(block: Block, lines: list[list[OcrWord]]) -> list[TextRegion]:
    """The block's regions with no word read inside (by the word boxes' centres)."""
    centres = [
        ((w.box[0] + w.box[2]) / 2, (w.box[1] + w.box[3]) / 2)
        for line in lines
        for w in line
        if w.box is not None
    ]
    return [
        r
        for r in block.regions
        if not any(r.left <= x < r.right and r.top <= y < r.bottom for x, y in centres)
    ]


def _textlike(mask: np.ndarray) -> bool:
    share = float(mask.mean()) if mask.size else 0.0
    return MASK_SHARE[0] <= share <= MASK_SHARE[1]


def _black_on_white(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, 0, 255).astype(np.uint8)


def _shrunk(crop: np.ndarray, line_px: int) -> tuple[np.ndarray, float]:
    """The crop, scaled down when its lines are taller than tesseract needs, and the scale."""
    if line_px <= MAX_LINE_PX or crop.size == 0:
        return np.ascontiguousarray(crop), 1.0
    scale = MAX_LINE_PX / line_px
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    small: np.ndarray = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    return small, scale


def _grey(image: Image.Image, max_side: int) -> Image.Image:
    grey = image if image.mode == "L" else image.convert("L")
    if max(grey.size) > max_side:
        scale = max_side / max(grey.size)
        size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
        grey = grey.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    return grey


def _mean(lines: list[list[OcrWord]]) -> float:
    words = [w.confidence for line in lines for w in line]
    return float(np.mean(words)) if words else 0.0


def _score(lines: list[list[OcrWord]]) -> float:
    """Confident characters: favours a reading with more, surer text."""
    return sum(len(w.text) * w.confidence for line in lines for w in line)
