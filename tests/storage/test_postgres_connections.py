"""PostgreSQL's connections: a connection the server drops is replaced, not handed out again."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import psycopg
import pytest

from storage import Database
from storage.model_rows import model_key
from storage.postgres import PgConnections, is_postgres_url
from tests.postgres_support import fresh_schema, server_url

# Each dropped connection may cost the pool's retry back-off (about a second) before a fresh one.
BOUND_S = 30.0


async def backend_pids(db: Database, readers: int) -> set[int]:
    """The server processes of every pooled connection: the writer's and each reader's (held
    together, so each is a different connection)."""
    async with db.write() as conn:
        pids = {int((await conn.execute_fetchall("SELECT pg_backend_pid()"))[0][0])}
    async with AsyncExitStack() as stack:
        for _ in range(readers):
            conn = await stack.enter_async_context(db.read())
            pids.add(int((await conn.execute_fetchall("SELECT pg_backend_pid()"))[0][0]))
    assert len(pids) == readers + 1
    return pids


def terminate(pids: set[int]) -> None:
    with psycopg.connect(server_url(), autocommit=True) as admin:
        for pid in pids:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        # Bounded: pg_terminate_backend only signals; wait until the processes are gone.
        for _ in range(200):
            left = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),)
            ).fetchone()
            if left == (0,):
                return
            admin.execute("SELECT pg_sleep(0.01)")
        pytest.fail(f"backends {pids} did not exit")


async def test_terminated_connections_are_replaced() -> None:
    with fresh_schema() as url:
        db = await Database.open(url, readers=2)
        try:
            owner = await db.owners.ensure("user", 1)
            before = await backend_pids(db, readers=2)
            terminate(before)
            async with asyncio.timeout(BOUND_S):
                assert await db.owners.find("user", 1) == owner  # a read
                await db.owner(owner.id).profile.update_settings({"language": "ru"})  # a write
                assert (await db.owner(owner.id).profile.settings()) == {"language": "ru"}
                after = await backend_pids(db, readers=2)
            assert not after & before
        finally:
            await db.close()


async def test_a_connection_dropped_mid_transaction_fails_that_call_only() -> None:
    with fresh_schema() as url:
        db = await Database.open(url, readers=1)
        try:
            owner = await db.owners.ensure("user", 1)
            with pytest.raises(psycopg.OperationalError):
                async with db.write() as conn:
                    await conn.execute("UPDATE owners SET created_at = 5 WHERE id = ?", (owner.id,))
                    pid = (await conn.execute_fetchall("SELECT pg_backend_pid()"))[0][0]
                    terminate({int(pid)})
                    await conn.execute("SELECT 1")
            async with asyncio.timeout(BOUND_S):
                found = await db.owners.find("user", 1)
                assert found is not None and found.created_at == owner.created_at  # rolled back
                await db.owner(owner.id).profile.update_settings({"a": 1})
        finally:
            await db.close()


async def test_merge_patch_settings_match_sqlite(tmp_path: Path) -> None:
    """Owner settings merge like SQLite's json_patch: nulls remove keys, objects merge deep."""
    changes = [{"a": 1, "b": {"x": 1, "y": 2}}, {"b": {"x": None, "z": 3}, "c": [1, None]},
               {"a": None, "b": "flat"}, {"d": {"e": {"f": None}}}]  # fmt: skip
    seen: dict[str, list[dict[str, object]]] = {}
    with fresh_schema() as url:
        for target in (tmp_path / "a.db", url):
            async with await Database.open(target, readers=1) as db:
                profile = db.owner((await db.owners.ensure("user", 1)).id).profile
                seen[str(is_postgres_url(target))] = [
                    await profile.update_settings(c) for c in changes
                ]
    assert seen["True"] == seen["False"]
    assert seen["False"][-1] == {"b": "flat", "c": [1, None], "d": {"e": {}}}


async def test_open_refuses_a_bad_url_and_an_empty_reader_pool() -> None:
    with pytest.raises(ValueError):
        await PgConnections.open(server_url(), readers=0)
    with pytest.raises(Exception, match="cannot connect to PostgreSQL"):
        await PgConnections.open("postgresql://nobody:x@127.0.0.1:1/none")


async def wait_until_blocked(pid: int) -> None:
    """Bounded: until server process ``pid`` waits for a lock another transaction holds."""
    async with await psycopg.AsyncConnection.connect(server_url(), autocommit=True) as admin:
        for _ in range(1000):
            cur = await admin.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
            )
            if await cur.fetchone() == ("Lock",):
                return
            await admin.execute("SELECT pg_sleep(0.01)")
    pytest.fail(f"backend {pid} never waited for the other transaction")


async def test_processes_registering_one_model_at_once_both_start() -> None:
    """Fronts and workers start together: the second registration of a model waits for the
    first's row instead of failing on the unique key."""
    with fresh_schema() as url:
        first = await Database.open(url, readers=1)
        second = await Database.open(url, readers=1)
        try:
            async with second.write() as conn:  # learn the second writer's server process
                pid = int((await conn.execute_fetchall("SELECT pg_backend_pid()"))[0][0])
            async with first.write() as conn:
                await model_key(conn, "tiny@1", 8, now=1)  # inserted, not committed yet
                late = asyncio.create_task(second.models.register("tiny@1", 8))
                await wait_until_blocked(pid)
            async with asyncio.timeout(BOUND_S):
                await late
            assert await second.models.dims() == {"tiny@1": 8}
        finally:
            await first.close()
            await second.close()
