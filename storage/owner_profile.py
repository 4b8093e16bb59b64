"""One owner's row: who they are, their settings, and forgetting them entirely."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from storage.dbapi import Backend
from storage.errors import UnknownOwnerError
from storage.model_rows import versioned_models
from storage.records import Owner, PurgeResult
from storage.sql import OWNER_SELECT, fetch_all, owner_from_row, scalar


class OwnerProfile:
    """The owner row of one owner id."""

    def __init__(self, conns: Backend, owner_id: int) -> None:
        self._conns = conns
        self.owner_id = int(owner_id)

    async def info(self) -> Owner | None:
        async with self._conns.read() as conn:
            rows = await fetch_all(conn, f"{OWNER_SELECT} WHERE id = ?", (self.owner_id,))
        return owner_from_row(rows[0]) if rows else None

    async def settings(self) -> dict[str, Any]:
        """The owner's settings (results per page, strictness, language, ...); ``{}`` when none
        were set or the owner does not exist. Defaults belong to the caller."""
        async with self._conns.read() as conn:
            rows = await fetch_all(
                conn, "SELECT settings FROM owners WHERE id = ?", (self.owner_id,)
            )
        return json.loads(rows[0][0]) if rows else {}

    async def update_settings(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into the settings (a ``None`` value removes that key) and return the
        result. Values must be JSON-serialisable."""
        patch = json.dumps(dict(changes), ensure_ascii=False)
        async with self._conns.write() as conn:
            rows = await fetch_all(
                conn,
                "UPDATE owners SET settings = json_patch(settings, ?) WHERE id = ? "
                "RETURNING settings",
                (patch, self.owner_id),
            )
            if not rows:
                raise UnknownOwnerError(f"owner {self.owner_id} does not exist")
        settings: dict[str, Any] = json.loads(rows[0][0])  # stored as a JSON object
        return settings

    async def delete(self) -> PurgeResult:
        """Forget the owner entirely: settings, items, units, vectors, jobs, active models. The
        caller drops the owner's index for every model in the result. Owner ids are never
        reused, so an old index file can never match a new owner."""
        async with self._conns.write() as conn:
            models = await versioned_models(conn, self.owner_id)
            count = await scalar(
                conn, "SELECT count(*) FROM media WHERE owner_id = ?", self.owner_id
            )
            await conn.execute("DELETE FROM owners WHERE id = ?", (self.owner_id,))
        return PurgeResult(count, tuple(sorted(models.values())))
