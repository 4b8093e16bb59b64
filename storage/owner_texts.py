"""One owner's text index: the captions, file names, forward origins and recognised text of the
items, searchable by word (Snowball stems, :mod:`storage.text_terms`), best match first.

Raw texts are rows of ``media_texts``; their stems are one row per item of ``media_text_index``
(a column per source). On SQLite that is an FTS5 table (rowid = media id) ranked by bm25; on
PostgreSQL a table with a weighted tsvector (:mod:`storage.owner_texts_pg`, the same matches).
Every lookup checks the owner by equality; on SQLite it also matches the owner's token in the
``owner`` column, and query words are matched only under a column filter that leaves ``owner``
out, so one owner's text never answers another's query. A user's words never reach FTS5 or
tsquery syntax: each is reduced to stems (letters and digits only) and quoted.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from storage import owner_texts_pg
from storage.dbapi import Backend, Conn
from storage.sql import fetch_all, ids_json, scalar
from storage.text_terms import SOURCE_WEIGHTS, TEXT_SOURCES, TextSource, index_terms, stems

__all__ = [
    "TEXT_SOURCES",
    "AnalysedText",
    "OwnerTexts",
    "TextMatch",
    "TextSource",
    "analyse_text",
    "write_texts",
]

# bm25 weight per column (owner first: it matches every row, so it must not rank).
_BM25 = ", ".join(["0.0", *(str(SOURCE_WEIGHTS[s]) for s in TEXT_SOURCES)])
_TEXT_COLUMNS = " ".join(TEXT_SOURCES)
# Texts longer than this are stemmed in a worker thread rather than on the event loop.
_INLINE_CHARS = 2000


@dataclass(frozen=True, slots=True)
class TextMatch:
    """One item the text index found: ``rank`` higher is better (negated bm25 on SQLite,
    ts_rank on PostgreSQL: compare ranks of one search only); ``sources``
    are the sources holding a match, most matched first; ``coverage`` is the share of the
    query's words its texts hold (1.0 unless a search let some words be missing)."""

    media_id: int
    rank: float
    sources: tuple[str, ...] = ()
    coverage: float = 1.0


@dataclass(frozen=True, slots=True)
class AnalysedText:
    """One source's text with its index terms, computed before a write transaction (stemming
    is CPU work that must not hold the writer). ``text=None``: that source is removed."""

    source: TextSource
    text: str | None
    terms: str = ""


def analyse_text(source: str, text: str | None) -> AnalysedText:
    """``text`` ready to store for ``source``; a missing or blank text means "remove"."""
    if source not in TEXT_SOURCES:
        raise ValueError(f"unknown text source {source!r}; expected one of {TEXT_SOURCES}")
    if text is None or not text.strip():
        return AnalysedText(source, None)
    return AnalysedText(source, text, index_terms(text))


async def write_texts(
    conn: Conn, owner_id: int, media_id: int, texts: Sequence[AnalysedText]
) -> None:
    """Store or remove each source's raw text and set its column of the item's index row, in
    the caller's write transaction (the item must be this owner's: the foreign key says so)."""
    for t in texts:
        if t.text is None:
            await conn.execute(
                "DELETE FROM media_texts WHERE owner_id = ? AND media_id = ? AND source = ?",
                (owner_id, media_id, t.source),
            )
        else:
            await conn.execute(
                """
                INSERT INTO media_texts (owner_id, media_id, source, text) VALUES (?, ?, ?, ?)
                ON CONFLICT (owner_id, media_id, source) DO UPDATE SET text = excluded.text
                """,
                (owner_id, media_id, t.source, t.text),
            )
    await set_index_columns(conn, owner_id, media_id, {t.source: t.terms for t in texts})


async def set_index_columns(
    conn: Conn, owner_id: int, media_id: int, columns: Mapping[str, str]
) -> None:
    """Set some source columns of the item's index row (creating it), or drop the row when the
    item has no text left. Column names come from :data:`TEXT_SOURCES` only."""
    names = [s for s in TEXT_SOURCES if s in columns]
    left = await scalar(
        conn,
        "SELECT count(*) FROM media_texts WHERE owner_id = ? AND media_id = ?",
        owner_id,
        media_id,
    )
    if conn.dialect == "postgresql":
        await owner_texts_pg.set_index_columns(conn, owner_id, media_id, columns, left=left > 0)
        return
    exists = await scalar(conn, "SELECT count(*) FROM media_text_index WHERE rowid = ?", media_id)
    if not left:
        if exists:
            await conn.execute("DELETE FROM media_text_index WHERE rowid = ?", (media_id,))
        return
    values = [columns[s] for s in names]
    if exists:
        assignments = ", ".join(f"{s} = ?" for s in names)
        await conn.execute(
            f"UPDATE media_text_index SET {assignments} WHERE rowid = ?", (*values, media_id)
        )
    else:
        await conn.execute(
            f"INSERT INTO media_text_index (rowid, owner, {', '.join(names)}) "
            f"VALUES (?, ?{', ?' * len(names)})",
            (media_id, str(owner_id), *values),
        )


@dataclass(frozen=True, slots=True)
class _Query:
    """A search as sequences of stems, each to occur consecutively (a word that splits into
    several tokens, like "e-mail", is a phrase of them): ``words`` from the query's words,
    ``phrases`` from its quoted phrases, duplicates dropped."""

    words: tuple[tuple[str, ...], ...]
    phrases: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, words: Sequence[str], phrases: Sequence[str]) -> _Query:
        phrase_units = _units(phrases)
        return cls(tuple(u for u in _units(words) if u not in phrase_units), phrase_units)

    @property
    def units(self) -> tuple[tuple[str, ...], ...]:
        return (*self.words, *self.phrases)

    def sources(self, columns: Mapping[str, str]) -> tuple[str, ...]:
        """The sources whose terms hold a unit, the one holding most first."""
        found: list[tuple[int, int, str]] = []
        for order, source in enumerate(TEXT_SOURCES):
            terms = (columns.get(source) or "").split()
            hits = sum(1 for u in self.units if _contains(terms, u))
            if hits:
                found.append((-hits, order, source))
        return tuple(source for *_, source in sorted(found))


def _units(texts: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    units = (tuple(stems(text)) for text in texts)
    return tuple(dict.fromkeys(u for u in units if u))


def _quoted(unit: tuple[str, ...]) -> str:
    """A unit as an FTS5 string. Stems hold letters and digits only; quoting (with quotes
    doubled) keeps it that way."""
    return '"' + " ".join(unit).replace('"', '""') + '"'


def _in_texts(owner_id: int, required: str) -> str:
    """The owner's token AND ``required`` matched only in the text columns."""
    return f'owner : "{int(owner_id)}" AND {{{_TEXT_COLUMNS}}} : ({required})'


def _fts_statement(
    owner_id: int, query: _Query, need: int, counted: bool, media_ids: Collection[int] | None,
    limit: int,
) -> tuple[str, list[Any]]:  # fmt: skip
    """The FTS5 search, rows of (media id, negated bm25, each source's terms, words held): the
    owner's token AND every phrase AND every word (when ``counted``, at least one of them),
    only in the text columns."""
    required = [_quoted(u) for u in query.phrases]
    if counted and len(query.words) > 1:
        required.append("(" + " OR ".join(_quoted(u) for u in query.words) + ")")
    else:
        required += [_quoted(u) for u in query.words]
    held = " + ".join(
        "(t.rowid IN (SELECT rowid FROM media_text_index WHERE media_text_index MATCH ?))"
        for _ in query.words
    )
    sql = f"""
        SELECT * FROM (
            SELECT t.rowid AS id, -bm25(media_text_index, {_BM25}) AS score,
                {", ".join(TEXT_SOURCES)}, {held if counted else "0"} AS held
            FROM media_text_index AS t
            WHERE media_text_index MATCH ? AND t.owner = ?
    """
    params: list[Any] = [_in_texts(owner_id, _quoted(u)) for u in query.words] if counted else []
    params += [_in_texts(owner_id, " AND ".join(required)), str(owner_id)]
    if media_ids is not None:
        sql += " AND t.rowid IN (SELECT value FROM json_each(?))"
        params.append(ids_json(media_ids))
    sql += ") WHERE held >= ? ORDER BY held DESC, score DESC LIMIT ?"
    params += [need if counted else 0, int(limit)]
    return sql, params


def _columns(values: Sequence[str]) -> dict[str, str]:
    return dict(zip(TEXT_SOURCES, values, strict=True))


def _contains(terms: Sequence[str], unit: tuple[str, ...]) -> bool:
    n = len(unit)
    if n == 1:
        return unit[0] in terms
    return any(tuple(terms[i : i + n]) == unit for i in range(len(terms) - n + 1))


class OwnerTexts:
    """The text index of one owner: put a source's text, search, read texts back. Rows go with
    their item (a trigger or a foreign key), whichever way the item is deleted."""

    def __init__(self, conns: Backend, owner_id: int) -> None:
        self._conns = conns
        self.owner_id = int(owner_id)

    async def put(self, media_id: int, source: TextSource, text: str | None) -> bool:
        """Replace ``source``'s text of the item (``None`` or blank removes it), raw row and
        index row in one transaction. False, and nothing written, when the item is not this
        owner's or is gone (e.g. deleted while its text was being read off the picture)."""
        if text is not None and len(text) > _INLINE_CHARS:
            analysed = await asyncio.to_thread(analyse_text, source, text)
        else:
            analysed = analyse_text(source, text)
        async with self._conns.write() as conn:
            mine = await scalar(
                conn,
                "SELECT count(*) FROM media WHERE owner_id = ? AND id = ?",
                self.owner_id,
                int(media_id),
            )
            if not mine:
                return False
            await write_texts(conn, self.owner_id, int(media_id), [analysed])
        return True

    async def search(
        self,
        words: Sequence[str],
        phrases: Sequence[str] = (),
        *,
        limit: int = 200,
        media_ids: Collection[int] | None = None,
        min_share: float = 1.0,
    ) -> list[TextMatch]:
        """Items whose texts hold every word (by stem; no prefix matching) and every phrase
        (consecutive stems), best first (bm25; ts_rank on PostgreSQL). With ``min_share`` below
        1, an item holding at least that share of the distinct words (and at least one) matches
        too, so a word misread in a picture does not lose it (phrases stay required); then the
        order is by how many words an item holds first. ``media_ids`` restricts the answer to
        those items. Nothing to look for (no letter or digit in any word or phrase) finds
        nothing."""
        query = _Query.of(words, phrases)
        if not query.units or limit <= 0 or (media_ids is not None and not media_ids):
            return []
        total = len(query.words)
        need = max(1, min(total, math.ceil(total * float(min_share) - 1e-9)))
        counted = need < total
        if self._conns.dialect == "postgresql":
            sql, params = owner_texts_pg.search_statement(
                self.owner_id, query.words, query.phrases, need=need, counted=counted,
                media_ids=media_ids, limit=limit,
            )  # fmt: skip
        else:
            sql, params = _fts_statement(self.owner_id, query, need, counted, media_ids, limit)
        async with self._conns.read() as conn:
            rows = await fetch_all(conn, sql, params)
        return [
            TextMatch(
                r[0], r[1], query.sources(_columns(r[2:-1])), r[-1] / total if counted else 1.0
            )
            for r in rows
        ]

    async def of_media(self, media_ids: Iterable[int]) -> dict[int, dict[str, str]]:
        """Raw texts by item and source (items without text, or not this owner's, are absent)."""
        async with self._conns.read() as conn:
            rows = await fetch_all(
                conn,
                "SELECT media_id, source, text FROM media_texts "
                "WHERE owner_id = ? AND media_id IN (SELECT value FROM json_each(?))",
                (self.owner_id, ids_json(media_ids)),
            )
        found: dict[int, dict[str, str]] = {}
        for media_id, source, text in rows:
            found.setdefault(media_id, {})[source] = text
        return found

    async def count(self) -> int:
        """How many of the owner's items have some text."""
        async with self._conns.read() as conn:
            return await scalar(
                conn,
                "SELECT count(DISTINCT media_id) FROM media_texts WHERE owner_id = ?",
                self.owner_id,
            )
