"""Finished-job notices: ids as workers commit them, and a full re-read after any gap."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from pathlib import Path

import psycopg
import pytest

from storage import Database
from storage.job_feed import finished_jobs
from storage.leases import notify_job
from tests.postgres_support import fresh_schema, server_url

BOUND_S = 30.0


async def notify(db: Database, job_id: int) -> None:
    async with db.write() as conn:
        await notify_job(conn, job_id)


async def terminate_listener(channel: str) -> None:
    """End the server process that LISTENs on ``channel`` (as a server restart would)."""
    async with await psycopg.AsyncConnection.connect(server_url(), autocommit=True) as admin:
        cur = await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = %s",
            (f'LISTEN "{channel}"',),
        )
        assert await cur.fetchall() == [(True,)]


def schema_of(url: str) -> str:
    return url.rsplit("search_path%3D", 1)[1]


async def until_no_listener(channel: str) -> None:
    """Bounded: a closed connection's server process ends (and drops its locks) a moment after
    the client let go."""
    async with await psycopg.AsyncConnection.connect(server_url(), autocommit=True) as admin:
        for _ in range(1000):
            cur = await admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query = %s", (f'LISTEN "{channel}"',)
            )
            if await cur.fetchone() == (0,):
                return
            await admin.execute("SELECT pg_sleep(0.01)")
    pytest.fail(f"a listener on {channel} never went away")


async def test_notices_name_committed_jobs_and_a_lost_connection_asks_for_a_full_read() -> None:
    with fresh_schema() as url:
        async with await Database.open(url, readers=1) as db:
            feed = finished_jobs(db.connections, quiet_s=60.0, reconnect_s=0.01)
            async with aclosing(feed), asyncio.timeout(BOUND_S):
                assert await anext(feed) is None  # listening: read everything once
                await notify(db, 7)
                assert await anext(feed) == [7]
                await terminate_listener(f"{schema_of(url)}.jobs")
                assert await anext(feed) is None  # reconnected: what was missed is re-read
                await notify(db, 8)
                assert await anext(feed) == [8]


async def test_a_quiet_spell_asks_for_a_full_read() -> None:
    with fresh_schema() as url:
        async with await Database.open(url, readers=1) as db:
            feed = finished_jobs(db.connections, quiet_s=0.05)
            async with aclosing(feed), asyncio.timeout(BOUND_S):
                assert [await anext(feed), await anext(feed)] == [None, None]


async def test_sqlite_has_no_notices(tmp_path: Path) -> None:
    async with await Database.open(tmp_path / "a.db") as db:
        with pytest.raises(ValueError, match="PostgreSQL"):
            await anext(finished_jobs(db.connections, quiet_s=1.0))


async def test_only_the_jobs_of_front_ends_no_longer_listening_are_taken_over() -> None:
    with fresh_schema() as url:
        async with await Database.open(url, readers=1) as db:
            jobs = db.owner((await db.owners.ensure("user", 1)).id).jobs
            live = await jobs.enqueue_many([{"n": 1}], front="live")
            gone = await jobs.enqueue_many([{"n": 2}, {"n": 3}], front="gone")
            local = await jobs.enqueue_many([{"n": 4}])
            feed = finished_jobs(db.connections, quiet_s=60.0, alive_as="live")
            mine = finished_jobs(db.connections, quiet_s=60.0, alive_as="me")
            async with aclosing(feed), aclosing(mine), asyncio.timeout(BOUND_S):
                assert await anext(feed) is None  # "live" holds its lock now
                assert await anext(mine) is None  # and so does "me"
                assert [j.id for j in await db.owed.adopt("me")] == gone
                assert await db.owed.adopt("other") == []  # taken once
                assert await db.owed.settle([*gone, *live, *local], "me") == 2
            # "live" stopped listening: once the server has ended its session, its jobs are
            # owed by whoever takes them
            await until_no_listener(f"{schema_of(url)}.jobs")
            assert [(j.id, j.front) for j in await db.owed.adopt("me")] == [(live[0], "me")]


async def test_a_front_end_claims_only_its_own_jobs_and_finishing_them_settles_them() -> None:
    with fresh_schema() as url:
        async with await Database.open(url, readers=1, worker="a") as a:
            jobs = a.owner((await a.owners.ensure("user", 1)).id).jobs
            mine = await jobs.enqueue_many([{"n": 1}], front="a", embeds=True)
            other = await jobs.enqueue_many([{"n": 2}], front="b")  # workers embed it
            legacy = await jobs.enqueue_many([{"n": 3}])  # queued before fronts were named
            embedding = await jobs.enqueue_many([{"n": 4}], front="c", embeds=True)
            claimed = await a.queue.claim(10, front="a")
            assert sorted(j.id for j in claimed) == sorted([*mine, *legacy])
            assert [j.id for j in await a.queue.claim(10)] == other  # not "c"'s: it embeds
            await jobs.finish(mine[0], media_id=None, duplicate=False)
            await jobs.finish(other[0], media_id=None, duplicate=False)  # "b" still owes it
            await jobs.fail(legacy[0], "x: y")
            got = {j.id: j.front for j in await jobs.all()}
            assert got == {mine[0]: None, other[0]: "b", legacy[0]: None, embedding[0]: "c"}


def test_a_process_restarted_in_place_gets_a_name_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Same hostname, same pid (a container restarted): still another claimer."""
    import storage.leases as leases

    monkeypatch.setattr(leases.os, "getpid", lambda: 1)
    monkeypatch.setattr(leases, "_opened", iter([0, 0]))
    first, second = leases.default_worker(), leases.default_worker()
    assert first != second and first.split(":")[:2] == second.split(":")[:2]
