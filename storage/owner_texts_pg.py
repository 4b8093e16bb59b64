"""The text index on PostgreSQL: the statements :mod:`storage.owner_texts` and
:mod:`storage.text_backfill` run there instead of SQLite's FTS5 ones.

``media_text_index`` (migrations/postgresql/0005) keeps the same stems as SQLite, as text, one
column per source, and a generated ``words`` tsvector ('simple' configuration: the stems are not
stemmed again) in which each source has its own weight letter. The owner is a column matched by
equality in every statement. A query is built from the stems only (letters and digits), each
quoted as a lexeme, so a user's text is never tsquery syntax.

What matches is what matches on SQLite: every word, every phrase as consecutive stems of ONE
source (a phrase is required at one weight letter, so the end of the caption and the start of
the file name never make a phrase), at least ``need`` of the words when some may be missing.
The order is by words held, then ts_rank with the weights of :data:`SOURCE_WEIGHTS` and
length normalisation: close to bm25, but items holding as many words may come in another order
than on SQLite. One limit SQLite does not have: a tsvector counts positions up to 16383, so in a
text of more words than that a phrase near the end may go unfound (its words are still found).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from storage.dbapi import Conn
from storage.sql import ids_json
from storage.text_terms import SOURCE_WEIGHTS, TEXT_SOURCES

__all__ = ["BACKFILL_DELETE", "BACKFILL_INSERT", "search_statement", "set_index_columns"]

Unit = tuple[str, ...]

# A source's weight letter in ``words`` (see the migration); ts_rank takes weights {D,C,B,A}.
_LETTERS = dict(zip(TEXT_SOURCES, "ABCD", strict=True))
_RANK_WEIGHTS = "{" + ",".join(str(SOURCE_WEIGHTS[s]) for s in reversed(TEXT_SOURCES)) + "}"
# ts_rank normalisation 1: divide by 1 + log(length), so a short text ranks above a long one
# holding the word as often (what bm25 does).
_NORMALISE = 1

BACKFILL_DELETE = "DELETE FROM media_text_index WHERE owner_id = ? AND media_id = ?"
BACKFILL_INSERT = (
    f"INSERT INTO media_text_index (owner_id, media_id, {', '.join(TEXT_SOURCES)}) "
    f"VALUES (?, ?{', ?' * len(TEXT_SOURCES)})"
)


async def set_index_columns(
    conn: Conn, owner_id: int, media_id: int, columns: Mapping[str, str], *, left: bool
) -> None:
    """Set some source columns of the item's index row (creating it), or drop the row when the
    item has no text ``left``. Column names come from :data:`TEXT_SOURCES` only."""
    if not left:
        await conn.execute(BACKFILL_DELETE, (owner_id, media_id))
        return
    names = [s for s in TEXT_SOURCES if s in columns]
    values = [columns[s] for s in names]
    placeholders = ", ?" * len(names)
    update = ", ".join(f"{s} = excluded.{s}" for s in names)
    conflict = f"DO UPDATE SET {update}" if names else "DO NOTHING"
    await conn.execute(
        f"INSERT INTO media_text_index (owner_id, media_id{''.join(', ' + s for s in names)}) "
        f"VALUES (?, ?{placeholders}) ON CONFLICT (owner_id, media_id) {conflict}",
        (owner_id, media_id, *values),
    )


def search_statement(
    owner_id: int,
    words: Sequence[Unit],
    phrases: Sequence[Unit],
    *,
    need: int,
    counted: bool,
    media_ids: Collection[int] | None,
    limit: int,
) -> tuple[str, list[Any]]:
    """The search of :meth:`OwnerTexts.search` as one statement and its parameters. Its rows are
    (media id, score, the terms of each source, words held), best first; ``counted``: an item
    may miss some words, it must hold ``need`` of them."""
    required = [_unit(u) for u in phrases]
    if counted and len(words) > 1:
        required.append("(" + " | ".join(_unit(u) for u in words) + ")")
    else:
        required += [_unit(u) for u in words]
    held = " + ".join("CAST(t.words @@ to_tsquery('simple', ?) AS integer)" for _ in words)
    sql = f"""
        SELECT * FROM (
            SELECT t.media_id AS id,
                ts_rank(CAST(? AS real[]), t.words, q.query, {_NORMALISE}) AS score,
                {", ".join(f"t.{s}" for s in TEXT_SOURCES)}, {held if counted else "0"} AS held
            FROM media_text_index AS t, (SELECT to_tsquery('simple', ?) AS query) AS q
            WHERE t.owner_id = ? AND t.words @@ q.query
    """
    params: list[Any] = [_RANK_WEIGHTS]
    if counted:
        params += [_unit(u) for u in words]
    params += [" & ".join(required), int(owner_id)]
    if media_ids is not None:
        sql += " AND t.media_id IN (SELECT value FROM json_each(?))"
        params.append(ids_json(media_ids))
    sql += ") AS found WHERE held >= ? ORDER BY held DESC, score DESC, id LIMIT ?"
    params += [need if counted else 0, int(limit)]
    return sql, params


def _unit(unit: Unit) -> str:
    """A unit as tsquery text: one lexeme, or a phrase of consecutive lexemes within one source
    (any of the weight letters, the same letter for every lexeme)."""
    if len(unit) == 1:
        return _lexeme(unit[0])
    per_source = (
        "(" + " <-> ".join(f"{_lexeme(s)}:{letter}" for s in unit) + ")"
        for letter in _LETTERS.values()
    )
    return "(" + " | ".join(per_source) + ")"


def _lexeme(stem: str) -> str:
    """A stem quoted as a tsquery lexeme. Stems hold letters and digits only; quoting (quotes
    doubled, backslashes escaped) keeps any other character a literal of the lexeme."""
    return "'" + stem.replace("\\", "\\\\").replace("'", "''") + "'"
