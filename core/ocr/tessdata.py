"""Finding tesseract's language data: the wheel of ``tesserocr`` bundles the library but no
models, which come from the distribution's packages (Debian: ``tesseract-ocr-rus``,
``tesseract-ocr-eng``) or from a directory the operator names (``OCR_TESSDATA``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["APT_PACKAGES", "CANDIDATES", "find_tessdata", "language_list", "missing_languages"]

# Where distributions put the data: Debian/Ubuntu (tesseract 5 and 4), Fedora/Arch, Homebrew.
CANDIDATES: tuple[Path, ...] = (
    Path("/usr/share/tesseract-ocr/5/tessdata"),
    Path("/usr/share/tesseract-ocr/4.00/tessdata"),
    Path("/usr/share/tessdata"),
    Path("/usr/local/share/tessdata"),
    Path("/opt/homebrew/share/tessdata"),
)
APT_PACKAGES = "tesseract-ocr tesseract-ocr-rus tesseract-ocr-eng"


def language_list(languages: str) -> list[str]:
    """``"rus+eng"`` -> ``["rus", "eng"]``."""
    return [lang for lang in languages.split("+") if lang]


def missing_languages(tessdata: Path, languages: str) -> list[str]:
    """The languages of ``languages`` that have no ``<lang>.traineddata`` in ``tessdata``."""
    langs = language_list(languages)
    return [lang for lang in langs if not (tessdata / f"{lang}.traineddata").is_file()]


def find_tessdata(
    languages: str, override: Path | None = None, candidates: Sequence[Path] = CANDIDATES
) -> Path | None:
    """The directory holding every language's data: ``override`` when given (None if it lacks
    one), else ``TESSDATA_PREFIX`` (tesseract's own variable), else the first of
    ``candidates`` that has them all."""
    if override is not None:
        return override if not missing_languages(override, languages) else None
    prefix = os.environ.get("TESSDATA_PREFIX", "").strip()
    found = [Path(prefix)] if prefix else []
    for path in [*found, *candidates]:
        if path.is_dir() and not missing_languages(path, languages):
            return path
    return None
