"""The polling lock of replicas sharing one PostgreSQL schema: one holds it, the other takes
over within its retry period once the holder's connection is gone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from storage.leadership import Leadership
from storage.postgres import PgConnections
from tests.postgres_support import fresh_schema

RETRY_S = 0.2


class Retries:
    """A standby's retry callback that says when it has failed ``wanted`` times."""

    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.count = 0
        self.reached = asyncio.Event()

    def __call__(self) -> None:
        self.count += 1
        if self.count >= self.wanted:
            self.reached.set()


@pytest.fixture
async def conns() -> AsyncIterator[tuple[PgConnections, PgConnections]]:
    with fresh_schema() as url:
        first = await PgConnections.open(url)
        second = await PgConnections.open(url)
        try:
            yield first, second
        finally:
            await first.close()
            await second.close()


async def test_one_replica_holds_the_lock_and_the_other_takes_over_after_it_is_released(
    conns: tuple[PgConnections, PgConnections],
) -> None:
    a = Leadership(conns[0], retry_s=RETRY_S)
    b = Leadership(conns[1], retry_s=RETRY_S)
    async with a, b:
        assert await a.try_acquire()
        assert not await b.try_acquire()
        assert await a.still_held()
        retries = Retries(3)
        waiting = asyncio.create_task(b.acquire(on_retry=retries))
        await asyncio.wait_for(retries.reached.wait(), 20 * RETRY_S)  # they fail while a holds it
        assert not waiting.done()
        await a.release()
        assert await asyncio.wait_for(waiting, 5 * RETRY_S)
        assert b.held and not a.held
        assert not await a.try_acquire()


async def test_a_killed_holder_connection_is_noticed_and_the_standby_takes_over(
    conns: tuple[PgConnections, PgConnections],
) -> None:
    a = Leadership(conns[0], retry_s=RETRY_S)
    b = Leadership(conns[1], retry_s=RETRY_S)
    async with a, b:
        assert await a.try_acquire()
        standby = asyncio.create_task(b.acquire())
        watch = asyncio.create_task(a.lost())
        assert a._raw is not None
        (pid,) = (await (await a._raw.execute("SELECT pg_backend_pid()")).fetchall())[0]
        async with await psycopg.AsyncConnection.connect(conns[1].url, autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))  # the server drops it
        assert await asyncio.wait_for(standby, 5 * RETRY_S + 2)
        assert await asyncio.wait_for(watch, a.check_timeout_s + 2 * RETRY_S)
        assert not a.held


async def test_lost_returns_false_when_stopped_and_the_lock_is_kept(
    conns: tuple[PgConnections, PgConnections],
) -> None:
    a = Leadership(conns[0], retry_s=RETRY_S)
    async with a:
        assert await a.try_acquire()
        stop = asyncio.Event()
        watch = asyncio.create_task(a.lost(stop))
        stop.set()
        assert await asyncio.wait_for(watch, 2) is False
        assert await a.still_held()
        assert await a.acquire(stop)  # already held: no wait even when stopped


async def test_acquire_gives_up_when_stopped(conns: tuple[PgConnections, PgConnections]) -> None:
    a = Leadership(conns[0], retry_s=RETRY_S)
    b = Leadership(conns[1], retry_s=RETRY_S)
    async with a, b:
        assert await a.try_acquire()
        stop = asyncio.Event()
        retries = Retries(2)
        waiting = asyncio.create_task(b.acquire(stop, on_retry=retries))
        await asyncio.wait_for(retries.reached.wait(), 20 * RETRY_S)
        stop.set()
        assert await asyncio.wait_for(waiting, 2) is False
        assert retries.count >= 2 and not b.held


def test_scoped_lock_names_differ_per_schema() -> None:
    class Fake:
        def scoped(self, name: str) -> str:
            return f"s1.{name}"

    lock = Leadership(Fake(), retry_s=1.0)  # type: ignore[arg-type]
    assert lock.key == "s1.polling"
    with pytest.raises(ValueError):
        Leadership(Fake(), retry_s=0)  # type: ignore[arg-type]
