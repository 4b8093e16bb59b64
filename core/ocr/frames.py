"""The pictures of a stored item that OCR reads, fetched again like re-embedding does: a photo
or image document decoded near OCR resolution, a video's kept frames at their stored
timestamps (on the sampler's own frame clock, :func:`core.media.frame_clock.frames_at`), and
for an item known only by its thumbnail, the thumbnail."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from typing import Protocol, TypeVar

from PIL import Image

from core.ingest.decode import thumbnail_image
from core.ingest.fetch import Fetcher
from core.ingest.request import IngestRequest
from core.media.frame_clock import frames_at
from core.media.image import DECODE_MARGIN, DRAFT_MARGIN, decode_image
from storage.ocr_queue import OcrItem

__all__ = ["MAX_FRAMES", "Runner", "executor_runner", "join_texts", "load_pictures", "spread"]

# Frames of one video read at most: text on screen stays for seconds, and the kept frames are
# already one per moment; this bounds a long video's memory and time.
MAX_FRAMES = 16
T = TypeVar("T")


class Runner(Protocol):
    """Runs a blocking function off the event loop and awaits its result."""

    def __call__(self, fn: Callable[[], T], /) -> Awaitable[T]: ...


async def load_pictures(
    fetcher: Fetcher,
    item: OcrItem,
    max_side: int,
    run: Runner,
) -> list[Image.Image]:
    """The item's pictures in unit order; ``run(fn)`` runs a blocking decode off the loop.
    Raises what fetching and decoding raise (FetchError, ImageError, VideoError, OSError)."""
    request = IngestRequest.from_media(item.owner_id, item.media)
    kinds = {u.kind for u in item.units}
    pictures: list[Image.Image] = []
    if "image" in kinds:
        data = await fetcher(request, thumbnail=False)
        size = max(1, round(max_side / 2 / DECODE_MARGIN))  # shorter side >= max_side / 2

        def decode() -> Image.Image:
            return decode_image(data, target_size=size)

        pictures.append(await run(decode))
    frames = [float(u.timestamp or 0.0) for u in item.units if u.kind == "frame"]
    if frames:
        data = await fetcher(request, thumbnail=False)
        times = spread(frames, MAX_FRAMES)
        size = max(1, round(max_side / 2 / DRAFT_MARGIN))

        def sample() -> list[Image.Image]:
            return [f.image for f in frames_at(data, times, target_size=size)]

        pictures += await run(sample)
    if "thumbnail" in kinds:
        data = await fetcher(request, thumbnail=True)
        pictures.append(await run(lambda: thumbnail_image(data, None)))
    return pictures


def spread(values: Sequence[float], limit: int) -> list[float]:
    """At most ``limit`` of ``values``, evenly spread over them (first and last kept)."""
    if len(values) <= limit:
        return list(values)
    if limit == 1:
        return [values[0]]
    step = (len(values) - 1) / (limit - 1)
    return [values[round(i * step)] for i in range(limit)]


def join_texts(texts: Sequence[str]) -> str:
    """The texts of several pictures as one, each line once (a caption burnt into a video
    shows on many frames), in first-seen order."""
    seen: set[str] = set()
    out: list[str] = []
    for text in texts:
        for line in text.splitlines():
            key = " ".join(line.casefold().split())
            if key and key not in seen:
                seen.add(key)
                out.append(line.strip())
    return "\n".join(out)


def executor_runner(executor: Executor) -> Runner:
    """``run(fn)`` for :func:`load_pictures`: ``fn`` in ``executor``, awaited on the loop."""

    async def run(fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, fn)

    return run
