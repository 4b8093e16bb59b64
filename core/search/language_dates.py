"""Dates in queries: years, months in Russian (every case) and English, and ``after:`` /
``before:`` values, as half-open periods of unix seconds (UTC).

A bare year counts only when it is plausible for a photo collection (1990 to next year); a value
after an explicit ``after:`` / ``before:`` may be any year from 1900 to 2100, since there the
user said it is a date. Impossible dates ("2024-02-30", "2024-13") are no dates at all.
"""

from __future__ import annotations

import calendar
import re
from datetime import date

__all__ = ["EARLIEST_BARE_YEAR", "Period", "month_number", "period_of_value", "year_period"]

Period = tuple[int, int]  # [start, end) in unix seconds, UTC

EARLIEST_BARE_YEAR = 1990
_EXPLICIT_YEARS = (1900, 2100)

# Russian month names by their stem, and the endings each declension takes: "март", "марта",
# "марте", "марту", "мартом"; "май", "мая", "мае", "маю", "маем"; "январь", "января", ...
_RU_SOFT = ("ь", "я", "е", "ю", "ем")
_RU_HARD = ("", "а", "е", "у", "ом")
_RU_MAY = ("й", "я", "е", "ю", "ем")
_RU_MONTHS: dict[str, tuple[int, tuple[str, ...]]] = {
    "январ": (1, _RU_SOFT),
    "феврал": (2, _RU_SOFT),
    "март": (3, _RU_HARD),
    "апрел": (4, _RU_SOFT),
    "ма": (5, _RU_MAY),
    "июн": (6, _RU_SOFT),
    "июл": (7, _RU_SOFT),
    "август": (8, _RU_HARD),
    "сентябр": (9, _RU_SOFT),
    "октябр": (10, _RU_SOFT),
    "ноябр": (11, _RU_SOFT),
    "декабр": (12, _RU_SOFT),
}
_RU_SHORT = {
    "янв": 1, "фев": 2, "февр": 2, "мар": 3, "апр": 4, "июн": 6, "июл": 7, "авг": 8,
    "сен": 9, "сент": 9, "окт": 10, "ноя": 11, "нояб": 11, "дек": 12,
}  # fmt: skip
_EN_MONTHS = [
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
]  # fmt: skip
_EN_SHORT = {"jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8,
             "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12}  # fmt: skip


def _month_table() -> dict[str, int]:
    table: dict[str, int] = {}
    for stem, (number, endings) in _RU_MONTHS.items():
        for ending in endings:
            table[stem + ending] = number
    table.update(_RU_SHORT)
    table.update({name: i for i, name in enumerate(_EN_MONTHS, start=1)})
    table.update(_EN_SHORT)
    return table


_MONTHS = _month_table()

_ISO = re.compile(r"(?P<y>\d{4})(?:[-./](?P<m>\d{1,2})(?:[-./](?P<d>\d{1,2}))?)?")
_DMY = re.compile(r"(?P<d>\d{1,2})[./](?P<m>\d{1,2})[./](?P<y>\d{4})")


def month_number(word: str) -> int | None:
    """1..12 for a month name (case-folded, ``ё`` as ``е``, a trailing dot already gone)."""
    return _MONTHS.get(word)


def _ts(d: date) -> int:
    return calendar.timegm(d.timetuple())


def year_period(year: int, month: int | None = None) -> Period:
    """The year, or one month of it."""
    if month is None:
        return _ts(date(year, 1, 1)), _ts(date(year + 1, 1, 1))
    start = date(year, month, 1)
    end = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return _ts(start), _ts(end)


def plausible_year(word: str, today: date) -> int | None:
    """The year a bare four-digit word names, when a collection could hold it."""
    if len(word) != 4 or not word.isdigit() or not word.isascii():
        return None
    year = int(word)
    return year if EARLIEST_BARE_YEAR <= year <= today.year + 1 else None


def period_of_value(value: str) -> Period | None:
    """The period an ``after:`` / ``before:`` value names: ``YYYY``, ``YYYY-MM``,
    ``YYYY-MM-DD`` (``-``, ``.`` or ``/`` between), or ``DD.MM.YYYY``; None if it is none."""
    if not value.isascii():
        return None
    match = _ISO.fullmatch(value) or _DMY.fullmatch(value)
    if match is None:
        return None
    year = int(match["y"])
    if not _EXPLICIT_YEARS[0] <= year <= _EXPLICIT_YEARS[1]:
        return None
    month = int(match["m"]) if match["m"] else None
    day = int(match["d"]) if match["d"] else None
    if month is not None and not 1 <= month <= 12:
        return None
    if day is None:
        return year_period(year, month)
    assert month is not None
    try:
        start = date(year, month, day)
    except ValueError:
        return None
    return _ts(start), _ts(start) + 86400
