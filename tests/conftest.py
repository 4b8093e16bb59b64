"""Fixtures every suite may use: which database backend a test runs on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.postgres_support import BACKENDS, fresh_schema

DatabaseTarget = Callable[[str], "str | Path"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    return str(request.param)


@pytest.fixture
def database_target(backend: str, tmp_path: Path) -> Iterator[DatabaseTarget]:
    """``target(name)``: where ``Database.open`` finds a fresh database called ``name``: a file
    under tmp_path on SQLite, a schema of its own on PostgreSQL (the same name, the same
    database, within one test)."""
    with ExitStack() as stack:
        urls: dict[str, str] = {}

        def target(name: str) -> str | Path:
            if backend == "sqlite":
                return tmp_path / name
            if name not in urls:
                urls[name] = stack.enter_context(fresh_schema())
            return urls[name]

        yield target


def database_url(target: DatabaseTarget, name: str = "engine.db") -> str | None:
    """DATABASE_URL for an engine's Settings: the schema's URL on PostgreSQL, None on SQLite
    (the engine's own file in DATA_DIR)."""
    found = target(name)
    return found if isinstance(found, str) else None
