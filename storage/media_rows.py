"""Deleting items with everything hanging off them, inside a caller's write transaction.

Shared by :class:`~storage.owner_media.OwnerMedia` (deleting items) and
:class:`~storage.local_files.LocalFiles` (an item left without any path or Telegram file is
deleted the same way), so both report removed units and bumped versions identically.
"""

from __future__ import annotations

from storage.dbapi import Conn
from storage.model_rows import bump_version, model_names
from storage.records import DeleteResult

_OF_MEDIA = "SELECT value FROM json_each(?)"


async def delete_media_rows(conn: Conn, owner_id: int, media_ids_json: str) -> DeleteResult:
    """Delete the owner's items in ``media_ids_json`` (cascading to units, vectors and local
    paths) and bump the version of each model that lost vectors. Unknown ids are ignored."""
    unit_rows = await conn.execute_fetchall(
        f"SELECT id FROM units WHERE owner_id = ? AND media_id IN ({_OF_MEDIA}) ORDER BY id",
        (owner_id, media_ids_json),
    )
    vector_rows = await conn.execute_fetchall(
        f"""
        SELECT v.model, v.unit_id FROM vectors AS v
        WHERE v.owner_id = ? AND v.unit_id IN (
            SELECT id FROM units WHERE owner_id = ? AND media_id IN ({_OF_MEDIA})
        )
        ORDER BY v.unit_id
        """,
        (owner_id, owner_id, media_ids_json),
    )
    deleted = await conn.execute_fetchall(
        f"DELETE FROM media WHERE owner_id = ? AND id IN ({_OF_MEDIA}) RETURNING id",
        (owner_id, media_ids_json),
    )
    by_key: dict[int, list[int]] = {}
    for key, unit_id in vector_rows:
        by_key.setdefault(key, []).append(unit_id)
    names = await model_names(conn, list(by_key))
    versions = {names[k]: await bump_version(conn, owner_id, k) for k in by_key}
    return DeleteResult(
        tuple(sorted(r[0] for r in deleted)),
        tuple(r[0] for r in unit_rows),
        {names[k]: tuple(v) for k, v in by_key.items()},
        versions,
    )
