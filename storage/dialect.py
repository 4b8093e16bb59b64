"""SQLite-style SQL rewritten for PostgreSQL, once per statement text.

The repositories keep one spelling of each statement. What PostgreSQL spells differently is
small and fixed, so it is rewritten here rather than kept twice:

- ``?`` placeholders become ``%s`` (and a literal ``%`` is doubled for the driver);
- an id list ``SELECT value FROM json_each(?)`` unpacks a JSON array as bigints, and
  ``SELECT CAST(value AS TEXT) FROM json_each(?)`` as texts;
- ``instr(a, b)`` is ``strpos(a, b)``; ``CAST(x AS REAL)`` is double precision.

Anything else must already be standard SQL both accept (``ON CONFLICT``, ``RETURNING``,
partial indexes); the storage suite runs every statement on both backends.
"""

from __future__ import annotations

import re
from functools import lru_cache

_REWRITES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"SELECT CAST\(value AS TEXT\) FROM json_each\(\?\)"),
        "SELECT value FROM jsonb_array_elements_text(CAST(? AS jsonb)) AS j(value)",
    ),
    (
        re.compile(r"SELECT value FROM json_each\(\?\)"),
        "SELECT CAST(value AS bigint) FROM jsonb_array_elements_text(CAST(? AS jsonb)) AS j(value)",
    ),
    (re.compile(r"\binstr\("), "strpos("),
    (re.compile(r"CAST\(([^()]+) AS REAL\)"), r"CAST(\1 AS double precision)"),
]


@lru_cache(maxsize=2048)
def to_postgres(sql: str) -> str:
    """The PostgreSQL text of a statement written for SQLite (cached: statements repeat)."""
    for pattern, replacement in _REWRITES:
        sql = pattern.sub(replacement, sql)
    return _placeholders(sql)


def _placeholders(sql: str) -> str:
    """``?`` -> ``%s`` and ``%`` -> ``%%``, outside quoted strings and identifiers."""
    out: list[str] = []
    quote = ""
    for ch in sql:
        if quote:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)
