"""Housekeeping: old finished jobs, result messages and sessions go; nothing else does, the
tables stop growing, and the schedule runs at start and then every interval."""

from __future__ import annotations

import asyncio
import logging

import pytest

from storage import Database, OwnerStore
from storage.housekeeping import DAY_S, Housekeeper, PurgeCounts, Retention, purge_expired
from storage.results import ResultStore
from tests.storage.conftest import Clock, add_photo

RETENTION = Retention.days(jobs=7, results=3)


async def count(db: Database, table: str) -> int:
    async with db.read() as conn:
        rows = await conn.execute_fetchall(f"SELECT count(*) FROM {table}")
    return int(rows[0][0])


async def finished_job(db: Database, store: OwnerStore, *, failed: bool = False) -> int:
    """A job enqueued, claimed and finished (or failed) now."""
    job_id = await store.jobs.enqueue({"kind": "photo"})
    (claimed,) = await db.queue.claim(1)
    assert claimed.id == job_id
    if failed:
        await store.jobs.fail(job_id, "gone")
    else:
        await store.jobs.finish(job_id)
    return job_id


@pytest.fixture
async def other(db: Database) -> OwnerStore:
    owner = await db.owners.ensure("user", 2002)
    return db.owner(owner.id)


async def test_purge_removes_only_expired_rows(
    db: Database, store: OwnerStore, other: OwnerStore, clock: Clock
) -> None:
    mine, theirs = await add_photo(store, "a"), await add_photo(other, "b", seed=3)
    results, their_results = ResultStore(db, store.owner_id), ResultStore(db, other.owner_id)
    start = clock.now
    # Fresh rows first, a retention and a day later (a later claim would take the old pending
    # job), then the clock goes back for the old ones and forward again for the purge.
    clock.now = start + RETENTION.jobs_s + DAY_S
    fresh_done = await finished_job(db, store)
    await their_results.record(2002, [(2, theirs.media_id, None)])
    fresh_session = await their_results.create_session("text", text="fresh")
    clock.now = start
    old_done = await finished_job(db, store)
    old_failed = await finished_job(db, other, failed=True)
    old_running = await other.jobs.enqueue({"kind": "photo"})
    await db.queue.claim(5)
    old_pending = await store.jobs.enqueue({"kind": "photo"})
    await results.record(1001, [(1, mine.media_id, None)])
    old_session = await results.create_session("text", text="old")
    await store.profile.update_settings({"page_size": 5})
    clock.now = start + RETENTION.jobs_s + DAY_S

    counts = await purge_expired(db, RETENTION, chunk=2)
    assert counts == PurgeCounts(jobs=2, result_messages=1, search_sessions=1)
    remaining = {j.id for j in await store.jobs.all()} | {j.id for j in await other.jobs.all()}
    assert old_done not in remaining and old_failed not in remaining
    assert {old_pending, old_running, fresh_done} <= remaining  # unfinished jobs never go
    assert await results.result(1001, 1) is None
    assert await their_results.result(2002, 2) is not None
    assert await results.session(old_session.id) is None
    assert await their_results.session(fresh_session.id) is not None
    # The collections themselves are untouched.
    assert await count(db, "media") == 2 and await count(db, "vectors") == 4
    assert (await store.profile.settings())["page_size"] == 5
    assert await purge_expired(db, RETENTION) == PurgeCounts()  # nothing left to do


async def test_purge_runs_in_bounded_chunks(
    db: Database, store: OwnerStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = ResultStore(db, store.owner_id)
    for i in range(25):
        await results.create_session("text", text=f"q{i}")
    clock.now += RETENTION.results_s + 1
    writes = 0
    real_write = db.connections.write

    def counting_write():  # type: ignore[no-untyped-def]
        nonlocal writes
        writes += 1
        return real_write()

    monkeypatch.setattr(db.connections, "write", counting_write)
    counts = await purge_expired(db, RETENTION, chunk=10)
    assert counts.search_sessions == 25
    assert writes == 3 + 1 + 1  # sessions in 10 + 10 + 5; jobs and results in one empty chunk
    assert "search_sessions_age" in await query_plan(
        db, "SELECT id FROM search_sessions WHERE created_at < 0 LIMIT 1"
    )


async def query_plan(db: Database, sql: str) -> str:
    """The plan of ``sql`` as one string. PostgreSQL would scan a tiny table whole, so sequential
    scans are priced out for this one transaction: the plan shows which index can serve."""
    async with db.read(snapshot=True) as conn:
        if db.dialect == "sqlite":
            plan = await conn.execute_fetchall(f"EXPLAIN QUERY PLAN {sql}")
        else:
            await conn.execute("SET LOCAL enable_seqscan = off")
            plan = await conn.execute_fetchall(f"EXPLAIN {sql}")
    return " ".join(str(r) for r in plan)


async def test_tables_stop_growing_when_no_items_are_added(
    db: Database, store: OwnerStore, clock: Clock
) -> None:
    """The database's growth with no new items is zero: a year of daily searches over a fixed
    collection leaves these tables at the size of one retention window."""
    items = [await add_photo(store, f"p{i}", seed=i) for i in range(40)]
    results = ResultStore(db, store.owner_id)
    searches_per_day, page, jobs_per_day = 4, 10, 3
    message_id = 0
    sizes: list[tuple[int, int, int]] = []
    for day in range(365):
        for s in range(searches_per_day):
            await results.create_session("text", text=f"day {day} query {s}")
            shown = items[(day + s) % 30 : (day + s) % 30 + page]
            await results.record(
                1001, [(message_id + k, m.media_id, None) for k, m in enumerate(shown)]
            )
            message_id += page
        for _ in range(jobs_per_day):  # items sent again: duplicates, nothing new stored
            await finished_job(db, store)
        await purge_expired(db, RETENTION, chunk=50)
        sizes.append(
            (
                await count(db, "jobs"),
                await count(db, "result_messages"),
                await count(db, "search_sessions"),
            )
        )
        clock.now += DAY_S
    window_jobs = (RETENTION.jobs_s // DAY_S + 1) * jobs_per_day
    window_results = (RETENTION.results_s // DAY_S + 1) * searches_per_day
    assert max(s[0] for s in sizes) <= window_jobs
    assert max(s[1] for s in sizes) <= window_results * page
    assert max(s[2] for s in sizes) <= window_results
    assert sizes[30] == sizes[180] == sizes[-1]  # steady state: zero growth over time
    assert await count(db, "media") == len(items)


class ManualSleep:
    """An injectable ``sleep``: records each interval and returns when the test says so."""

    def __init__(self) -> None:
        self.intervals: list[float] = []
        self.wakeups: asyncio.Queue[None] = asyncio.Queue()

    async def __call__(self, seconds: float) -> None:
        self.intervals.append(seconds)
        await self.wakeups.get()


async def test_housekeeper_runs_at_start_then_every_interval(
    db: Database, store: OwnerStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    results = ResultStore(db, store.owner_id)
    await results.create_session("text", text="old")
    clock.now += RETENTION.results_s + 1
    sleep = ManualSleep()
    keeper = Housekeeper(db, RETENTION, interval_s=3600, chunk=10, sleep=sleep)
    await keeper.start()
    await keeper.start()  # idempotent
    await keeper.wait_passes(1)
    assert keeper.last == PurgeCounts(search_sessions=1)

    await results.create_session("text", text="next")
    clock.now += RETENTION.results_s + 1
    sleep.wakeups.put_nowait(None)  # the interval is over
    await keeper.wait_passes(2)
    assert keeper.last == PurgeCounts(search_sessions=1)
    assert sleep.intervals[:2] == [3600, 3600]

    await keeper.stop()
    assert not keeper.running
    await keeper.stop()  # safe twice


async def test_a_failed_pass_is_logged_and_the_schedule_goes_on(
    db: Database, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0

    async def flaky(*args: object, **kwargs: object) -> PurgeCounts:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("disk full")
        return PurgeCounts()

    monkeypatch.setattr("storage.housekeeping.purge_expired", flaky)
    sleep = ManualSleep()
    keeper = Housekeeper(db, RETENTION, interval_s=60, sleep=sleep)
    with caplog.at_level(logging.ERROR, logger="storage.housekeeping"):
        await keeper.start()
        await keeper.wait_passes(1)
        sleep.wakeups.put_nowait(None)
        await keeper.wait_passes(2)
        await keeper.stop()
    assert keeper.last == PurgeCounts()
    assert any("housekeeping pass failed" in r.getMessage() for r in caplog.records)


def test_housekeeper_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        Housekeeper(None, RETENTION, interval_s=0)  # type: ignore[arg-type]
