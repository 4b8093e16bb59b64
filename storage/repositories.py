"""Everything one owner has, behind one object whose every query is scoped by that owner's id.

Get it with ``db.owner(owner_id)``. There is deliberately no method that takes a bare media,
unit or job id without this owner: ids of another owner simply match nothing (reads return
nothing, deletes delete nothing, writes raise). Lists of ids travel as one JSON array parameter
(``json_each``), so a call with 10 or 10,000 ids is the same statement.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import aiosqlite
import numpy as np

from core.errors import (
    IncompleteModelError,
    JobStateError,
    UnknownMediaError,
    UnknownOwnerError,
    UnknownUnitError,
    VectorError,
)
from storage.records import (
    JOB_STATES,
    CommitResult,
    DeleteResult,
    Job,
    JobState,
    LocalFile,
    Media,
    MissingVectors,
    NewMedia,
    NewUnit,
    Owner,
    OwnerStats,
    PurgeResult,
    Unit,
    VectorSnapshot,
)
from storage.vectors import decode_vectors, encode_vectors, split_model_id

if TYPE_CHECKING:
    from storage.db import Database

MEDIA_SELECT = """
SELECT m.id, m.owner_id, m.kind, m.status, m.file_unique_id, m.file_id, m.size, m.width,
       m.height, m.duration, m.caption, m.forward_origin, m.message_id, m.message_date,
       m.album_id, m.thumbnail_file_id, m.created_at,
       (SELECT min(lf.path) FROM local_files AS lf
        WHERE lf.owner_id = m.owner_id AND lf.media_id = m.id) AS path
FROM media AS m
"""
UNIT_SELECT = "SELECT id, media_id, kind, ts FROM units"
JOB_SELECT = (
    "SELECT id, owner_id, state, payload, attempts, last_error, media_id, duplicate, "
    "created_at, updated_at FROM jobs"
)
# Decode this many stored vectors inline; more go to a thread.
_INLINE_ROWS = 2048
# A model row id that never exists: "no vector of an unregistered model" without a branch.
_NO_MODEL = -1


class OwnerStore:
    """The repository of one owner (see the module docstring). Methods are grouped below as
    owner, media, units, vectors and models, jobs, local files, stats."""

    def __init__(self, db: Database, owner_id: int) -> None:
        self._db = db
        self.owner_id = int(owner_id)

    def __repr__(self) -> str:
        return f"OwnerStore(owner_id={self.owner_id})"

    # --- owner ----------------------------------------------------------------------------------

    async def info(self) -> Owner | None:
        return await self._db.get_owner(self.owner_id)

    async def settings(self) -> dict[str, Any]:
        """The owner's settings (results per page, strictness, language, ...); ``{}`` when none
        were set or the owner does not exist. Defaults belong to the caller."""
        async with self._db.read() as conn:
            rows = await conn.execute_fetchall(
                "SELECT settings FROM owners WHERE id = ?", (self.owner_id,)
            )
        return json.loads(rows[0][0]) if rows else {}

    async def update_settings(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into the settings (a ``None`` value removes that key) and return the
        result. Values must be JSON-serialisable."""
        patch = json.dumps(dict(changes), ensure_ascii=False)
        async with self._db.write() as conn:
            rows = await conn.execute_fetchall(
                "UPDATE owners SET settings = json_patch(settings, ?) WHERE id = ? "
                "RETURNING settings",
                (patch, self.owner_id),
            )
            if not rows:
                raise UnknownOwnerError(f"owner {self.owner_id} does not exist")
        return json.loads(rows[0][0])

    async def delete_owner(self) -> PurgeResult:
        """Forget the owner entirely: settings, items, units, vectors, jobs, active models. The
        caller drops the owner's index for every model in the result. Owner ids are never
        reused, so an old index file can never match a new owner."""
        async with self._db.write() as conn:
            models = await self._versioned_models(conn)
            count = await _scalar(
                conn, "SELECT count(*) FROM media WHERE owner_id = ?", self.owner_id
            )
            await conn.execute("DELETE FROM owners WHERE id = ?", (self.owner_id,))
        return PurgeResult(count, tuple(sorted(models.values())))

    # --- media ----------------------------------------------------------------------------------

    async def commit_media(
        self,
        media: NewMedia,
        units: Sequence[NewUnit],
        vectors: Mapping[str, np.ndarray],
        *,
        job_id: int | None = None,
    ) -> CommitResult:
        """Store an item, its units and their vectors in ONE transaction; the point of no return
        for "saved".

        ``vectors`` maps a model id (``"name@version"``) to a float array [len(units), d]; row i
        belongs to ``units[i]``. Stored as float16; each model's ``index_version`` is bumped.
        The item's status is ``"thumbnail"`` when a unit is a thumbnail, else ``"ready"``.
        With ``job_id`` the job (which must be this owner's and ``running``) becomes ``done`` in
        the same transaction; if it is gone or no longer running (the owner deleted everything
        meanwhile) nothing is stored and :class:`JobStateError` is raised.

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
        now = self._db.now()
        async with self._db.write() as conn:
            await self._require_owner(conn)
            if job_id is not None:
                await self._require_running(conn, job_id)
            rows = await conn.execute_fetchall(
                """
                INSERT INTO media (owner_id, kind, status, file_unique_id, file_id, size, width,
                                   height, duration, caption, forward_origin, message_id,
                                   message_date, album_id, thumbnail_file_id, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (owner_id, file_unique_id) DO NOTHING
                RETURNING id
                """,
                (
                    self.owner_id, media.kind, status, media.file_unique_id, media.file_id,
                    media.size, media.width, media.height, media.duration, media.caption,
                    media.forward_origin, media.message_id, media.message_date, media.album_id,
                    media.thumbnail_file_id, now,
                ),
            )  # fmt: skip
            if not rows:
                media_id = await _scalar(
                    conn,
                    "SELECT id FROM media WHERE owner_id = ? AND file_unique_id = ?",
                    self.owner_id,
                    media.file_unique_id,
                )
                if media.local is not None:
                    await self._put_local(conn, media.local, media_id)
                if job_id is not None:
                    await self._finish(conn, job_id, media_id, duplicate=True, now=now)
                return CommitResult(media_id, duplicate=True)
            media_id = rows[0][0]
            # One statement for all units; AUTOINCREMENT ids only grow, so ascending ids are
            # the order of the array (json_each ``key``).
            await conn.execute(
                """
                INSERT INTO units (owner_id, media_id, kind, ts)
                SELECT ?, ?, json_extract(value, '$[0]'), json_extract(value, '$[1]')
                FROM json_each(?) ORDER BY key
                """,
                (self.owner_id, media_id, json.dumps([[u.kind, u.timestamp] for u in units])),
            )
            rows = await conn.execute_fetchall(
                "SELECT id FROM units WHERE owner_id = ? AND media_id = ? ORDER BY id",
                (self.owner_id, media_id),
            )
            unit_ids = [r[0] for r in rows]
            versions: dict[str, int] = {}
            for model_id, (dim, blobs) in encoded.items():
                key = await model_key(conn, model_id, dim, now=now)
                await conn.executemany(
                    "INSERT INTO vectors (owner_id, unit_id, model, data) VALUES (?, ?, ?, ?)",
                    [(self.owner_id, u, key, b) for u, b in zip(unit_ids, blobs, strict=True)],
                )
                versions[model_id] = await self._bump(conn, key)
            if media.local is not None:
                await self._put_local(conn, media.local, media_id)
            if job_id is not None:
                await self._finish(conn, job_id, media_id, duplicate=False, now=now)
        return CommitResult(media_id, False, tuple(unit_ids), versions)

    async def get_media(self, media_id: int) -> Media | None:
        found = await self.media_by_ids([media_id])
        return found.get(int(media_id))

    async def media_by_ids(self, media_ids: Iterable[int]) -> dict[int, Media]:
        """Items by id (ids of other owners or deleted items are simply absent)."""
        async with self._db.read() as conn:
            rows = await conn.execute_fetchall(
                f"{MEDIA_SELECT} WHERE m.owner_id = ? AND m.id IN (SELECT value FROM json_each(?))",
                (self.owner_id, _ids_json(media_ids)),
            )
        return {r[0]: _media_from_row(r) for r in rows}

    async def find_media(self, file_unique_id: str) -> Media | None:
        """The item with this idempotency key, e.g. to skip downloading a known duplicate."""
        async with self._db.read() as conn:
            rows = await conn.execute_fetchall(
                f"{MEDIA_SELECT} WHERE m.owner_id = ? AND m.file_unique_id = ?",
                (self.owner_id, file_unique_id),
            )
        return _media_from_row(rows[0]) if rows else None

    async def list_media(self, *, limit: int = 50, before_id: int | None = None) -> list[Media]:
        """Newest first; pass the last id seen as ``before_id`` for the next page."""
        async with self._db.read() as conn:
            rows = await conn.execute_fetchall(
                f"{MEDIA_SELECT} WHERE m.owner_id = ? AND m.id < ? ORDER BY m.id DESC LIMIT ?",
                (self.owner_id, before_id if before_id is not None else 2**63 - 1, limit),
            )
        return [_media_from_row(r) for r in rows]

    async def delete_media(self, media_id: int) -> DeleteResult:
        """Delete one item with its units and vectors (see :meth:`delete_media_many`)."""
        return await self.delete_media_many([media_id])

    async def delete_media_many(self, media_ids: Iterable[int]) -> DeleteResult:
        """Delete items, their units, vectors and local paths in one transaction; bump the
        ``index_version`` of each model that lost vectors. The result lists the removed unit ids
        per model so the indexes can ``remove_ids`` them. Unknown ids are ignored."""
        ids = _ids_json(media_ids)
        async with self._db.write() as conn:
            return await self._delete_media(conn, ids)

    async def delete_all_media(self) -> PurgeResult:
        """Delete every item, unit, vector and job of the owner (settings and active models
        stay). Every model's ``index_version`` is bumped; the caller drops the owner's index for
        each model in the result rather than removing ids one by one."""
        async with self._db.write() as conn:
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
            names = await _model_names(conn, [r[0] for r in rows])
        versions = {names[k]: v for k, v in rows}
        return PurgeResult(count, tuple(sorted(versions)), versions)

    # --- units ----------------------------------------------------------------------------------

    async def units(self, unit_ids: Iterable[int]) -> dict[int, Unit]:
        """Unit id -> unit (its media id and frame timestamp) for search hits. Ids of another
        owner, or of deleted units, are absent: a stale index entry can never leak."""
        async with self._db.read() as conn:
            rows = await conn.execute_fetchall(
                f"{UNIT_SELECT} WHERE owner_id = ? AND id IN (SELECT value FROM json_each(?))",
                (self.owner_id, _ids_json(unit_ids)),
            )
        return {r[0]: Unit(*r) for r in rows}

    async def units_of_media(self, media_id: int) -> list[Unit]:
        """The units of one item, in insertion order (frames in the order they were given)."""
        async with self._db.read() as conn:
            rows = await conn.execute_fetchall(
                f"{UNIT_SELECT} WHERE owner_id = ? AND media_id = ? ORDER BY id",
                (self.owner_id, media_id),
            )
        return [Unit(*r) for r in rows]

    # --- vectors and models ---------------------------------------------------------------------

    async def index_version(self, model_id: str) -> int:
        """Bumped with every vector insert or delete of this owner and model; 0 if none ever."""
        async with self._db.read() as conn:
            return await self._version(conn, model_id)

    async def vector_snapshot(self, model_id: str) -> VectorSnapshot:
        """All vectors of the owner for one model, ascending unit ids, with the version they
        reflect (read in one transaction, so they always agree)."""
        async with self._db.read(snapshot=True) as conn:
            version = await self._version(conn, model_id)
            key, dim = await _model_row(conn, model_id)
            rows = await conn.execute_fetchall(
                "SELECT unit_id, data FROM vectors "
                "WHERE owner_id = ? AND model = ? ORDER BY unit_id",
                (self.owner_id, key),
            )
        return VectorSnapshot(version, *await _unpack_off_loop(rows, dim))

    async def load_vectors(self, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """int64 unit ids [n] and float32 [n, d] (``d`` is 0 for a never-stored model)."""
        snap = await self.vector_snapshot(model_id)
        return snap.ids, snap.vectors

    async def vectors_for_units(
        self, model_id: str, unit_ids: Iterable[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stored vectors of the given units (search by an existing item): ascending int64 ids
        of those that have one, float32 [n, d]. Other owners' ids are silently absent."""
        async with self._db.read() as conn:
            key, dim = await _model_row(conn, model_id)
            rows = await conn.execute_fetchall(
                """
                SELECT unit_id, data FROM vectors
                WHERE owner_id = ? AND model = ? AND unit_id IN (SELECT value FROM json_each(?))
                ORDER BY unit_id
                """,
                (self.owner_id, key, _ids_json(unit_ids)),
            )
        return _unpack(rows, dim)

    async def add_vectors(self, model_id: str, unit_ids: Sequence[int], vectors: np.ndarray) -> int:
        """Store (or replace) vectors of existing units for a model, e.g. after re-embedding for
        a new model; returns the new ``index_version``. Raises :class:`UnknownUnitError` (and
        stores nothing) if a unit is not this owner's."""
        ids = [int(u) for u in unit_ids]
        dim, blobs = encode_vectors(vectors, rows=len(ids))
        if len(set(ids)) != len(ids):
            raise ValueError("unit ids must be distinct")
        async with self._db.write() as conn:
            found = await _scalar(
                conn,
                "SELECT count(*) FROM units WHERE owner_id = ? "
                "AND id IN (SELECT value FROM json_each(?))",
                self.owner_id,
                json.dumps(ids),
            )
            if found != len(ids):
                raise UnknownUnitError(
                    f"{len(ids) - found} of {len(ids)} unit(s) are not owner {self.owner_id}'s"
                )
            key = await model_key(conn, model_id, dim, now=self._db.now())
            await conn.executemany(
                """
                INSERT INTO vectors (owner_id, unit_id, model, data) VALUES (?, ?, ?, ?)
                ON CONFLICT (owner_id, unit_id, model) DO UPDATE SET data = excluded.data
                """,
                [(self.owner_id, u, key, b) for u, b in zip(ids, blobs, strict=True)],
            )
            return await self._bump(conn, key)

    async def delete_model_vectors(self, model_id: str) -> DeleteResult:
        """Drop every vector of one model (after switching away from it); units stay."""
        async with self._db.write() as conn:
            key, _ = await _model_row(conn, model_id)
            rows = await conn.execute_fetchall(
                "DELETE FROM vectors WHERE owner_id = ? AND model = ? RETURNING unit_id",
                (self.owner_id, key),
            )
            if not rows:
                return DeleteResult()
            version = await self._bump(conn, key)
        removed = tuple(sorted(r[0] for r in rows))
        return DeleteResult((), removed, {model_id: removed}, {model_id: version})

    async def missing_vectors(
        self, model_id: str, *, limit: int = 50, after_media_id: int = 0
    ) -> list[MissingVectors]:
        """Items (ascending id, after ``after_media_id``) with units lacking a vector for
        ``model_id``, each with just those units: the work list of background re-embedding.
        Frames carry their timestamps so the same moments are embedded again."""
        async with self._db.read(snapshot=True) as conn:
            key, _ = await _model_row(conn, model_id)
            missing = """
                units AS u
                WHERE u.owner_id = ? AND NOT EXISTS (
                    SELECT 1 FROM vectors AS v
                    WHERE v.owner_id = u.owner_id AND v.unit_id = u.id AND v.model = ?
                )
            """
            rows = await conn.execute_fetchall(
                f"SELECT DISTINCT u.media_id FROM {missing} AND u.media_id > ? "
                "ORDER BY u.media_id LIMIT ?",
                (self.owner_id, key, after_media_id, limit),
            )
            ids = _ids_json(r[0] for r in rows)
            unit_rows = await conn.execute_fetchall(
                f"SELECT u.id, u.media_id, u.kind, u.ts FROM {missing} "
                "AND u.media_id IN (SELECT value FROM json_each(?)) ORDER BY u.id",
                (self.owner_id, key, ids),
            )
            media_rows = await conn.execute_fetchall(
                f"{MEDIA_SELECT} WHERE m.owner_id = ? AND m.id IN (SELECT value FROM json_each(?))"
                " ORDER BY m.id",
                (self.owner_id, ids),
            )
        by_media: dict[int, list[Unit]] = {}
        for r in unit_rows:
            by_media.setdefault(r[1], []).append(Unit(*r))
        return [MissingVectors(_media_from_row(r), tuple(by_media[r[0]])) for r in media_rows]

    async def vector_counts(self) -> dict[str, int]:
        """Model id -> number of this owner's vectors for it."""
        async with self._db.read() as conn:
            return await self._vector_counts(conn)

    async def active_models(self) -> dict[str, str]:
        """Slot -> model id that answers for this owner; ``{}`` until set (callers then use the
        configured models). A slot is the caller's name for a role, e.g. a query language."""
        async with self._db.read() as conn:
            rows = await conn.execute_fetchall(
                "SELECT slot, model_id FROM active_models WHERE owner_id = ? ORDER BY slot",
                (self.owner_id,),
            )
        return dict(rows)

    async def set_active_models(
        self, slots: Mapping[str, str], *, require_complete: bool = True
    ) -> None:
        """Point the given slots at new models in one transaction (other slots stay). With
        ``require_complete`` (the default) refuses with :class:`IncompleteModelError` when a new
        model still lacks a vector for some unit, checked inside the same transaction, so an
        item ingested meanwhile cannot slip through unsearchable."""
        for model_id in slots.values():
            split_model_id(model_id)
        now = self._db.now()
        async with self._db.write() as conn:
            await self._require_owner(conn)
            for slot, model_id in slots.items():
                if require_complete:
                    key, _ = await _model_row(conn, model_id)
                    missing = await _scalar(
                        conn,
                        """
                        SELECT count(*) FROM units AS u
                        WHERE u.owner_id = ? AND NOT EXISTS (
                            SELECT 1 FROM vectors AS v
                            WHERE v.owner_id = u.owner_id AND v.unit_id = u.id AND v.model = ?
                        )
                        """,
                        self.owner_id,
                        key,
                    )
                    if missing:
                        raise IncompleteModelError(model_id, missing)
                await conn.execute(
                    """
                    INSERT INTO active_models (owner_id, slot, model_id, updated_at)
                    VALUES (?, ?, ?, ?)
                    ON CONFLICT (owner_id, slot) DO UPDATE
                    SET model_id = excluded.model_id, updated_at = excluded.updated_at
                    """,
                    (self.owner_id, slot, model_id, now),
                )

    # --- jobs -----------------------------------------------------------------------------------

    async def enqueue_job(self, payload: Mapping[str, Any]) -> int:
        """Persist one unit of ingest work (``pending``); returns the job id. The payload is any
        JSON object: file_id, file_unique_id, kind, caption, forward origin, message date,
        album id, or a local path with its mtime and size."""
        return (await self.enqueue_jobs([payload]))[0]

    async def enqueue_jobs(self, payloads: Iterable[Mapping[str, Any]]) -> list[int]:
        """Several jobs in one transaction (an album, a folder scan)."""
        encoded = [json.dumps(dict(p), ensure_ascii=False) for p in payloads]
        now = self._db.now()
        ids: list[int] = []
        async with self._db.write() as conn:
            await self._require_owner(conn)
            for payload in encoded:
                cur = await conn.execute(
                    "INSERT INTO jobs (owner_id, payload, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?)",
                    (self.owner_id, payload, now, now),
                )
                assert cur.lastrowid is not None
                ids.append(cur.lastrowid)
        return ids

    async def get_job(self, job_id: int) -> Job | None:
        async with self._db.read() as conn:
            rows = await conn.execute_fetchall(
                f"{JOB_SELECT} WHERE owner_id = ? AND id = ?", (self.owner_id, job_id)
            )
        return job_from_row(rows[0]) if rows else None

    async def jobs(
        self, *, states: Iterable[JobState] | None = None, limit: int = 100
    ) -> list[Job]:
        """The owner's jobs, oldest first, optionally only in some states."""
        wanted = list(states) if states is not None else list(JOB_STATES)
        async with self._db.read() as conn:
            rows = await conn.execute_fetchall(
                f"{JOB_SELECT} WHERE owner_id = ? "
                "AND state IN (SELECT value FROM json_each(?)) ORDER BY id LIMIT ?",
                (self.owner_id, json.dumps(wanted), limit),
            )
        return [job_from_row(r) for r in rows]

    async def job_counts(self) -> dict[str, int]:
        async with self._db.read() as conn:
            rows = await conn.execute_fetchall(
                "SELECT state, count(*) FROM jobs WHERE owner_id = ? GROUP BY state",
                (self.owner_id,),
            )
        return dict(rows)

    async def finish_job(
        self, job_id: int, *, media_id: int | None = None, duplicate: bool = False
    ) -> None:
        """Mark a running job ``done`` without :meth:`commit_media`, e.g. when
        :meth:`find_media` showed a duplicate before any download."""
        async with self._db.write() as conn:
            await self._require_running(conn, job_id)
            await self._finish(conn, job_id, media_id, duplicate=duplicate, now=self._db.now())

    async def fail_job(self, job_id: int, error: str, *, retry: bool = False) -> JobState:
        """Record a failure of a running job. With ``retry`` it goes back to ``pending`` while
        it has been claimed fewer than ``max_attempts`` times; otherwise it is ``failed``.
        Returns the new state."""
        async with self._db.write() as conn:
            await self._require_running(conn, job_id)
            rows = await conn.execute_fetchall(
                """
                UPDATE jobs
                SET state = CASE WHEN ? AND attempts < ? THEN 'pending' ELSE 'failed' END,
                    last_error = ?, updated_at = ?
                WHERE owner_id = ? AND id = ?
                RETURNING state
                """,
                (retry, self._db.max_attempts, error, self._db.now(), self.owner_id, job_id),
            )
        return rows[0][0]

    # --- local files (folder CLI) ---------------------------------------------------------------

    async def local_files(self) -> dict[str, LocalFile]:
        """Path -> what was indexed there (size, mtime_ns, sha256, media id): compare with the
        folder to find new, changed and removed files."""
        async with self._db.read() as conn:
            rows = await conn.execute_fetchall(
                "SELECT path, size, mtime_ns, sha256, media_id FROM local_files "
                "WHERE owner_id = ? ORDER BY path",
                (self.owner_id,),
            )
        return {r[0]: LocalFile(*r) for r in rows}

    async def put_local_file(self, file: LocalFile, media_id: int) -> None:
        """Record (or update) that ``file.path`` holds the content of item ``media_id``: a copy
        of known content, or a file whose mtime changed but whose bytes did not."""
        async with self._db.write() as conn:
            found = await _scalar(
                conn,
                "SELECT count(*) FROM media WHERE owner_id = ? AND id = ?",
                self.owner_id,
                media_id,
            )
            if not found:
                raise UnknownMediaError(f"item {media_id} is not owner {self.owner_id}'s")
            await self._put_local(conn, file, media_id)

    async def remove_local_files(self, paths: Iterable[str]) -> DeleteResult:
        """Forget paths (files removed or changed on disk). An item left with no path and no
        Telegram ``file_id`` is deleted with its units and vectors, as in
        :meth:`delete_media_many`."""
        paths_json = json.dumps(list(paths), ensure_ascii=False)
        async with self._db.write() as conn:
            rows = await conn.execute_fetchall(
                """
                DELETE FROM local_files
                WHERE owner_id = ? AND path IN (SELECT value FROM json_each(?))
                RETURNING media_id
                """,
                (self.owner_id, paths_json),
            )
            touched = _ids_json(r[0] for r in rows)
            orphans = await conn.execute_fetchall(
                """
                SELECT m.id FROM media AS m
                WHERE m.owner_id = ? AND m.id IN (SELECT value FROM json_each(?))
                  AND m.file_id IS NULL
                  AND NOT EXISTS (SELECT 1 FROM local_files AS lf
                                  WHERE lf.owner_id = m.owner_id AND lf.media_id = m.id)
                """,
                (self.owner_id, touched),
            )
            return await self._delete_media(conn, _ids_json(r[0] for r in orphans))

    # --- stats ----------------------------------------------------------------------------------

    async def stats(self) -> OwnerStats:
        async with self._db.read(snapshot=True) as conn:
            by_kind = await conn.execute_fetchall(
                "SELECT kind, count(*) FROM media WHERE owner_id = ? GROUP BY kind",
                (self.owner_id,),
            )
            thumbs = await _scalar(
                conn,
                "SELECT count(*) FROM media WHERE owner_id = ? AND status = 'thumbnail'",
                self.owner_id,
            )
            units = await _scalar(
                conn, "SELECT count(*) FROM units WHERE owner_id = ?", self.owner_id
            )
            vectors = await self._vector_counts(conn)
            jobs = await conn.execute_fetchall(
                "SELECT state, count(*) FROM jobs WHERE owner_id = ? GROUP BY state",
                (self.owner_id,),
            )
        return OwnerStats(dict(by_kind), thumbs, units, vectors, dict(jobs))

    # --- internals (all inside a caller's connection/transaction) -------------------------------

    async def _require_owner(self, conn: aiosqlite.Connection) -> None:
        if not await _scalar(conn, "SELECT count(*) FROM owners WHERE id = ?", self.owner_id):
            raise UnknownOwnerError(f"owner {self.owner_id} does not exist")

    async def _require_running(self, conn: aiosqlite.Connection, job_id: int) -> None:
        rows = await conn.execute_fetchall(
            "SELECT state FROM jobs WHERE owner_id = ? AND id = ?", (self.owner_id, job_id)
        )
        if not rows:
            raise JobStateError(f"job {job_id} of owner {self.owner_id} no longer exists")
        if rows[0][0] != "running":
            raise JobStateError(f"job {job_id} is {rows[0][0]}, not running")

    async def _finish(
        self,
        conn: aiosqlite.Connection,
        job_id: int,
        media_id: int | None,
        *,
        duplicate: bool,
        now: int,
    ) -> None:
        await conn.execute(
            """
            UPDATE jobs SET state = 'done', media_id = ?, duplicate = ?, last_error = NULL,
                            updated_at = ?
            WHERE owner_id = ? AND id = ?
            """,
            (media_id, int(duplicate), now, self.owner_id, job_id),
        )

    async def _bump(self, conn: aiosqlite.Connection, key: int) -> int:
        rows = await conn.execute_fetchall(
            """
            INSERT INTO index_versions (owner_id, model, version) VALUES (?, ?, 1)
            ON CONFLICT (owner_id, model) DO UPDATE SET version = version + 1
            RETURNING version
            """,
            (self.owner_id, key),
        )
        return rows[0][0]

    async def _version(self, conn: aiosqlite.Connection, model_id: str) -> int:
        name, version = split_model_id(model_id)
        rows = await conn.execute_fetchall(
            """
            SELECT iv.version FROM index_versions AS iv JOIN models AS m ON m.id = iv.model
            WHERE iv.owner_id = ? AND m.name = ? AND m.version = ?
            """,
            (self.owner_id, name, version),
        )
        return rows[0][0] if rows else 0

    async def _versioned_models(self, conn: aiosqlite.Connection) -> dict[int, str]:
        rows = await conn.execute_fetchall(
            "SELECT model FROM index_versions WHERE owner_id = ?", (self.owner_id,)
        )
        return await _model_names(conn, [r[0] for r in rows])

    async def _vector_counts(self, conn: aiosqlite.Connection) -> dict[str, int]:
        rows = await conn.execute_fetchall(
            """
            SELECT m.name || '@' || m.version, count(*)
            FROM vectors AS v JOIN models AS m ON m.id = v.model
            WHERE v.owner_id = ?
            GROUP BY v.model
            ORDER BY 1
            """,
            (self.owner_id,),
        )
        return dict(rows)

    async def _put_local(self, conn: aiosqlite.Connection, file: LocalFile, media_id: int) -> None:
        await conn.execute(
            """
            INSERT INTO local_files (owner_id, path, media_id, size, mtime_ns, sha256)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (owner_id, path) DO UPDATE
            SET media_id = excluded.media_id, size = excluded.size,
                mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256
            """,
            (self.owner_id, file.path, media_id, file.size, file.mtime_ns, file.sha256),
        )

    async def _delete_media(self, conn: aiosqlite.Connection, ids_json: str) -> DeleteResult:
        of_media = "SELECT value FROM json_each(?)"
        unit_rows = await conn.execute_fetchall(
            f"SELECT id FROM units WHERE owner_id = ? AND media_id IN ({of_media}) ORDER BY id",
            (self.owner_id, ids_json),
        )
        vector_rows = await conn.execute_fetchall(
            f"""
            SELECT v.model, v.unit_id FROM vectors AS v
            WHERE v.owner_id = ? AND v.unit_id IN (
                SELECT id FROM units WHERE owner_id = ? AND media_id IN ({of_media})
            )
            ORDER BY v.unit_id
            """,
            (self.owner_id, self.owner_id, ids_json),
        )
        deleted = await conn.execute_fetchall(
            f"DELETE FROM media WHERE owner_id = ? AND id IN ({of_media}) RETURNING id",
            (self.owner_id, ids_json),
        )
        by_key: dict[int, list[int]] = {}
        for key, unit_id in vector_rows:
            by_key.setdefault(key, []).append(unit_id)
        names = await _model_names(conn, list(by_key))
        versions = {names[k]: await self._bump(conn, k) for k in by_key}
        return DeleteResult(
            tuple(sorted(r[0] for r in deleted)),
            tuple(r[0] for r in unit_rows),
            {names[k]: tuple(v) for k, v in by_key.items()},
            versions,
        )


# --- module helpers -----------------------------------------------------------------------------


async def model_key(conn: aiosqlite.Connection, model_id: str, dim: int, *, now: int) -> int:
    """Row id of a model, registering it on first use (inside the caller's write transaction).
    A known ``name@version`` with another dimension is a different model reusing an id."""
    name, version = split_model_id(model_id)
    rows = await conn.execute_fetchall(
        "SELECT id, dim FROM models WHERE name = ? AND version = ?", (name, version)
    )
    if rows:
        key, known = rows[0]
        if known != dim:
            raise VectorError(f"{model_id} has dimension {known}; got vectors of dimension {dim}")
        return key
    cur = await conn.execute(
        "INSERT INTO models (name, version, dim, created_at) VALUES (?, ?, ?, ?)",
        (name, version, dim, now),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


async def _model_row(conn: aiosqlite.Connection, model_id: str) -> tuple[int, int]:
    """(row id, dim) of a model, or (_NO_MODEL, 0) if it was never stored."""
    name, version = split_model_id(model_id)
    rows = await conn.execute_fetchall(
        "SELECT id, dim FROM models WHERE name = ? AND version = ?", (name, version)
    )
    return (rows[0][0], rows[0][1]) if rows else (_NO_MODEL, 0)


async def _model_names(conn: aiosqlite.Connection, keys: list[int]) -> dict[int, str]:
    rows = await conn.execute_fetchall(
        "SELECT id, name || '@' || version FROM models "
        "WHERE id IN (SELECT value FROM json_each(?))",
        (json.dumps(keys),),
    )
    return dict(rows)


async def _scalar(conn: aiosqlite.Connection, sql: str, *params: Any) -> int:
    rows = list(await conn.execute_fetchall(sql, params))
    return rows[0][0] if rows else 0


def _ids_json(ids: Iterable[int]) -> str:
    return json.dumps([int(i) for i in ids])


def _unpack(rows: Iterable[Any], dim: int) -> tuple[np.ndarray, np.ndarray]:
    rows = list(rows)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    return ids, decode_vectors([r[1] for r in rows], dim)


async def _unpack_off_loop(rows: Iterable[Any], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Decoding 100k vectors takes a few hundred ms: never on the event loop."""
    rows = list(rows)
    if len(rows) <= _INLINE_ROWS:
        return _unpack(rows, dim)
    return await asyncio.to_thread(_unpack, rows, dim)


def _media_from_row(r: Any) -> Media:
    return Media(*r)


def job_from_row(r: Any) -> Job:
    duplicate = None if r[7] is None else bool(r[7])
    return Job(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], duplicate, r[8], r[9])
