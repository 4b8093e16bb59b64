"""The owner registry: Telegram users and chats, and local collections, by their outside ids.

Spans owners, so it is for routing an update to its owner and for background sweeps; what one
owner has is reached through ``Database.owner(owner_id)`` only.
"""

from __future__ import annotations

from storage.dbapi import Backend
from storage.owner_profile import OwnerProfile
from storage.records import OWNER_KINDS, Owner, OwnerKind
from storage.sql import OWNER_SELECT, fetch_all, owner_from_row
from storage.vectors import split_model_id


class OwnerRegistry:
    """Create, find and re-key owners."""

    def __init__(self, conns: Backend) -> None:
        self._conns = conns

    async def ensure(self, kind: OwnerKind, external_id: int | str) -> Owner:
        """Get or create the owner for a Telegram user/chat id (``kind`` "user"/"chat") or a
        local collection name (``kind`` "local", e.g. ``ensure("local", "default")``)."""
        if kind not in OWNER_KINDS:
            raise ValueError(f"unknown owner kind {kind!r}; expected one of {OWNER_KINDS}")
        async with self._conns.write() as conn:
            await conn.execute(
                "INSERT INTO owners (kind, external_id, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, external_id) DO NOTHING",
                (kind, str(external_id), self._conns.now()),
            )
            rows = await fetch_all(
                conn, f"{OWNER_SELECT} WHERE kind = ? AND external_id = ?", (kind, str(external_id))
            )
        return owner_from_row(rows[0])

    async def find(self, kind: OwnerKind, external_id: int | str) -> Owner | None:
        async with self._conns.read() as conn:
            rows = await fetch_all(
                conn, f"{OWNER_SELECT} WHERE kind = ? AND external_id = ?", (kind, str(external_id))
            )
        return owner_from_row(rows[0]) if rows else None

    async def move(
        self, kind: OwnerKind, old_external_id: int | str, new_external_id: int | str
    ) -> Owner | None:
        """Give the owner known as ``old_external_id`` the id ``new_external_id``, keeping its
        row id, so its items, vectors and index files stay as they are (a Telegram group that
        became a supergroup gets a new chat id). An owner already under the new id is replaced
        only while it holds nothing (the bot may have seen the new chat first); otherwise, or
        when there is no old owner, nothing changes and the result is None."""
        old, new = str(old_external_id), str(new_external_id)
        if old == new:
            return None
        async with self._conns.write() as conn:
            rows = await fetch_all(
                conn, "SELECT id FROM owners WHERE kind = ? AND external_id = ?", (kind, old)
            )
            if not rows:
                return None
            owner_id = rows[0][0]
            taken = await fetch_all(
                conn, "SELECT id FROM owners WHERE kind = ? AND external_id = ?", (kind, new)
            )
            if taken:
                busy = await conn.execute_fetchall(
                    "SELECT 1 FROM media WHERE owner_id = ? UNION ALL SELECT 1 FROM jobs "
                    "WHERE owner_id = ? AND state IN ('pending', 'running') LIMIT 1",
                    (taken[0][0], taken[0][0]),
                )
                if busy:
                    return None
                await conn.execute("DELETE FROM owners WHERE id = ?", (taken[0][0],))
            await conn.execute("UPDATE owners SET external_id = ? WHERE id = ?", (new, owner_id))
            rows = await fetch_all(conn, f"{OWNER_SELECT} WHERE id = ?", (owner_id,))
        return owner_from_row(rows[0])

    async def get(self, owner_id: int) -> Owner | None:
        return await OwnerProfile(self._conns, owner_id).info()

    async def ids(self, *, after: int = 0, limit: int = 1000) -> list[int]:
        """Owner ids in ascending order, for background sweeps (re-embedding, maintenance)."""
        async with self._conns.read() as conn:
            rows = await conn.execute_fetchall(
                "SELECT id FROM owners WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
            )
        return [r[0] for r in rows]

    async def missing_vectors(self, model_id: str) -> list[int]:
        """Owners with at least one unit that has no vector for ``model_id`` (re-embed work)."""
        name, version = split_model_id(model_id)
        async with self._conns.read() as conn:
            rows = await conn.execute_fetchall(
                """
                SELECT DISTINCT u.owner_id
                FROM units AS u
                WHERE NOT EXISTS (
                    SELECT 1
                    FROM vectors AS v JOIN models AS m ON m.id = v.model
                    WHERE v.owner_id = u.owner_id AND v.unit_id = u.id
                      AND m.name = ? AND m.version = ?
                )
                ORDER BY u.owner_id
                """,
                (name, version),
            )
        return [r[0] for r in rows]
