"""The fetch/decode workers: each takes a claimed job, answers a known file as a duplicate
before any download, else fetches and decodes it and hands it to the embedder."""

from __future__ import annotations

import asyncio
import logging

from core.errors import ImageFinderError, JobStateError, UnknownOwnerError
from core.ingest.decode import ItemLoader
from core.ingest.intake import JobIntake
from core.ingest.outcomes import OutcomeDelivery
from core.ingest.ready import ReadyBuffer
from core.ingest.request import IngestRequest
from core.ingest.slots import durable
from core.ingest.tickets import TicketBook
from storage import Database, Job

log = logging.getLogger(__name__)

__all__ = ["DecodeWorker"]


class DecodeWorker:
    """One worker loop (:meth:`run`); several run side by side. A worker never dies on one
    item: an unexpected error sends the job back to ``pending``."""

    def __init__(
        self,
        db: Database,
        intake: JobIntake,
        book: TicketBook,
        loader: ItemLoader,
        ready: ReadyBuffer,
        outcomes: OutcomeDelivery,
    ) -> None:
        self._db = db
        self._intake = intake
        self._book = book
        self._loader = loader
        self._ready = ready
        self._outcomes = outcomes

    async def run(self) -> None:
        queue = self._intake.jobs
        while True:
            job = await queue.get()
            queued = False
            try:
                queued = await self._prepare(job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug for one item must not stop the worker
                log.exception("ingest job %d failed unexpectedly", job.id)
                await self._outcomes.fail(job, None, exc, retry=True)
            finally:
                queue.task_done()
                if not queued:
                    self._intake.settle()

    async def _prepare(self, job: Job) -> bool:
        """Fetch and decode one job; True when it went on to the embedder."""
        try:
            request = IngestRequest.from_job(job)
        except (TypeError, ValueError) as exc:
            await self._outcomes.fail(job, None, ValueError(f"unreadable job payload: {exc}"))
            return False
        if await self._answer_known(job, request):
            return False
        try:
            prepared = await self._loader.load(job, request, self._book.get(job.id))
        except (ImageFinderError, OSError) as exc:
            # Bad content and exhausted fetches are final; OSError reading a local path too.
            await self._outcomes.fail(job, request, exc)
            return False
        await self._ready.put(prepared)
        return True

    async def _answer_known(self, job: Job, request: IngestRequest) -> bool:
        """A file the owner already has ends the job as a duplicate; True when it did."""
        store = self._db.owner(job.owner_id)
        existing = await store.media.find(request.file_unique_id)
        if existing is None:
            return False
        try:
            if request.local is not None:
                await durable(store.local_files.put(request.local, existing.id))
            await durable(store.jobs.finish(job.id, media_id=existing.id, duplicate=True))
        except (JobStateError, UnknownOwnerError) as exc:
            await self._outcomes.fail(job, request, exc)
            return True
        await self._outcomes.duplicate(job, request, existing.id)
        return True
