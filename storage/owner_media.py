"""One owner's items: commit (the point of no return for "saved"), look up, page, delete."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from storage.dbapi import Backend, Conn
from storage.local_files import put_local_row
from storage.media_rows import delete_media_rows
from storage.model_rows import bump_version, model_key, model_names
from storage.owner_jobs import mark_done, require_running
from storage.owner_texts import AnalysedText, analyse_text, write_texts
from storage.records import CommitResult, DeleteResult, Media, NewMedia, NewUnit, PurgeResult
from storage.sql import (
    MEDIA_SELECT,
    fetch_all,
    ids_json,
    media_from_row,
    require_owner,
    scalar,
)
from storage.vectors import encode_vectors, split_model_id

# Kinds whose ``duration`` counts towards the video quota.
VIDEO_KINDS = ("video", "animation", "video_note")


class OwnerMedia:
    """The items of one owner. There is deliberately no method that takes a bare media id
    without this owner: ids of another owner match nothing (reads return nothing, deletes
    delete nothing)."""

    def __init__(self, conns: Backend, owner_id: int, *, worker: str | None = None) -> None:
        self._conns = conns
        self.owner_id = int(owner_id)
        self.worker = worker  # a job committed here must be held by this claimer

    async def commit(
        self,
        media: NewMedia,
        units: Sequence[NewUnit],
        vectors: Mapping[str, np.ndarray],
        *,
        job_id: int | None = None,
        outcome: Mapping[str, Any] | None = None,
    ) -> CommitResult:
        """Store an item, its units and their vectors in ONE transaction; the point of no return
        for "saved".

        ``vectors`` maps a model id (``"name@version"``) to a float array [len(units), d]; row i
        belongs to ``units[i]``. Stored as float16; each model's ``index_version`` is bumped.
        The item's status is ``"thumbnail"`` when a unit is a thumbnail, else ``"ready"``.
        With ``job_id`` the job (which must be this owner's and ``running``) becomes ``done`` in
        the same transaction; if it is gone or no longer running (the owner deleted everything
        meanwhile, or another worker claimed it after our lease ran out) nothing is stored and
        :class:`JobStateError` is raised. ``outcome`` is recorded on the job (see
        :mod:`storage.owner_jobs`), with ``unit_ids`` added.

        If ``(owner, media.file_unique_id)`` exists already, nothing is inserted and the result
        has ``duplicate=True`` and the existing ``media_id`` (a local path in ``media.local`` is
        still recorded for that item, so the CLI does not re-read that file next time).
        """
        units = list(units)
        if not units:
            raise ValueError("an item needs at least one unit")
        encoded = {m: encode_vectors(v, rows=len(units)) for m, v in vectors.items()}
        for model_id in encoded:
            split_model_id(model_id)
        status = "thumbnail" if any(u.kind == "thumbnail" for u in units) else "ready"
        texts = _texts_of(media)  # stemmed here: CPU work stays outside the write lock
        now = self._conns.now()
        async with self._conns.write() as conn:
            await require_owner(conn, self.owner_id)
            if job_id is not None:
                await require_running(conn, self.owner_id, job_id, self.worker)
            media_id = await self._insert_media(conn, media, status, now)
            duplicate = media_id is None
            if media_id is None:
                media_id = await self._existing_id(conn, media.file_unique_id)
                unit_ids: list[int] = []
                versions: dict[str, int] = {}
            else:
                unit_ids = await self._insert_units(conn, media_id, units)
                versions = await self._insert_vectors(conn, unit_ids, encoded, now)
                if texts:  # searchable from the same commit that makes the item "saved"
                    await write_texts(conn, self.owner_id, media_id, texts)
            if job_id is not None:
                outcome = {**(outcome or {}), "unit_ids": unit_ids} if not duplicate else {}
            await self._record_path_and_job(conn, media, media_id, job_id, duplicate, now, outcome)
        if duplicate:
            return CommitResult(media_id, duplicate=True)
        return CommitResult(media_id, False, tuple(unit_ids), versions)

    async def get(self, media_id: int) -> Media | None:
        found = await self.by_ids([media_id])
        return found.get(int(media_id))

    async def by_ids(self, media_ids: Iterable[int]) -> dict[int, Media]:
        """Items by id (ids of other owners or deleted items are simply absent)."""
        async with self._conns.read() as conn:
            rows = await conn.execute_fetchall(
                f"{MEDIA_SELECT} WHERE m.owner_id = ? AND m.id IN (SELECT value FROM json_each(?))",
                (self.owner_id, ids_json(media_ids)),
            )
        return {r[0]: media_from_row(r) for r in rows}

    async def find(self, file_unique_id: str) -> Media | None:
        """The item with this idempotency key, e.g. to skip downloading a known duplicate."""
        async with self._conns.read() as conn:
            rows = await fetch_all(
                conn,
                f"{MEDIA_SELECT} WHERE m.owner_id = ? AND m.file_unique_id = ?",
                (self.owner_id, file_unique_id),
            )
        return media_from_row(rows[0]) if rows else None

    async def page(self, *, limit: int = 50, before_id: int | None = None) -> list[Media]:
        """Newest first; pass the last id seen as ``before_id`` for the next page."""
        async with self._conns.read() as conn:
            rows = await conn.execute_fetchall(
                f"{MEDIA_SELECT} WHERE m.owner_id = ? AND m.id < ? ORDER BY m.id DESC LIMIT ?",
                (self.owner_id, before_id if before_id is not None else 2**63 - 1, limit),
            )
        return [media_from_row(r) for r in rows]

    async def video_seconds(self) -> float:
        """Total duration of the owner's videos, animations and video notes (the video quota)."""
        async with self._conns.read() as conn:
            rows = await fetch_all(
                conn,
                "SELECT coalesce(sum(duration), 0) FROM media "
                "WHERE owner_id = ? AND kind IN (SELECT CAST(value AS TEXT) FROM json_each(?))",
                (self.owner_id, json.dumps(VIDEO_KINDS)),
            )
        return float(rows[0][0] or 0.0)

    async def delete(self, media_id: int) -> DeleteResult:
        """Delete one item with its units and vectors (see :meth:`delete_many`)."""
        return await self.delete_many([media_id])

    async def delete_many(self, media_ids: Iterable[int]) -> DeleteResult:
        """Delete items, their units, vectors and local paths in one transaction; bump the
        ``index_version`` of each model that lost vectors. The result lists the removed unit ids
        per model so the indexes can ``remove_ids`` them. Unknown ids are ignored."""
        ids = ids_json(media_ids)
        async with self._conns.write() as conn:
            return await delete_media_rows(conn, self.owner_id, ids)

    async def delete_all(self) -> PurgeResult:
        """Delete every item, unit, vector and job of the owner (settings and active models
        stay). Every model's ``index_version`` is bumped; the caller drops the owner's index for
        each model in the result rather than removing ids one by one."""
        async with self._conns.write() as conn:
            cur = await conn.execute("DELETE FROM media WHERE owner_id = ?", (self.owner_id,))
            count = cur.rowcount
            await conn.execute("DELETE FROM jobs WHERE owner_id = ?", (self.owner_id,))
            rows = await conn.execute_fetchall(
                """
                UPDATE index_versions SET version = version + 1
                WHERE owner_id = ?
                RETURNING model, version
                """,
                (self.owner_id,),
            )
            names = await model_names(conn, [r[0] for r in rows])
        versions = {names[k]: v for k, v in rows}
        return PurgeResult(count, tuple(sorted(versions)), versions)

    # --- steps of commit (inside its write transaction) -----------------------------------------

    async def _insert_media(self, conn: Conn, media: NewMedia, status: str, now: int) -> int | None:
        """The new item's id, or None when the owner has this ``file_unique_id`` already."""
        rows = await fetch_all(
            conn,
            """
            INSERT INTO media (owner_id, kind, status, file_unique_id, file_id, size, width,
                               height, duration, caption, forward_origin, message_id,
                               message_date, album_id, thumbnail_file_id, created_at,
                               file_name, taken_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (owner_id, file_unique_id) DO NOTHING
            RETURNING id
            """,
            (
                self.owner_id, media.kind, status, media.file_unique_id, media.file_id,
                media.size, media.width, media.height, media.duration, media.caption,
                media.forward_origin, media.message_id, media.message_date, media.album_id,
                media.thumbnail_file_id, now, media.file_name, media.taken_at,
            ),
        )  # fmt: skip
        return rows[0][0] if rows else None

    async def _existing_id(self, conn: Conn, file_unique_id: str) -> int:
        return await scalar(
            conn,
            "SELECT id FROM media WHERE owner_id = ? AND file_unique_id = ?",
            self.owner_id,
            file_unique_id,
        )

    async def _insert_units(self, conn: Conn, media_id: int, units: list[NewUnit]) -> list[int]:
        """Unit ids in the order of ``units``."""
        # Ids only grow (AUTOINCREMENT, an identity), so ascending ids are the order inserted.
        await conn.executemany(
            "INSERT INTO units (owner_id, media_id, kind, ts) VALUES (?, ?, ?, ?)",
            [(self.owner_id, media_id, u.kind, u.timestamp) for u in units],
        )
        rows = await conn.execute_fetchall(
            "SELECT id FROM units WHERE owner_id = ? AND media_id = ? ORDER BY id",
            (self.owner_id, media_id),
        )
        return [r[0] for r in rows]

    async def _insert_vectors(
        self,
        conn: Conn,
        unit_ids: list[int],
        encoded: Mapping[str, tuple[int, list[bytes]]],
        now: int,
    ) -> dict[str, int]:
        """Store each model's encoded rows for the new units; model id -> new index version."""
        versions: dict[str, int] = {}
        for model_id, (dim, blobs) in encoded.items():
            key = await model_key(conn, model_id, dim, now=now)
            await conn.executemany(
                "INSERT INTO vectors (owner_id, unit_id, model, data) VALUES (?, ?, ?, ?)",
                [(self.owner_id, u, key, b) for u, b in zip(unit_ids, blobs, strict=True)],
            )
            versions[model_id] = await bump_version(conn, self.owner_id, key)
        return versions

    async def _record_path_and_job(
        self,
        conn: Conn,
        media: NewMedia,
        media_id: int,
        job_id: int | None,
        duplicate: bool,
        now: int,
        outcome: Mapping[str, Any] | None,
    ) -> None:
        """Remember the local path (also of a duplicate) and finish the job, if any."""
        if media.local is not None:
            await put_local_row(conn, self.owner_id, media.local, media_id)
        if job_id is not None:
            await mark_done(
                conn, self.owner_id, job_id, media_id, duplicate=duplicate, now=now,
                outcome=outcome,
            )  # fmt: skip


def _texts_of(media: NewMedia) -> list[AnalysedText]:
    """The new item's caption, file name and forward origin, analysed for the text index."""
    found = [
        analyse_text(source, text)
        for source, text in (
            ("caption", media.caption),
            ("file_name", media.file_name),
            ("origin", media.forward_origin),
        )
    ]
    return [t for t in found if t.text is not None]
