"""Durable ingest jobs: enqueue, fair claim, done in the commit, failures, start-up recovery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import sql

from core.errors import JobStateError
from storage import Database, NewUnit, OwnerStore
from tests.conftest import DatabaseTarget
from tests.storage.conftest import CLIP, Clock, photo, vecs

PAYLOAD = {
    "file_id": "AgAC",
    "file_unique_id": "AQAD",
    "kind": "photo",
    "caption": "кот на окне",
    "forward_origin": None,
    "message_date": 1_700_000_000,
    "album_id": "42",
}


async def test_enqueue_and_read_back(store: OwnerStore, clock: Clock) -> None:
    job_id = await store.jobs.enqueue(PAYLOAD)
    job = await store.jobs.get(job_id)
    assert job is not None
    assert job.payload == PAYLOAD and job.owner_id == store.owner_id
    assert (job.state, job.attempts, job.last_error, job.media_id, job.duplicate) == (
        "pending", 0, None, None, None
    )  # fmt: skip
    assert job.created_at == job.updated_at == int(clock.now)
    ids = await store.jobs.enqueue_many([{"n": i} for i in range(3)])
    assert ids == sorted(ids) and ids[0] > job_id
    pending = await store.jobs.all(states=["pending"], limit=2)
    assert [j.payload for j in pending] == [PAYLOAD, {"n": 0}]
    assert await store.jobs.counts() == {"pending": 4}
    assert await store.jobs.get(999_999) is None


async def test_claim_moves_jobs_to_running_once(db: Database, store: OwnerStore) -> None:
    ids = await store.jobs.enqueue_many([{"n": i} for i in range(3)])
    first = await db.queue.claim(2)
    assert [j.id for j in first] == ids[:2]
    assert all(j.state == "running" and j.attempts == 1 for j in first)
    second = await db.queue.claim(10)
    assert [j.id for j in second] == ids[2:]
    assert await db.queue.claim(10) == []
    assert await db.queue.claim(0) == []
    assert await db.queue.counts() == {"running": 3}


async def test_claim_is_round_robin_across_owners(db: Database, store: OwnerStore) -> None:
    other = db.owner((await db.owners.ensure("chat", -100)).id)
    third = db.owner((await db.owners.ensure("user", 7)).id)
    backlog = await store.jobs.enqueue_many([{"n": i} for i in range(5)])
    late = await other.jobs.enqueue({"n": "other"})
    later = await third.jobs.enqueue({"n": "third"})
    claimed = await db.queue.claim(4)
    assert [j.id for j in claimed] == [backlog[0], late, later, backlog[1]]
    assert {j.owner_id for j in claimed} == {store.owner_id, other.owner_id, third.owner_id}


async def test_commit_marks_job_done(db: Database, store: OwnerStore) -> None:
    job_id = await store.jobs.enqueue(PAYLOAD)
    await db.queue.claim(1)
    result = await store.media.commit(
        photo("AQAD"), [NewUnit.image()], {CLIP: vecs(1)}, job_id=job_id
    )
    job = await store.jobs.get(job_id)
    assert job is not None
    assert (job.state, job.media_id, job.duplicate) == ("done", result.media_id, False)
    # A duplicate's job is done too, pointing at the existing item.
    dup_id = await store.jobs.enqueue(PAYLOAD)
    await db.queue.claim(1)
    again = await store.media.commit(
        photo("AQAD"), [NewUnit.image()], {CLIP: vecs(1)}, job_id=dup_id
    )
    dup = await store.jobs.get(dup_id)
    assert again.duplicate and dup is not None
    assert (dup.state, dup.media_id, dup.duplicate) == ("done", result.media_id, True)


async def test_commit_with_a_job_that_is_not_running_is_refused(
    db: Database, store: OwnerStore
) -> None:
    job_id = await store.jobs.enqueue(PAYLOAD)  # pending: never claimed
    with pytest.raises(JobStateError, match="pending, not running"):
        await store.media.commit(photo("x"), [NewUnit.image()], {CLIP: vecs(1)}, job_id=job_id)
    assert await store.media.find("x") is None


async def test_finish_job_without_commit(db: Database, store: OwnerStore) -> None:
    job_id = await store.jobs.enqueue(PAYLOAD)
    await db.queue.claim(1)
    await store.jobs.finish(job_id, media_id=5, duplicate=True)
    job = await store.jobs.get(job_id)
    assert job is not None and (job.state, job.media_id, job.duplicate) == ("done", 5, True)
    with pytest.raises(JobStateError):
        await store.jobs.finish(job_id)


async def test_fail_with_retry_until_attempts_run_out(db: Database, store: OwnerStore) -> None:
    job_id = await store.jobs.enqueue(PAYLOAD)  # db fixture: max_attempts=3
    states = []
    for _ in range(3):
        (job,) = await db.queue.claim(1)
        states.append(await store.jobs.fail(job.id, f"timeout {job.attempts}", retry=True))
    assert states == ["pending", "pending", "failed"]
    job = await store.jobs.get(job_id)
    assert job is not None and (job.state, job.attempts, job.last_error) == (
        "failed", 3, "timeout 3"
    )  # fmt: skip
    assert await db.queue.claim(1) == []
    with pytest.raises(JobStateError):
        await store.jobs.fail(job_id, "again")


async def test_fail_without_retry_is_final(db: Database, store: OwnerStore) -> None:
    job_id = await store.jobs.enqueue(PAYLOAD)
    await db.queue.claim(1)
    assert await store.jobs.fail(job_id, "not an image") == "failed"
    assert await store.jobs.counts() == {"failed": 1}


async def test_requeue_running_after_restart(db: Database, store: OwnerStore) -> None:
    ids = await store.jobs.enqueue_many([{"n": i} for i in range(3)])
    for _ in range(2):  # job 0 was claimed and interrupted twice already
        await db.queue.claim(1)
        assert await db.queue.requeue_running() == (1, 0)
    await db.queue.claim(3)  # its third claim: max_attempts reached if interrupted again
    assert await db.queue.requeue_running() == (2, 1)
    assert await store.jobs.counts() == {"pending": 2, "failed": 1}
    poisoned = await store.jobs.get(ids[0])
    assert poisoned is not None and "interrupted 3 time(s)" in (poisoned.last_error or "")
    assert [j.id for j in await db.queue.claim(5)] == ids[1:]


async def test_jobs_survive_reopening(
    db: Database, store: OwnerStore, database_target: DatabaseTarget
) -> None:
    job_id = await store.jobs.enqueue(PAYLOAD)
    await db.queue.claim(1)
    await db.close()
    reopened = await Database.open(database_target("test.db"))
    try:
        assert await reopened.queue.requeue_running() == (1, 0)
        (job,) = await reopened.queue.claim(1)
        assert (job.id, job.payload, job.attempts) == (job_id, PAYLOAD, 2)
    finally:
        await reopened.close()


async def test_purge_removes_old_done_jobs_only(
    db: Database, store: OwnerStore, clock: Clock
) -> None:
    old_done, old_failed, new_done = await store.jobs.enqueue_many([{}, {}, {}])
    await db.queue.claim(2)
    await store.jobs.finish(old_done)
    await store.jobs.fail(old_failed, "bad")
    clock.now += 3600
    await db.queue.claim(1)
    await store.jobs.finish(new_done)
    assert await db.queue.purge(older_than=clock.now - 60) == 1
    assert [j.id for j in await store.jobs.all()] == [old_failed, new_done]


# --- leases: several workers on one database ------------------------------------------------


@pytest.fixture
async def other(database_target: DatabaseTarget, clock: Clock) -> AsyncIterator[Database]:
    """A second claimer on the same database (its own connections, its own worker name)."""
    database = await Database.open(
        database_target("test.db"), clock=clock, max_attempts=3, worker="other-worker"
    )
    try:
        yield database
    finally:
        await database.close()


async def test_concurrent_claimers_never_get_the_same_job(
    db: Database, other: Database, store: OwnerStore
) -> None:
    ids = await store.jobs.enqueue_many([{"n": i} for i in range(40)])

    claims = [(db if i % 2 else other).queue.claim(5) for i in range(8)]
    batches = [[j.id for j in batch] for batch in await asyncio.gather(*claims)]
    while rest := await db.queue.claim(5):  # a claim may come up short, never overlap
        batches.append([j.id for j in rest])
    claimed = [i for batch in batches for i in batch]
    assert sorted(claimed) == ids  # every job once, none twice
    assert batches[0] and batches[1]  # both databases claimed
    assert db.worker != other.worker
    held = {j.id: j.worker for j in await store.jobs.all(states=("running",))}
    assert set(held.values()) <= {db.worker, other.worker}


async def test_an_expired_lease_is_claimed_again_and_the_old_holder_is_refused(
    db: Database, other: Database, store: OwnerStore, clock: Clock
) -> None:
    await db.models.register(CLIP, 8)
    job_id = await store.jobs.enqueue(PAYLOAD)
    (job,) = await db.queue.claim(1, lease_s=10)
    assert (job.worker, job.lease_until) == (db.worker, int(clock.now) + 10)
    clock.now += 10
    assert await other.queue.claim(5) == []  # held until the lease's last second
    clock.now += 1
    assert await db.queue.claim(5) == []  # its own job: still in its hands, renewed late
    (again,) = await other.queue.claim(5, lease_s=10)
    assert (again.id, again.attempts, again.worker) == (job_id, 2, other.worker)
    # The first worker wakes up: nothing it does with the job may land.
    with pytest.raises(JobStateError, match="held by"):
        await store.jobs.finish(job_id, media_id=None)
    with pytest.raises(JobStateError, match="held by"):
        await store.media.commit(photo("late"), [NewUnit.image()], {CLIP: vecs(1)}, job_id=job_id)
    with pytest.raises(JobStateError):
        await store.jobs.fail(job_id, "late", retry=True)
    assert await store.media.find("late") is None
    assert await db.queue.renew([job_id]) == []
    assert await db.queue.release([job_id]) == 0
    theirs = other.owner(store.owner_id)
    result = await theirs.media.commit(
        photo("p"), [NewUnit.image()], {CLIP: vecs(1)}, job_id=job_id
    )
    done = await store.jobs.get(job_id)
    assert done is not None and (done.state, done.media_id) == ("done", result.media_id)
    assert done.outcome == {"unit_ids": list(result.unit_ids)}


async def test_renewing_keeps_the_job(
    db: Database, other: Database, store: OwnerStore, clock: Clock
) -> None:
    ids = await store.jobs.enqueue_many([{"n": 1}, {"n": 2}])
    await db.queue.claim(2, lease_s=10)
    for _ in range(3):
        clock.now += 8
        assert await db.queue.renew(ids, lease_s=10) == ids
        assert await other.queue.claim(5) == []
    assert await other.queue.renew(ids) == []  # not its jobs
    await store.jobs.finish(ids[0])
    assert await db.queue.renew(ids, lease_s=10) == ids[1:]  # finished jobs are not renewed
    assert await db.queue.renew(None, lease_s=10) == ids[1:]  # every job it holds


async def test_an_expired_job_out_of_attempts_fails_instead(
    db: Database, other: Database, store: OwnerStore, clock: Clock
) -> None:
    job_id = await store.jobs.enqueue(PAYLOAD)  # max_attempts=3
    for claimer in (db, other, db):
        assert [j.id for j in await claimer.queue.claim(1, lease_s=5)] == [job_id]
        clock.now += 6  # the holder "died" each time
    assert await other.queue.claim(5) == []
    job = await store.jobs.get(job_id)
    assert job is not None and (job.state, job.attempts) == ("failed", 3)
    assert "interrupted 3 time(s)" in (job.last_error or "")


async def test_a_released_job_is_claimable_at_once(
    db: Database, other: Database, store: OwnerStore
) -> None:
    ids = await store.jobs.enqueue_many([{"n": 1}, {"n": 2}])
    await db.queue.claim(2, lease_s=600)
    assert await other.queue.release(ids) == 0  # only the holder can give them back
    assert await db.queue.release(ids[:1]) == 1
    (job,) = await other.queue.claim(5)
    assert (job.id, job.worker, job.attempts) == (ids[0], other.worker, 2)


async def test_finishing_a_job_notifies_listening_front_ends(
    db: Database, store: OwnerStore, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("notifications are PostgreSQL's")
    done_id, failed_id, retried = await store.jobs.enqueue_many([{}, {}, {}])
    url = getattr(db.connections, "url")  # noqa: B009 - PgConnections only
    channel = db.connections.scoped("jobs")  # type: ignore[attr-defined]
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as listener:
        await listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        await db.queue.claim(3)
        await store.jobs.fail(retried, "later", retry=True)  # back to pending: no news
        await store.jobs.finish(done_id, media_id=None)
        await store.jobs.fail(failed_id, "bad", outcome={"reason": "image_truncated"})
        heard = [n.payload async for n in listener.notifies(timeout=10, stop_after=2)]
    assert heard == [str(done_id), str(failed_id)]
    failed = await store.jobs.get(failed_id)
    assert failed is not None and failed.outcome == {"reason": "image_truncated"}
