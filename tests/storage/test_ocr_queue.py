"""The OCR work list: every item starts pending, claims go round-robin across owners, marks are
scoped by owner, interrupted runs are resumed, re-runs reset."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from storage import Database, OwnerStore
from tests.conftest import DatabaseTarget
from tests.storage.conftest import CLIP, DIM, RUCLIP, Clock, add_photo


async def _setup(db: Database) -> tuple[OwnerStore, OwnerStore]:
    await db.models.register(CLIP, DIM)
    await db.models.register(RUCLIP, DIM * 2)
    a = db.owner((await db.owners.ensure("user", 1)).id)
    b = db.owner((await db.owners.ensure("user", 2)).id)
    return a, b


async def test_new_items_are_pending_and_claims_alternate_owners(db: Database) -> None:
    a, b = await _setup(db)
    a_ids = [(await add_photo(a, f"a{i}", seed=i)).media_id for i in range(3)]
    b_id = (await add_photo(b, "b0", seed=9)).media_id
    assert (await a.media.get(a_ids[0])).ocr_state == "pending"  # type: ignore[union-attr]
    assert await db.ocr.counts() == {"pending": 4}

    first = await db.ocr.claim(2)
    assert [(i.owner_id, i.media.id) for i in first] == [(a.owner_id, a_ids[0]), (b.owner_id, b_id)]
    assert all(i.attempts == 1 and [u.kind for u in i.units] == ["image"] for i in first)
    assert await db.ocr.counts() == {"pending": 2, "running": 2}
    assert await db.ocr.counts(b.owner_id) == {"running": 1}


async def test_marks_name_the_owner_and_only_touch_running_rows(db: Database) -> None:
    a, b = await _setup(db)
    mid = (await add_photo(a, "a0")).media_id
    [item] = await db.ocr.claim(5)
    assert not await db.ocr.done(b.owner_id, mid)  # another owner's id matches nothing
    assert await db.ocr.state(a.owner_id, mid) == ("running", 1, None)
    assert await db.ocr.done(a.owner_id, item.media.id)
    assert not await db.ocr.done(a.owner_id, mid)  # not running any more
    assert (await a.media.get(mid)).ocr_state == "done"  # type: ignore[union-attr]
    assert await db.ocr.state(b.owner_id, mid) is None


async def test_transient_failures_retry_until_the_attempts_run_out(db: Database) -> None:
    a, _ = await _setup(db)
    mid = (await add_photo(a, "a0")).media_id
    for attempt in (1, 2):
        [item] = await db.ocr.claim(1)
        assert item.attempts == attempt
        assert await db.ocr.retry(a.owner_id, mid, "fetch: timeout", max_attempts=3) == "pending"
    await db.ocr.claim(1)
    assert await db.ocr.retry(a.owner_id, mid, "fetch: timeout", max_attempts=3) == "failed"
    assert await db.ocr.state(a.owner_id, mid) == ("failed", 3, "fetch: timeout")
    assert await db.ocr.claim(1) == []


async def test_a_permanent_failure_keeps_the_item(db: Database) -> None:
    a, _ = await _setup(db)
    mid = (await add_photo(a, "a0")).media_id
    await db.ocr.claim(1)
    assert await db.ocr.failed(a.owner_id, mid, "file_gone: " + "x" * 2000)
    state = await db.ocr.state(a.owner_id, mid)
    assert state is not None and state[0] == "failed" and len(state[2] or "") == 500
    assert await a.media.get(mid) is not None
    assert len(await a.units.of_media(mid)) == 1


async def test_interrupted_items_are_resumed_or_given_up(db: Database) -> None:
    a, _ = await _setup(db)
    first = (await add_photo(a, "a0")).media_id
    second = (await add_photo(a, "a1", seed=1)).media_id
    await db.ocr.claim(1)  # first: attempt 1, then the process "dies"
    assert await db.ocr.requeue_running(max_attempts=3) == (1, 0)
    for _ in range(3):
        claimed = await db.ocr.claim(1)
        assert claimed[0].media.id == first
        await db.ocr.requeue_running(max_attempts=9)
    await db.ocr.claim(1)  # claimed once more: the item keeps "killing the process"
    assert await db.ocr.requeue_running(max_attempts=3) == (0, 1)
    state = await db.ocr.state(a.owner_id, first)
    assert state is not None and state[0] == "failed" and "interrupted" in (state[2] or "")
    assert (await db.ocr.claim(5))[0].media.id == second


async def test_rerun_resets_one_owner_or_everyone(db: Database) -> None:
    a, b = await _setup(db)
    await add_photo(a, "a0")
    await add_photo(b, "b0", seed=3)
    for item in await db.ocr.claim(5):
        await db.ocr.failed(item.owner_id, item.media.id, "image: broken")
    assert await db.ocr.rerun(a.owner_id) == 1
    assert await db.ocr.counts(a.owner_id) == {"pending": 1}
    assert await db.ocr.counts(b.owner_id) == {"failed": 1}
    assert await db.ocr.rerun() == 2
    assert await db.ocr.counts() == {"pending": 2}
    [one, _] = await db.ocr.claim(5)
    assert one.attempts == 1


async def test_deleted_items_leave_the_work_list(db: Database) -> None:
    a, _ = await _setup(db)
    mid = (await add_photo(a, "a0")).media_id
    await a.media.delete(mid)
    assert await db.ocr.claim(5) == []


async def test_a_scope_of_owner_kinds_leaves_other_front_ends_items_alone(db: Database) -> None:
    """The CLI (local files) and the bot (Telegram files) may share a database: each claims,
    recovers, re-runs and counts only the items of the owner kinds it can fetch."""
    bot_user, _ = await _setup(db)
    local = db.owner((await db.owners.ensure("local", "default")).id)
    bot_id = (await add_photo(bot_user, "u0")).media_id
    local_id = (await add_photo(local, "l0", seed=4)).media_id
    [claimed] = await db.ocr.claim(5, kinds=("local",))
    assert claimed.media.id == local_id
    assert await db.ocr.counts(kinds=("local",)) == {"running": 1}
    assert await db.ocr.counts(kinds=("user", "chat")) == {"pending": 1}
    assert await db.ocr.requeue_running(max_attempts=3, kinds=("user", "chat")) == (0, 0)
    assert await db.ocr.state(local.owner_id, local_id) == ("running", 1, None)
    assert await db.ocr.requeue_running(max_attempts=3, kinds=("local",)) == (1, 0)
    await db.ocr.claim(5, kinds=("local",))
    await db.ocr.failed(local.owner_id, local_id, "image: broken")
    assert await db.ocr.claim(5, kinds=("local",)) == []
    assert await db.ocr.rerun(kinds=("user", "chat")) == 1
    assert await db.ocr.state(local.owner_id, local_id) == ("failed", 2, "image: broken")
    assert await db.ocr.state(bot_user.owner_id, bot_id) == ("pending", 0, None)
    [other] = await db.ocr.claim(5, kinds=("chat", "user"))
    assert other.media.id == bot_id
    with pytest.raises(ValueError, match="owner kinds"):
        await db.ocr.claim(1, kinds=("group",))  # type: ignore[arg-type]


# --- leases: several OCR workers on one database ---------------------------------------------


@pytest.fixture
async def other(database_target: DatabaseTarget, clock: Clock) -> AsyncIterator[Database]:
    """A second OCR worker on the same database."""
    database = await Database.open(database_target("test.db"), clock=clock, worker="ocr-2")
    try:
        yield database
    finally:
        await database.close()


async def test_concurrent_ocr_claimers_never_get_the_same_item(
    db: Database, other: Database
) -> None:
    a, b = await _setup(db)
    ids = [(await add_photo(s, f"{s.owner_id}-{i}", seed=i)).media_id for i in range(6)
           for s in (a, b)]  # fmt: skip
    claims = [(db if i % 2 else other).ocr.claim(3) for i in range(4)]
    batches = [[it.media.id for it in batch] for batch in await asyncio.gather(*claims)]
    while rest := await db.ocr.claim(3):
        batches.append([it.media.id for it in rest])
    claimed = [i for batch in batches for i in batch]
    assert sorted(claimed) == sorted(ids)
    assert batches[0] and batches[1]


async def test_an_expired_ocr_lease_moves_to_another_worker(
    db: Database, other: Database, clock: Clock
) -> None:
    a, _ = await _setup(db)
    mid = (await add_photo(a, "a0")).media_id
    [_item] = await db.ocr.claim(1, lease_s=10)
    clock.now += 8
    assert await db.ocr.renew([(a.owner_id, mid)], lease_s=10) == 1
    clock.now += 8
    assert await other.ocr.claim(1) == []  # renewed: still held
    clock.now += 3
    [again] = await other.ocr.claim(1, lease_s=10)
    assert (again.media.id, again.attempts) == (mid, 2)
    assert not await db.ocr.done(a.owner_id, mid)  # the old holder's marks are refused
    assert await db.ocr.retry(a.owner_id, mid, "late", max_attempts=3) is None
    assert await db.ocr.renew([(a.owner_id, mid)]) == 0
    assert await other.ocr.done(a.owner_id, mid)
    assert await db.ocr.state(a.owner_id, mid) == ("done", 2, None)


async def test_an_expired_ocr_item_out_of_claims_fails(
    db: Database, other: Database, clock: Clock
) -> None:
    a, _ = await _setup(db)
    mid = (await add_photo(a, "a0")).media_id
    for claimer in (db, other):
        assert len(await claimer.ocr.claim(1, lease_s=5, max_attempts=2)) == 1
        clock.now += 6
    assert await db.ocr.claim(1, max_attempts=2) == []
    state = await db.ocr.state(a.owner_id, mid)
    assert state is not None and state[0] == "failed" and "interrupted 2" in (state[2] or "")
