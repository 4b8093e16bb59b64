"""Two front ends on one PostgreSQL schema answering one Telegram album: items split across the
replicas get ONE answer listing all of them; a holder that stops mid-album is replaced and its
answer edited, never doubled."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from bot.reports import ItemResult, album_text
from bot.shared_albums import SharedAlbums
from storage import Database
from tests.e2e.fake_telegram import FakeTelegramServer, FakeUser
from tests.postgres_support import fresh_schema

ALBUM = "album-7"
LEASE_S = 1.0


@dataclass
class Replicas:
    a: SharedAlbums
    b: SharedAlbums
    db: Database
    owner_id: int

    async def jobs(self, message_ids: list[int]) -> list[int]:
        """The album's items as durable jobs (whichever replica submitted them)."""
        payloads = [
            {"kind": "photo", "file_unique_id": f"u{m}", "message_id": m, "album_id": ALBUM}
            for m in message_ids
        ]
        return await self.db.owner(self.owner_id).jobs.enqueue_many(payloads)

    async def end(self, job_ids: list[int], state: str = "done") -> None:
        """The workers finished these jobs (a failure carries its error code)."""
        async with self.db.write() as conn:
            await conn.execute(
                "UPDATE jobs SET state = ?, duplicate = 0, last_error = ? "
                "WHERE id IN (SELECT value FROM json_each(?))",
                (state, "fetch: gone" if state == "failed" else None, json.dumps(job_ids)),
            )

    async def settled(self) -> None:
        assert await self.a.settled(20) and await self.b.settled(20)


@pytest.fixture
async def replicas(telegram: FakeTelegramServer, alice: FakeUser) -> AsyncIterator[Replicas]:
    with fresh_schema() as url:
        async with AsyncExitStack() as stack:
            dbs = [await Database.open(url) for _ in range(2)]
            for db in dbs:
                stack.push_async_callback(db.close)
            owner = await dbs[0].owners.ensure("user", alice.id)
            replicas = []
            for db in dbs:
                bot = telegram.make_bot()
                stack.push_async_callback(bot.session.close)

                async def owner_of(chat_id: int, db: Database = db) -> int | None:
                    found = await db.owners.find("user", chat_id)
                    return None if found is None else found.id

                albums = SharedAlbums(
                    bot,
                    db.album_answers,
                    owner_of,
                    replica=db.worker,
                    wait_s=0.2,
                    lease_s=LEASE_S,
                    poll_s=0.05,
                    interval=0.05,
                )
                stack.push_async_callback(albums.close)
                replicas.append(albums)
            yield Replicas(replicas[0], replicas[1], dbs[0], owner.id)


async def crash(replica: SharedAlbums) -> None:
    """The replica's process dies: its answers and its sweep stop, nothing is released."""
    tasks = [*replica._holding.values(), *replica._tasks]
    if replica._sweeper is not None:
        tasks.append(replica._sweeper)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    replica._closed = True


def reply_target(params: dict[str, Any]) -> int:
    reply = params["reply_parameters"]
    return int((json.loads(reply) if isinstance(reply, str) else reply)["message_id"])


def saved(n: int) -> list[ItemResult]:
    return [ItemResult("saved") for _ in range(n)]


def add(replica: SharedAlbums, chat_id: int, message_id: int, **kwargs: Any) -> None:
    replica.add(chat_id, ALBUM, message_id, lang="en", quiet=False, **kwargs)


async def test_items_split_across_replicas_get_one_answer_listing_all(
    telegram: FakeTelegramServer, alice: FakeUser, replicas: Replicas
) -> None:
    jobs = await replicas.jobs([11, 12, 13])
    add(replicas.a, alice.chat_id, 11)
    await replicas.a.settled(5)  # a's arrival first: a answers the album
    add(replicas.b, alice.chat_id, 12)
    add(replicas.b, alice.chat_id, 13)
    await replicas.end(jobs)
    await replicas.settled()

    (answer,) = telegram.messages(alice.chat_id)
    assert answer.text == album_text(saved(3), 3, "en")
    assert reply_target(answer.params) == 11  # the album's first item
    row = await replicas.db.album_answers.get((replicas.owner_id, alice.chat_id, ALBUM))
    assert row is not None and row.done and row.message_id == answer.message_id
    assert row.holder == replicas.a.replica


async def test_a_refused_item_on_the_other_replica_is_in_the_answer(
    telegram: FakeTelegramServer, alice: FakeUser, replicas: Replicas
) -> None:
    jobs = await replicas.jobs([21])
    add(replicas.a, alice.chat_id, 21)
    await replicas.a.settled(5)
    add(replicas.b, alice.chat_id, 22, result=ItemResult.refused("file_too_large", "video"))
    await replicas.end(jobs)
    await replicas.settled()
    (answer,) = telegram.messages(alice.chat_id)
    expected = [ItemResult("saved"), ItemResult.refused("file_too_large", "video")]
    assert answer.text == album_text(expected, 2, "en")


async def test_the_holder_stops_mid_album_and_the_other_replica_answers(
    telegram: FakeTelegramServer, alice: FakeUser, replicas: Replicas
) -> None:
    jobs = await replicas.jobs([31, 32])
    add(replicas.a, alice.chat_id, 31)
    add(replicas.b, alice.chat_id, 32)
    progress = await telegram.next_message(alice.chat_id, timeout=10)
    assert progress.text == album_text([], 2, "en")  # "0 of 2" from the holder, a

    # a dies without a word: its lease runs out and b's sweep takes the album over.
    await crash(replicas.a)
    await replicas.end(jobs[:1])
    await replicas.end(jobs[1:], "failed")

    key = (replicas.owner_id, alice.chat_id, ALBUM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10 * LEASE_S
    row = await replicas.db.album_answers.get(key)
    while not (row and row.done) and loop.time() < deadline:
        await asyncio.sleep(0.05)  # a lease running out is the passing of time, not an event
        row = await replicas.db.album_answers.get(key)
    assert row is not None and row.done, "b never took the album over"
    await replicas.b.settled(10)

    (answer,) = telegram.messages(alice.chat_id)  # the same message, edited
    assert answer.message_id == progress.message_id
    expected = [ItemResult("saved"), ItemResult.refused("fetch", "photo")]
    assert answer.text == album_text(expected, 2, "en")
    row = await replicas.db.album_answers.get((replicas.owner_id, alice.chat_id, ALBUM))
    assert row is not None and row.done and row.holder == replicas.b.replica


async def test_a_straggler_after_the_summary_edits_the_same_answer(
    telegram: FakeTelegramServer, alice: FakeUser, replicas: Replicas
) -> None:
    first = await replicas.jobs([41, 42])
    add(replicas.a, alice.chat_id, 41)
    add(replicas.a, alice.chat_id, 42)
    await replicas.end(first)
    await replicas.settled()
    (answer,) = telegram.messages(alice.chat_id)
    assert answer.text == album_text(saved(2), 2, "en")

    late = await replicas.jobs([43])
    add(replicas.b, alice.chat_id, 43)  # the album was finished: b answers the straggler
    await replicas.end(late)
    await replicas.settled()
    (edited,) = telegram.messages(alice.chat_id)
    assert edited.message_id == answer.message_id
    assert edited.text == album_text(saved(3), 3, "en")


async def test_a_graceful_stop_releases_the_album_to_the_sweep_at_once(
    telegram: FakeTelegramServer, alice: FakeUser, replicas: Replicas
) -> None:
    jobs = await replicas.jobs([51, 52])
    add(replicas.a, alice.chat_id, 51)
    add(replicas.b, alice.chat_id, 52)
    await telegram.next_message(alice.chat_id, timeout=10)
    await replicas.a.close()
    await replicas.b.sweep()  # (or b's own periodic sweep got there first)
    row = await replicas.db.album_answers.get((replicas.owner_id, alice.chat_id, ALBUM))
    assert row is not None and row.holder == replicas.b.replica
    await replicas.end(jobs)
    await replicas.b.settled(10)
    (answer,) = telegram.messages(alice.chat_id)
    assert answer.text == album_text(saved(2), 2, "en")
