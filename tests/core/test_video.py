"""Frame sampling on videos generated here, with scene changes at known times."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, features

from core.errors import (
    EmptyImageError,
    EmptyVideoError,
    ImageError,
    UnreadableVideoError,
    VideoError,
)
from core.media.image import preprocess
from core.media.shots import Selector
from core.media.video import (
    Frame,
    VideoInfo,
    _Progress,
    _read_capture,
    frame_from_thumbnail,
    sample_frames,
    sample_video,
)
from core.models.config import ImageConfig
from core.settings import Settings, VideoSettings

W, H = 160, 90
RED, BLUE, GREEN, GREY = (0, 0, 255), (255, 0, 0), (0, 200, 0), (40, 40, 40)  # BGR

FrameFn = Callable[[float, np.random.Generator], np.ndarray]


def write_video(
    path: Path,
    draw: FrameFn,
    seconds: float,
    *,
    fps: float = 10.0,
    size: tuple[int, int] = (W, H),
    fourcc: str = "mp4v",
) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened(), f"cannot write {fourcc} here"
    rng = np.random.default_rng(0)
    try:
        for i in range(round(seconds * fps)):
            writer.write(draw(i / fps, rng))
    finally:
        writer.release()
    return path


def solid(color: tuple[int, int, int], size: tuple[int, int] = (W, H)) -> np.ndarray:
    return np.full((size[1], size[0], 3), color, np.uint8)


def scenes(t: float, rng: np.random.Generator) -> np.ndarray:
    """0-3 s red, 3-7 s blue, 7-25 s noisy green, 25-27 s a white box moving on grey."""
    if t < 3:
        return solid(RED)
    if t < 7:
        return solid(BLUE)
    if t < 25:
        noisy = solid(GREEN).astype(np.int16) + rng.integers(-8, 9, (H, W, 3))
        return np.clip(noisy, 0, 255).astype(np.uint8)
    f = solid(GREY)
    x = int((t - 25) / 2 * (W - 30))
    cv2.rectangle(f, (x, 20), (x + 30, 60), (255, 255, 255), -1)
    return f


CHANGES = (3.0, 7.0, 25.0)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="module")
def scenes_mp4(videos: Path) -> Path:
    return write_video(videos / "scenes.mp4", scenes, 27)


@pytest.fixture(scope="module")
def scenes_avi(videos: Path) -> Path:
    return write_video(videos / "scenes.avi", scenes, 27, fps=25, fourcc="MJPG")


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Route temporary files to a directory of our own so leftovers can be seen."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    yield d


def times(frames: list[Frame]) -> list[float]:
    return [f.timestamp for f in frames]


def assert_spacing(ts: list[float], min_gap: float, max_gap: float) -> None:
    gaps = np.diff(ts)
    assert (gaps >= min_gap - 1e-6).all(), ts
    assert (gaps <= max_gap + 1e-6).all(), ts


# --- scene changes and spacing ------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["scenes_mp4", "scenes_avi"])
def test_scene_changes_are_found_at_their_times(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    path: Path = request.getfixturevalue(fixture)
    progress: list[float] = []
    sample = sample_video(
        path, VideoSettings(min_gap_s=1.0, max_gap_s=10.0), progress=progress.append
    )
    ts = times(sample.frames)

    assert ts[0] == 0.0
    for change in CHANGES:
        assert any(change <= t <= change + 0.5 for t in ts), (change, ts)
    assert_spacing(ts, 1.0, 10.0)
    # The static green stretch gets forced frames, not one per analysed frame.
    assert 1 <= sum(7.5 < t < 25 for t in ts) <= 2, ts
    assert progress[-1] == 1.0
    assert progress == sorted(progress) and all(0.0 <= p <= 1.0 for p in progress)
    assert len(progress) > 10  # intermediate values, not only the final one


def test_frames_are_rgb_pictures_of_the_right_moment(scenes_mp4: Path) -> None:
    frames = sample_frames(scenes_mp4)
    by_time = {round(f.timestamp): f.image for f in frames}
    for second, rgb in ((0, (255, 0, 0)), (3, (0, 0, 255)), (7, (0, 200, 0))):
        img = by_time[second]
        assert img.mode == "RGB" and img.size == (W, H)
        mean = np.asarray(img).reshape(-1, 3).mean(axis=0)
        assert np.abs(mean - rgb).max() < 20, (second, mean)
    x = preprocess(frames[0].image, ImageConfig(size=32))
    assert x.shape == (3, 32, 32) and x.dtype == np.float32


def test_info_describes_the_video(scenes_mp4: Path, scenes_avi: Path) -> None:
    info = sample_video(scenes_mp4).info
    assert info == VideoInfo(duration=27.0, fps=10.0, frame_count=270, width=W, height=H)
    info = sample_video(scenes_avi).info
    assert (info.frame_count, info.fps, info.duration, info.truncated) == (675, 25.0, 27.0, False)


def test_bytes_input_gives_the_same_frames_and_leaves_no_file(
    scenes_mp4: Path, temp_dir: Path
) -> None:
    from_path = times(sample_frames(scenes_mp4))
    from_bytes = times(sample_frames(scenes_mp4.read_bytes()))
    assert from_bytes == from_path
    assert list(temp_dir.iterdir()) == []


def test_never_closer_than_min_gap_on_rapid_cuts(videos: Path) -> None:
    colours = [RED, BLUE, GREEN, GREY]
    path = write_video(
        videos / "cuts.mp4", lambda t, _: solid(colours[int(t / 0.3) % 4]), 6, fps=10
    )
    ts = times(sample_frames(path, VideoSettings(min_gap_s=1.0, max_gap_s=10.0)))
    assert_spacing(ts, 1.0, 10.0)
    assert len(ts) >= 5  # every second brings a new look, so each allowed slot is used
    ts = times(sample_frames(path, VideoSettings(min_gap_s=2.0, max_gap_s=10.0)))
    assert_spacing(ts, 2.0, 10.0)
    assert len(ts) == 3


def test_long_static_video_gets_a_frame_every_max_gap(videos: Path) -> None:
    path = write_video(
        videos / "static.mp4", lambda t, _: solid(GREEN, (64, 36)), 60, fps=5, size=(64, 36)
    )
    ts = times(sample_frames(path, VideoSettings(min_gap_s=1.0, max_gap_s=10.0)))
    assert ts == pytest.approx([0, 10, 20, 30, 40, 50])


def test_cap_spreads_forced_frames_over_the_whole_video(videos: Path) -> None:
    path = write_video(
        videos / "static2.mp4", lambda t, _: solid(GREEN, (64, 36)), 60, fps=5, size=(64, 36)
    )
    ts = times(sample_frames(path, VideoSettings(min_gap_s=1.0, max_gap_s=10.0, max_frames=3)))
    assert ts == pytest.approx([0, 20, 40])


def test_cap_keeps_the_most_distinct_frames(scenes_mp4: Path) -> None:
    everything = times(sample_frames(scenes_mp4))
    assert len(everything) > 3
    capped = times(sample_frames(scenes_mp4, VideoSettings(max_frames=3)))
    assert len(capped) == 3
    assert set(capped) <= set(everything)
    # red -> blue and blue -> green are the largest changes; grey with a box and the forced
    # frame in the green stretch are dropped first.
    assert capped == pytest.approx([0.0, 3.0, 7.0], abs=0.5)

    one = sample_frames(scenes_mp4, VideoSettings(max_frames=1))
    assert times(one) == [0.0]


def test_cap_drops_small_changes_even_when_they_came_first(videos: Path) -> None:
    def steps(t: float, _: np.random.Generator) -> np.ndarray:
        # Two small steps in brightness, then two strong colour cuts.
        return solid([(100,) * 3, (130,) * 3, (160,) * 3, RED, BLUE][min(int(t // 2), 4)])

    path = write_video(videos / "steps.mp4", steps, 10, fps=10)
    assert times(sample_frames(path)) == pytest.approx([0, 2, 4, 6, 8])
    assert times(sample_frames(path, VideoSettings(max_frames=3))) == pytest.approx([0, 6, 8])


def test_leading_black_is_skipped(videos: Path) -> None:
    path = write_video(
        videos / "black.mp4", lambda t, _: solid((0, 0, 0) if t < 2 else RED), 5, fps=10
    )
    ts = times(sample_frames(path))
    assert 2.0 <= ts[0] <= 2.5
    assert len(ts) == 1


def test_all_black_video_still_gives_one_frame(videos: Path) -> None:
    path = write_video(videos / "allblack.mp4", lambda t, _: solid((0, 0, 0)), 3, fps=10)
    frames = sample_frames(path)
    assert times(frames) == [0.0]


def test_target_size_shrinks_kept_frames(videos: Path) -> None:
    path = write_video(
        videos / "large.mp4",
        lambda t, _: solid(RED if t < 2 else BLUE, (640, 360)),
        4,
        fps=10,
        size=(640, 360),
    )
    frames = sample_frames(path, target_size=45)  # shorter side 2 * 45
    assert {f.image.size for f in frames} == {(160, 90)}
    frames = sample_frames(path, target_size=400)  # never enlarged
    assert {f.image.size for f in frames} == {(640, 360)}


def test_video_note_square(videos: Path) -> None:
    def note(t: float, _: np.random.Generator) -> np.ndarray:
        f = solid((30, 30, 30), (240, 240))
        cv2.circle(f, (120, 120), 100, RED if t < 2 else BLUE, -1)
        return f

    path = write_video(videos / "note.mp4", note, 4, fps=15, size=(240, 240))
    sample = sample_video(path.read_bytes(), target_size=224)
    assert (sample.info.width, sample.info.height) == (240, 240)
    ts = times(sample.frames)
    assert ts[0] == 0.0 and any(2.0 <= t <= 2.5 for t in ts)
    assert all(f.image.size == (240, 240) for f in sample.frames)


# --- animations (Pillow) ------------------------------------------------------------------------


def animation(fmt: str, durations: list[int], colours: list[tuple[int, int, int]]) -> bytes:
    # One pixel differs per frame, or Pillow merges identical neighbours into one frame.
    frames = [Image.new("RGB", (64, 48), c) for c in colours]
    for i, f in enumerate(frames):
        f.putpixel((63, 47), (i * 8 % 256, 0, 0))
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return buf.getvalue()


RGB_RED, RGB_BLUE, RGB_GREEN = (255, 0, 0), (0, 0, 255), (0, 200, 0)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_uses_each_frames_duration(fmt: str, tmp_path: Path) -> None:
    if fmt == "WEBP" and not features.check("webp"):
        pytest.skip("Pillow without WebP")
    # Four red frames of 0.5 s, then blue for 3 s, then green from 5.0 s.
    data = animation(fmt, [500, 500, 500, 500, 3000, 1000], [RGB_RED] * 4 + [RGB_BLUE, RGB_GREEN])
    progress: list[float] = []
    sample = sample_video(data, progress=progress.append)
    assert times(sample.frames) == pytest.approx([0.0, 2.0, 5.0])
    assert sample.info.duration == pytest.approx(6.0)
    assert sample.info.frame_count == 6
    assert (sample.info.width, sample.info.height) == (64, 48)
    colours = np.array([np.asarray(f.image)[0, 0] for f in sample.frames], dtype=np.int16)
    assert np.abs(colours - [RGB_RED, RGB_BLUE, RGB_GREEN]).max() <= 8  # WebP is lossy
    assert progress[-1] == 1.0 and progress == sorted(progress)

    path = tmp_path / f"a.{fmt.lower()}"
    path.write_bytes(data)
    assert times(sample_frames(path)) == times(sample.frames)


def test_gif_frames_without_duration_last_100_ms() -> None:
    data = animation("GIF", [0] * 30, [RGB_RED] * 20 + [RGB_BLUE] * 10)
    assert times(sample_frames(data)) == pytest.approx([0.0, 2.0])


def test_truncated_gif_keeps_the_frames_before_the_damage() -> None:
    colours = [(i * 20, 0, 255 - i * 20) for i in range(10)]
    data = animation("GIF", [1000] * 10, colours)
    sample = sample_video(data[: len(data) // 2])
    assert sample.info.truncated
    assert 1 <= sample.info.frame_count < 10
    assert sample.frames and sample.frames[0].timestamp == 0.0

    with pytest.raises(UnreadableVideoError):
        sample_video(data[:20])


# --- damaged and empty input --------------------------------------------------------------------


def test_zero_bytes(tmp_path: Path, temp_dir: Path) -> None:
    with pytest.raises(EmptyVideoError):
        sample_frames(b"")
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(EmptyVideoError):
        sample_frames(empty)
    assert list(temp_dir.iterdir()) == []


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnreadableVideoError, match="cannot read"):
        sample_frames(tmp_path / "nope.mp4")


def test_random_bytes(temp_dir: Path) -> None:
    data = np.random.default_rng(1).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    with pytest.raises(UnreadableVideoError):
        sample_frames(data)
    with pytest.raises(UnreadableVideoError):
        sample_frames(b"\x00\x00\x00\x18ftypmp42" + data)  # looks like MP4, is not
    assert list(temp_dir.iterdir()) == []


def test_truncated_mp4_fails_cleanly(scenes_mp4: Path, temp_dir: Path) -> None:
    data = scenes_mp4.read_bytes()
    with pytest.raises(UnreadableVideoError):  # the index (moov) is written at the end
        sample_frames(data[: len(data) // 2])
    assert list(temp_dir.iterdir()) == []


def test_truncated_avi_keeps_the_readable_part(videos: Path) -> None:
    path = write_video(videos / "cut.avi", scenes, 8, fps=10, fourcc="MJPG")
    data = path.read_bytes()
    sample = sample_video(data[: len(data) // 2])
    assert sample.info.truncated
    assert 0 < sample.info.frame_count < 80
    assert times(sample.frames)[0] == 0.0


def test_video_without_frames(videos: Path, temp_dir: Path) -> None:
    path = videos / "zero.avi"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H)).release()
    with pytest.raises(EmptyVideoError, match="no frames"):
        sample_frames(path.read_bytes())
    path = videos / "zero.mp4"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H)).release()
    with pytest.raises(VideoError):
        sample_frames(path)
    assert list(temp_dir.iterdir()) == []


def test_progress_callback_can_cancel(scenes_mp4: Path, temp_dir: Path) -> None:
    class Cancelled(Exception):
        pass

    def cancel(fraction: float) -> None:
        if fraction > 0.3:
            raise Cancelled

    with pytest.raises(Cancelled):
        sample_frames(scenes_mp4.read_bytes(), progress=cancel)
    assert list(temp_dir.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_gap_s": 5.0, "max_gap_s": 2.0},
        {"min_gap_s": -1.0},
        {"max_gap_s": 0.0, "min_gap_s": 0.0},
        {"max_frames": 0},
        {"scene_threshold": 0.0},
    ],
)
def test_bad_parameters(kwargs: dict[str, float], scenes_mp4: Path) -> None:
    with pytest.raises(ValueError):
        sample_frames(scenes_mp4, VideoSettings(**kwargs))  # type: ignore[arg-type]


def test_not_a_source() -> None:
    with pytest.raises(TypeError):
        sample_frames(42)  # type: ignore[arg-type]


# --- containers without a frame rate or frame count ---------------------------------------------


class FakeCapture:
    """A container reporting no frame rate and no frame count, like some WebM/GIF muxers."""

    def __init__(self, colours: list[tuple[int, int, int]], msec_step: float) -> None:
        self.colours = colours
        self.msec_step = msec_step
        self.index = -1

    def isOpened(self) -> bool:
        return True

    def get(self, prop: int) -> float:
        if prop == cv2.CAP_PROP_POS_MSEC:
            return max(self.index, 0) * self.msec_step
        return {cv2.CAP_PROP_FPS: 0.0, cv2.CAP_PROP_FRAME_COUNT: -1.0}.get(prop, 0.0)

    def grab(self) -> bool:
        self.index += 1
        return self.index < len(self.colours)

    def retrieve(self) -> tuple[bool, np.ndarray | None]:
        return True, solid(self.colours[self.index], (32, 18))

    def release(self) -> None:
        pass


def read_fake(cap: FakeCapture) -> tuple[VideoInfo, list[float], list[float]]:
    progress: list[float] = []
    selector = Selector(1.0, 10.0, 120, 0.1)
    info = _read_capture(
        cap, selector, _Progress(progress.append), analysis_fps=5.0, target_size=None
    )
    return info, times(selector.result()), progress


def test_unknown_rate_uses_the_decoder_clock() -> None:
    colours = [RED] * 60 + [BLUE] * 60  # 40 ms per frame: blue from 2.4 s
    info, ts, progress = read_fake(FakeCapture(colours, msec_step=40.0))
    assert ts == pytest.approx([0.0, 2.4])
    assert info.frame_count == 120 and info.duration == pytest.approx(4.8, abs=0.05)
    assert progress == []  # nothing to measure against without a frame count


def test_unknown_rate_and_clock_assume_25_fps() -> None:
    colours = [RED] * 50 + [BLUE] * 50
    info, ts, _ = read_fake(FakeCapture(colours, msec_step=0.0))
    assert ts == pytest.approx([0.0, 2.0])
    assert info.fps == pytest.approx(25.0)


# --- thumbnails and settings --------------------------------------------------------------------


def test_frame_from_thumbnail() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (320, 180), (10, 200, 30)).save(buf, "JPEG")
    frame = frame_from_thumbnail(buf.getvalue())
    assert frame.timestamp == 0.0
    assert frame.image.mode == "RGB" and frame.image.size == (320, 180)
    assert frame_from_thumbnail(buf.getvalue(), target_size=40).image.size[1] >= 80

    with pytest.raises(EmptyImageError):
        frame_from_thumbnail(b"")
    with pytest.raises(ImageError):
        frame_from_thumbnail(b"not a picture at all")


def test_video_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(_env_file=None).video  # type: ignore[call-arg]
    assert (s.min_gap_s, s.max_gap_s, s.max_frames) == (1.0, 10.0, 120)
    assert 0 < s.scene_threshold < 1
    monkeypatch.setenv("VIDEO_MAX_FRAMES", "7")
    monkeypatch.setenv("VIDEO_MIN_GAP_S", "2.5")
    s = Settings(_env_file=None).video  # type: ignore[call-arg]
    assert (s.max_frames, s.min_gap_s) == (7, 2.5)
    monkeypatch.setenv("VIDEO_MAX_GAP_S", "2")
    with pytest.raises(ValueError, match="VIDEO_MAX_GAP_S"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_sampling_with_settings(scenes_mp4: Path) -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    frames = sample_frames(scenes_mp4, s.video)
    assert times(frames) == times(sample_frames(scenes_mp4))
