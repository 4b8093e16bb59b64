"""Inference workers on a shared PostgreSQL database: a front end with INGEST_REMOTE only
enqueues and answers; workers (separate Database objects = separate connections, as separate
machines would have) claim with leases, embed and commit; a worker that dies mid-batch leaves
its jobs to the others once its lease runs out, and nothing is embedded twice."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.engine.engine import Engine
from core.errors import FileGoneError
from core.ingest.request import IngestOutcome, IngestRequest
from storage import Database
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


async def test_a_remote_front_end_is_answered_by_two_workers(tmp_path: Path, url: str) -> None:
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
        workers_seen = {j.worker for j in jobs}
        assert len(workers_seen) == 2  # both workers did some
        assert all(j.attempts == 1 for j in jobs)  # and nothing was done twice


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
