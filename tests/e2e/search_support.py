"""Fixtures for tests of search, inline mode and groups: the pictures and videos collections
are filled with, the models they run on, and the settings of such a bot.

The running bot itself (the production wiring against the fake server, and its helpers to fill
a collection and read the answers) is :mod:`tests.e2e.botapp`.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from bot.config import BotAppSettings
from tests.e2e.backends import database_url
from tests.e2e.fake_telegram import FakeTelegramServer, SentMessage, StoredFile

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models"
BUNDLES = ("clip-fixture", "ruclip-fixture")

# What the collections hold in most tests: (colour, shape) rendered by the fixture trainer. One
# blue item only: the small fixture models tell colours apart far better than shapes.
SHAPES: tuple[tuple[str, str], ...] = (
    ("blue", "square"),
    ("red", "square"),
    ("green", "square"),
    ("yellow", "circle"),
    ("red", "circle"),
    ("green", "triangle"),
    ("red", "star"),
    ("purple", "star"),
)


def fixture_models_present() -> bool:
    return all((FIXTURES / n / "config.json").is_file() for n in BUNDLES)


def model_dirs(work: Path, *, quality: bool) -> list[Path]:
    """A test that judges ranking (``quality``) gets the trained fixture bundles, and skips
    without them. Any other runs on a small generated model whose every score passes the
    relevance floor, so its answers always have hits (their order means nothing) whatever the
    fixture models' calibration."""
    if quality:
        if not fixture_models_present():
            pytest.skip(f"fixture models missing in {FIXTURES} (python -m tools train-fixture)")
        return [FIXTURES / name for name in BUNDLES]
    from tests.core.onnx_builders import write_bundle

    tiny = work / "tiny-model"
    if not (tiny / "config.json").is_file():
        write_bundle(tiny, languages=("en", "ru"), relevance_floor=-1.0)
    return [tiny]


def shape_jpeg(
    colour: str, shape: str, *, seed: int = 0, size: tuple[int, int] = (320, 240)
) -> bytes:
    """A photo of one coloured shape, as a camera (or Telegram) would deliver it: JPEG."""
    from tests.fixtures.tooling.shapes import render_shape_photo

    buf = io.BytesIO()
    render_shape_photo(colour, shape, seed=seed, size=size).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def scenes_mp4(path: Path, scenes: Iterable[tuple[float, Image.Image]], *, fps: int = 10) -> bytes:
    """An MP4 (mp4v) of still scenes: ``(seconds, picture)`` one after the other."""
    import cv2

    scenes = list(scenes)
    w, h = scenes[0][1].size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened(), "cannot write mp4v video here"
    try:
        for seconds, picture in scenes:
            frame = cv2.cvtColor(np.asarray(picture.convert("RGB")), cv2.COLOR_RGB2BGR)
            for _ in range(round(seconds * fps)):
                writer.write(frame)
    finally:
        writer.release()
    return path.read_bytes()


@dataclass(frozen=True)
class Seeded:
    """One item put into a collection: the file the fake knows and the stored media id."""

    file: StoredFile
    media_id: int

    @property
    def file_id(self) -> str:
        return self.file.file_id


@dataclass
class Answer:
    """What the bot sent for one query: the media messages, then the closing text message."""

    media: list[SentMessage]
    text: SentMessage

    @property
    def file_ids(self) -> list[str]:
        return [m.file_id for m in self.media if m.file_id]


def make_settings(
    server: FakeTelegramServer, data_dir: Path, *, quality: bool = True, **overrides: Any
) -> BotAppSettings:
    values: dict[str, Any] = {
        "bot_token": server.token,
        "telegram_api_base": server.url,
        "data_dir": data_dir,
        "model_dirs": model_dirs(data_dir.parent, quality=quality),
        "embed_threads": 1,
        "send_pace_per_chat_s": 0.0,
        "album_wait_s": 0.1,
        "telegram_retry_backoff_s": 0.0,
        "ingest_retry_backoff_s": 0.0,
        "index_memory_budget_mb": 64,
    }
    values.update(overrides)
    values.setdefault("database_url", database_url(Path(values["data_dir"])))
    return BotAppSettings(_env_file=None, **values)  # type: ignore[call-arg]


def file_ids(items: Mapping[Any, Seeded]) -> set[str]:
    return {s.file_id for s in items.values()}
