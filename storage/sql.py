"""Statement fragments and row helpers shared by the repositories of storage.

Lists of ids travel as one JSON array parameter (``json_each``), so a call with 10 or 10,000
ids is the same statement. Every helper that takes a connection runs inside the caller's
transaction and is scoped by the owner id it is given.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from storage.dbapi import Conn
from storage.errors import UnknownOwnerError
from storage.records import Job, Media, Owner

MEDIA_SELECT = """
SELECT m.id, m.owner_id, m.kind, m.status, m.file_unique_id, m.file_id, m.size, m.width,
       m.height, m.duration, m.caption, m.forward_origin, m.message_id, m.message_date,
       m.album_id, m.thumbnail_file_id, m.created_at,
       (SELECT min(lf.path) FROM local_files AS lf
        WHERE lf.owner_id = m.owner_id AND lf.media_id = m.id) AS path,
       m.file_name, m.taken_at, m.ocr_state
FROM media AS m
"""
UNIT_SELECT = "SELECT id, media_id, kind, ts FROM units"
JOB_SELECT = (
    "SELECT id, owner_id, state, payload, attempts, last_error, media_id, duplicate, "
    "created_at, updated_at, lease_until, worker, outcome, front FROM jobs"
)
OWNER_SELECT = "SELECT id, kind, external_id, settings, created_at FROM owners"


async def fetch_all(
    conn: Conn, sql: str, params: Iterable[Any] | None = None
) -> list[tuple[Any, ...]]:
    """Every row of ``sql`` as a list of tuples."""
    return await conn.execute_fetchall(sql, tuple(params or ()))


async def scalar(conn: Conn, sql: str, *params: Any) -> int:
    """The first column of the first row, 0 when there is none (counts, ids)."""
    rows = await fetch_all(conn, sql, params)
    return rows[0][0] if rows else 0


async def require_owner(conn: Conn, owner_id: int) -> None:
    """Refuse a write for an owner that does not exist (or was deleted meanwhile)."""
    if not await scalar(conn, "SELECT count(*) FROM owners WHERE id = ?", owner_id):
        raise UnknownOwnerError(f"owner {owner_id} does not exist")


def ids_json(ids: Iterable[int]) -> str:
    return json.dumps([int(i) for i in ids])


def media_from_row(r: Any) -> Media:
    return Media(*r)


def owner_from_row(row: Any) -> Owner:
    return Owner(row[0], row[1], row[2], json.loads(row[3]), row[4])


def job_from_row(r: Any) -> Job:
    duplicate = None if r[7] is None else bool(r[7])
    outcome = None if r[12] is None else json.loads(r[12])
    return Job(
        r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], duplicate, r[8], r[9], r[10],
        r[11], outcome, r[13],
    )  # fmt: skip
