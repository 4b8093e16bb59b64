"""Background re-embedding after a model change: old vectors answer until each owner switches."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from core.errors import FileGoneError, UnreadableVideoError
from core.index.manager import IndexManager
from core.ingest.pipeline import IngestPipeline
from core.ingest.reembed import Reembedder
from core.ingest.request import IngestOutcome, IngestRequest
from core.media.frame_clock import frames_at
from core.media.video import sample_video
from core.models.embedder import AsyncEmbedder
from core.settings import VideoSettings
from storage import Database, NewMedia, NewUnit
from tests.conftest import DatabaseTarget
from tests.core.image_samples import photo_like
from tests.core.ingest_fakes import Files, GridEmbedder, jpeg, make_embedder, png, settings, solid
from tests.core.test_video import scenes, write_video

A, B, C = "grid@1", "gridb@1", "gridc@1"


class Env:
    def __init__(self, tmp: Path, db: Database) -> None:
        self.tmp = tmp
        self.db = db
        self.index = IndexManager(db.vectors, tmp / "indexes")
        self.files = Files()
        self.settings = settings(tmp, ingest_batch_size=2)
        self.embedders: list[AsyncEmbedder] = []
        self.video = write_video(tmp / "scenes.mp4", scenes, 9).read_bytes()

    def embedder(self, *models: GridEmbedder) -> AsyncEmbedder:
        emb = make_embedder(*models)
        self.embedders.append(emb)
        return emb

    async def ingest(self, embedder: AsyncEmbedder, owner: int, prefix: str = "") -> list[Any]:
        """Three photos, a video and a video known only by its thumbnail."""
        for i in range(3):
            self.files.data[f"{prefix}p{i}"] = png(photo_like(48, 36, seed=30 + i))
        self.files.data[f"{prefix}v"] = self.video
        self.files.thumbs[f"{prefix}big"] = jpeg(photo_like(64, 36, seed=40))
        requests = [
            IngestRequest.of(owner, "photo", f"{prefix}p{i}", file_id=f"{prefix}p{i}")
            for i in range(3)
        ]
        requests.append(IngestRequest.of(owner, "video", f"{prefix}v", file_id=f"{prefix}v"))
        requests.append(
            IngestRequest.of(
                owner,
                "video",
                f"{prefix}big",
                file_id=f"{prefix}big",
                too_large=True,
                thumbnail_file_id="t",
            )
        )
        s = self.settings
        pipeline = IngestPipeline(
            self.db, embedder, self.index, s.ingest, self.files, video=s.video
        )
        await pipeline.start()
        try:
            tickets = await pipeline.submit_many(requests)
            outcomes: list[IngestOutcome] = [await t.result() for t in tickets]
        finally:
            await pipeline.stop()
        assert all(o.saved for o in outcomes)
        self.files.calls.clear()
        return outcomes

    def reembedder(self, embedder: AsyncEmbedder, **kw: Any) -> Reembedder:
        return Reembedder(
            self.db, embedder, self.index, self.files, settings=self.settings.ingest, **kw
        )


@pytest.fixture
async def env(database_target: DatabaseTarget, tmp_path: Path) -> AsyncIterator[Env]:
    db = await Database.open(database_target("test.db"))
    e = Env(tmp_path, db)
    try:
        yield e
    finally:
        for emb in e.embedders:
            emb.close()
        await db.close()


async def units_count(env: Env, owner: int) -> int:
    return (await env.db.owner(owner).stats()).units


async def test_a_new_model_is_filled_in_while_the_old_one_answers(env: Env) -> None:
    owner = (await env.db.owners.ensure("user", 1)).id
    await env.ingest(env.embedder(GridEmbedder("grid", "1")), owner)
    store = env.db.owner(owner)
    assert await store.models.active() == {"grid": A}
    n = await units_count(env, owner)
    assert n > 5  # photos, frames and a thumbnail

    # B computes the same features as A under another name: its vectors must equal A's.
    new = env.embedder(GridEmbedder("grid", "1"), GridEmbedder("gridb", "1"))
    gate = env.files.hold_after(2)
    reembedder = env.reembedder(new)
    reembedder.start()
    await env.files.fetched.wait()  # the first batch is stored, the second waits for its bytes

    assert await store.models.active() == {"grid": A}  # old model still answers
    partial = (await store.vectors.counts()).get(B, 0)
    assert 0 < partial < n
    a_index = await env.index.get(owner, A)
    assert a_index.ntotal == n
    ids, vectors = await store.vectors.load(A)
    hits = await env.index.search(owner, A, vectors[:1], 1)
    assert hits[0][0][0] == ids[0]

    gate.set()
    report = await reembedder.wait()
    assert report.complete and not report.failures
    assert await store.models.active() == {"grid": A, "gridb": B}
    assert (await store.vectors.counts())[B] == n
    assert report.owners[0].switched == {"gridb": B}
    assert report.owners[0].embedded == {B: n}
    b_ids, b_vectors = await store.vectors.load(B)
    assert np.array_equal(b_ids, ids)
    cos = np.einsum("ij,ij->i", b_vectors, vectors)
    assert cos.min() > 0.995  # every frame was taken at its stored timestamp
    assert (await env.index.get(owner, B)).ntotal == n
    assert ("big", True) in env.files.calls and ("big", False) not in env.files.calls
    assert env.files.calls.count(("v", False)) == 1

    again = await env.reembedder(new).run()  # nothing left to do
    assert again.owners == [] and env.files.calls.count(("v", False)) == 1


async def test_re_embedding_resumes_after_a_restart(env: Env) -> None:
    owner = (await env.db.owners.ensure("user", 1)).id
    await env.ingest(env.embedder(GridEmbedder("grid", "1")), owner)
    store = env.db.owner(owner)
    n = await units_count(env, owner)
    new = env.embedder(GridEmbedder("grid", "1"), GridEmbedder("gridb", "1", project=24))

    env.files.hold_after(2)
    first = env.reembedder(new)
    first.start()
    await env.files.fetched.wait()
    await first.stop()  # the process goes away mid-way
    done_units = (await store.vectors.counts())[B]
    assert 0 < done_units < n
    fetched_before = {k for k, _ in env.files.calls[:2]}

    env.files.gate = None
    env.files.calls.clear()
    report = await env.reembedder(new).run()
    assert report.complete
    assert report.owners[0].embedded == {B: n - done_units}
    assert not fetched_before & {k for k, _ in env.files.calls}  # stored work is not redone
    assert await store.models.active() == {"grid": A, "gridb": B}
    assert (await env.index.get(owner, B)).ntotal == n


async def test_a_new_version_takes_over_its_slot_and_several_models_share_a_download(
    env: Env,
) -> None:
    owner = (await env.db.owners.ensure("user", 1)).id
    await env.ingest(env.embedder(GridEmbedder("grid", "1")), owner)
    store = env.db.owner(owner)
    n = await units_count(env, owner)
    switches: list[tuple[int, dict[str, str], dict[str, str]]] = []
    new = env.embedder(
        GridEmbedder("grid", "1"),
        GridEmbedder("grid", "2", project=40),  # listed after grid@1: the slot's new target
        GridEmbedder("gridc", "1", project=16),
    )
    reembedder = env.reembedder(new, on_switch=lambda *a: switches.append(a))
    assert reembedder.targets == {"grid": "grid@2", "gridc": C}
    report = await reembedder.run()

    assert await store.models.active() == {"grid": "grid@2", "gridc": C}
    assert switches == [(owner, {"grid": "grid@2", "gridc": C}, {"grid": A})]
    assert report.owners[0].embedded == {"grid@2": n, C: n}
    counts = await store.vectors.counts()
    assert counts == {A: n, "grid@2": n, C: n}  # the old vectors stay until dropped
    # One download per item for both new models.
    assert sorted(env.files.calls) == sorted(
        [("p0", False), ("p1", False), ("p2", False), ("v", False), ("big", True)]
    )


async def test_an_item_that_cannot_be_fetched_keeps_the_owner_on_the_old_model(env: Env) -> None:
    owner = (await env.db.owners.ensure("user", 1)).id
    outcomes = await env.ingest(env.embedder(GridEmbedder("grid", "1")), owner)
    store = env.db.owner(owner)
    n = await units_count(env, owner)
    new = env.embedder(GridEmbedder("grid", "1"), GridEmbedder("gridb", "1", project=24))
    env.files.always[("p1", False)] = FileGoneError("the message was deleted")

    report = await env.reembedder(new).run()
    assert not report.complete
    [failure] = report.failures
    assert (failure.media_id, failure.reason) == (outcomes[1].media_id, "file_gone")
    assert report.owners[0].pending == (B,)
    assert await store.models.active() == {"grid": A}
    assert (await store.vectors.counts())[B] == n - 1  # everything else is ready

    del env.files.always[("p1", False)]
    env.files.calls.clear()
    report = await env.reembedder(new).run()
    assert report.complete and env.files.calls == [("p1", False)]
    assert await store.models.active() == {"grid": A, "gridb": B}


async def test_owners_are_independent_and_complete_ones_switch_without_fetching(
    env: Env,
) -> None:
    both = env.embedder(GridEmbedder("grid", "1"), GridEmbedder("gridb", "1", project=24))
    old_owner = (await env.db.owners.ensure("user", 1)).id
    await env.ingest(env.embedder(GridEmbedder("grid", "1")), old_owner, prefix="o")
    # An owner whose items already carry both models, but no slots recorded yet.
    fresh = (await env.db.owners.ensure("user", 2)).id
    vectors = {
        A: np.eye(1, 192, dtype=np.float32),
        B: np.eye(1, 24, dtype=np.float32),
    }
    await env.db.owner(fresh).media.commit(NewMedia("photo", "x"), [NewUnit.image()], vectors)
    empty = (await env.db.owners.ensure("chat", 3)).id

    report = await env.reembedder(both).run()
    by_owner = {o.owner_id: o for o in report.owners}
    assert by_owner[fresh].activated == {"grid": A, "gridb": B} and not by_owner[fresh].embedded
    assert by_owner[old_owner].switched == {"gridb": B}
    assert empty not in by_owner or not by_owner[empty].pending
    assert all(k.startswith("o") for k, _ in env.files.calls)  # only the old owner's items
    assert await env.db.owner(fresh).models.active() == {"grid": A, "gridb": B}


async def test_re_embedding_gives_way_to_ingest(env: Env) -> None:
    owner = (await env.db.owners.ensure("user", 1)).id
    await env.ingest(env.embedder(GridEmbedder("grid", "1")), owner)
    new = env.embedder(GridEmbedder("grid", "1"), GridEmbedder("gridb", "1"))

    class BusyPipeline:
        def __init__(self) -> None:
            self.quiet = asyncio.Event()

        @property
        def idle(self) -> bool:
            return self.quiet.is_set()

        async def wait_idle(self) -> None:
            await self.quiet.wait()

    busy = BusyPipeline()
    reembedder = env.reembedder(new, pipeline=busy, yield_s=3600)  # type: ignore[arg-type]
    task = reembedder.start()
    for _ in range(50):
        await asyncio.sleep(0)
    assert env.files.calls == [] and not task.done()
    busy.quiet.set()
    assert (await reembedder.wait()).complete


# --- frames at stored timestamps ----------------------------------------------------------------


def _gif() -> bytes:
    frames = [solid((200, 10, 10)), solid((10, 200, 10)), solid((10, 10, 200))]
    buf = io.BytesIO()
    frames[0].save(
        buf, "GIF", save_all=True, append_images=frames[1:], duration=[1500, 2500, 1000], loop=0
    )
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["mp4", "gif"])
def test_frames_at_gives_back_the_sampled_frames(tmp_path: Path, kind: str) -> None:
    data = _gif() if kind == "gif" else write_video(tmp_path / "v.mp4", scenes, 27).read_bytes()
    sample = sample_video(data, VideoSettings(min_gap_s=1.0), target_size=32)
    times = [f.timestamp for f in sample.frames]
    assert len(times) >= 3
    order = list(reversed(times))  # any order, repeats allowed
    got = frames_at(data, [*order, order[0]], target_size=32)
    expected = [f.image for f in reversed(sample.frames)] + [sample.frames[-1].image]
    for a, b in zip(got, expected, strict=True):
        assert a.image.size == b.size and np.array_equal(np.asarray(a.image), np.asarray(b))


def _uneven_gif() -> bytes:
    """Frame durations that do not add up to round numbers, one of them declaring 0 ms."""
    colours = [(200, 10, 10), (10, 200, 10), (10, 10, 200), (200, 200, 10), (10, 200, 200)]
    frames = [solid(c) for c in colours for _ in range(3)]
    buf = io.BytesIO()
    durations = [1330, 0, 470, 1010, 990, 730] * 3
    frames[0].save(
        buf, "GIF", save_all=True, append_images=frames[1:], duration=durations[:15], loop=0
    )
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["mp4-29.97", "mp4-7", "gif"])
def test_ingest_and_re_embedding_pick_the_same_frame_times(tmp_path: Path, kind: str) -> None:
    """One frame clock: each time the sampler stored finds, when read again, a frame at exactly
    that time (not merely a frame that looks the same), whatever the rate or frame durations."""
    if kind == "gif":
        data = _uneven_gif()
    else:
        fps = float(kind.split("-")[1])
        data = write_video(tmp_path / "v.mp4", scenes, 27, fps=fps).read_bytes()
    sampled = [
        f.timestamp for f in sample_video(data, VideoSettings(min_gap_s=0.5), target_size=32).frames
    ]
    assert len(sampled) >= 3
    assert [f.timestamp for f in frames_at(data, sampled, target_size=32)] == sampled


def test_frames_at_a_moment_past_the_end_is_an_error() -> None:
    with pytest.raises(UnreadableVideoError):
        frames_at(_gif(), [0.0, 60.0])
    assert isinstance(frames_at(_gif(), [0.0])[0].image, Image.Image)


def test_re_embedding_reads_animations_within_the_sampler_budgets() -> None:
    """A crafted GIF (huge canvas, tiny file) is refused before any frame is decoded, as at
    ingest: the stored file is no more trusted when its frames are read again."""
    from core.errors import VideoTooLargeError
    from tests.core.fuzz_regressions import gif_canvas

    with pytest.raises(VideoTooLargeError):
        frames_at(gif_canvas(8000, 8000, 50), [0.0])
    small = frames_at(gif_canvas(4, 4, 3), [0.0])
    assert len(small) == 1 and small[0].image.size == (4, 4)
