"""Whatever its bytes, every file gets a typed error or a picture, within the time and memory
budget: a seeded fuzz corpus, every past crasher, MIME types that lie, and the guards' own
mechanics (deadline, cost estimates)."""

from __future__ import annotations

import io
import itertools
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from core.errors import (
    ImageTooComplexError,
    UnreadableVideoError,
    UnsupportedImageError,
    VideoTooComplexError,
    VideoTooLargeError,
)
from core.media import decode_guard, video_probe
from core.media import video as core_video
from core.media.decode_guard import (
    MAX_ANIMATION_FRAMES,
    MAX_ANIMATION_WORK,
    DecodeDeadline,
    deadline,
    jpeg_scan_count,
)
from core.media.image import decode_image, prepare_image
from core.media.video import sample_video
from core.media.video_probe import PROBE_MEMORY, PROBE_RESERVED, Probe
from tests.core.fuzz_corpus import (
    CFG,
    JUNK,
    MEMORY_BUDGET,
    TIME_BUDGET_S,
    Case,
    Outcome,
    PeakMeter,
    cases,
    run,
    seeds,
)
from tests.core.fuzz_regressions import (
    REGRESSIONS,
    SHORT_DEADLINE,
    Regression,
    by_name,
    gif_canvas,
    png_many_chunks,
)
from tests.core.test_ingest import Env, env  # noqa: F401 - the pipeline and its fixture

pytestmark = pytest.mark.filterwarnings(
    "ignore::PIL.Image.DecompressionBombWarning", "ignore:Corrupt EXIF data:UserWarning"
)

FUZZ_SEED = 20261202
FUZZ_CASES = 360
SHORT_S = 0.1


@pytest.fixture(scope="module")
def meter() -> PeakMeter:
    return PeakMeter()


@pytest.fixture(scope="module")
def corpus() -> list[Case]:
    return list(cases(FUZZ_SEED, FUZZ_CASES))


def within_budget(outcome: Outcome) -> None:
    assert outcome.escape is None, f"{outcome.case.name}: {outcome.escape}"
    assert outcome.seconds <= TIME_BUDGET_S, (outcome.case.name, outcome.seconds)
    if outcome.extra_rss is not None:
        assert outcome.extra_rss <= MEMORY_BUDGET, (outcome.case.name, outcome.extra_rss)


# --- the corpus ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(seeds()))
def test_seeds_are_valid_files(kind: str, meter: PeakMeter) -> None:
    entry = "video" if kind in ("mp4", "gif_anim", "webp_anim") else "image"
    assert run(Case(kind, seeds()[kind], entry), meter).code == "ok"


def test_corpus_is_reproducible_and_varied(corpus: list[Case]) -> None:
    again = list(cases(FUZZ_SEED, 40))
    assert [c.data for c in again] == [c.data for c in corpus[:40]]
    names = {c.name.split("-", 1)[1].rsplit("-", 1)[0] for c in corpus if c.name[0].isdigit()}
    mutators = {n.rsplit("-", 1)[1] for n in names}
    assert mutators == {"bitflip", "truncate", "duplicate", "overwrite", "header", "frames"}


@pytest.mark.parametrize("index", range(FUZZ_CASES))
def test_mutated_file_gives_a_typed_answer_within_budget(
    index: int, corpus: list[Case], meter: PeakMeter
) -> None:
    within_budget(run(corpus[index], meter))


# --- every crasher found so far -----------------------------------------------------------------


@pytest.mark.parametrize("reg", REGRESSIONS, ids=lambda r: r.name)
def test_regression(reg: Regression, meter: PeakMeter, monkeypatch: pytest.MonkeyPatch) -> None:
    data = reg.build()
    assert len(data) < 5 * 2**20
    if reg.name in SHORT_DEADLINE:
        monkeypatch.setattr(core_video, "DECODE_TIMEOUT_S", SHORT_S)
        monkeypatch.setattr("tests.core.fuzz_corpus.prepare_image", short_prepare)
    outcome = run(Case(reg.name, data, reg.entry), meter)
    within_budget(outcome)
    assert outcome.code == reg.code, reg.note


def short_prepare(data: bytes, cfg: Any) -> np.ndarray:
    from core.media.image import preprocess

    return preprocess(decode_image(data, target_size=cfg.size, timeout_s=SHORT_S), cfg)


def test_large_canvas_is_cut_at_the_frame_budget() -> None:
    sample = sample_video(by_name("gif-2000x1500x400").build(), target_size=224)
    assert sample.info.truncated
    assert sample.info.frame_count == MAX_ANIMATION_WORK // (2000 * 1500)
    assert sample.frames and sample.frames[0].image.size[1] <= 2 * 224 + 1


def test_slow_animation_keeps_the_frames_read_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each look at the clock costs a second here, so the soft deadline always falls inside."""
    ticks = itertools.count()
    monkeypatch.setattr(core_video, "_clock", lambda: float(next(ticks)))
    info = sample_video(by_name("gif-2000x1500x400").build()).info
    assert info.truncated and 0 < info.frame_count < MAX_ANIMATION_WORK // (2000 * 1500)


def test_tiny_frames_are_capped_by_count() -> None:
    info = sample_video(gif_canvas(1, 1, MAX_ANIMATION_FRAMES + 50)).info
    assert info.frame_count == MAX_ANIMATION_FRAMES and info.truncated
    info = sample_video(gif_canvas(1, 1, 30)).info
    assert info.frame_count == 30 and not info.truncated


def test_animation_that_fits_is_not_truncated() -> None:
    info = sample_video(gif_canvas(2000, 1500, MAX_ANIMATION_WORK // (2000 * 1500))).info
    assert not info.truncated


def test_transparent_image_too_large_to_composite_is_reduced_first() -> None:
    data = by_name("png-rgba-5000x4000-reduced").build()
    img = decode_image(data, target_size=224)
    assert img.mode == "RGB" and min(img.size) >= 336
    # half-transparent red on white, whichever order the steps ran in
    assert np.abs(np.asarray(img, dtype=int) - (255, 127, 127)).max() <= 1


def test_reduce_first_matches_the_normal_path_on_a_small_image() -> None:
    rgba = Image.new("RGBA", (900, 700), (20, 200, 40, 90))
    rgba.paste((250, 10, 10, 255), (100, 100, 500, 400))
    data = io.BytesIO()
    rgba.save(data, "PNG")
    normal = np.asarray(decode_image(data.getvalue(), target_size=224), dtype=int)
    early = decode_image(data.getvalue(), target_size=224, max_bytes=6_000_000)
    reduced = np.asarray(early, dtype=int)
    assert normal.shape == reduced.shape
    assert np.abs(normal - reduced).mean() < 1.0


def test_jpeg_scan_count_sees_every_scan() -> None:
    progressive = seeds()["jpeg_progressive"]
    assert 3 <= jpeg_scan_count(progressive) <= 20
    assert jpeg_scan_count(seeds()["jpeg"]) == 1
    with pytest.raises(ImageTooComplexError):
        decode_image(by_name("jpeg-many-scans").build())


# --- MIME types that lie: the bytes decide ------------------------------------------------------


def test_document_called_jpeg_is_decoded_by_its_bytes() -> None:
    # decode_image takes no name or MIME type at all: PNG, GIF and WebP bytes decode as such
    for kind in ("png", "gif_anim", "webp", "bmp", "tiff"):
        img = decode_image(seeds()[kind])
        assert img.mode == "RGB" and img.size in ((48, 32), (32, 24)), kind


@pytest.mark.parametrize("junk", ["text", "zip", "pdf", "html"])
def test_junk_called_an_image_is_unsupported(junk: str) -> None:
    with pytest.raises(UnsupportedImageError):
        prepare_image(JUNK[junk], CFG)


@pytest.mark.parametrize("junk", ["text", "zip", "pdf", "html"])
def test_junk_called_a_video_is_unreadable(junk: str) -> None:
    with pytest.raises(UnreadableVideoError):
        sample_video(JUNK[junk])


def test_gif_called_a_video_is_read_as_an_animation() -> None:
    sample = sample_video(seeds()["gif_anim"])
    assert sample.info.frame_count == 4 and sample.info.width == 32


@pytest.mark.parametrize(
    ("kind", "mime", "content", "reason"),
    [
        ("document", "image/jpeg", "png", None),
        ("document", "image/jpeg", "gif_anim", None),
        ("document", "image/jpeg", "webp", None),
        ("document", "image/jpeg", "text", "image_unsupported"),
        ("document", "image/jpeg", "zip", "image_unsupported"),
        ("document", "video/mp4", "png", None),
        ("video", "video/mp4", "jpeg", None),
        ("document", "video/mp4", "gif_anim", None),
        ("document", "video/mp4", "text", "video_unreadable"),
        ("animation", "video/mp4", "zip", "video_unreadable"),
    ],
)
async def test_mime_type_that_lies_is_overruled_by_the_bytes(
    env: Env,  # noqa: F811
    kind: str,
    mime: str,
    content: str,
    reason: str | None,
) -> None:
    owner = await env.owner(1)
    data = JUNK.get(content) or seeds()[content]
    p = await env.start()
    out = await (await p.submit(env.photo(owner, "x", data, kind=kind, mime=mime))).result()
    assert (out.status, out.reason) == ("failed" if reason else "saved", reason)
    if content in ("png", "jpeg", "webp"):
        assert out.timestamps == (None,)  # one picture, not a video frame
    if content == "gif_anim" and mime.startswith("video/"):
        assert len(out.timestamps) >= 1 and out.timestamps[0] == 0.0


def test_still_picture_called_a_video_is_recognised() -> None:
    from core.media.image import looks_like_still_image

    for kind in ("png", "jpeg", "bmp", "tiff"):
        assert looks_like_still_image(seeds()[kind][:32]), kind
    for kind in ("gif_anim", "webp_anim", "mp4"):
        assert not looks_like_still_image(seeds()[kind][:32]), kind
    assert not looks_like_still_image(JUNK["text"][:32])


# --- the guards ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("probe", "error"),
    [
        (None, VideoTooComplexError),
        (Probe(False), UnreadableVideoError),
        (Probe(True, width=16384, height=16384), VideoTooLargeError),
        (Probe(True, width=64, height=48, first_frame=(8000, 8000)), VideoTooLargeError),
        (Probe(True, peak_extra=PROBE_MEMORY + 1, width=64, height=48), VideoTooComplexError),
        (Probe(True, reserved_extra=PROBE_RESERVED + 1), VideoTooComplexError),
    ],
)
def test_video_probe_outcomes_become_typed_errors(
    probe: Probe | None, error: type[Exception], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(video_probe, "probe_video", lambda path, timeout_s: probe)
    with pytest.raises(error):
        video_probe.check_video(tmp_path / "v.mp4")


def test_video_probe_passes_an_ordinary_video(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    path.write_bytes(seeds()["mp4"])
    probe = video_probe.check_video(path)
    assert (probe.width, probe.height, probe.first_frame) == (64, 48, (48, 64))
    assert 0 < probe.peak_extra < PROBE_MEMORY


def test_video_probe_times_out(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    path.write_bytes(seeds()["mp4"])
    assert video_probe.probe_video(path, timeout_s=0.001) is None


def test_deadline_interrupts_a_python_loop() -> None:
    t0 = time.perf_counter()
    with pytest.raises(DecodeDeadline), deadline(0.05):
        while True:
            pass
    assert time.perf_counter() - t0 < 1.0


def test_deadline_that_does_not_fire_leaves_nothing_behind() -> None:
    for _ in range(200):
        with deadline(5.0):
            sum(range(100))
    with deadline(None):
        pass
    assert sum(range(10**6)) > 0  # a stray interrupt would land in this loop
    assert all(watch.done for *_, watch in decode_guard._watchdog._heap)


def test_deadlines_in_two_threads_are_independent() -> None:
    results: dict[str, str] = {}

    def spin(name: str, seconds: float) -> None:
        try:
            with deadline(seconds):
                end = time.perf_counter() + 0.3
                while time.perf_counter() < end:
                    pass
            results[name] = "finished"
        except DecodeDeadline:
            results[name] = "interrupted"

    threads = [
        threading.Thread(target=spin, args=("short", 0.05)),
        threading.Thread(target=spin, args=("long", 5.0)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"short": "interrupted", "long": "finished"}


def test_many_chunks_are_cut_by_the_deadline() -> None:
    t0 = time.perf_counter()
    with pytest.raises(ImageTooComplexError):
        decode_image(png_many_chunks(400_000), timeout_s=SHORT_S)
    assert time.perf_counter() - t0 < 2.0


def test_every_decode_error_has_a_precise_reply() -> None:
    from bot.reports import has_reason, reason_text
    from core.errors import ImageError, VideoError

    def family(cls: type) -> list[type]:
        return [sub for c in cls.__subclasses__() for sub in (c, *family(c))]

    for cls in family(ImageError) + family(VideoError):
        for lang in ("ru", "en"):
            assert has_reason(cls.code), cls.code
            short, sentence = (reason_text(cls.code, lang, short=s) for s in (True, False))
            assert short and sentence.endswith("."), (cls.code, lang)
