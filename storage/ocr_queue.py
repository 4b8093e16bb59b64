"""The OCR stage's work list across owners: claiming items, marking them, start-up recovery.

The state is a column of ``media`` (migration 0006), so an item is 'pending' from the commit
that stores it and nothing in the commit path has to remember OCR. For the OCR stage and
maintenance (re-running OCR, monitoring) only; every statement about an item names its owner
too, so an id of another owner matches nothing.

``kinds`` scopes the work list by owner kind: a front end only claims (recovers, re-runs, waits
for) the items it can fetch. The CLI's local files and the bot's Telegram files may share one
database, and a bot item claimed by the CLI could only fail.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from storage.dbapi import Backend
from storage.records import OWNER_KINDS, Media, OwnerKind, Unit
from storage.sql import MEDIA_SELECT, UNIT_SELECT, fetch_all, ids_json, media_from_row

__all__ = ["OCR_STATES", "OcrItem", "OcrQueue", "OcrState"]

OcrState = Literal["pending", "running", "done", "failed", "skipped"]
OCR_STATES: tuple[str, ...] = ("pending", "running", "done", "failed", "skipped")
# Longest error text kept on a row: enough for any message of ours, bounded for odd ones.
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class OcrItem:
    """A claimed item: the row, its units (frame timestamps, thumbnail) and how many times it
    was claimed, this time included."""

    media: Media
    units: tuple[Unit, ...]
    attempts: int

    @property
    def owner_id(self) -> int:
        return self.media.owner_id


class OcrQueue:
    """``max_attempts`` (given by the stage, from its settings): how many claims an item gets
    before a transient failure, or a run interrupted while it was 'running', makes it 'failed'
    instead of 'pending' again."""

    def __init__(self, conns: Backend) -> None:
        self._conns = conns

    async def claim(
        self, limit: int, *, kinds: Collection[OwnerKind] | None = None
    ) -> list[OcrItem]:
        """Move up to ``limit`` pending items (of owners of ``kinds``; None: of every owner) to
        'running' and return them, oldest first but round-robin across owners (as the ingest
        job queue does), so one owner's backlog does not starve another owner's new photo.
        Each claim counts as an attempt."""
        if limit < 1:
            return []
        scope, params = _scope(None, kinds)
        async with self._conns.write() as conn:
            rows = await fetch_all(
                conn,
                f"""
                SELECT owner_id, id FROM (
                    SELECT owner_id, id,
                           row_number() OVER (PARTITION BY owner_id ORDER BY id) AS turn
                    FROM media WHERE ocr_state = 'pending' {scope}
                )
                ORDER BY turn, id LIMIT ?
                """,
                (*params, limit),
            )
            if not rows:
                return []
            ids = ids_json(r[1] for r in rows)
            attempts = await fetch_all(
                conn,
                """
                UPDATE media SET ocr_state = 'running', ocr_attempts = ocr_attempts + 1
                WHERE id IN (SELECT value FROM json_each(?))
                RETURNING id, ocr_attempts
                """,
                (ids,),
            )
            media = await fetch_all(
                conn, f"{MEDIA_SELECT} WHERE m.id IN (SELECT value FROM json_each(?))", (ids,)
            )
            units = await fetch_all(
                conn,
                f"{UNIT_SELECT} WHERE media_id IN (SELECT value FROM json_each(?)) ORDER BY id",
                (ids,),
            )
        return _items([r[1] for r in rows], media, attempts, units)

    async def done(self, owner_id: int, media_id: int, *, skipped: bool = False) -> bool:
        """The item's text is stored (or there was nothing to read: ``skipped``). False when
        the item is gone or was put back to 'pending' meanwhile (a re-run: it is read again)."""
        state = "skipped" if skipped else "done"
        return await self._finish(owner_id, media_id, state, None)

    async def failed(self, owner_id: int, media_id: int, error: str) -> bool:
        """A failure a retry cannot help: recorded on the row, the item itself untouched."""
        return await self._finish(owner_id, media_id, "failed", error)

    async def retry(
        self, owner_id: int, media_id: int, error: str, *, max_attempts: int
    ) -> OcrState | None:
        """A transient failure: back to 'pending' while claims are left, else 'failed'.
        Returns the new state (None when the item is gone or no longer running)."""
        async with self._conns.write() as conn:
            rows = await fetch_all(
                conn,
                """
                UPDATE media
                SET ocr_state = CASE WHEN ocr_attempts >= ? THEN 'failed' ELSE 'pending' END,
                    ocr_error = ?
                WHERE owner_id = ? AND id = ? AND ocr_state = 'running'
                RETURNING ocr_state
                """,
                (max_attempts, error[:MAX_ERROR_CHARS], int(owner_id), int(media_id)),
            )
        return rows[0][0] if rows else None

    async def _finish(self, owner_id: int, media_id: int, state: str, error: str | None) -> bool:
        async with self._conns.write() as conn:
            cur = await conn.execute(
                """
                UPDATE media SET ocr_state = ?, ocr_error = ?
                WHERE owner_id = ? AND id = ? AND ocr_state = 'running'
                """,
                (state, None if error is None else error[:MAX_ERROR_CHARS], owner_id, media_id),
            )
        return cur.rowcount > 0

    async def requeue_running(
        self, *, max_attempts: int, kinds: Collection[OwnerKind] | None = None
    ) -> tuple[int, int]:
        """Start-up recovery: items (of owners of ``kinds``) left 'running' by a stopped
        process go back to 'pending', except those already claimed ``max_attempts`` times (an
        item that keeps killing the process), which become 'failed'. Returns ``(requeued,
        failed)``. Call once, before the stage claims anything."""
        scope, params = _scope(None, kinds)
        async with self._conns.write() as conn:
            cur = await conn.execute(
                f"""
                UPDATE media
                SET ocr_state = 'failed',
                    ocr_error = 'interrupted ' || ocr_attempts || ' time(s); giving up'
                WHERE ocr_state = 'running' AND ocr_attempts >= ? {scope}
                """,
                (max_attempts, *params),
            )
            failed = cur.rowcount
            cur = await conn.execute(
                f"UPDATE media SET ocr_state = 'pending' WHERE ocr_state = 'running' {scope}",
                params,
            )
            requeued = cur.rowcount
        return requeued, failed

    async def rerun(
        self, owner_id: int | None = None, *, kinds: Collection[OwnerKind] | None = None
    ) -> int:
        """Every item of ``owner_id`` (None: of every owner of ``kinds``, None: of every
        owner) is read again: 'pending' with no attempts and no error. Returns how many items
        were reset."""
        scope, params = _scope(owner_id, kinds)
        async with self._conns.write() as conn:
            cur = await conn.execute(
                "UPDATE media SET ocr_state = 'pending', ocr_attempts = 0, ocr_error = NULL "
                f"WHERE 1 {scope}",
                params,
            )
        return max(cur.rowcount, 0)

    async def counts(
        self, owner_id: int | None = None, *, kinds: Collection[OwnerKind] | None = None
    ) -> dict[str, int]:
        """Items per OCR state, of one owner or of all (of owners of ``kinds``; progress,
        monitoring)."""
        scope, params = _scope(owner_id, kinds)
        async with self._conns.read() as conn:
            rows = await fetch_all(
                conn,
                f"SELECT ocr_state, count(*) FROM media WHERE 1 {scope} GROUP BY ocr_state",
                params,
            )
        return dict(rows)

    async def state(self, owner_id: int, media_id: int) -> tuple[str, int, str | None] | None:
        """``(state, attempts, error)`` of one item, None when it is not the owner's."""
        async with self._conns.read() as conn:
            rows = await fetch_all(
                conn,
                "SELECT ocr_state, ocr_attempts, ocr_error FROM media "
                "WHERE owner_id = ? AND id = ?",
                (int(owner_id), int(media_id)),
            )
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None


def _scope(
    owner_id: int | None, kinds: Collection[OwnerKind] | None
) -> tuple[str, tuple[int | str, ...]]:
    """``AND ...`` conditions (with their parameters) limiting a statement about ``media`` to
    one owner's items and/or to the items of owners of ``kinds`` (None: no limit)."""
    sql = ""
    params: tuple[int | str, ...] = ()
    if owner_id is not None:
        sql, params = " AND owner_id = ?", (int(owner_id),)
    if kinds is not None:
        unknown = set(kinds) - set(OWNER_KINDS)
        if unknown:
            raise ValueError(f"unknown owner kinds {sorted(unknown)}; expected {OWNER_KINDS}")
        sql += (
            " AND owner_id IN (SELECT id FROM owners"
            " WHERE kind IN (SELECT value FROM json_each(?)))"
        )
        params = (*params, json.dumps(sorted(kinds)))
    return sql, params


def _items(
    order: list[int],
    media_rows: list[tuple[Any, ...]],
    attempt_rows: list[tuple[Any, ...]],
    unit_rows: list[tuple[Any, ...]],
) -> list[OcrItem]:
    media = {m.id: m for m in map(media_from_row, media_rows)}
    attempts = {int(i): int(a) for i, a in attempt_rows}
    units: dict[int, list[Unit]] = {}
    for r in unit_rows:
        units.setdefault(r[1], []).append(Unit(r[0], r[1], r[2], r[3]))
    return [OcrItem(media[i], tuple(units.get(i, ())), attempts[i]) for i in order if i in media]
