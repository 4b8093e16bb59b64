"""Inference workers on a shared PostgreSQL database: a front end with INGEST_REMOTE only
enqueues and answers; workers (separate Database objects = separate connections, as separate
machines would have) claim with leases, embed and commit; a worker that dies mid-batch leaves
its jobs to the others once its lease runs out, and nothing is embedded twice."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest

from core.engine.engine import Engine
from core.errors import FileGoneError
from core.ingest.request import IngestOutcome, IngestRequest
from storage import Database
from storage.job_feed import finished_jobs
from tests.core.ingest_fakes import Files, png, settings, solid
from tests.e2e.fake_telegram import FakeTelegramServer
from tests.e2e.harness import BotProcess, bot_env
from tests.postgres_support import fresh_schema

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "tests" / "fixtures" / "models" / "clip-fixture"
WAIT_S = 60.0  # bound on any one wait; the jobs take well under a second each


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_schema("workers") as found:
        yield found


async def open_engine(tmp: Path, name: str, url: str, fetch: Files, **kw: Any) -> Engine:
    s = settings(tmp / name, model_dirs=[MODEL], database_url=url, ocr_enabled=False, **kw)
    return await Engine.open(s, fetch=fetch)


def photo(files: Files, owner_id: int, uid: str, color: tuple[int, int, int]) -> IngestRequest:
    files.data[f"f-{uid}"] = png(solid(color))
    return IngestRequest.of(owner_id, "photo", uid, file_id=f"f-{uid}")


async def outcomes(tickets: list[Any]) -> list[IngestOutcome]:
    return list(await asyncio.wait_for(asyncio.gather(*(t.result() for t in tickets)), WAIT_S))


async def counts(db: Database, owner_id: int) -> tuple[int, int, int]:
    stats = await db.owner(owner_id).stats()
    return stats.media_total, stats.units, sum(stats.vectors_by_model.values())


async def test_a_remote_front_end_is_answered_by_the_workers(tmp_path: Path, url: str) -> None:
    files = Files()
    files.always[("f-gone", False)] = FileGoneError("wrong file identifier")
    front = await open_engine(tmp_path, "front", url, files, ingest_remote=True)
    workers = [await open_engine(tmp_path, f"w{i}", url, files) for i in range(2)]
    try:
        assert front.pipeline is None and front.remote is not None and front.ocr is None
        assert all(w.pipeline is not None for w in workers)
        owner_id = (await front.owners.ensure("user", 7)).id
        requests = [photo(files, owner_id, f"p{i}", (30 * i, 90, 200 - 20 * i)) for i in range(8)]
        files.data["f-broken"] = png(solid((1, 2, 3)))[:40]
        requests.append(IngestRequest.of(owner_id, "photo", "broken", file_id="f-broken"))
        requests.append(IngestRequest.of(owner_id, "photo", "gone", file_id="f-gone"))
        tickets = [await front.library.submit(r) for r in requests[:4]]
        tickets += await front.library.submit_many(requests[4:])
        first = await outcomes(tickets)
        again = await outcomes([await front.library.submit(requests[0])])
    finally:
        await front.close()
        for w in workers:
            await w.close()
    by_uid = {o.request.file_unique_id: o for o in first}
    saved = [by_uid[f"p{i}"] for i in range(8)]
    assert all(o.saved and o.media_id and len(o.unit_ids) == 1 for o in saved)
    assert by_uid["broken"].failed and (by_uid["broken"].reason or "").startswith("image")
    assert (by_uid["gone"].status, by_uid["gone"].reason) == ("failed", "file_gone")
    assert again[0].duplicate and again[0].media_id == by_uid["p0"].media_id

    async with await Database.open(url) as db:
        assert await counts(db, owner_id) == (8, 8, 8)  # every item once, one model
        jobs = await db.owner(owner_id).jobs.all(limit=100)
        assert sorted(j.state for j in jobs) == ["done"] * 9 + ["failed"] * 2
        # Which worker claims first is a race (both hear the enqueue): each job was done by
        # one of them, once. Sharing the work is the scaling benchmark's to show.
        assert {j.worker for j in jobs} <= {w.db.worker for w in workers}
        assert all(j.attempts == 1 for j in jobs)  # nothing was done twice


async def test_a_killed_worker_leaves_its_jobs_to_the_other(tmp_path: Path, url: str) -> None:
    """Worker A claims a batch and hangs in its downloads; it is then "killed" (its tasks are
    cancelled without any cleanup, its connections closed). Its leases (1 s, never renewed
    again) run out and worker B, which keeps renewing its own, does the jobs."""
    stuck, files = Files(), Files()
    gate = stuck.hold_after(0)  # A's every download waits forever
    front = await open_engine(tmp_path, "front", url, files, ingest_remote=True)
    a = await open_engine(tmp_path, "a", url, stuck, ingest_lease_s=1.0)
    b: Engine | None = None
    try:
        owner_id = (await front.owners.ensure("user", 8)).id
        requests = [photo(files, owner_id, f"k{i}", (20 * i, 40, 90)) for i in range(5)]
        stuck.data.update(files.data)
        tickets = await front.library.submit_many(requests)
        await asyncio.wait_for(stuck.fetched.wait(), WAIT_S)  # A holds jobs now
        held = await front.db.owner(owner_id).jobs.all(states=("running",))
        assert held and {j.worker for j in held} == {a.db.worker}
        await kill(a)
        b = await open_engine(tmp_path, "b", url, files, ingest_lease_s=1.0)
        done = await outcomes(tickets)
        assert all(o.saved for o in done)
    finally:
        gate.set()
        await front.close()
        if b is not None:
            await b.close()
    async with await Database.open(url) as db:
        assert await counts(db, owner_id) == (5, 5, 5)  # nothing embedded twice
        jobs = {j.id: j for j in await db.owner(owner_id).jobs.all()}
        assert {j.state for j in jobs.values()} == {"done"}
        assert all(jobs[j.id].attempts == 2 for j in held)  # re-claimed, attempt counted
        assert {j.worker for j in jobs.values()} == {b.db.worker}


async def kill(engine: Engine) -> None:
    """What SIGKILL leaves: the pipeline's tasks end without any cleanup (no release, no
    commit, no lease renewal) and the connections go away."""
    pipeline = engine.pipeline
    assert pipeline is not None
    tasks = [t for t in (pipeline._feeder, *pipeline._tasks) if t is not None]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await engine.db.connections.close()
    engine.embedder.close()


async def test_the_worker_command_embeds_a_job_and_stops_cleanly_on_sigterm(
    tmp_path: Path, url: str
) -> None:
    """``python -m bot worker`` against the fake Bot API: it downloads the file by its
    file_id, the front end hears of the commit, and SIGTERM ends it with exit code 0."""
    async with FakeTelegramServer() as telegram:
        stored = telegram.register_photo(png(solid((200, 30, 60), (64, 48))))[-1]
        env = {
            **bot_env(telegram),
            "DATABASE_URL": url,
            "MODEL_DIRS": str(MODEL),
            "DATA_DIR": str(tmp_path / "worker"),
            "OCR_ENABLED": "false",
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        front = await open_engine(tmp_path, "front", url, Files(), ingest_remote=True)
        try:
            async with BotProcess(["-m", "bot", "worker"], env=env, cwd=tmp_path) as worker:
                ready = await worker.wait_output(r"worker (\S+) ready", timeout=WAIT_S)
                owner_id = (await front.owners.ensure("user", 9)).id
                ticket = await front.library.submit(
                    IngestRequest.of(
                        owner_id, "photo", stored.file_unique_id, file_id=stored.file_id
                    )
                )
                (outcome,) = await outcomes([ticket])
                assert outcome.saved and outcome.media_id is not None
                assert await worker.stop(timeout=WAIT_S) == 0
            job = await front.db.owner(owner_id).jobs.get(ticket.job_id)
            assert job is not None and job.worker == ready.group(1)
        finally:
            await front.close()
        assert telegram.calls_of("getFile")
        telegram.assert_clean()


class Told:
    """A front end's outcome listener: what it was told, awaitable one by one."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[IngestOutcome] = asyncio.Queue()

    async def __call__(self, outcome: IngestOutcome) -> None:
        await self.queue.put(outcome)

    async def next(self) -> IngestOutcome:
        return await asyncio.wait_for(self.queue.get(), WAIT_S)


async def until_finished(feed: Any, job_ids: set[int]) -> None:
    """Wait for the workers' notices of every job in ``job_ids``."""
    left = set(job_ids)
    async with asyncio.timeout(WAIT_S):
        async for ids in feed:
            left -= set(ids or ())
            if not left:
                return


async def test_what_a_stopped_front_end_owed_another_one_answers(tmp_path: Path, url: str) -> None:
    """Jobs of a front end that stopped before answering (a crash, a redeploy) are taken over by
    the next front end: finished ones are told at once, running ones when they end; album items
    are left to the album's shared answer, answered items are never told twice."""
    files = Files()
    told_a, told_b = Told(), Told()
    s = settings(tmp_path / "a", model_dirs=[MODEL], database_url=url, ocr_enabled=False,
                 ingest_remote=True)  # fmt: skip
    a = await Engine.open(s, fetch=files, on_outcome=told_a)
    worker = await open_engine(tmp_path, "w", url, files)
    owner_id = (await a.owners.ensure("user", 11)).id
    r = [photo(files, owner_id, f"o{i}", (10 + 40 * i, 80, 150)) for i in range(4)]
    r[2] = IngestRequest.of(owner_id, "photo", "o2", file_id="f-o2", album_id="alb")
    answered = await a.library.submit(r[0])
    assert (await outcomes([answered]))[0].saved and (await told_a.next()).job_id == answered.job_id
    await worker.close()
    early = [(await a.library.submit(x)).job_id for x in r[1:3]]  # finished while nobody lives
    await a.close()
    async with await Database.open(url) as watcher:
        feed = finished_jobs(watcher.connections, quiet_s=60.0)
        async with aclosing(feed):
            assert await anext(feed) is None
            worker = await open_engine(tmp_path, "w2", url, files)
            await until_finished(feed, set(early))
            await worker.close()
    a2 = await open_engine(tmp_path, "a2", url, files, ingest_remote=True)
    late = (await a2.library.submit(r[3])).job_id  # still waiting for a worker at the takeover
    await a2.close()
    s = settings(tmp_path / "b", model_dirs=[MODEL], database_url=url, ocr_enabled=False,
                 ingest_remote=True)  # fmt: skip
    b = await Engine.open(s, fetch=files, on_outcome=told_b)
    try:
        first = await told_b.next()
        assert (first.job_id, first.saved) == (early[0], True)
        worker = await open_engine(tmp_path, "w3", url, files)
        second = await told_b.next()
        assert (second.job_id, second.saved, second.request.file_unique_id) == (late, True, "o3")
        await worker.close()
        assert told_b.queue.empty() and told_a.queue.empty()  # album item and answered: not told
        jobs = await b.db.owner(owner_id).jobs.all()
        assert [(j.state, j.front) for j in jobs] == [("done", None)] * 4  # nothing owed
    finally:
        await b.close()


async def test_an_idle_worker_is_woken_by_the_enqueue_not_by_its_clock(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the feeder's own look-again period beyond the test's bound, only the enqueue's
    notice can bring the job to the worker."""
    monkeypatch.setattr("core.ingest.pipeline.SHARED_POLL_S", 3600.0)
    files = Files()
    worker = await open_engine(tmp_path, "w", url, files, ingest_lease_s=3600.0)
    front = await open_engine(tmp_path, "front", url, files, ingest_remote=True)
    try:
        assert worker.pipeline is not None
        await asyncio.wait_for(worker.pipeline.wait_idle(), WAIT_S)
        owner_id = (await front.owners.ensure("user", 12)).id
        tickets = [await front.library.submit(photo(files, owner_id, "n1", (5, 200, 90)))]
        assert (await outcomes(tickets))[0].saved
    finally:
        await front.close()
        await worker.close()


async def open_front(tmp: Path, name: str, url: str, fetch: Files, told: Told, **kw: Any) -> Engine:
    """A bot front end that embeds what it queues (INGEST_REMOTE=false) on the shared database."""
    s = settings(tmp / name, model_dirs=[MODEL], database_url=url, ocr_enabled=False, **kw)
    return await Engine.open(s, fetch=fetch, on_outcome=told, front_end=True)


async def test_a_front_end_that_embeds_takes_over_the_jobs_of_one_that_died(
    tmp_path: Path, url: str
) -> None:
    """Front A holds a job (its download hangs) and is killed; front B, which never claims
    another live front end's jobs, takes it over once A's lease ran out, embeds it and tells
    its listener (the "finished after a restart" report)."""
    stuck, files = Files(), Files()
    gate = stuck.hold_after(0)
    told_a, told_b = Told(), Told()
    a = await open_front(tmp_path, "a", url, stuck, told_a, ingest_lease_s=1.0)
    b: Engine | None = None
    try:
        owner_id = (await a.owners.ensure("user", 13)).id
        request = photo(files, owner_id, "t1", (90, 10, 200))
        stuck.data.update(files.data)
        ticket = await a.library.submit(request)
        await asyncio.wait_for(stuck.fetched.wait(), WAIT_S)  # A holds it now
        await kill(a)
        b = await open_front(tmp_path, "b", url, files, told_b, ingest_lease_s=1.0)
        outcome = await told_b.next()
        assert (outcome.job_id, outcome.saved) == (ticket.job_id, True)
        job = await b.db.owner(owner_id).jobs.get(ticket.job_id)
        assert job is not None and (job.worker, job.front, job.attempts) == (b.db.worker, None, 2)
    finally:
        gate.set()
        if b is not None:
            await b.close()
