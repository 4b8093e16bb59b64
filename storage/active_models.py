"""Which model answers for one owner in each slot (a slot names a role, e.g. a query language)."""

from __future__ import annotations

from collections.abc import Mapping

from storage.dbapi import Backend
from storage.errors import IncompleteModelError
from storage.model_rows import model_row
from storage.sql import fetch_all, require_owner, scalar
from storage.vectors import split_model_id


class ActiveModels:
    """The active models of one owner; every statement is scoped by the owner id."""

    def __init__(self, conns: Backend, owner_id: int) -> None:
        self._conns = conns
        self.owner_id = int(owner_id)

    async def active(self) -> dict[str, str]:
        """Slot -> model id that answers for this owner; ``{}`` until set (callers then use the
        configured models). A slot is the caller's name for a role, e.g. a query language."""
        async with self._conns.read() as conn:
            rows = await fetch_all(
                conn,
                "SELECT slot, model_id FROM active_models WHERE owner_id = ? ORDER BY slot",
                (self.owner_id,),
            )
        return dict(rows)

    async def set_active(self, slots: Mapping[str, str], *, require_complete: bool = True) -> None:
        """Point the given slots at new models in one transaction (other slots stay). With
        ``require_complete`` (the default) refuses with :class:`IncompleteModelError` when a new
        model still lacks a vector for some unit, checked inside the same transaction, so an
        item ingested meanwhile cannot slip through unsearchable."""
        for model_id in slots.values():
            split_model_id(model_id)
        now = self._conns.now()
        async with self._conns.write() as conn:
            await require_owner(conn, self.owner_id)
            for slot, model_id in slots.items():
                if require_complete:
                    key, _ = await model_row(conn, model_id)
                    missing = await scalar(
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
