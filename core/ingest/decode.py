"""Turning a fetched item into the pictures to embed: a photo decoded once at the largest model
input size, a video sampled into frames, or a too-large video's thumbnail (all in threads,
never on the event loop)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.errors import FileTooLargeError, ImageError, UnreadableThumbnailError
from core.ingest.fetch import Fetcher
from core.ingest.moments import distinct_moments
from core.ingest.request import IngestRequest
from core.ingest.tickets import Ticket
from core.media.image import decode_image, looks_like_still_image
from core.media.video import frame_from_thumbnail, sample_video
from core.settings import VideoSettings
from storage import Job, NewUnit

__all__ = ["SAMPLING_SHARE", "ItemLoader", "PreparedItem", "thumbnail_image"]

# Share of a video's progress spent sampling; embedding and the commit take the rest.
SAMPLING_SHARE = 0.9


@dataclass(slots=True)
class PreparedItem:
    """A job whose bytes were fetched and decoded, waiting for the embedder."""

    job: Job
    request: IngestRequest
    ticket: Ticket | None
    units: list[NewUnit]
    images: list[Image.Image]
    measured: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.images)

    @property
    def thumbnail_only(self) -> bool:
        return any(u.kind == "thumbnail" for u in self.units)

    def merge_moments(
        self, vectors: dict[str, np.ndarray], similarity: float
    ) -> dict[str, np.ndarray]:
        """Drop a video's frames that repeat the moment before them (see
        :func:`~core.ingest.moments.distinct_moments`), from this item and from the returned
        vectors; the earlier frame's timestamp stays."""
        if len(self.units) < 2 or any(u.kind != "frame" for u in self.units):
            return vectors
        keep = distinct_moments(vectors, similarity)
        if len(keep) == len(self.units):
            return vectors
        self.units = [self.units[i] for i in keep]
        self.images = [self.images[i] for i in keep]
        return {m: v[keep] for m, v in vectors.items()}


class ItemLoader:
    """Fetches one job's bytes (with retries) and decodes them for the models."""

    def __init__(self, fetcher: Fetcher, sampling: VideoSettings, target_size: int) -> None:
        self._fetcher = fetcher
        self._sampling = sampling
        self.target_size = target_size

    async def load(self, job: Job, request: IngestRequest, ticket: Ticket | None) -> PreparedItem:
        """The item's units and pictures. A video whose file is too large to fetch falls back
        to its thumbnail when it names one."""
        thumbnail = request.too_large
        data: bytes | Path | None = None
        if not thumbnail:
            try:
                data = await self._fetcher(request, thumbnail=False)
            except FileTooLargeError:
                if not (request.is_video and request.has_thumbnail):
                    raise
                thumbnail = True
        if thumbnail:
            return await self._load_thumbnail(job, request, ticket)
        assert data is not None
        if request.is_video and not await asyncio.to_thread(_is_still_image, data):
            return await self._sample(job, request, ticket, data)
        img = await asyncio.to_thread(decode_image, data, target_size=self.target_size)
        return PreparedItem(job, request, ticket, [NewUnit.image()], [img])

    async def _load_thumbnail(
        self, job: Job, request: IngestRequest, ticket: Ticket | None
    ) -> PreparedItem:
        thumb = await self._fetcher(request, thumbnail=True)
        try:
            image = await asyncio.to_thread(thumbnail_image, thumb, self.target_size)
        except ImageError as exc:
            raise UnreadableThumbnailError(f"the thumbnail does not decode: {exc}") from exc
        return PreparedItem(job, request, ticket, [NewUnit.thumbnail()], [image])

    async def _sample(
        self, job: Job, request: IngestRequest, ticket: Ticket | None, data: bytes | Path
    ) -> PreparedItem:
        sample = await asyncio.to_thread(
            sample_video,
            data,
            self._sampling,
            target_size=self.target_size,
            progress=ticket.progress_relay(SAMPLING_SHARE) if ticket else None,
        )
        info = sample.info
        return PreparedItem(
            job,
            request,
            ticket,
            [NewUnit.frame(f.timestamp) for f in sample.frames],
            [_rgb(f.image) for f in sample.frames],
            {"width": info.width, "height": info.height, "duration": info.duration},
        )


def _rgb(img: Image.Image) -> Image.Image:
    return img if img.mode == "RGB" else img.convert("RGB")


def _is_still_image(data: bytes | Path) -> bool:
    """A "video" whose bytes are a still picture (the MIME type lied): decode it as one."""
    if isinstance(data, Path):
        with data.open("rb") as f:
            head = f.read(32)
    else:
        head = data[:32]
    return looks_like_still_image(head)


def thumbnail_image(data: bytes | Path, target_size: int | None) -> Image.Image:
    """The picture standing in for a video too large to fetch (blocking: call in a thread)."""
    raw = data.read_bytes() if isinstance(data, Path) else data
    return _rgb(frame_from_thumbnail(raw, target_size=target_size).image)
