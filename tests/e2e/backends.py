"""Which database the in-process bot of an end-to-end test runs on.

``tests/e2e/conftest.py`` runs every test that reaches the in-process bot app
(:mod:`tests.e2e.botapp`) once on SQLite and once on PostgreSQL, and sets the backend here for
the test's duration; the settings builders ask :func:`database_url` for each DATA_DIR. On
PostgreSQL each DATA_DIR gets a fresh schema of its own (the same one for the whole test, so a
restarted bot finds what it saved), dropped when the test ends. Bot processes started as
subprocesses stay on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.postgres_support import fresh_schema

_current: dict[str, object] = {"backend": "sqlite"}
_urls: dict[Path, str] = {}
_stack: list[ExitStack] = []


@contextmanager
def use(backend: str) -> Iterator[None]:
    """Run the block's bots on ``backend`` ("sqlite" or "postgresql")."""
    previous = _current["backend"]
    _current["backend"] = backend
    with ExitStack() as stack:
        _stack.append(stack)
        try:
            yield
        finally:
            _stack.pop()
            _urls.clear()
            _current["backend"] = previous


def database_url(data_dir: Path) -> str | None:
    """DATABASE_URL for a bot whose DATA_DIR is ``data_dir``: None (SQLite in DATA_DIR), or the
    URL of this test's schema for that directory."""
    if _current["backend"] != "postgresql":
        return None
    key = Path(data_dir).resolve()
    if key not in _urls:
        if not _stack:
            raise RuntimeError("database_url outside backends.use()")
        _urls[key] = _stack[-1].enter_context(fresh_schema("e2e"))
    return _urls[key]
