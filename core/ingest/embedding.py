"""The embedding stage: whatever is ready, across owners, is batched and embedded with EVERY
loaded model (one ``encode_images`` call per model per batch); a failing batch is retried item
by item so one bad item fails alone. Each item then goes to the committer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import numpy as np

from core.errors import ImageFinderError
from core.ingest.commit import ItemCommitter
from core.ingest.decode import PreparedItem
from core.ingest.intake import JobIntake
from core.ingest.outcomes import OutcomeDelivery
from core.ingest.ready import ReadyBuffer
from core.models.embedder import AsyncEmbedder

log = logging.getLogger(__name__)

__all__ = ["BatchEncoder", "EmbedLoop"]


class BatchEncoder:
    """Vectors for a batch of prepared items with each of ``models``."""

    def __init__(self, embedder: AsyncEmbedder, models: Sequence[str]) -> None:
        self._embedder = embedder
        self.models = tuple(models)

    async def encode(
        self, batch: Sequence[PreparedItem]
    ) -> tuple[list[dict[str, np.ndarray]], list[BaseException | None]]:
        """Vectors per item per model; an item whose images the model refuses gets an error
        (the batch is retried item by item to find it)."""
        vectors: list[dict[str, np.ndarray]] = [{} for _ in batch]
        errors: list[BaseException | None] = [None] * len(batch)
        for model_id in self.models:
            live = [i for i, e in enumerate(errors) if e is None]
            if not live:
                break
            images = [img for i in live for img in batch[i].images]
            try:
                out = await self._embedder.encode_images(images, model_id=model_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if len(live) == 1:
                    errors[live[0]] = exc
                    continue
                await self._one_by_one(batch, live, model_id, vectors, errors)
                continue
            start = 0
            for i in live:
                n = batch[i].size
                vectors[i][model_id] = out[start : start + n]
                start += n
        return vectors, errors

    async def _one_by_one(
        self,
        batch: Sequence[PreparedItem],
        live: list[int],
        model_id: str,
        vectors: list[dict[str, np.ndarray]],
        errors: list[BaseException | None],
    ) -> None:
        for i in live:
            try:
                vectors[i][model_id] = await self._embedder.encode_images(
                    batch[i].images, model_id=model_id
                )
            except asyncio.CancelledError:
                raise
            except Exception as item_exc:
                errors[i] = item_exc


class EmbedLoop:
    """The single embedding task (:meth:`run`): batch, encode, commit or fail each item."""

    def __init__(
        self,
        ready: ReadyBuffer,
        encoder: BatchEncoder,
        committer: ItemCommitter,
        outcomes: OutcomeDelivery,
        intake: JobIntake,
    ) -> None:
        self._ready = ready
        self._encoder = encoder
        self._committer = committer
        self._outcomes = outcomes
        self._intake = intake

    async def run(self) -> None:
        while True:
            batch = await self._ready.take_batch()
            settled = 0
            try:
                vectors, errors = await self._encoder.encode(batch)
                primaries: dict[int, str] = {}
                for item, vecs, error in zip(batch, vectors, errors, strict=True):
                    try:
                        await self._finish(item, vecs, error, primaries)
                    finally:
                        settled += 1
                        self._intake.settle()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("ingest batch failed unexpectedly")
                for item in batch[settled:]:
                    await self._outcomes.fail(item.job, item.request, exc, retry=True)
                    self._intake.settle()

    async def _finish(
        self,
        item: PreparedItem,
        vectors: dict[str, np.ndarray],
        error: BaseException | None,
        primaries: dict[int, str],
    ) -> None:
        """Commit one embedded item, or fail it (a known error is final, a bug is retried)."""
        try:
            if error is not None:
                known = isinstance(error, ImageFinderError)
                await self._outcomes.fail(item.job, item.request, error, retry=not known)
            else:
                await self._committer.commit(item, vectors, primaries)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("ingest job %d failed unexpectedly", item.job.id)
            await self._outcomes.fail(item.job, item.request, exc, retry=True)
