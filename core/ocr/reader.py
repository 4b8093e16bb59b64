"""Reading text off a picture with tesseract (through ``tesserocr``), Russian and English.

    reader = OcrReader(tessdata, languages="rus+eng", threads=2)
    result = reader.read(image)          # blocking: call it in a worker thread
    reader.close()

What :meth:`OcrReader.read` does with a picture:

1. a grey copy, its longer side at most ``max_side`` (tesseract reads text a few dozen pixels
   high well; more pixels only cost time);
2. :func:`core.ocr.detect.detect_text`: no candidate region -> nothing to read, done in a few
   milliseconds (most photos);
3. regions on a calm background are grouped into blocks and each block is read with
   tesseract's own page layout analysis on that rectangle (one call for the whole picture when
   the blocks cover most of it: a document, a screenshot);
4. a region over a busy background (a meme's outlined caption, a sign in a photo) is read as
   one block, and when tesseract is unsure, again from a black-on-white mask of its light or
   dark pixels, keeping the reading with the most confident text.

Words below ``min_confidence`` (0..100) are dropped: false regions on a photo produce a few
low-confidence fragments, which would otherwise pollute the text index.

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

import numpy as np
from PIL import Image
from tesserocr import OEM, PSM, RIL, PyTessBaseAPI, iterate_level

from core.errors import OcrError, OcrUnavailableError
from core.ocr.detect import Detection, TextRegion, detect_text
from core.ocr.tessdata import missing_languages

__all__ = ["OcrReader", "OcrResult", "OcrWord", "merge_regions"]

# Blocks covering more than this share of the picture are read in one whole-picture call.
WHOLE_PICTURE = 0.5
# More regions than this: read the whole picture once rather than region by region.
MAX_REGIONS = 48
# A busy region read with less mean confidence than this is read again from a mask.
SURE = 80.0
# Grey levels that make a light (meme caption) or dark (print over a photo) text mask.
LIGHT, DARK = 200, 60


@dataclass(frozen=True, slots=True)
class OcrWord:
    text: str
    confidence: float  # 0..100, tesseract's


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
                api.SetImage(grey)
                return OcrResult.of_lines(self._lines(api), 1)
        found = detect_text(grey)
        if not found.found:
            return OcrResult("", 0.0, (), 0)
        blocks = _plan(found)
        lines: list[list[OcrWord]] = []
        with self._api() as api:
            api.SetImage(grey)
            for block in blocks:
                lines += self._block(
                    api,
                    grey,
                    block,
                    whole=len(blocks) == 1 and block.area == (grey.width * grey.height),
                )
        return OcrResult.of_lines(lines, len(found.regions))

    def _block(
        self, api: PyTessBaseAPI, grey: Image.Image, block: TextRegion, *, whole: bool
    ) -> list[list[OcrWord]]:
        """One block as it is; when tesseract is unsure (outlined letters, text over a photo),
        again from black-on-white masks of its light and of its dark pixels, keeping the
        reading with the most confident text."""
        api.SetPageSegMode(PSM.SINGLE_BLOCK if block.busy else PSM.AUTO)
        api.SetRectangle(block.left, block.top, block.right - block.left, block.height)
        best = self._lines(api)
        if whole or _mean(best) >= SURE:
            return best
        crop = np.asarray(grey.crop((block.left, block.top, block.right, block.bottom)))
        api.SetPageSegMode(PSM.SINGLE_BLOCK)
        for mask in (crop >= LIGHT, crop <= DARK):
            share = float(mask.mean()) if mask.size else 0.0
            if not 0.03 <= share <= 0.7:  # no such pixels, or all of them: no text shape
                continue
            api.SetImage(Image.fromarray(np.where(mask, 0, 255).astype(np.uint8), "L"))
            lines = self._lines(api)
            if _score(lines) > _score(best):
                best = lines
        api.SetImage(grey)
        return best

    def _lines(self, api: PyTessBaseAPI) -> list[list[OcrWord]]:
        """Recognise what is set and return its lines of confident words."""
        api.Recognize()
        it = api.GetIterator()
        lines: list[list[OcrWord]] = []
        if it is None:
            return lines
        for word in iterate_level(it, RIL.WORD):
            if word.IsAtBeginningOf(RIL.TEXTLINE) or not lines:
                lines.append([])
            try:
                text = (word.GetUTF8Text(RIL.WORD) or "").strip()
            except RuntimeError:  # tesserocr's "No text returned" for an empty word
                continue
            conf = float(word.Confidence(RIL.WORD))
            if text and conf >= self.min_confidence and any(c.isalnum() for c in text):
                lines[-1].append(OcrWord(text, conf))
        return lines


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


def _plan(found: Detection) -> list[TextRegion]:
    """What to read: calm regions merged into blocks, busy regions each on its own (padded),
    or the whole picture when the blocks cover most of it or there are very many regions."""
    size = found.size
    whole = [TextRegion(0, 0, size[0], size[1])]
    if len(found.regions) > MAX_REGIONS:
        return whole
    blocks = merge_regions([r for r in found.regions if not r.busy], size)
    if sum(b.area for b in blocks) > WHOLE_PICTURE * size[0] * size[1]:
        return whole
    busy = [r.padded(max(3, r.height // 4), size) for r in found.regions if r.busy]
    return blocks + busy


def merge_regions(regions: list[TextRegion], size: tuple[int, int]) -> list[TextRegion]:
    """Calm regions grown by about a line's height and merged where they then overlap, so a
    paragraph or a chat bubble is read as one block with its line order."""
    boxes = [r.padded(max(4, r.height // 2), size) for r in regions]
    merged = True
    while merged:
        merged = False
        out: list[TextRegion] = []
        for box in boxes:
            for i, other in enumerate(out):
                if _overlap(box, other):
                    out[i] = TextRegion(
                        min(box.left, other.left),
                        min(box.top, other.top),
                        max(box.right, other.right),
                        max(box.bottom, other.bottom),
                    )
                    merged = True
                    break
            else:
                out.append(box)
        boxes = out
    return sorted(boxes, key=lambda b: (b.top, b.left))


def _overlap(a: TextRegion, b: TextRegion) -> bool:
    return a.left < b.right and b.left < a.right and a.top < b.bottom and b.top < a.bottom
