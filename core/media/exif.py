"""When a photo was taken, from its EXIF header: the date filters ("2019", "after:2024-03-01")
should match the day the picture was shot, not the day it was copied into a folder.

Only the header is parsed (``Image.open`` is lazy and ``getexif`` reads the APP1/eXIf block), so
a large JPEG costs about as much as reading its first kilobytes. Anything unreadable, missing or
implausible gives ``None`` and the caller falls back to what else it knows (a file's mtime);
nothing here ever raises on a bad file.

Times: ``DateTimeOriginal`` (Exif IFD) is preferred over IFD0's ``DateTime`` (often the time of
the last edit). EXIF stores wall-clock time; with ``OffsetTimeOriginal`` / ``OffsetTime`` it is
placed exactly, without one it is read as this machine's local time (a camera's clock is
normally set to where its owner lives).
"""

from __future__ import annotations

import io
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Final

from PIL import Image

from core.media.image import enabled_formats

EXIF_IFD: Final = 0x8769
DATE_TIME_ORIGINAL: Final = 36867
OFFSET_TIME_ORIGINAL: Final = 36881
DATE_TIME: Final = 306
OFFSET_TIME: Final = 36880

EARLIEST_YEAR: Final = 1900
"""Older dates are a camera's unset clock or a placeholder, not a capture time."""
FUTURE_SLACK_S: Final = 2 * 86400
"""A date later than now (plus time-zone slack) is a wrong clock: ignored."""

_DATE = re.compile(
    r"\s*(\d{4})[:\-/.](\d{1,2})[:\-/.](\d{1,2})[ T]+(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?"
)
_OFFSET = re.compile(r"\s*([+-])(\d{2}):?(\d{2})\s*$")


def capture_time(source: Path | bytes) -> int | None:
    """Unix seconds when the photo in ``source`` (a path or the file's bytes) was taken, or
    None when its header does not say so believably."""
    try:
        fp = io.BytesIO(source) if isinstance(source, bytes) else source
        # The same formats decoding opens (HEIC too, when pillow-heif is installed).
        with Image.open(fp, formats=enabled_formats()) as img:
            if img.format == "PNG" and "exif" not in img.info:
                return None  # Pillow would decode the whole image to look after the pixels
            exif = img.getexif()
            sub = exif.get_ifd(EXIF_IFD)
            for when, offset in (
                (sub.get(DATE_TIME_ORIGINAL), sub.get(OFFSET_TIME_ORIGINAL)),
                (exif.get(DATE_TIME), sub.get(OFFSET_TIME)),
            ):
                found = parse_exif_time(when, offset)
                if found is not None:
                    return found
    except Exception:  # any damage means "unknown", never a failed ingest
        return None
    return None


def parse_exif_time(value: object, offset: object = None) -> int | None:
    """Unix seconds of an EXIF ``YYYY:MM:DD HH:MM:SS`` value (``offset`` like ``+03:00``), or
    None for blanks, zeros ("0000:00:00 00:00:00"), impossible or implausible dates."""
    text = _text(value)
    match = _DATE.match(text) if text else None
    if match is None:
        return None
    year, month, day, hour, minute = (int(g) for g in match.groups()[:5])
    second = min(int(match.group(6) or 0), 59)  # a leap second is not worth failing over
    if year < EARLIEST_YEAR:
        return None
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=_zone(offset))
        stamp = int(moment.timestamp())  # a naive datetime is taken as local time
    except (ValueError, OverflowError, OSError):
        return None
    return stamp if stamp <= time.time() + FUTURE_SLACK_S else None


def _zone(offset: object) -> timezone | None:
    """The fixed zone of an EXIF offset string, or None (local time) when absent or garbage."""
    text = _text(offset)
    match = _OFFSET.match(text) if text else None
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta > timedelta(hours=14):
        return None
    return timezone(-delta if sign == "-" else delta)


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    return value.strip("\x00 ") or None
