"""What every repository of storage talks to: a connection and a cursor, whichever the backend.

Repositories write their SQL once, SQLite-style (``?`` placeholders, id lists as one JSON array
through ``json_each``); the PostgreSQL connection rewrites it (:mod:`storage.dialect`). Where the
two really differ (the full-text index) a repository asks ``conn.dialect``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, Protocol

import psycopg

Dialect = Literal["sqlite", "postgresql"]
Row = tuple[Any, ...]
# A constraint the caller broke (CHECK, NOT NULL, a foreign or unique key), whichever the backend.
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, psycopg.IntegrityError)
# Anything either driver raises (a lost server, a refused login): front ends name no driver.
DRIVER_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)


class Cursor(Protocol):
    """The result of one statement: its rows and how many rows it changed."""

    @property
    def rowcount(self) -> int: ...

    async def fetchone(self) -> Row | None: ...

    async def fetchall(self) -> list[Row]: ...


class Conn(Protocol):
    """One connection inside a transaction the caller owns (see :class:`Backend`)."""

    dialect: Dialect

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    async def execute_fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> None: ...


class Backend(Protocol):
    """The connections of one database: a write transaction at a time per process, reads from
    a pool. :class:`storage.connection.Connections` (SQLite) and
    :class:`storage.postgres.PgConnections` (PostgreSQL) are the two."""

    dialect: Dialect

    def now(self) -> int: ...

    def write(self) -> AbstractAsyncContextManager[Conn]: ...

    def read(self, *, snapshot: bool = False) -> AbstractAsyncContextManager[Conn]: ...

    async def close(self) -> None: ...
