"""The model registry: every ``name@version`` ever stored, with its dimension."""

from __future__ import annotations

from storage.dbapi import Backend
from storage.model_rows import model_key


class ModelRegistry:
    """Guards against a different model reusing an old id (same id, other dimension)."""

    def __init__(self, conns: Backend) -> None:
        self._conns = conns

    async def register(self, model_id: str, dim: int) -> None:
        """Record a model's dimension (call at start-up for every loaded bundle). Raises
        :class:`VectorError` if the same ``name@version`` was stored with another dimension,
        i.e. a different model reuses an old id."""
        async with self._conns.write() as conn:
            await model_key(conn, model_id, dim, now=self._conns.now())

    async def dims(self) -> dict[str, int]:
        """Every model id ever stored -> its dimension."""
        async with self._conns.read() as conn:
            rows = await conn.execute_fetchall("SELECT name, version, dim FROM models ORDER BY id")
        return {f"{n}@{v}": d for n, v, d in rows}
