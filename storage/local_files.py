"""Which local paths hold which of one owner's items (the folder CLI's memory of a folder)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from storage.dbapi import Backend, Conn
from storage.errors import UnknownMediaError
from storage.media_rows import delete_media_rows
from storage.records import DeleteResult, LocalFile
from storage.sql import ids_json, scalar


class LocalFiles:
    """The indexed local paths of one owner; every statement is scoped by the owner id."""

    def __init__(self, conns: Backend, owner_id: int) -> None:
        self._conns = conns
        self.owner_id = int(owner_id)

    async def indexed(self) -> dict[str, LocalFile]:
        """Path -> what was indexed there (size, mtime_ns, sha256, media id): compare with the
        folder to find new, changed and removed files."""
        async with self._conns.read() as conn:
            rows = await conn.execute_fetchall(
                "SELECT path, size, mtime_ns, sha256, media_id FROM local_files "
                "WHERE owner_id = ? ORDER BY path",
                (self.owner_id,),
            )
        return {r[0]: LocalFile(*r) for r in rows}

    async def put(self, file: LocalFile, media_id: int) -> None:
        """Record (or update) that ``file.path`` holds the content of item ``media_id``: a copy
        of known content, or a file whose mtime changed but whose bytes did not."""
        async with self._conns.write() as conn:
            found = await scalar(
                conn,
                "SELECT count(*) FROM media WHERE owner_id = ? AND id = ?",
                self.owner_id,
                media_id,
            )
            if not found:
                raise UnknownMediaError(f"item {media_id} is not owner {self.owner_id}'s")
            await put_local_row(conn, self.owner_id, file, media_id)

    async def remove(self, paths: Iterable[str]) -> DeleteResult:
        """Forget paths (files removed or changed on disk). An item left with no path and no
        Telegram ``file_id`` is deleted with its units and vectors, as in
        ``OwnerMedia.delete_many``."""
        paths_json = json.dumps(list(paths), ensure_ascii=False)
        async with self._conns.write() as conn:
            rows = await conn.execute_fetchall(
                """
                DELETE FROM local_files
                WHERE owner_id = ? AND path IN (SELECT CAST(value AS TEXT) FROM json_each(?))
                RETURNING media_id
                """,
                (self.owner_id, paths_json),
            )
            touched = ids_json(r[0] for r in rows)
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
            return await delete_media_rows(conn, self.owner_id, ids_json(r[0] for r in orphans))


async def put_local_row(conn: Conn, owner_id: int, file: LocalFile, media_id: int) -> None:
    """Upsert one path of the owner, inside the caller's write transaction."""
    await conn.execute(
        """
        INSERT INTO local_files (owner_id, path, media_id, size, mtime_ns, sha256)
        VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (owner_id, path) DO UPDATE
        SET media_id = excluded.media_id, size = excluded.size,
            mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256
        """,
        (owner_id, file.path, media_id, file.size, file.mtime_ns, file.sha256),
    )
