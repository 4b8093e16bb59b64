"""Every shot of a video becomes a moment: partial cuts, short clips, pans, fades, flashes, a
long still camera and animations, on videos generated here; then a search that finds the
second shot of a clip through the engine with the fixture models."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from core.ingest.moments import distinct_moments
from core.media.video import Frame, sample_frames, sample_video
from core.settings import VideoSettings
from tests.core.test_video import solid, times, write_video

W, H = 160, 90
GREY, RED, BLUE, WHITE = (128, 128, 128), (0, 0, 255), (255, 0, 0), (255, 255, 255)  # BGR
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def still_room(size: tuple[int, int] = (W, H)) -> np.ndarray:
    """A background that never changes: a grey wall with a shelf and a dark door."""
    w, h = size
    f = solid(GREY, size)
    cv2.rectangle(f, (0, int(h * 0.7)), (w - 1, h - 1), (90, 110, 130), -1)
    cv2.rectangle(f, (int(w * 0.75), int(h * 0.15)), (int(w * 0.9), int(h * 0.7)), (40, 50, 60), -1)
    return f


def with_subject(subject: str | None, size: tuple[int, int] = (W, H)) -> np.ndarray:
    """The still room with a small subject at the same place (about 3% of the frame)."""
    f = still_room(size)
    cx, cy = size[0] * 3 // 10, size[1] // 2
    if subject == "red circle":
        cv2.circle(f, (cx, cy), 12, RED, -1)
    elif subject == "blue square":
        cv2.rectangle(f, (cx - 12, cy - 12), (cx + 12, cy + 12), BLUE, -1)
    elif subject == "person":  # stepped in at the left edge
        cv2.rectangle(f, (4, cy - 25), (22, cy + 25), (60, 80, 200), -1)
    return f


def mean_colour(frame: Frame, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.asarray(frame.image)[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)


def old_difference(a: np.ndarray, b: np.ndarray) -> float:
    """What the sampler used to compare: the whole-frame mean of 64x36 thumbnails."""
    small = [cv2.resize(x, (64, 36), interpolation=cv2.INTER_AREA) for x in (a, b)]
    return float(cv2.absdiff(*small).mean()) / 255.0


# --- a cut in part of the frame -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"), [("red circle", "blue square"), (None, "person"), ("red circle", None)]
)
def test_a_cut_in_part_of_the_frame_is_a_new_moment(
    tmp_path: Path, before: str | None, after: str | None
) -> None:
    first, second = with_subject(before), with_subject(after)
    assert old_difference(first, second) < 0.05  # far below the whole-frame threshold
    path = write_video(tmp_path / "cut.mp4", lambda t, _: first if t < 12.3 else second, 30, fps=10)
    ts = times(sample_frames(path))
    assert ts[0] == 0.0
    # Found when it happens, not only by a frame forced seconds later.
    assert any(12.3 <= t <= 12.8 for t in ts), ts


def test_a_short_clip_of_two_shots_gives_two_moments(tmp_path: Path) -> None:
    first, second = with_subject("red circle"), with_subject("blue square")
    path = write_video(tmp_path / "two.mp4", lambda t, _: first if t < 3 else second, 6, fps=10)
    frames = sample_frames(path)
    assert len(frames) >= 2
    cx, cy = W * 3 // 10, H // 2
    subject = (cx - 6, cy - 6, cx + 6, cy + 6)
    colours = [mean_colour(f, subject) for f in frames]  # RGB
    assert colours[0][0] > 200 and colours[0][2] < 60  # red first
    assert any(c[2] > 200 and c[0] < 60 for c in colours[1:])  # the blue square is a moment


def test_a_subtle_change_in_a_short_clip_still_gets_a_frame(tmp_path: Path) -> None:
    # Too faint for the scene threshold anywhere, but a short clip is looked at several times.
    def faint(t: float, _: np.random.Generator) -> np.ndarray:
        f = still_room()
        if t >= 2.5:
            cv2.rectangle(f, (40, 30), (70, 60), (150, 150, 150), -1)  # a pale sheet on the wall
        return f

    path = write_video(tmp_path / "faint.mp4", faint, 6, fps=10)
    ts = times(sample_frames(path))
    assert ts[0] == 0.0 and any(t >= 2.5 for t in ts), ts
    # A still shot gets no extra frames from that: nothing changed.
    room = still_room()
    path = write_video(tmp_path / "still.mp4", lambda t, _: room, 6, fps=10)
    assert times(sample_frames(path)) == [0.0]


# --- camera moves, fades and flashes ------------------------------------------------------------


def textured_canvas(width: int, seed: int = 3) -> np.ndarray:
    """A wide scene full of detail (smoothed noise and shapes), as a pan would cross."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (H // 6, width // 6, 3), dtype=np.uint8)
    canvas = cv2.resize(noise, (width, H), interpolation=cv2.INTER_CUBIC)
    for x in range(20, width, 70):
        cv2.circle(canvas, (x, 30 + x % 40), 10, (255, 255, 255), -1)
    return canvas


def test_a_slow_pan_gives_a_few_frames_not_one_a_second(tmp_path: Path) -> None:
    speed, seconds = 8.0, 20.0  # pixels a second: the whole view is new after 20 s
    canvas = textured_canvas(W + int(speed * seconds) + 1)
    frames = [canvas[:, round(speed * t) : round(speed * t) + W] for t in np.arange(0, 20, 0.1)]
    assert old_difference(frames[0], frames[10]) > 0.1  # every second looked like a cut

    def pan(t: float, _: np.random.Generator) -> np.ndarray:
        return frames[min(round(t * 10), len(frames) - 1)]

    path = write_video(tmp_path / "pan.mp4", pan, seconds, fps=10)
    ts = times(sample_frames(path))
    assert ts[0] == 0.0 and ts[-1] >= 12.0, ts  # the end of the pan is still seen
    assert len(ts) <= 8, ts


def test_a_fade_ends_on_a_clean_frame_of_the_new_scene(tmp_path: Path) -> None:
    red, blue = solid(RED).astype(np.float32), solid(BLUE).astype(np.float32)

    def fade(t: float, _: np.random.Generator) -> np.ndarray:
        k = min(max((t - 4.0) / 4.0, 0.0), 1.0)
        return (red * (1 - k) + blue * k).round().astype(np.uint8)

    path = write_video(tmp_path / "fade.mp4", fade, 12, fps=10)
    frames = sample_frames(path)
    assert len(frames) <= 7, times(frames)
    assert frames[-1].timestamp >= 8.0, times(frames)  # after the fade, not during it
    rgb = [mean_colour(f, (0, 0, W, H)) for f in frames]
    assert rgb[0][0] > 245 and rgb[0][2] < 10  # red
    assert rgb[-1][2] > 245 and rgb[-1][0] < 10  # blue, not a mix


def test_a_flash_is_not_a_moment(tmp_path: Path) -> None:
    room = with_subject("red circle")
    flashes = {50, 150, 151}  # a one-frame flash at 2 s and a two-frame one at 6 s (25 fps)

    def flash(t: float, _: np.random.Generator) -> np.ndarray:
        return solid(WHITE) if round(t * 25) in flashes else room

    path = write_video(tmp_path / "flash.mp4", flash, 8, fps=25)
    frames = sample_frames(path)
    assert [f.timestamp for f in frames] == [0.0]
    assert all(mean_colour(f, (0, 0, W, H)).mean() < 200 for f in frames)


# --- an hour of a still camera --------------------------------------------------------------------


def test_an_hour_of_a_still_camera_keeps_its_few_events(tmp_path: Path) -> None:
    size = (64, 36)
    room = still_room(size)
    car = room.copy()
    cv2.rectangle(car, (20, 22), (31, 29), RED, -1)  # a small car on the road, 4% of the frame
    events = [(1012, 1015), (2017, 2020), (3023, 3026)]  # off the forced-frame grid

    def camera(t: float, rng: np.random.Generator) -> np.ndarray:
        base = car if any(a <= t < b for a, b in events) else room
        noisy = base.astype(np.int16) + rng.integers(-3, 4, base.shape)
        return np.clip(noisy, 0, 255).astype(np.uint8)

    assert old_difference(room, car) < 0.05
    path = write_video(tmp_path / "hour.mp4", camera, 3600, fps=1, size=size)
    sample = sample_video(path, VideoSettings(max_frames=120))
    assert sample.info.duration == pytest.approx(3600)
    ts = times(sample.frames)
    assert len(ts) <= 120
    for a, b in events:
        inside = [f for f in sample.frames if a <= f.timestamp < b]
        assert inside, (a, ts)
        assert mean_colour(inside[0], (21, 23, 30, 28))[0] > 200  # the car is in the picture


# --- animations ---------------------------------------------------------------------------------


def test_an_animation_with_a_new_subject_gives_two_moments() -> None:
    shots = [with_subject("red circle")] * 15 + [with_subject("blue square")] * 15
    pictures = [Image.fromarray(cv2.cvtColor(f, cv2.COLOR_BGR2RGB)) for f in shots]
    for i, p in enumerate(pictures):  # Pillow merges identical neighbours into one frame
        p.putpixel((W - 1, H - 1), (i * 8 % 256, 0, 0))
    buf = io.BytesIO()
    pictures[0].save(buf, "GIF", save_all=True, append_images=pictures[1:], duration=100, loop=0)
    ts = times(sample_frames(buf.getvalue()))
    assert ts == pytest.approx([0.0, 1.5], abs=0.11)  # compared every 0.2 s


# --- merging by what the model sees -------------------------------------------------------------


def test_frames_the_model_sees_alike_merge_into_the_moment_before() -> None:
    def unit(*xs: float) -> np.ndarray:
        v = np.asarray(xs, np.float32)
        return v / np.linalg.norm(v)

    a, a2, b, b2 = unit(1, 0, 0), unit(1, 0.05, 0), unit(0, 1, 0), unit(0.05, 1, 0)
    drift = [unit(1, 0.2 * i, 0) for i in range(6)]  # slow drift: compared with the kept one
    one = {"m": np.stack([a, a2, b, b2, a])}
    assert distinct_moments(one, 0.95) == [0, 2, 4]
    assert distinct_moments({"m": np.stack(drift)}, 0.97) == [0, 2, 4]
    assert distinct_moments(one, 1.0) == [0, 1, 2, 3, 4]  # turned off
    # Every model must agree the frames are alike.
    two = {"m": one["m"], "n": np.stack([a, b, b, b2, a])}
    assert distinct_moments(two, 0.95) == [0, 1, 2, 4]


# --- end to end: the second shot is found by a text query ---------------------------------------


async def test_the_second_shot_of_a_clip_is_found_by_what_it_shows(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    bundle = FIXTURES / "clip-fixture"
    if not (bundle / "config.json").is_file():
        pytest.skip("fixture models missing")
    from core.engine.engine import Engine
    from core.ingest.fetch import local_fetcher
    from core.ingest.request import IngestRequest
    from core.search.query import Query
    from core.settings import Settings
    from tests.fixtures.tooling.shapes import render_shape_photo

    first, second = two_shots()
    path = write_video(
        tmp_path / "clip.mp4", lambda t, _: first if t < 3 else second, 6, fps=10, size=(480, 240)
    )
    photo = tmp_path / "photo.png"
    render_shape_photo("green", "triangle", seed=4).save(photo)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        model_dirs=[bundle],
        embed_threads=1,
    )
    async with await Engine.open(settings, fetch=local_fetcher()) as engine:
        assert engine.pipeline is not None
        owner = (await engine.db.owners.ensure("local", "test")).id
        saved = []
        for kind, file in (("video", path), ("photo", photo)):
            request = IngestRequest.of(owner, kind, file.name, path=str(file))  # type: ignore[arg-type]
            saved.append(await (await engine.pipeline.submit(request)).result())
        video = saved[0]
        assert video.saved and len(video.unit_ids) >= 2, video

        result = await engine.search.search(owner, Query(text="a blue square"))
        assert result.hits, result.reason
        hit = result.hits[0]
        assert hit.media.id == video.media_id
        assert hit.timestamp is not None and hit.timestamp >= 3.0
        first_hit = (await engine.search.search(owner, Query(text="a red star"))).hits[0]
        assert first_hit.media.id == video.media_id and first_hit.timestamp == 0.0


def two_shots() -> tuple[np.ndarray, np.ndarray]:
    """A red star, then a blue square in its place before the very same background (BGR)."""
    from tests.fixtures.tooling.shapes import render_shape_photo

    size = (480, 240)
    star = np.asarray(render_shape_photo("red", "star", seed=1, size=size))
    square = np.asarray(render_shape_photo("blue", "square", seed=2, size=size))

    def mask(rgb: np.ndarray, channel: int) -> np.ndarray:
        x = rgb.astype(np.int16)
        others = np.delete(x, channel, axis=2).max(axis=2)
        return ((x[..., channel] - others) > 60).astype(np.uint8)

    star_mask = cv2.dilate(mask(star, 0), np.ones((5, 5), np.uint8))
    room = cv2.inpaint(star, star_mask * 255, 5, cv2.INPAINT_TELEA)
    second = room.copy()
    square_mask = mask(square, 2).astype(bool)
    second[square_mask] = square[square_mask]
    assert old_difference(star, second) < 0.1  # the old sampler saw one shot
    return cv2.cvtColor(star, cv2.COLOR_RGB2BGR), cv2.cvtColor(second, cv2.COLOR_RGB2BGR)
