"""Model rows and per-owner index versions, inside a caller's connection or transaction.

Vectors reference a model by its row id; ``name@version`` ids are resolved here. Every
transaction that changes an owner's vectors of a model bumps that (owner, model) version, so
an index built from a snapshot knows exactly which changes it reflects.
"""

from __future__ import annotations

import json

from storage.dbapi import Conn
from storage.errors import VectorError
from storage.sql import fetch_all
from storage.vectors import split_model_id

# A model row id that never exists: "no vector of an unregistered model" without a branch.
NO_MODEL = -1


async def model_key(conn: Conn, model_id: str, dim: int, *, now: int) -> int:
    """Row id of a model, registering it on first use (inside the caller's write transaction).
    A known ``name@version`` with another dimension is a different model reusing an id.
    Processes starting together may register the same model at once: the insert yields to the
    other's row instead of failing on the unique key."""
    name, version = split_model_id(model_id)
    select = "SELECT id, dim FROM models WHERE name = ? AND version = ?"
    rows = await fetch_all(conn, select, (name, version))
    if not rows:
        await conn.execute(
            "INSERT INTO models (name, version, dim, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name, version) DO NOTHING",
            (name, version, dim, now),
        )
        rows = await fetch_all(conn, select, (name, version))
    key, known = rows[0]
    if known != dim:
        raise VectorError(f"{model_id} has dimension {known}; got vectors of dimension {dim}")
    return int(key)


async def model_row(conn: Conn, model_id: str) -> tuple[int, int]:
    """(row id, dim) of a model, or (NO_MODEL, 0) if it was never stored."""
    name, version = split_model_id(model_id)
    rows = await fetch_all(
        conn, "SELECT id, dim FROM models WHERE name = ? AND version = ?", (name, version)
    )
    return (rows[0][0], rows[0][1]) if rows else (NO_MODEL, 0)


async def model_names(conn: Conn, keys: list[int]) -> dict[int, str]:
    """Row id -> ``name@version`` for the given model row ids."""
    rows = await fetch_all(
        conn,
        "SELECT id, name || '@' || version FROM models "
        "WHERE id IN (SELECT value FROM json_each(?))",
        (json.dumps(keys),),
    )
    return dict(rows)


async def bump_version(conn: Conn, owner_id: int, key: int) -> int:
    """Count one more change of the owner's vectors of model row ``key``; the new version."""
    rows = await fetch_all(
        conn,
        """
        INSERT INTO index_versions (owner_id, model, version) VALUES (?, ?, 1)
        ON CONFLICT (owner_id, model) DO UPDATE SET version = index_versions.version + 1
        RETURNING version
        """,
        (owner_id, key),
    )
    return int(rows[0][0])


async def index_version(conn: Conn, owner_id: int, model_id: str) -> int:
    """The owner's version of ``model_id``; 0 if its vectors never changed."""
    name, version = split_model_id(model_id)
    rows = await fetch_all(
        conn,
        """
        SELECT iv.version FROM index_versions AS iv JOIN models AS m ON m.id = iv.model
        WHERE iv.owner_id = ? AND m.name = ? AND m.version = ?
        """,
        (owner_id, name, version),
    )
    return rows[0][0] if rows else 0


async def owners_versions(conn: Conn, owner_ids: list[int]) -> dict[tuple[int, str], int]:
    """(owner id, model id) -> version of every pair of the given owners: one indexed read."""
    rows = await fetch_all(
        conn,
        """
        SELECT iv.owner_id, m.name || '@' || m.version, iv.version
        FROM index_versions AS iv JOIN models AS m ON m.id = iv.model
        WHERE iv.owner_id IN (SELECT value FROM json_each(?))
        """,
        (json.dumps(owner_ids),),
    )
    return {(int(r[0]), str(r[1])): int(r[2]) for r in rows}


async def versioned_models(conn: Conn, owner_id: int) -> dict[int, str]:
    """Every model the owner ever had vectors of (row id -> model id)."""
    rows = await conn.execute_fetchall(
        "SELECT model FROM index_versions WHERE owner_id = ?", (owner_id,)
    )
    return await model_names(conn, [r[0] for r in rows])


async def vector_counts(conn: Conn, owner_id: int) -> dict[str, int]:
    """Model id -> number of the owner's vectors for it."""
    rows = await fetch_all(
        conn,
        """
        SELECT m.name || '@' || m.version, count(*)
        FROM vectors AS v JOIN models AS m ON m.id = v.model
        WHERE v.owner_id = ?
        GROUP BY v.model, m.name, m.version
        ORDER BY 1
        """,
        (owner_id,),
    )
    return dict(rows)
