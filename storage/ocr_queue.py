"""The OCR stage's work list across owners: claiming items, marking them, start-up recovery.

The state is a column of ``media`` (migration 0006), so an item is 'pending' from the commit
that stores it and nothing in the commit path has to remember OCR. For the OCR stage and
maintenance (re-running OCR, monitoring) only; every statement about an item names its owner
too, so an id of another owner matches nothing.

Claims are leases as the ingest job queue's are (:mod:`storage.leases`, migration 0008): an
item is held by ``worker`` until ``ocr_lease_until``, renewed while it is read; an item whose
lease ran out is claimable again, and only its holder may mark it.

``kinds`` scopes the work list by owner kind: a front end only claims (recovers, re-runs, waits
for) the items it can fetch. The CLI's local files and the bot's Telegram files may share one
database, and a bot item claimed by the CLI could only fail.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from storage.dbapi import Backend, Conn
from storage.leases import DEFAULT_LEASE_S, lease_end, lock_in_order, row_lock
from storage.records import OWNER_KINDS, Media, OwnerKind, Unit
from storage.sql import MEDIA_SELECT, UNIT_SELECT, fetch_all, ids_json, media_from_row

__all__ = ["OCR_STATES", "OcrItem", "OcrQueue", "OcrState"]

OcrState = Literal["pending", "running", "done", "failed", "skipped"]
OCR_STATES: tuple[str, ...] = ("pending", "running", "done", "failed", "skipped")
# A claim looks at this many times ``limit`` candidates (see storage.job_queue).
CANDIDATES_PER_CLAIM = 4
# Claimable: pending, or running with a lease that ran out, held by another worker.
_CLAIMABLE = (
    "(ocr_state = 'pending' OR (ocr_state = 'running'"
    " AND (ocr_lease_until IS NULL OR ocr_lease_until < ?) AND coalesce(ocr_worker, '') != ?))"
)
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

    def __init__(self, conns: Backend, *, worker: str = "") -> None:
        self._conns = conns
        self.worker = worker

    async def claim(
        self,
        limit: int,
        *,
        kinds: Collection[OwnerKind] | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        max_attempts: int | None = None,
    ) -> list[OcrItem]:
        """Move up to ``limit`` claimable items (of owners of ``kinds``; None: of every owner)
        to 'running', held by this worker for ``lease_s`` seconds, and return them, oldest
        first but round-robin across owners (as the ingest job queue does), so one owner's
        backlog does not starve another owner's new photo. Claimable: 'pending', or 'running'
        with a lease that ran out; each claim counts as an attempt, and with ``max_attempts``
        an expired item claimed that often already becomes 'failed' instead. Concurrent
        claimers never get the same item."""
        if limit < 1:
            return []
        scope, params = _scope(None, kinds)
        now = self._conns.now()
        async with self._conns.write() as conn:
            if max_attempts is not None:
                await self._give_up_expired(conn, now, max_attempts, scope, params)
            order = await self._lock_candidates(conn, limit, now, scope, params)
            if not order:
                return []
            ids = ids_json(order)
            attempts = await fetch_all(
                conn,
                """
                UPDATE media SET ocr_state = 'running', ocr_attempts = ocr_attempts + 1,
                                 ocr_lease_until = ?, ocr_worker = ?
                WHERE id IN (SELECT value FROM json_each(?))
                RETURNING id, ocr_attempts
                """,
                (lease_end(now, lease_s), self.worker, ids),
            )
            media = await fetch_all(
                conn, f"{MEDIA_SELECT} WHERE m.id IN (SELECT value FROM json_each(?))", (ids,)
            )
            units = await fetch_all(
                conn,
                f"{UNIT_SELECT} WHERE media_id IN (SELECT value FROM json_each(?)) ORDER BY id",
                (ids,),
            )
        return _items(order, media, attempts, units)

    async def _lock_candidates(
        self, conn: Conn, limit: int, now: int, scope: str, params: tuple[int | str, ...]
    ) -> list[int]:
        """Claimable ids in round-robin order, row-locked on PostgreSQL (see
        :meth:`storage.job_queue.JobQueue.claim`)."""
        rows = await fetch_all(
            conn,
            f"""
            SELECT id FROM (
                SELECT id, row_number() OVER (PARTITION BY owner_id ORDER BY id) AS turn
                FROM media WHERE {_CLAIMABLE} {scope}
            ) AS candidates
            ORDER BY turn, id LIMIT ?
            """,
            (now, self.worker, *params, limit * CANDIDATES_PER_CLAIM),
        )
        order = [r[0] for r in rows]
        if not order:
            return []
        return await lock_in_order(conn, "media", order, _CLAIMABLE, (now, self.worker), limit)

    async def _give_up_expired(
        self, conn: Conn, now: int, max_attempts: int, scope: str, params: tuple[int | str, ...]
    ) -> None:
        await conn.execute(
            f"""
            UPDATE media
            SET ocr_state = 'failed', ocr_lease_until = NULL,
                ocr_error = 'interrupted ' || ocr_attempts || ' time(s); giving up'
            WHERE id IN (
                SELECT id FROM media
                WHERE ocr_state = 'running'
                  AND (ocr_lease_until IS NULL OR ocr_lease_until < ?)
                  AND ocr_attempts >= ? AND coalesce(ocr_worker, '') != ? {scope}
            """
            + row_lock(conn)
            + ")",
            (now, max_attempts, self.worker, *params),
        )

    async def renew(
        self,
        owner_media: Collection[tuple[int, int]],
        worker: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> int:
        """Extend the leases of the ``(owner_id, media_id)`` items still held by ``worker``
        (default: this queue's); returns how many."""
        ids = ids_json(media_id for _, media_id in owner_media)
        if ids == "[]":
            return 0
        async with self._conns.write() as conn:
            cur = await conn.execute(
                """
                UPDATE media SET ocr_lease_until = ?
                WHERE id IN (SELECT value FROM json_each(?)) AND ocr_state = 'running'
                  AND ocr_worker = ?
                """,
                (lease_end(self._conns.now(), lease_s), ids, worker or self.worker),
            )
        return max(cur.rowcount, 0)

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
                    ocr_error = ?, ocr_lease_until = NULL
                WHERE owner_id = ? AND id = ? AND ocr_state = 'running' AND ocr_worker = ?
                RETURNING ocr_state
                """,
                (
                    max_attempts,
                    error[:MAX_ERROR_CHARS],
                    int(owner_id),
                    int(media_id),
                    self.worker,
                ),
            )
        return rows[0][0] if rows else None

    async def _finish(self, owner_id: int, media_id: int, state: str, error: str | None) -> bool:
        async with self._conns.write() as conn:
            cur = await conn.execute(
                """
                UPDATE media SET ocr_state = ?, ocr_error = ?, ocr_lease_until = NULL
                WHERE owner_id = ? AND id = ? AND ocr_state = 'running' AND ocr_worker = ?
                """,
                (
                    state,
                    None if error is None else error[:MAX_ERROR_CHARS],
                    owner_id,
                    media_id,
                    self.worker,
                ),
            )
        return cur.rowcount > 0

    async def requeue_running(
        self, *, max_attempts: int, kinds: Collection[OwnerKind] | None = None
    ) -> tuple[int, int]:
        """Start-up recovery: items (of owners of ``kinds``) left 'running' by a stopped
        process go back to 'pending', except those already claimed ``max_attempts`` times (an
        item that keeps killing the process), which become 'failed'. Returns ``(requeued,
        failed)``. Call once, before the stage claims anything; never on a shared database
        (other workers' items are running; their leases say when they died)."""
        scope, params = _scope(None, kinds)
        async with self._conns.write() as conn:
            cur = await conn.execute(
                f"""
                UPDATE media
                SET ocr_state = 'failed', ocr_lease_until = NULL,
                    ocr_error = 'interrupted ' || ocr_attempts || ' time(s); giving up'
                WHERE ocr_state = 'running' AND ocr_attempts >= ? {scope}
                """,
                (max_attempts, *params),
            )
            failed = cur.rowcount
            cur = await conn.execute(
                "UPDATE media SET ocr_state = 'pending', ocr_lease_until = NULL "
                f"WHERE ocr_state = 'running' {scope}",
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
                f"WHERE 1 = 1 {scope}",
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
                f"SELECT ocr_state, count(*) FROM media WHERE 1 = 1 {scope} GROUP BY ocr_state",
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
            " WHERE kind IN (SELECT CAST(value AS TEXT) FROM json_each(?)))"
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
