"""The ingest pipeline end to end: fetch, decode, embed with every model, one commit, index."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from core.errors import (
    FileGoneError,
    FileTooLargeError,
    IngestInterruptedError,
)
from core.index.manager import IndexManager
from core.ingest.fetch import local_fetcher
from core.ingest.pipeline import IngestPipeline
from core.ingest.request import IngestOutcome, IngestRequest
from core.ingest.tickets import TicketBook
from core.models.bundle import load_bundle
from core.models.embedder import AsyncEmbedder, OnnxEmbedder
from storage import Database, LocalFile
from storage.job_queue import JobQueue
from tests.conftest import DatabaseTarget
from tests.core.image_samples import photo_like
from tests.core.ingest_fakes import (
    Files,
    GridEmbedder,
    jpeg,
    make_embedder,
    png,
    settings,
    solid,
)
from tests.core.test_video import scenes, write_video

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "models"
A = "grid@1"
B = "gridb@1"


class Env:
    def __init__(self, tmp: Path, db: Database) -> None:
        self.tmp = tmp
        self.db = db
        self.index = IndexManager(db.vectors, tmp / "indexes")
        self.files = Files()
        self.a = GridEmbedder("grid", "1")
        self.b = GridEmbedder("gridb", "1", project=48, seed=1)
        self.embedder = make_embedder(self.a, self.b)
        self.pipelines: list[IngestPipeline] = []
        self.clock = ShiftedClock()

    async def owner(self, external: int) -> int:
        return (await self.db.owners.ensure("user", external)).id

    async def start(self, **kw: Any) -> IngestPipeline:
        overrides = {k: kw.pop(k) for k in list(kw) if k.startswith(("ingest_", "near_"))}
        s = settings(self.tmp, **overrides)
        p = IngestPipeline(self.db, kw.pop("embedder", self.embedder), self.index, s.ingest,
                           kw.pop("fetch", self.files), video=s.video, **kw)  # fmt: skip
        self.pipelines.append(p)
        await p.start()
        return p

    def photo(self, owner: int, uid: str, img: Image.Image | bytes, **kw: Any) -> IngestRequest:
        self.files.data[f"f-{uid}"] = img if isinstance(img, bytes) else png(img)
        return IngestRequest.of(owner, kw.pop("kind", "photo"), uid, file_id=f"f-{uid}", **kw)


class ShiftedClock:
    """Real time plus ``shift`` seconds: a test lets leases run out without sleeping."""

    def __init__(self) -> None:
        self.shift = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift


@pytest.fixture
async def env(tmp_path: Path, database_target: DatabaseTarget) -> AsyncIterator[Env]:
    """Runs each test on both backends (tests/conftest.py)."""
    clock = ShiftedClock()
    db = await Database.open(database_target("test.db"), max_attempts=3, clock=clock)
    e = Env(tmp_path, db)
    e.clock = clock
    try:
        yield e
    finally:
        for p in e.pipelines:
            await p.stop(timeout=0)
        e.embedder.close()
        await db.close()


def hold_first_call(emb: GridEmbedder) -> tuple[threading.Event, threading.Event]:
    """Make the embedder's first call wait for ``release``; ``entered`` says it is waiting."""
    entered, release = threading.Event(), threading.Event()

    def before(n: int) -> None:
        if n == 0:
            entered.set()
            release.wait()

    emb.before_call = before
    return entered, release


async def results(tickets: list[Any]) -> list[IngestOutcome]:
    return list(await asyncio.gather(*(t.result() for t in tickets)))


# --- photos -------------------------------------------------------------------------------------


async def test_photo_is_committed_with_every_model_then_indexed(env: Env) -> None:
    owner = await env.owner(1)
    img = photo_like(64, 48, seed=1)
    p = await env.start()
    progress: list[float] = []
    request = env.photo(owner, "p1", img, caption="the sea", message_id=7, album_id="alb",
                        forward_origin="channel:42", message_date=1_700_000_000)  # fmt: skip
    ticket = await p.submit(request, progress=progress.append)
    out = await ticket.result()

    assert out.saved and out.media_id is not None and len(out.unit_ids) == 1
    assert out.near_duplicate_of is None and not out.thumbnail_only and out.timestamps == (None,)
    store = env.db.owner(owner)
    media = await store.media.get(out.media_id)
    assert media is not None
    assert (media.kind, media.status, media.file_id, media.caption) == (
        "photo", "ready", "f-p1", "the sea"
    )  # fmt: skip
    assert (media.album_id, media.message_id, media.forward_origin) == ("alb", 7, "channel:42")
    assert await store.vectors.counts() == {A: 1, B: 1}
    job = await store.jobs.get(ticket.job_id)
    assert job is not None and job.state == "done" and job.media_id == out.media_id
    for model_id, emb in ((A, env.a), (B, env.b)):
        hits = await env.index.search(owner, model_id, emb.features(img)[None], 3)
        assert hits[0][0][0] == out.unit_ids[0] and hits[0][0][1] > 0.99
    assert progress == [1.0]
    # The owner's slots name every loaded model once its vectors are complete.
    assert await store.models.active() == {"grid": A, "gridb": B}


async def test_payload_is_one_flat_object_of_the_item_facts() -> None:
    """Jobs written before the item's facts had a type of their own still read back."""
    request = IngestRequest.of(5, "photo", "u", file_id="f", caption="c", path="p")
    payload = request.to_payload()
    assert payload == {"kind": "photo", "file_unique_id": "u", "file_id": "f", "caption": "c",
                       "path": "p", "v": 1}  # fmt: skip
    assert IngestRequest.from_payload(5, payload).facts == request.facts


async def test_tickets_resolve_once_and_make_room() -> None:
    book = TicketBook(limit=1)
    book.open()
    seen: list[float] = []
    first = book.issue(1, IngestRequest.of(1, "photo", "a"), seen.append)
    second = book.issue(2, IngestRequest.of(1, "photo", "b"), None)
    room = asyncio.create_task(book.wait_for_room())
    await asyncio.sleep(0)
    assert not room.done()  # two unfinished tickets, room for one
    outcome = IngestOutcome("saved", 1, first.request, media_id=7)
    assert await book.settle(outcome)
    await room
    assert await first.result() == outcome and seen == [1.0]
    assert not await book.settle(outcome)  # already resolved: nothing held for it
    await book.close()
    with pytest.raises(IngestInterruptedError):
        await second.result()


async def test_payload_round_trips_every_field() -> None:
    local = LocalFile("a/b.jpg", 10, 123, "0" * 64)
    request = IngestRequest.of(
        5, "video", "u", file_id="f", size=9, width=3, height=4, duration=1.5, caption="c",
        forward_origin="o", message_id=1, message_date=2, album_id="a", mime="video/mp4",
        too_large=True, thumbnail_file_id="t", thumbnail_file_unique_id="tu", path="a/b.jpg",
        local=local,
    )  # fmt: skip
    payload = request.to_payload()
    assert payload["v"] == 1 and "owner_id" not in payload
    assert IngestRequest.from_payload(5, {**payload, "from_the_future": 1}) == request
    with pytest.raises(ValueError):
        IngestRequest.of(1, "sticker", "u")  # type: ignore[arg-type]


async def test_batches_mix_items_of_several_owners(env: Env) -> None:
    o1, o2 = await env.owner(1), await env.owner(2)
    entered, release = hold_first_call(env.a)
    p = await env.start(workers=4, ingest_batch_size=8)
    first = await p.submit(env.photo(o1, "first", solid((90, 90, 10))))
    await asyncio.to_thread(entered.wait)  # the embedder is busy with the first item
    requests = [env.photo(o1, f"a{i}", solid((200, 20 * i, 30))) for i in range(3)]
    requests += [env.photo(o2, f"b{i}", solid((30, 20 * i, 200))) for i in range(3)]
    tickets = await p.submit_many(requests)
    await p.ready.wait_holding(6)  # all six fetched and decoded while the embedder was held
    release.set()

    outcomes = await results([first, *tickets])
    assert all(o.saved for o in outcomes)
    assert len(env.a.calls) == 2  # the held item, then one batch of six
    reds = {px[0] for px in env.a.calls[1]}
    assert reds == {200, 30}  # items of both owners in the same model run
    assert len(env.b.calls) == 2
    assert (await env.db.owner(o1).stats()).media_total == 4
    assert (await env.db.owner(o2).stats()).media_total == 3


# --- duplicates ---------------------------------------------------------------------------------


async def test_same_file_twice_is_stored_once_and_not_fetched_again(env: Env) -> None:
    owner = await env.owner(1)
    p = await env.start()
    first = await (await p.submit(env.photo(owner, "p1", photo_like(40, 40, seed=2)))).result()
    again = IngestRequest.of(owner, "photo", "p1", file_id="f-p1-forwarded", message_id=99)
    second = await (await p.submit(again)).result()

    assert first.saved and second.duplicate and second.media_id == first.media_id
    assert env.files.count("f-p1-forwarded") == 0  # known before any download
    store = env.db.owner(owner)
    assert (await store.stats()).media_total == 1
    jobs = await store.jobs.all()
    assert [(j.state, j.duplicate, j.media_id) for j in jobs] == [
        ("done", False, first.media_id),
        ("done", True, first.media_id),
    ]
    # Another owner sending the same file gets an item of its own.
    other = await env.owner(2)
    third = await (await p.submit(env.photo(other, "p1", photo_like(40, 40, seed=2)))).result()
    assert third.saved and third.media_id != first.media_id


async def test_same_file_submitted_concurrently_is_stored_once(env: Env) -> None:
    owner = await env.owner(1)
    _, release = hold_first_call(env.a)
    env.files.expect(2)
    p = await env.start(workers=2)
    img = photo_like(40, 40, seed=5)
    r1 = env.photo(owner, "same", img)
    r2 = IngestRequest.of(owner, "photo", "same", file_id="f-same")
    tickets = await p.submit_many([r1, r2])
    await env.files.fetched.wait()  # both passed the duplicate check before either commit
    release.set()

    outcomes = await results(tickets)
    assert sorted(o.status for o in outcomes) == ["duplicate", "saved"]
    assert outcomes[0].media_id == outcomes[1].media_id
    store = env.db.owner(owner)
    assert (await store.stats()).media_total == 1
    assert await store.vectors.counts() == {A: 1, B: 1}
    assert (await env.index.get(owner, A)).ntotal == 1
    assert [j.state for j in await store.jobs.all()] == ["done", "done"]


async def test_near_duplicate_is_reported_and_still_saved(env: Env) -> None:
    owner = await env.owner(1)
    p = await env.start()
    original = photo_like(96, 72, seed=3)
    other = photo_like(96, 72, seed=4)
    copy = jpeg(original.resize((80, 60)), quality=80)  # re-encoded, resized: a new file
    first = await (await p.submit(env.photo(owner, "orig", original))).result()
    dup = await (await p.submit(env.photo(owner, "copy", copy))).result()
    new = await (await p.submit(env.photo(owner, "other", other))).result()

    fa = env.a.features
    assert float(fa(original) @ fa(Image.open(io.BytesIO(copy)))) >= 0.95  # the premise
    assert float(fa(original) @ fa(other)) < 0.95
    assert first.near_duplicate_of is None
    assert dup.saved and dup.near_duplicate_of is not None
    assert dup.near_duplicate_of.media_id == first.media_id
    assert 0.95 <= dup.near_duplicate_of.score <= 1.0
    assert new.saved and new.near_duplicate_of is None
    assert (await env.db.owner(owner).stats()).media_total == 3

    # Another owner's items are never near-duplicates; a threshold of 1 turns the check off.
    stranger = await env.owner(2)
    theirs = await (await p.submit(env.photo(stranger, "copy3", jpeg(original, 75)))).result()
    assert theirs.saved and theirs.near_duplicate_of is None
    await p.stop()
    off = await env.start(near_duplicate_threshold=1.0)
    again = await (await off.submit(env.photo(owner, "copy2", jpeg(original, 70)))).result()
    assert again.saved and again.near_duplicate_of is None


# --- failures -----------------------------------------------------------------------------------


async def test_bad_images_fail_with_typed_reasons_and_the_worker_goes_on(env: Env) -> None:
    owner = await env.owner(1)
    p = await env.start(workers=1)
    good = jpeg(photo_like(64, 64, seed=6))
    requests = [
        env.photo(owner, "cut", good[: len(good) // 2]),
        env.photo(owner, "empty", b""),
        env.photo(owner, "text", b"this is not a picture at all, just words " * 10),
        env.photo(owner, "good", good),
    ]
    outcomes = await results(await p.submit_many(requests))
    assert [(o.status, o.reason) for o in outcomes] == [
        ("failed", "image_truncated"),
        ("failed", "image_empty"),
        ("failed", "image_unsupported"),
        ("saved", None),
    ]
    assert all(o.message for o in outcomes[:3])
    store = env.db.owner(owner)
    jobs = await store.jobs.all()
    assert [j.state for j in jobs] == ["failed", "failed", "failed", "done"]
    assert jobs[0].last_error is not None and jobs[0].last_error.startswith("image_truncated")
    assert (await store.stats()).media_total == 1


async def test_an_item_the_model_refuses_fails_alone(env: Env) -> None:
    owner = await env.owner(1)
    entered, release = hold_first_call(env.b)
    env.a.fail_if = lambda img: img.getpixel((0, 0)) == (13, 13, 13)
    p = await env.start(workers=3)
    held = await p.submit(env.photo(owner, "held", solid((250, 1, 1))))
    await asyncio.to_thread(entered.wait)
    colours = [(100, 50, 0), (13, 13, 13), (0, 50, 100)]
    tickets = await p.submit_many(
        [env.photo(owner, f"c{i}", solid(c)) for i, c in enumerate(colours)]
    )
    await p.ready.wait_holding(3)
    release.set()
    outcomes = await results([held, *tickets])
    assert [o.status for o in outcomes] == ["saved", "saved", "failed", "saved"]
    assert outcomes[2].reason == "image_truncated"


async def test_fetch_failures_are_retried_then_succeed(env: Env) -> None:
    owner = await env.owner(1)
    p = await env.start(ingest_max_attempts=3)
    request = env.photo(owner, "flaky", photo_like(32, 32, seed=7))
    env.files.errors[("f-flaky", False)] = [ConnectionResetError("reset"), TimeoutError()]
    out = await (await p.submit(request)).result()
    assert out.saved
    assert env.files.count("f-flaky") == 3


async def test_fetch_gives_up_after_max_attempts(env: Env) -> None:
    owner = await env.owner(1)
    p = await env.start(ingest_max_attempts=3)
    request = env.photo(owner, "down", photo_like(32, 32, seed=8))
    env.files.always[("f-down", False)] = ConnectionError("network is down")
    out = await (await p.submit(request)).result()
    assert out.failed and out.reason == "fetch" and "network is down" in (out.message or "")
    assert env.files.count("f-down") == 3
    job = (await env.db.owner(owner).jobs.all())[0]
    assert job.state == "failed" and (job.last_error or "").startswith("fetch")


async def test_a_file_that_is_gone_is_not_retried(env: Env) -> None:
    owner = await env.owner(1)
    p = await env.start(ingest_max_attempts=5)
    request = env.photo(owner, "gone", b"")
    env.files.always[("f-gone", False)] = FileGoneError("deleted")
    out = await (await p.submit(request)).result()
    assert (out.status, out.reason) == ("failed", "file_gone")
    assert env.files.count("f-gone") == 1


# --- videos -------------------------------------------------------------------------------------


async def test_video_frames_are_stored_with_timestamps_and_progress(env: Env) -> None:
    owner = await env.owner(1)
    path = write_video(env.tmp / "scenes.mp4", scenes, 27)
    env.files.data["f-v"] = path.read_bytes()
    p = await env.start()
    progress: list[float] = []
    ticket = await p.submit(
        IngestRequest.of(owner, "video", "v", file_id="f-v", mime="video/mp4"),
        progress=progress.append,
    )
    out = await ticket.result()

    assert out.saved and len(out.unit_ids) >= 4
    store = env.db.owner(owner)
    units = await store.units.of_media(out.media_id or 0)
    assert [u.kind for u in units] == ["frame"] * len(units)
    times = [u.timestamp for u in units]
    assert times == list(out.timestamps) and times == sorted(times)  # type: ignore[type-var]
    for change in (0.0, 3.0, 7.0, 25.0):  # every scene has a frame at its start
        assert any(abs((t or 0) - change) <= 0.25 for t in times), (change, times)
    media = await store.media.get(out.media_id or 0)
    assert media is not None and media.duration == pytest.approx(27.0, abs=0.2)
    assert (media.width, media.height) == (160, 90)
    assert await store.vectors.counts() == {A: len(units), B: len(units)}
    assert progress[-1] == 1.0 and progress == sorted(progress)
    assert len(set(progress)) == len(progress)
    assert any(0.0 < f < 1.0 for f in progress)


async def test_gif_document_is_sampled_like_a_video(env: Env) -> None:
    owner = await env.owner(1)
    frames = [solid((200, 0, 0)), solid((0, 0, 200))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=2000, loop=0)
    p = await env.start()
    request = env.photo(owner, "gif", buf.getvalue(), kind="document", mime="image/gif")
    out = await (await p.submit(request)).result()
    assert out.saved and out.timestamps == (0.0, 2.0)


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "video_empty"), (b"\x00\x01garbage, not a container" * 50, "video_unreadable")],
)
async def test_unreadable_videos_fail_cleanly(env: Env, data: bytes, reason: str) -> None:
    owner = await env.owner(1)
    env.files.data["f-bad"] = data
    p = await env.start()
    out = await (await p.submit(IngestRequest.of(owner, "video", "bad", file_id="f-bad"))).result()
    assert (out.status, out.reason) == ("failed", reason)
    assert (await env.db.owner(owner).stats()).media_total == 0


async def test_too_large_video_is_indexed_from_its_thumbnail(env: Env) -> None:
    owner = await env.owner(1)
    env.files.thumbs["f-big"] = jpeg(photo_like(90, 160, seed=9))
    p = await env.start()
    request = IngestRequest.of(owner, "video", "big", file_id="f-big", size=3 * 2**30,
                            duration=3600.0, too_large=True, thumbnail_file_id="t-big")  # fmt: skip
    out = await (await p.submit(request)).result()
    assert out.saved and out.thumbnail_only and out.timestamps == (None,)
    assert env.files.calls == [("f-big", True)]  # the video itself was never asked for
    store = env.db.owner(owner)
    media = await store.media.get(out.media_id or 0)
    assert media is not None and media.status == "thumbnail" and media.duration == 3600.0
    assert [u.kind for u in await store.units.of_media(media.id)] == ["thumbnail"]
    assert (await store.stats()).thumbnail_only == 1


async def test_file_too_large_falls_back_to_the_thumbnail_when_there_is_one(env: Env) -> None:
    owner = await env.owner(1)
    env.files.thumbs["f-big"] = jpeg(photo_like(90, 160, seed=10))
    env.files.always[("f-big", False)] = FileTooLargeError("file is too big")
    env.files.always[("f-nothumb", False)] = FileTooLargeError("file is too big")
    p = await env.start()
    with_thumb = IngestRequest.of(owner, "video", "big", file_id="f-big", thumbnail_file_id="t")
    without = IngestRequest.of(owner, "video", "nothumb", file_id="f-nothumb")
    a, b = await results(await p.submit_many([with_thumb, without]))
    assert a.saved and a.thumbnail_only
    assert (b.status, b.reason) == ("failed", "file_too_large")


# --- local files --------------------------------------------------------------------------------


async def test_local_files_are_read_from_disk_and_keyed_by_content(env: Env) -> None:
    owner = (await env.db.owners.ensure("local", "default")).id
    root = env.tmp / "photos"
    root.mkdir()
    (root / "a.png").write_bytes(png(photo_like(40, 30, seed=11)))
    (root / "copy of a.png").write_bytes((root / "a.png").read_bytes())
    (root / "b.png").write_bytes(png(photo_like(40, 30, seed=12)))

    def local(name: str) -> LocalFile:
        st = (root / name).stat()
        digest = hashlib.sha256((root / name).read_bytes()).hexdigest()
        return LocalFile(name, st.st_size, st.st_mtime_ns, digest)

    files = [local(n) for n in ("a.png", "copy of a.png", "b.png")]
    p = await env.start(fetch=local_fetcher(root), workers=1)
    a, copy, b = await results(
        await p.submit_many([IngestRequest.for_local_file(owner, f) for f in files])
    )
    assert a.saved and copy.duplicate and copy.media_id == a.media_id and b.saved
    known = await env.db.owner(owner).local_files.indexed()
    assert {k: v.media_id for k, v in known.items()} == {
        "a.png": a.media_id, "copy of a.png": a.media_id, "b.png": b.media_id,
    }  # fmt: skip
    (root / "b.png").unlink()
    missing = IngestRequest.for_local_file(owner, LocalFile("b.png", 1, 1, "1" * 64))
    out = await (await p.submit(missing)).result()
    assert (out.status, out.reason) == ("failed", "file_gone")


# --- durability ---------------------------------------------------------------------------------


async def test_jobs_left_by_a_stopped_process_resume_at_start(env: Env) -> None:
    owner = await env.owner(1)
    store = env.db.owner(owner)
    requests = [env.photo(owner, f"r{i}", solid((40 * i, 100, 20))) for i in range(3)]
    await store.jobs.enqueue_many([r.to_payload() for r in requests])
    # Two were running when the last process died; on a shared database that was another
    # worker, whose leases run out (no start-up requeue there: they might be running still).
    dead = JobQueue(env.db.connections, max_attempts=3, worker="dead-worker")
    await dead.claim(2, lease_s=5)
    env.clock.shift += 10
    seen: list[IngestOutcome] = []
    p = await env.start(on_outcome=seen.append)
    await p.join()
    assert p.requeued == ((0, 0) if env.db.shared else (2, 0))
    assert sorted(o.request.file_unique_id for o in seen) == ["r0", "r1", "r2"]
    assert all(o.saved for o in seen)
    assert [j.state for j in await store.jobs.all()] == ["done"] * 3


async def test_stop_interrupts_waiting_callers_and_the_job_resumes(env: Env) -> None:
    owner = await env.owner(1)
    entered, release = hold_first_call(env.a)
    p = await env.start()
    ticket = await p.submit(env.photo(owner, "late", solid((10, 200, 100))))
    await asyncio.to_thread(entered.wait)
    await p.stop(timeout=0)
    release.set()
    with pytest.raises(IngestInterruptedError):
        await ticket.result()
    store = env.db.owner(owner)
    # A shared database gets the job back at once, for other workers; SQLite at the next start.
    left = "pending" if env.db.shared else "running"
    assert [j.state for j in await store.jobs.all()] == [left]
    assert (await store.stats()).media_total == 0

    env.a.before_call = None
    seen: list[IngestOutcome] = []
    again = await env.start(on_outcome=seen.append)
    await again.join()
    assert again.requeued == ((0, 0) if env.db.shared else (1, 0))
    assert [o.status for o in seen] == ["saved"]
    assert (await store.stats()).media_total == 1


async def test_submit_waits_while_the_queue_is_full(env: Env) -> None:
    owner = await env.owner(1)
    entered, release = hold_first_call(env.a)
    p = await env.start(ingest_queue_size=2)
    t1 = await p.submit(env.photo(owner, "q1", solid((1, 100, 1))))
    t2 = await p.submit(env.photo(owner, "q2", solid((2, 100, 2))))
    third = asyncio.create_task(p.submit(env.photo(owner, "q3", solid((3, 100, 3)))))
    store = env.db.owner(owner)
    while len(await store.jobs.all()) < 3:  # the third job is durable before submit waits
        await asyncio.sleep(0)
    await asyncio.to_thread(entered.wait)
    for _ in range(20):
        await asyncio.sleep(0)
    assert not third.done()
    release.set()
    t3 = await third
    assert all(o.saved for o in await results([t1, t2, t3]))


async def test_a_failed_submit_leaves_the_pipeline_usable(env: Env) -> None:
    from core.errors import UnknownOwnerError

    p = await env.start()
    with pytest.raises(UnknownOwnerError):
        await p.submit(IngestRequest.of(12345, "photo", "nobody", file_id="x"))
    await p.join()  # nothing pending: returns
    owner = await env.owner(1)
    out = await (await p.submit(env.photo(owner, "ok", solid((5, 150, 5))))).result()
    assert out.saved
    await p.join()


async def test_submit_needs_a_running_pipeline(env: Env) -> None:
    s = settings(env.tmp)
    p = IngestPipeline(env.db, env.embedder, env.index, s.ingest, env.files, video=s.video)
    with pytest.raises(RuntimeError):
        await p.submit(IngestRequest.of(1, "photo", "x"))


CHILD_N = 24
CHILD_ACKS = 8


async def test_killed_process_loses_nothing_acknowledged_and_resumes(tmp_path: Path) -> None:
    """A subprocess ingests ``CHILD_N`` local photos; it is SIGKILLed right after acknowledging
    ``CHILD_ACKS`` of them (its embedder only runs when we allow it, so it is always mid-way).
    A new pipeline on the same database then finishes the rest."""
    images = tmp_path / "images"
    images.mkdir()
    for i in range(CHILD_N):
        (images / f"{i}.png").write_bytes(png(photo_like(48, 36, seed=100 + i)))
    db_path = tmp_path / "crash.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.core.ingest_crash_child", str(db_path), str(images),
         str(CHILD_N)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    acked: dict[str, int] = {}
    try:
        assert proc.stdout is not None and proc.stdin is not None
        while len(acked) < CHILD_ACKS:
            line = proc.stdout.readline()
            assert line, f"child exited early with {proc.poll()}"
            status, uid, media_id = line.split()
            assert status == "saved"
            acked[uid] = int(media_id)
            if len(acked) < CHILD_ACKS:
                proc.stdin.write("go\n")  # one more embedding run
                proc.stdin.flush()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    async with await Database.open(db_path, max_attempts=3) as db:
        owner = await db.owners.find("user", 1)
        assert owner is not None
        store = db.owner(owner.id)
        before = await store.media.by_ids(acked.values())
        assert {m.file_unique_id: m.id for m in before.values()} == acked
        jobs = await store.jobs.all(limit=1000)
        assert len(jobs) == CHILD_N  # every submitted job was durable
        assert any(j.state != "done" for j in jobs)  # killed mid-way

        a, b = GridEmbedder("grid", "1"), GridEmbedder("gridb", "1", project=32, seed=1)
        embedder = make_embedder(a, b)
        index = IndexManager(db.vectors, tmp_path / "indexes")
        s = settings(tmp_path)
        pipeline = IngestPipeline(
            db, embedder, index, s.ingest, local_fetcher(images), video=s.video
        )
        await pipeline.start()
        try:
            await pipeline.join()
        finally:
            await pipeline.stop()
            embedder.close()
        stored = await store.media.page(limit=1000)
        uids = sorted(m.file_unique_id for m in stored)
        assert uids == sorted(f"u{i}" for i in range(CHILD_N))  # all there, each once
        for uid, media_id in acked.items():
            assert next(m.id for m in stored if m.file_unique_id == uid) == media_id
        assert {j.state for j in await store.jobs.all(limit=1000)} == {"done"}
        assert await store.vectors.counts() == {"grid@1": CHILD_N, "gridb@1": CHILD_N}
        for model_id in ("grid@1", "gridb@1"):
            assert (await index.get(owner.id, model_id)).ntotal == CHILD_N


# --- real ONNX models ---------------------------------------------------------------------------


def _tiny_bundles(tmp: Path) -> list[Path]:
    from tests.core.onnx_builders import write_bundle

    return [
        write_bundle(tmp / "tiny-a", name="tiny", dim=8, size=16),
        write_bundle(tmp / "tiny-b", name="tinyru", dim=8, size=24, languages=("ru",)),
    ]


def _fixture_bundles(tmp: Path) -> list[Path]:
    paths = [FIXTURES / "clip-fixture", FIXTURES / "ruclip-fixture"]
    if not all((p / "config.json").is_file() for p in paths):
        pytest.skip("fixture model bundles are not built yet")
    return paths


@pytest.mark.parametrize("bundles", [_tiny_bundles, _fixture_bundles], ids=["tiny", "fixture"])
async def test_real_models_end_to_end(tmp_path: Path, bundles: Any) -> None:
    loaded = [OnnxEmbedder(load_bundle(p), threads=1) for p in bundles(tmp_path)]
    embedder = AsyncEmbedder(loaded)
    db = await Database.open(tmp_path / "real.db")
    try:
        owner = (await db.owners.ensure("user", 1)).id
        index = IndexManager(db.vectors, tmp_path / "indexes")
        pictures = {f"p{i}": jpeg(photo_like(320, 240, seed=20 + i)) for i in range(3)}
        path = write_video(tmp_path / "v.mp4", scenes, 9)

        async def fetch(request: IngestRequest, thumbnail: bool) -> bytes | Path:
            return path if request.kind == "video" else pictures[request.file_unique_id]

        s = settings(tmp_path)
        pipeline = IngestPipeline(db, embedder, index, s.ingest, fetch, video=s.video)
        await pipeline.start()
        try:
            requests = [IngestRequest.of(owner, "photo", uid) for uid in pictures]
            requests.append(IngestRequest.of(owner, "video", "v"))
            outcomes = await results(await pipeline.submit_many(requests))
        finally:
            await pipeline.stop()
        assert all(o.saved for o in outcomes)
        store = db.owner(owner)
        n_units = sum(len(o.unit_ids) for o in outcomes)
        assert await store.vectors.counts() == {e.model_id: n_units for e in loaded}
        for emb in loaded:
            expected = emb.encode_images([pictures["p1"]])
            hits = await index.search(owner, emb.model_id, expected, 1)
            assert hits[0][0][0] == outcomes[1].unit_ids[0]
            assert hits[0][0][1] > 0.98
    finally:
        embedder.close()
        await db.close()


def test_thumbnail_file_id_survives_storage_for_reembedding() -> None:
    """A thumbnail-only video must be fetchable again when the model changes."""
    req = IngestRequest.of(
        1, "video", "u1", file_id="f1", too_large=True, thumbnail_file_id="thumb1"
    )
    media = req.new_media()
    assert media.thumbnail_file_id == "thumb1"


def test_message_sizes_are_hints_the_file_overrides_and_zero_means_unknown() -> None:
    """Clients and forwards send width/height/duration 0: never stored, the file's values win."""
    req = IngestRequest.of(1, "video", "u2", file_id="f2", width=0, height=0, duration=0.0)
    unknown = req.new_media()
    assert (unknown.width, unknown.height, unknown.duration) == (None, None, None)
    measured = req.new_media(width=96, height=64, duration=2.0)
    assert (measured.width, measured.height, measured.duration) == (96, 64, 2.0)
    told = IngestRequest.of(1, "video", "u3", width=640, height=360, duration=10.0)
    assert told.new_media(width=96, height=0, duration=None).width == 96
    assert told.new_media(width=96, height=0, duration=None).height == 360
