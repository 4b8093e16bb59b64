"""One owner's vectors per model, with the index version every change bumps."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from storage.dbapi import Backend
from storage.errors import UnknownUnitError
from storage.model_rows import bump_version, index_version, model_key, model_row, vector_counts
from storage.records import DeleteResult, MissingVectors, Unit, VectorSnapshot, VectorTopUp
from storage.sql import MEDIA_SELECT, ids_json, media_from_row, scalar
from storage.vectors import decode_vectors, encode_vectors

# Decode this many stored vectors inline; more go to a thread.
_INLINE_ROWS = 2048
# Units of the owner (``?`` 1) lacking a vector of model row ``?`` 2.
_MISSING = """
    units AS u
    WHERE u.owner_id = ? AND NOT EXISTS (
        SELECT 1 FROM vectors AS v
        WHERE v.owner_id = u.owner_id AND v.unit_id = u.id AND v.model = ?
    )
"""


class OwnerVectors:
    """Vectors of one owner; unit ids of another owner are silently absent or refused."""

    def __init__(self, conns: Backend, owner_id: int) -> None:
        self._conns = conns
        self.owner_id = int(owner_id)

    async def index_version(self, model_id: str) -> int:
        """Bumped with every vector insert or delete of this owner and model; 0 if none ever."""
        async with self._conns.read() as conn:
            return await index_version(conn, self.owner_id, model_id)

    async def snapshot(self, model_id: str) -> VectorSnapshot:
        """All vectors of the owner for one model, ascending unit ids, with the version they
        reflect (read in one transaction, so they always agree)."""
        async with self._conns.read(snapshot=True) as conn:
            version = await index_version(conn, self.owner_id, model_id)
            key, dim = await model_row(conn, model_id)
            rows = await conn.execute_fetchall(
                "SELECT unit_id, data FROM vectors "
                "WHERE owner_id = ? AND model = ? ORDER BY unit_id",
                (self.owner_id, key),
            )
        return VectorSnapshot(version, *await _unpack_off_loop(rows, dim))

    async def after(self, model_id: str, unit_id: int) -> VectorTopUp:
        """Vectors with unit ids past ``unit_id`` and the count and sum of those up to it, with
        their version, read in one transaction: what a cached index needs to catch up."""
        async with self._conns.read(snapshot=True) as conn:
            version = await index_version(conn, self.owner_id, model_id)
            key, dim = await model_row(conn, model_id)
            held = await conn.execute_fetchall(
                "SELECT count(*), coalesce(sum(unit_id), 0) FROM vectors "
                "WHERE owner_id = ? AND model = ? AND unit_id <= ?",
                (self.owner_id, key, int(unit_id)),
            )
            rows = await conn.execute_fetchall(
                "SELECT unit_id, data FROM vectors "
                "WHERE owner_id = ? AND model = ? AND unit_id > ? ORDER BY unit_id",
                (self.owner_id, key, int(unit_id)),
            )
        ids, vectors = await _unpack_off_loop(rows, dim)
        return VectorTopUp(version, int(held[0][0]), int(held[0][1]), ids, vectors)

    async def load(self, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """int64 unit ids [n] and float32 [n, d] (``d`` is 0 for a never-stored model)."""
        snap = await self.snapshot(model_id)
        return snap.ids, snap.vectors

    async def of_units(
        self, model_id: str, unit_ids: Iterable[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stored vectors of the given units (search by an existing item): ascending int64 ids
        of those that have one, float32 [n, d]. Other owners' ids are silently absent."""
        async with self._conns.read() as conn:
            key, dim = await model_row(conn, model_id)
            rows = await conn.execute_fetchall(
                """
                SELECT unit_id, data FROM vectors
                WHERE owner_id = ? AND model = ? AND unit_id IN (SELECT value FROM json_each(?))
                ORDER BY unit_id
                """,
                (self.owner_id, key, ids_json(unit_ids)),
            )
        return _unpack(rows, dim)

    async def add(self, model_id: str, unit_ids: Sequence[int], vectors: np.ndarray) -> int:
        """Store (or replace) vectors of existing units for a model, e.g. after re-embedding for
        a new model; returns the new ``index_version``. Raises :class:`UnknownUnitError` (and
        stores nothing) if a unit is not this owner's."""
        ids = [int(u) for u in unit_ids]
        dim, blobs = encode_vectors(vectors, rows=len(ids))
        if len(set(ids)) != len(ids):
            raise ValueError("unit ids must be distinct")
        async with self._conns.write() as conn:
            found = await scalar(
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
            key = await model_key(conn, model_id, dim, now=self._conns.now())
            await conn.executemany(
                """
                INSERT INTO vectors (owner_id, unit_id, model, data) VALUES (?, ?, ?, ?)
                ON CONFLICT (owner_id, unit_id, model) DO UPDATE SET data = excluded.data
                """,
                [(self.owner_id, u, key, b) for u, b in zip(ids, blobs, strict=True)],
            )
            return await bump_version(conn, self.owner_id, key)

    async def delete_model(self, model_id: str) -> DeleteResult:
        """Drop every vector of one model (after switching away from it); units stay."""
        async with self._conns.write() as conn:
            key, _ = await model_row(conn, model_id)
            rows = await conn.execute_fetchall(
                "DELETE FROM vectors WHERE owner_id = ? AND model = ? RETURNING unit_id",
                (self.owner_id, key),
            )
            if not rows:
                return DeleteResult()
            version = await bump_version(conn, self.owner_id, key)
        removed = tuple(sorted(r[0] for r in rows))
        return DeleteResult((), removed, {model_id: removed}, {model_id: version})

    async def missing(
        self, model_id: str, *, limit: int = 50, after_media_id: int = 0
    ) -> list[MissingVectors]:
        """Items (ascending id, after ``after_media_id``) with units lacking a vector for
        ``model_id``, each with just those units: the work list of background re-embedding.
        Frames carry their timestamps so the same moments are embedded again."""
        async with self._conns.read(snapshot=True) as conn:
            key, _ = await model_row(conn, model_id)
            rows = await conn.execute_fetchall(
                f"SELECT DISTINCT u.media_id FROM {_MISSING} AND u.media_id > ? "
                "ORDER BY u.media_id LIMIT ?",
                (self.owner_id, key, after_media_id, limit),
            )
            ids = ids_json(r[0] for r in rows)
            unit_rows = await conn.execute_fetchall(
                f"SELECT u.id, u.media_id, u.kind, u.ts FROM {_MISSING} "
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
        return [MissingVectors(media_from_row(r), tuple(by_media[r[0]])) for r in media_rows]

    async def counts(self) -> dict[str, int]:
        """Model id -> number of this owner's vectors for it."""
        async with self._conns.read() as conn:
            return await vector_counts(conn, self.owner_id)


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
