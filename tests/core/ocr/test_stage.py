"""The durable OCR stage over a real database and the real tesseract: pending items are read and
their text indexed, a crash resumes, failures keep the item, re-runs reset, owners stay apart."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cli.commands import index_folder
from core.engine.engine import Engine
from core.errors import FetchError, FileGoneError
from core.ingest.fetch import local_fetcher
from core.ingest.request import IngestRequest
from core.ocr import OcrReader, OcrStage
from core.ocr.frames import join_texts, spread
from core.settings import OcrSettings, Settings
from storage import Database, NewMedia, NewUnit, OwnerStore
from tests.conftest import DatabaseTarget, database_url
from tests.core.ingest_fakes import jpeg, png
from tests.core.ocr import samples as s
from tests.core.onnx_builders import write_bundle
from tests.core.test_video import write_video

MODEL, DIM = "m@1", 4


class OwnerFiles:
    """The fetch callback, by (owner, file_id): the same file id may hold other bytes for
    another owner, so a mix-up would read the wrong text. Scripted failures by file id."""

    def __init__(self) -> None:
        self.data: dict[tuple[int, str], bytes] = {}
        self.thumbs: dict[tuple[int, str], bytes] = {}
        self.fail: dict[str, list[BaseException]] = {}  # raised once each
        self.always: dict[str, BaseException] = {}  # raised every time
        self.calls: list[tuple[int, str, bool]] = []

    async def __call__(self, request: IngestRequest, thumbnail: bool) -> bytes:
        file_id = request.facts.file_id or ""
        self.calls.append((request.owner_id, file_id, thumbnail))
        errors = self.fail.get(file_id)
        if errors:
            raise errors.pop(0)
        if file_id in self.always:
            raise self.always[file_id]
        return (self.thumbs if thumbnail else self.data)[(request.owner_id, file_id)]


@pytest.fixture
async def db(database_target: DatabaseTarget) -> AsyncIterator[Database]:
    database = await Database.open(database_target("test.db"))
    await database.models.register(MODEL, DIM)
    try:
        yield database
    finally:
        await database.close()


async def owner(db: Database, n: int) -> OwnerStore:
    return db.owner((await db.owners.ensure("user", n)).id)


async def add(store: OwnerStore, uid: str, units: list[NewUnit] | None = None, **kw: object) -> int:
    units = units or [NewUnit.image()]
    vecs = np.eye(len(units), DIM, dtype=np.float32)
    media = NewMedia(kw.pop("kind", "photo"), uid, file_id=uid, **kw)  # type: ignore[arg-type]
    return (await store.media.commit(media, units, {MODEL: vecs})).media_id


def stage(db: Database, reader: OcrReader, files: OwnerFiles, **kw: object) -> OcrStage:
    settings = OcrSettings(batch_size=3, max_attempts=kw.pop("max_attempts", 3))  # type: ignore[arg-type]
    return OcrStage(db, reader, files, settings, retry_backoff_s=0.0, fetch_attempts=2, **kw)  # type: ignore[arg-type]


async def read_all(ocr: OcrStage) -> None:
    """Start the stage, wait until its queue is empty, stop it."""
    await ocr.start()
    try:
        await ocr.drain()
    finally:
        await ocr.stop()


@pytest.fixture
def tess_reader(tessdata: Path) -> OcrReader:
    """A reader per stage (the stage closes its reader when it stops)."""
    return OcrReader(tessdata, threads=2)


async def test_pending_items_are_read_and_their_text_indexed(
    db: Database, tess_reader: OcrReader
) -> None:
    store = await owner(db, 1)
    files = OwnerFiles()
    doc, plain = s.document(s.RU, 28), s.plain_pictures()["photo0"]
    files.data[(store.owner_id, "doc")] = png(doc.image)
    files.data[(store.owner_id, "plain")] = jpeg(plain)
    doc_id, plain_id = await add(store, "doc"), await add(store, "plain")
    ocr = stage(db, tess_reader, files)
    await read_all(ocr)
    texts = await store.texts.of_media([doc_id, plain_id])
    assert s.word_recall(doc.lines, texts[doc_id]["ocr"]) >= 0.9
    assert "ocr" not in texts.get(plain_id, {})  # nothing read off a plain photo
    assert await db.ocr.counts() == {"done": 2}
    found = await store.texts.search(["квитанции"])  # another form of "Квитанция"
    assert [m.media_id for m in found] == [doc_id]


async def test_drain_sees_items_saved_after_start_and_rerun_reads_again(
    db: Database, tess_reader: OcrReader
) -> None:
    store = await owner(db, 1)
    files = OwnerFiles()
    ocr = stage(db, tess_reader, files)
    await ocr.start()
    try:
        await ocr.drain()  # nothing yet
        files.data[(store.owner_id, "doc")] = png(s.document(s.EN, 28).image)
        mid = await add(store, "doc")
        await ocr.drain()
        assert "invoice" in (await store.texts.of_media([mid]))[mid]["ocr"].casefold()
        files.data[(store.owner_id, "doc")] = png(s.document(["Completely new words"], 28).image)
        assert await ocr.rerun(store.owner_id) == 1
        await ocr.drain()
    finally:
        await ocr.stop()
    assert "completely" in (await store.texts.of_media([mid]))[mid]["ocr"].casefold()
    assert ocr.read == 2


async def test_a_crash_leaves_running_rows_that_the_next_start_resumes(
    db: Database, tess_reader: OcrReader
) -> None:
    if db.shared:  # no start-up recovery there: leases (tests/storage/test_ocr_queue.py)
        pytest.skip("a shared database resumes a dead worker's items when their lease ends")
    store = await owner(db, 1)
    files = OwnerFiles()
    files.data[(store.owner_id, "doc")] = png(s.document(s.EN, 28).image)
    mid = await add(store, "doc")
    [claimed] = await db.ocr.claim(5)  # a process claimed it and died
    assert (await store.media.get(mid)).ocr_state == "running"  # type: ignore[union-attr]
    ocr = stage(db, tess_reader, files)
    await read_all(ocr)
    assert claimed.media.id == mid
    assert await db.ocr.state(store.owner_id, mid) == ("done", 2, None)
    assert "ocr" in (await store.texts.of_media([mid]))[mid]


async def test_failures_are_recorded_and_the_item_is_kept(
    db: Database, tess_reader: OcrReader
) -> None:
    store = await owner(db, 1)
    files = OwnerFiles()
    gone, broken, flaky, later = (
        await add(store, "gone"),
        await add(store, "broken"),
        await add(store, "flaky"),
        await add(store, "later"),
    )
    files.always["gone"] = FileGoneError("the file is no longer served")
    files.data[(store.owner_id, "broken")] = b"\x89PNG\r\n\x1a\n not really"
    files.always["flaky"] = FetchError("timeout")
    files.fail["later"] = [FetchError("timeout"), FetchError("timeout")]  # one claim's tries
    files.data[(store.owner_id, "later")] = png(s.document(s.EN, 28).image)
    ocr = stage(db, tess_reader, files)
    await read_all(ocr)
    state = {mid: await db.ocr.state(store.owner_id, mid) for mid in (gone, broken, flaky, later)}
    assert state[gone] is not None and state[gone][:2] == ("failed", 1)
    assert "file_gone" in (state[gone][2] or "")
    assert state[broken] is not None and state[broken][0] == "failed"
    assert "image" in (state[broken][2] or "")
    assert state[flaky] is not None and state[flaky][:2] == ("failed", 3)  # max_attempts claims
    assert state[later] == ("done", 2, None)  # the second claim succeeded
    for mid in (gone, broken, flaky):
        assert await store.media.get(mid) is not None
        assert len(await store.units.of_media(mid)) == 1
    assert files.calls.count((store.owner_id, "gone", False)) == 1  # not retried


async def test_one_owners_text_never_lands_on_anothers_item(
    db: Database, tess_reader: OcrReader
) -> None:
    a, b = await owner(db, 1), await owner(db, 2)
    files = OwnerFiles()
    files.data[(a.owner_id, "same")] = png(s.document(["Invoice for Alice"], 32).image)
    files.data[(b.owner_id, "same")] = png(s.document(["Квитанция для Бориса"], 32).image)
    a_id, b_id = await add(a, "same"), await add(b, "same")
    ocr = stage(db, tess_reader, files)
    await read_all(ocr)
    assert "alice" in (await a.texts.of_media([a_id]))[a_id]["ocr"].casefold()
    assert "бориса" in (await b.texts.of_media([b_id]))[b_id]["ocr"].casefold()
    assert await a.texts.of_media([b_id]) == {}
    assert await b.texts.search(["invoice"]) == []
    assert [m.media_id for m in await a.texts.search(["invoice"])] == [a_id]


def _titled(t: float, rng: np.random.Generator) -> np.ndarray:
    """A dark video with a white title; the title changes at 2 s."""
    img = Image.new("RGB", (320, 180), (20, 20, 30))
    f = s.font("dejavu/DejaVuSans-Bold.ttf", 26)
    title = "Hello world" if t < 2 else "Second title"
    ImageDraw.Draw(img).text((20, 70), title, font=f, fill="white")
    return np.asarray(img)[:, :, ::-1].copy()


async def test_video_frames_and_thumbnails_are_read(
    db: Database, tess_reader: OcrReader, tmp_path: Path
) -> None:
    store = await owner(db, 1)
    files = OwnerFiles()
    video = write_video(tmp_path / "titled.mp4", _titled, 4, size=(320, 180)).read_bytes()
    files.data[(store.owner_id, "vid")] = video
    times = [0.0, 0.5, 1.0, 2.5, 3.0]
    vid = await add(store, "vid", [NewUnit.frame(t) for t in times], kind="video", duration=4.0)
    files.thumbs[(store.owner_id, "big")] = jpeg(s.document(["Poster text"], 32).image, 95)
    big = await add(store, "big", [NewUnit.thumbnail()], kind="video", thumbnail_file_id="t")
    ocr = stage(db, tess_reader, files)
    await read_all(ocr)
    texts = await store.texts.of_media([vid, big])
    lines = texts[vid]["ocr"].casefold().splitlines()
    assert lines == ["hello world", "second title"]  # each line once, in order
    assert "poster" in texts[big]["ocr"].casefold()
    assert (store.owner_id, "big", True) in files.calls


def test_frame_choice_and_joining() -> None:
    assert spread([0.0, 1.0, 2.0], 5) == [0.0, 1.0, 2.0]
    assert spread([float(i) for i in range(100)], 4) == [0.0, 33.0, 66.0, 99.0]
    assert join_texts(["A b\nc", "a  B\nd", ""]) == "A b\nc\nd"


async def test_the_engine_runs_ocr_after_a_folder_ingest(
    database_target: DatabaseTarget, tmp_path: Path, tessdata: Path
) -> None:
    write_bundle(tmp_path / "model", languages=("en",))
    photos = tmp_path / "photos"
    photos.mkdir()
    s.document(s.EN, 28).image.save(photos / "scan.png")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        model_dirs=[tmp_path / "model"],
        database_url=database_url(database_target),
    )
    async with await Engine.open(settings, fetch=local_fetcher()) as engine:
        assert engine.ocr is not None
        owner_id = (await engine.owners.ensure_local()).id
        plan = await engine.folders.plan(owner_id, photos)
        await engine.folders.ingest(owner_id, plan)
        await engine.ocr.drain()
        found = await engine.db.owner(owner_id).texts.search(["invoice"])
        assert len(found) == 1
    off = settings.model_copy(update={"ocr": OcrSettings(enabled=False)})
    async with await Engine.open(off, fetch=local_fetcher()) as engine:
        assert engine.ocr is None


async def test_missing_tessdata_turns_ocr_off_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_bundle(tmp_path / "model", languages=("en",))
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        model_dirs=[tmp_path / "model"],
        ocr_tessdata=tmp_path / "nothing",
    )
    async with await Engine.open(settings, fetch=local_fetcher()) as engine:
        assert engine.ocr is None
    warnings = [r.getMessage() for r in caplog.records if "OCR is off" in r.getMessage()]
    assert len(warnings) == 1 and "tesseract-ocr-rus" in warnings[0]


async def test_a_cli_ocr_run_leaves_a_bot_users_pending_item_untouched(
    tmp_path: Path, tessdata: Path
) -> None:
    """The CLI and the bot may share DATA_DIR; the CLI's stage can fetch local files only, so a
    bot user's pending item must stay pending (not 'failed', no attempt spent) for the bot."""
    write_bundle(tmp_path / "model", languages=("en",))
    photos = tmp_path / "photos"
    photos.mkdir()
    s.document(s.EN, 28).image.save(photos / "scan.png")
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", model_dirs=[tmp_path / "model"])  # type: ignore[call-arg]
    async with await Engine.open(settings) as engine:
        user = engine.db.owner((await engine.owners.ensure("user", 42)).id)
        [bundle] = engine.bundles
        vecs = np.ones((1, bundle.config.embed_dim), dtype=np.float32)
        media = NewMedia("photo", "tg-unique", file_id="telegram-file-id")
        bot_item = await user.media.commit(media, [NewUnit.image()], {bundle.model_id: vecs})
    await index_folder(settings, photos, io.StringIO())
    async with await Engine.open(settings) as engine:
        local = await engine.owners.ensure_local()
        assert await engine.db.ocr.counts(local.id) == {"done": 1}
        assert await engine.db.ocr.state(user.owner_id, bot_item.media_id) == ("pending", 0, None)
        assert await engine.db.owner(user.owner_id).texts.of_media([bot_item.media_id]) == {}


async def test_a_slow_read_keeps_its_claim(
    db: Database, tess_reader: OcrReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a batch is read its leases are renewed, so no other worker takes the items over
    from a live reader; the item is read once."""
    store = await owner(db, 1)
    files = OwnerFiles()
    files.data[(store.owner_id, "slow")] = png(s.document(s.EN, 28).image)
    media_id = await add(store, "slow")
    gate, renewed = asyncio.Event(), asyncio.Event()
    kept: list[int] = []
    renew = db.ocr.renew

    async def counting_renew(*args: Any, **kw: Any) -> int:
        kept.append(await renew(*args, **kw))
        if len(kept) >= 2:
            renewed.set()
        return kept[-1]

    async def slow_fetch(request: IngestRequest, thumbnail: bool) -> bytes:
        await gate.wait()
        return await files(request, thumbnail)

    monkeypatch.setattr(db.ocr, "renew", counting_renew)
    ocr = stage(db, tess_reader, slow_fetch, lease_s=0.3)  # type: ignore[arg-type]
    await ocr.start()
    try:
        async with asyncio.timeout(30):
            await renewed.wait()  # two renewals while the picture has not even arrived
            gate.set()
            await ocr.drain()
    finally:
        await ocr.stop()
    assert kept[:2] == [1, 1]  # each renewal extended the one item held
    assert await db.ocr.state(store.owner_id, media_id) == ("done", 1, None)
