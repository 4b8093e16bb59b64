"""A PostgreSQL database for tests: a fresh schema per test on the server CI starts.

``IMAGE_FINDER_TEST_DATABASE_URL`` names a server on 127.0.0.1 (``.ci/run`` installs Debian's
package, starts it and sets the variable). Without it the PostgreSQL variants skip, unless
``IMAGE_FINDER_REQUIRE_POSTGRES=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
import pytest

URL_ENV = "IMAGE_FINDER_TEST_DATABASE_URL"
REQUIRE_ENV = "IMAGE_FINDER_REQUIRE_POSTGRES"
BACKENDS = ["sqlite", "postgresql"]


def server_url() -> str:
    """The test server's URL, or skip (fail when PostgreSQL is required)."""
    url = os.environ.get(URL_ENV, "")
    if not url:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {URL_ENV} is not set")
        pytest.skip(f"no PostgreSQL for tests ({URL_ENV} is not set)")
    return url


def with_schema(url: str, schema: str) -> str:
    """``url`` with its search_path set to ``schema`` (every table, function, channel and lock
    name of the collection lives there)."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def fresh_schema(prefix: str = "t") -> Iterator[str]:
    """A new empty schema on the test server, dropped afterwards; yields its URL."""
    url = server_url()
    schema = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_schema(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
