"""Index the texts of items stored before the text index existed.

Migration 0005 copies those items' captions and forward origins into ``media_texts`` and lists
the items in ``media_text_backlog``; their stems need Python (:mod:`storage.text_terms`), so this
step runs at open. Each batch writes the items' index rows and removes them from the backlog in
one transaction: an interrupted run resumes where it stopped, a finished one is one empty read.
"""

from __future__ import annotations

import asyncio
from typing import Any

from storage import owner_texts_pg
from storage.dbapi import Backend
from storage.sql import fetch_all
from storage.text_terms import TEXT_SOURCES, index_terms

BATCH = 500
_INSERT = (
    f"INSERT INTO media_text_index (rowid, owner, {', '.join(TEXT_SOURCES)}) "
    f"VALUES (?, ?{', ?' * len(TEXT_SOURCES)})"
)


async def backfill_text_index(conns: Backend, *, batch: int | None = None) -> int:
    """Write the index rows of every backlog item, ``batch`` (default :data:`BATCH`) items per
    transaction; return how many items were indexed."""
    batch = BATCH if batch is None else batch
    if batch < 1:
        raise ValueError("batch must be >= 1")
    done = 0
    while True:
        async with conns.write() as conn:
            items = await fetch_all(
                conn,
                "SELECT owner_id, media_id FROM media_text_backlog "
                "ORDER BY owner_id, media_id LIMIT ?",
                (batch,),
            )
            if not items:
                return done
            texts = await fetch_all(
                conn,
                """
                SELECT t.owner_id, t.media_id, t.source, t.text
                FROM (SELECT owner_id, media_id FROM media_text_backlog
                      ORDER BY owner_id, media_id LIMIT ?) AS b
                JOIN media_texts AS t ON t.owner_id = b.owner_id AND t.media_id = b.media_id
                """,
                (batch,),
            )
            rows = await asyncio.to_thread(_index_rows, texts)
            if conn.dialect == "postgresql":
                await conn.executemany(owner_texts_pg.BACKFILL_DELETE, items)
                await conn.executemany(owner_texts_pg.BACKFILL_INSERT, rows)
            else:
                gone = [(media_id,) for _, media_id in items]
                await conn.executemany("DELETE FROM media_text_index WHERE rowid = ?", gone)
                await conn.executemany(_INSERT, [(m, str(o), *terms) for o, m, *terms in rows])
            await conn.executemany(
                "DELETE FROM media_text_backlog WHERE owner_id = ? AND media_id = ?", items
            )
        done += len(items)


def _index_rows(texts: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One index row per item: (owner id, media id, the terms of each source)."""
    by_item: dict[tuple[int, int], dict[str, str]] = {}
    for owner_id, media_id, source, text in texts:
        by_item.setdefault((owner_id, media_id), {})[source] = index_terms(text)
    return [
        (owner_id, media_id, *(columns.get(s, "") for s in TEXT_SOURCES))
        for (owner_id, media_id), columns in by_item.items()
    ]
