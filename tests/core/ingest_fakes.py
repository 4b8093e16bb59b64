"""A fake embedder and helpers for ingest and re-embedding tests (also used by a subprocess).

``GridEmbedder`` implements the :class:`core.models.embedder.Embedder` protocol without a model: an
image's vector is its 8x8 colour grid, centred on grey and normalised (optionally projected to
another dimension). Re-encoded copies of one picture land at cosine ~0.999, unrelated
photo-like pictures far below 0.95, which is all near-duplicate tests need.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.ingest.request import IngestRequest
from core.media.image import decode_image
from core.models.config import BundleConfig, ImageConfig, TextConfig
from core.models.embedder import AsyncEmbedder
from core.settings import Settings

GRID = 8


class GridEmbedder:
    """See the module docstring. ``before_call(n)`` runs in the embedder's lane before call
    ``n`` (0-based): tests block it to hold a batch; ``fail_if(image)`` makes an item fail."""

    def __init__(
        self,
        name: str = "grid",
        version: str = "1",
        *,
        size: int = 32,
        project: int | None = None,
        seed: int = 0,
    ) -> None:
        dim = project or GRID * GRID * 3
        self._config = BundleConfig(
            name=name,
            version=version,
            embed_dim=dim,
            languages=("en",),
            image=ImageConfig(size=size),
            text=TextConfig(context_length=8, tokenizer="hf"),
        )
        rng = np.random.default_rng(seed)
        self._projection = (
            rng.standard_normal((GRID * GRID * 3, project)).astype(np.float32) if project else None
        )
        self.calls: list[list[tuple[int, ...]]] = []  # per call: the first pixel of each image
        self.before_call: Callable[[int], None] | None = None
        self.fail_if: Callable[[Image.Image], bool] | None = None
        self._lock = threading.Lock()

    @property
    def config(self) -> BundleConfig:
        return self._config

    @property
    def model_id(self) -> str:
        return self._config.model_id

    def features(self, img: Image.Image) -> np.ndarray:
        grid = img.convert("RGB").resize((GRID, GRID), Image.Resampling.BOX)
        x = (np.asarray(grid, dtype=np.float32) / 255.0 - 0.5).reshape(-1)
        if self._projection is not None:
            x = x @ self._projection
        norm = float(np.linalg.norm(x))
        return x / norm if norm > 1e-9 else x

    def encode_images(self, sources: Sequence[Any]) -> np.ndarray:
        images = [_as_image(s) for s in sources]
        with self._lock:
            n = len(self.calls)
            self.calls.append([tuple(img.convert("RGB").getpixel((0, 0))) for img in images])
        if self.before_call is not None:
            self.before_call(n)
        if self.fail_if is not None:
            from core.errors import TruncatedImageError

            for i, img in enumerate(images):
                if self.fail_if(img):
                    raise TruncatedImageError(f"image {i}: refused by the test")
        if not images:
            return np.zeros((0, self._config.embed_dim), dtype=np.float32)
        return np.stack([self.features(img) for img in images]).astype(np.float32)

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        raise NotImplementedError("the ingest pipeline passes pictures, not pixels")

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for text in texts:
            rng = np.random.default_rng(abs(hash(text)) % 2**32)
            v = rng.standard_normal(self._config.embed_dim).astype(np.float32)
            out.append(v / np.linalg.norm(v))
        return np.stack(out)


def _as_image(src: Any) -> Image.Image:
    if isinstance(src, Image.Image):
        return src
    if isinstance(src, np.ndarray):
        return Image.fromarray(src)
    if isinstance(src, bytes | Path):
        return decode_image(src)
    raise TypeError(type(src).__name__)


def make_embedder(*embedders: GridEmbedder, batch: int = 64) -> AsyncEmbedder:
    return AsyncEmbedder(list(embedders), image_batch_size=batch)


def settings(tmp: Path, **overrides: Any) -> Settings:
    """Settings for tests: no .env, no retry delay, data under ``tmp``."""
    values: dict[str, Any] = {
        "data_dir": tmp,
        "ingest_retry_backoff_s": 0.0,
        "ingest_workers": 2,
        "ingest_queue_size": 16,
        "ingest_batch_size": 8,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def solid(color: tuple[int, int, int], size: tuple[int, int] = (48, 40)) -> Image.Image:
    """A picture whose first pixel names it; a diagonal split keeps its vector non-zero."""
    arr = np.zeros((size[1], size[0], 3), np.uint8)
    arr[:] = color
    yy, xx = np.mgrid[: size[1], : size[0]]
    arr[yy * size[0] > xx * size[1]] = (255 - color[0], 255 - color[1], 255 - color[2])
    arr[0, 0] = color
    return Image.fromarray(arr, "RGB")


class Files:
    """The fetch callback: bytes by ``file_id``; scripted failures per (file_id, thumbnail)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.thumbs: dict[str, bytes] = {}
        self.errors: dict[tuple[str, bool], list[BaseException]] = {}  # raised once each
        self.always: dict[tuple[str, bool], BaseException] = {}  # raised every time
        self.calls: list[tuple[str, bool]] = []
        self.fetched = asyncio.Event()
        self.wait_for = 0  # set ``fetched`` once this many calls were made
        self.gate: asyncio.Event | None = None  # when set up, calls past ``free`` wait for it
        self.free = 0

    async def __call__(self, request: IngestRequest, thumbnail: bool) -> bytes:
        key = request.facts.file_id or request.file_unique_id
        self.calls.append((key, thumbnail))
        if len(self.calls) >= self.wait_for:
            self.fetched.set()
        if self.gate is not None and len(self.calls) > self.free:
            await self.gate.wait()
        errors = self.errors.get((key, thumbnail))
        if errors:
            raise errors.pop(0)
        if (key, thumbnail) in self.always:
            raise self.always[(key, thumbnail)]
        return (self.thumbs if thumbnail else self.data)[key]

    def hold_after(self, free: int) -> asyncio.Event:
        """Let ``free`` more calls through, then make calls wait for the returned event;
        ``fetched`` is set once a call is waiting."""
        self.calls.clear()
        self.gate, self.free = asyncio.Event(), free
        self.expect(free + 1)
        return self.gate

    def expect(self, calls: int) -> None:
        """Set ``fetched`` once ``calls`` calls were made (counting from now)."""
        self.wait_for = len(self.calls) + calls
        self.fetched.clear()

    def count(self, key: str, thumbnail: bool = False) -> int:
        return self.calls.count((key, thumbnail))
