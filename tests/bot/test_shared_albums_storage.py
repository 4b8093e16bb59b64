"""The album rows front ends share (storage.album_answers), on both backends: who holds an
album, when another replica takes it over, and which jobs are its items."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage import Database
from storage.album_answers import AlbumAnswers
from tests.conftest import DatabaseTarget


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def db(database_target: DatabaseTarget) -> AsyncIterator[Database]:
    database = await Database.open(database_target("albums.db"))
    try:
        yield database
    finally:
        await database.close()


async def test_the_first_arrival_holds_the_album_until_its_lease_runs_out(db: Database) -> None:
    clock = Clock()
    answers = AlbumAnswers(db.connections, clock=clock)
    owner = await db.owners.ensure("user", 5)
    key = (owner.id, 5, "g1")
    first = await answers.arrive(key, "a", lease_ms=2000, lang="en", quiet=False)
    assert (first.holder, first.done, first.message_id) == ("a", False, None)
    clock.now += 1
    second = await answers.arrive(
        key, "b", lease_ms=2000, lang="en", quiet=False, refused=(9, "quota", "photo")
    )
    assert second.holder == "a" and second.last_item_ms == first.last_item_ms + 1000
    assert second.refused == {9: ("quota", "photo")}
    assert await answers.renew(key, "b", lease_ms=2000) is None
    assert await answers.set_message(key, "a", 77)
    assert await answers.take_over("b", lease_ms=2000) == []  # a's lease still runs

    clock.now += 5  # a went silent
    (taken,) = await answers.take_over("b", lease_ms=2000)
    assert (taken.holder, taken.message_id, taken.refused) == ("b", 77, {9: ("quota", "photo")})
    assert await answers.renew(key, "a", lease_ms=2000) is None
    assert not await answers.finish(key, "b", last_item_ms=first.last_item_ms)  # not the last
    assert await answers.finish(key, "b", last_item_ms=second.last_item_ms)

    clock.now += 1  # a straggler reopens it, and its replica answers (the lease was released)
    again = await answers.arrive(key, "a", lease_ms=2000, lang="en", quiet=False)
    assert (again.holder, again.done, again.message_id) == ("a", False, 77)
    assert await answers.release("a") == 1
    assert [r.holder for r in await answers.take_over("c", lease_ms=2000)] == ["c"]


async def test_an_albums_items_are_its_jobs_and_finished_albums_are_purged(db: Database) -> None:
    clock = Clock()
    answers = AlbumAnswers(db.connections, clock=clock)
    owner = await db.owners.ensure("user", 6)
    other = await db.owners.ensure("user", 7)
    jobs = db.owner(owner.id).jobs
    ids = await jobs.enqueue_many(
        [
            {"kind": "photo", "file_unique_id": "x", "message_id": 1, "album_id": "g"},
            {"kind": "photo", "file_unique_id": "y", "message_id": 2, "album_id": "h"},
            {"kind": "photo", "file_unique_id": "z", "message_id": 3, "album_id": "g"},
        ]
    )
    await db.owner(other.id).jobs.enqueue({"kind": "photo", "file_unique_id": "w", "album_id": "g"})
    assert [j.id for j in await answers.jobs(owner.id, "g")] == [ids[0], ids[2]]

    key = (owner.id, 6, "g")
    row = await answers.arrive(key, "a", lease_ms=1000, lang="ru", quiet=True)
    assert row.quiet and row.lang == "ru"
    assert await answers.finish(key, "a", last_item_ms=row.last_item_ms)
    assert await answers.purge(quiet_for_s=60) == 0
    clock.now += 61
    assert await answers.purge(quiet_for_s=60) == 1
    assert await answers.get(key) is None
