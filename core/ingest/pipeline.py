"""The ingest pipeline: from "the user sent a photo" to "it is searchable", losing nothing.

    pipeline = IngestPipeline(db, embedder, index, settings.ingest, fetch, video=settings.video)
    await pipeline.start()                       # requeues work a stopped process left behind
    ticket = await pipeline.submit(IngestRequest.of(owner_id, "photo", unique_id, file_id=...))
    outcome = await ticket.result()              # only after the commit
    await pipeline.stop()                        # finishes what it holds, writes the indexes

How a job flows, and why:

1. **Persist first.** :meth:`IngestPipeline.submit` writes the request as a durable job row
   (``pending``) before anything else, so a crash after ``submit`` returns cannot lose it.
2. **Claim.** One feeder task claims pending jobs from SQLite (``JobQueue.claim``,
   round-robin across owners, so one owner's thousand-photo backlog does not starve another
   owner's single photo) into a bounded queue of ``queue_size`` jobs. SQLite is the real queue:
   jobs left by a stopped process are found the same way as new ones.
3. **Fetch and decode** (``workers`` tasks). A known ``(owner, file_unique_id)`` is answered
   as a duplicate before any download. Otherwise the bytes come from the ``fetch`` callback
   (the bot downloads from Telegram, the folder CLI reads a file); a failing fetch is retried
   with a doubling delay (``FetchError(retryable=False)`` is not retried). Photos are decoded
   and videos sampled in threads, never on the event loop, at the largest input size of the
   loaded models (one decode serves every model). Decoded items wait in a buffer bounded by a
   number of images, so a few long videos cannot fill the memory.
4. **Embed** (one task). Whatever is ready, across owners, is batched up to ``batch_size``
   images and embedded with EVERY loaded model (one ``encode_images`` call per model per
   batch). If a batch fails, its items are retried one by one so one bad item fails alone.
5. **Near-duplicate check**, per item: its vector (a video's first frame) for the owner's
   primary model is searched in the owner's index; a stored unit at cosine >=
   ``near_duplicate_threshold`` is reported as ``near_duplicate_of``. The item is still saved:
   a re-encoded copy and a burst of similar shots look alike, and only the user can tell
   whether they want both (the bot can offer to delete one).
6. **Commit** the item, its units, its vectors and the job's ``done`` state in ONE transaction
   (``OwnerMedia.commit``), then add the vectors to the indexes with the versions that
   transaction returned. Only then is the caller's ticket resolved: "saved" is never said of
   something a crash could still lose. A duplicate found at commit time (the same photo
   forwarded twice at once) stores nothing and resolves as ``duplicate``.

Failures are typed (``IngestOutcome.reason`` is an error ``code`` from :mod:`core.errors`):
unreadable images and videos fail at once (``image_truncated``, ``video_empty``, ...), fetches
after ``max_attempts`` tries (``fetch``, ``file_gone``, ``file_too_large``), an unexpected error
goes back to ``pending`` until the database's own claim limit (a job that keeps failing, or
keeps killing the process, ends ``failed``). A worker never dies on one item.

Videos, animations, video notes (and documents whose mime type is ``video/*`` or
``image/gif``) are sampled with :func:`core.media.video.sample_video`; after embedding, a frame the
models see as the moment before it (``video_merge_similarity``) merges into it, and each frame
left is a unit with its timestamp. A request marked ``too_large`` (or whose fetch raises
:class:`~core.errors.FileTooLargeError` while it names a thumbnail) is indexed from its
thumbnail: one ``thumbnail`` unit, and the item's status is ``thumbnail``. ``progress`` receives
fractions in ``[0, 1]``, never decreasing, on the event loop: sampling maps to ``0..0.9`` and
``1.0`` comes after the commit.

Models: every loaded model embeds every new item. An owner's *slots* (``ActiveModels.
active()``, slot = the bundle's ``name``) say which models answer for it; after its first
commit in a process an owner that has no slots gets one per loaded model whose vectors are
complete, and :mod:`core.ingest.reembed` fills in and switches the rest.

The job payload is :meth:`IngestRequest.to_payload` (JSON). A claim is a lease the feeder
renews (``lease_s``, INGEST_LEASE_S): on SQLite one process owns the database and start-up puts
jobs left ``running`` back to ``pending``; on a shared database (PostgreSQL, several inference
workers, ``python -m bot worker``) start-up leaves other workers' jobs alone, a dead worker's
jobs are claimed again when their lease runs out, and a stop hands back at once what it could
not finish. A finished job records its outcome (``jobs.outcome``), from which a front end on
another machine answers (:mod:`core.ingest.remote`).

This module wires the stages together; each lives in a module of its own: the request and
outcome (:mod:`core.ingest.request`), tickets (:mod:`~core.ingest.tickets`), durable intake and
the feeder (:mod:`~core.ingest.intake`), fetch (:mod:`~core.ingest.fetch`), decode
(:mod:`~core.ingest.decode`, :mod:`~core.ingest.worker`, :mod:`~core.ingest.ready`), embedding
(:mod:`~core.ingest.embedding`), commit (:mod:`~core.ingest.commit`), outcome delivery
(:mod:`~core.ingest.outcomes`) and the owner's model slots (:mod:`~core.ingest.slots`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from core.index.manager import IndexManager
from core.ingest.commit import ItemCommitter
from core.ingest.decode import ItemLoader
from core.ingest.embedding import BatchEncoder, EmbedLoop
from core.ingest.fetch import Fetch, Fetcher
from core.ingest.intake import JobIntake
from core.ingest.limits import IngestLimits
from core.ingest.outcomes import OutcomeDelivery
from core.ingest.ready import ReadyBuffer
from core.ingest.remote import take_over
from core.ingest.request import (
    IngestOutcome,
    IngestRequest,
    OutcomeCallback,
    ProgressCallback,
)
from core.ingest.slots import durable, model_slot
from core.ingest.tickets import Ticket, TicketBook
from core.ingest.worker import DecodeWorker
from core.models.embedder import AsyncEmbedder
from core.settings import IngestSettings, VideoSettings
from storage import Database

log = logging.getLogger(__name__)

# On a shared database an idle feeder is woken by other processes' notices, and looks for
# claims whose lease ran out this often (at most half a lease).
SHARED_POLL_S = 5.0

# The pipeline's own API, with the types of its signatures (their homes are named above).
__all__ = [
    "Fetch",
    "IngestOutcome",
    "IngestPipeline",
    "IngestRequest",
    "OutcomeCallback",
    "ProgressCallback",
    "Ticket",
]


class IngestPipeline:
    """The ingest pipeline (see the module docstring). Numbers given as None come from
    ``settings`` (INGEST_*), video sampling from ``video`` (VIDEO_*)."""

    def __init__(
        self,
        db: Database,
        embedder: AsyncEmbedder,
        index: IndexManager,
        settings: IngestSettings,
        fetch: Fetch,
        *,
        video: VideoSettings,
        workers: int | None = None,
        queue_size: int | None = None,
        batch_size: int | None = None,
        max_attempts: int | None = None,
        retry_backoff_s: float | None = None,
        near_duplicate_threshold: float | None = None,
        lease_s: float | None = None,
        on_outcome: OutcomeCallback | None = None,
        own_jobs: bool = False,
    ) -> None:
        self._db = db
        # A front end on a shared database embedding what it queues (INGEST_REMOTE=false): it
        # works on its own jobs only and takes over those of front ends that stopped.
        self._front = db.worker if own_jobs and db.shared else None
        self._index = index
        self.limits = IngestLimits.resolve(
            settings,
            video,
            workers=workers,
            queue_size=queue_size,
            batch_size=batch_size,
            max_attempts=max_attempts,
            retry_backoff_s=retry_backoff_s,
            near_duplicate_threshold=near_duplicate_threshold,
            lease_s=lease_s,
        )
        self.models: tuple[str, ...] = embedder.model_ids
        configs = {m: embedder.get(m).config for m in self.models}
        self.slots: dict[str, str] = {}
        for model_id in self.models:  # the last model listed with a name owns its slot
            self.slots[model_slot(configs[model_id])] = model_id
        self.target_size = max(c.image.size for c in configs.values())
        self._wire(embedder, video, fetch, on_outcome)
        self._tasks: list[asyncio.Task[None]] = []
        self._feeder: asyncio.Task[None] | None = None
        self._running = False
        self.requeued = (0, 0)  # (requeued, failed) by the last start()

    def _wire(
        self,
        embedder: AsyncEmbedder,
        video: VideoSettings,
        fetch: Fetch,
        on_outcome: OutcomeCallback | None,
    ) -> None:
        """Build the stages, each handed only what it works with."""
        lim, db = self.limits, self._db
        self._book = TicketBook(lim.queue_size)
        self._intake = JobIntake(
            db,
            self._book,
            queue_size=lim.queue_size,
            batch_size=lim.batch_size,
            backoff_s=lim.retry_backoff_s,
            lease_s=lim.lease_s,
            poll_s=min(SHARED_POLL_S, lim.lease_s / 2) if db.shared else None,
            front=self._front,
        )
        self._outcomes = OutcomeDelivery(db, self._book, self._intake.wake, on_outcome)
        self.ready = ReadyBuffer(lim.batch_size)
        fetcher = Fetcher(fetch, attempts=lim.max_attempts, backoff_s=lim.retry_backoff_s)
        loader = ItemLoader(fetcher, video, self.target_size)
        self._worker = DecodeWorker(
            db, self._intake, self._book, loader, self.ready, self._outcomes
        )
        committer = ItemCommitter(
            db,
            self._index,
            self._outcomes,
            models=self.models,
            slots=self.slots,
            near_duplicate_threshold=lim.near_duplicate_threshold,
            merge_similarity=lim.merge_similarity,
        )
        encoder = BatchEncoder(embedder, self.models)
        self._embed = EmbedLoop(self.ready, encoder, committer, self._outcomes, self._intake)

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        """Put jobs a stopped process left ``running`` back to ``pending`` (or ``failed`` after
        too many claims; not on a shared database, where they may be other workers' and leases
        say when a holder died), then start the feeder, the lease renewal, the fetch/decode
        workers and the embedder."""
        if self._running:
            return
        if not self._db.shared:
            self.requeued = await durable(self._db.queue.requeue_running())
        if any(self.requeued):
            log.info("start-up: %d job(s) requeued, %d failed", *self.requeued)
        self.ready.reset()
        self._book.open()
        self._intake.open()
        self._running = True
        self._feeder = asyncio.create_task(self._intake.feed(), name="ingest-feeder")
        self._tasks = [
            asyncio.create_task(self._worker.run(), name=f"ingest-worker-{i}")
            for i in range(self.limits.workers)
        ]
        self._tasks.append(asyncio.create_task(self._embed.run(), name="ingest-embedder"))
        self._tasks.append(asyncio.create_task(self._intake.renew_leases(), name="ingest-leases"))
        if self._db.shared:
            follow = self._intake.follow_notices(self._take_over if self._front else None)
            self._tasks.append(asyncio.create_task(follow, name="ingest-notices"))

    async def _take_over(self) -> None:
        """Owe what stopped front ends owed: finished jobs are answered now, the others are
        claimed here (running ones once their lease ran out)."""
        await take_over(self._db, self._outcomes.resolve, embeds=True)

    async def stop(self, *, timeout: float | None = None) -> None:
        """Stop claiming, let the jobs already claimed finish (at most ``timeout`` seconds, then
        they are abandoned and resume at the next start, or at once elsewhere on a shared
        database), and write the changed indexes. Waiting callers of unfinished jobs get
        :class:`IngestInterruptedError`."""
        if not self._running:
            return
        self._running = False
        self._intake.close()
        self._book.seal()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - loop.time())

        with contextlib.suppress(TimeoutError):
            if self._feeder is not None:
                # Not cancelled mid-claim: it finishes handing over what it claimed, then ends.
                await asyncio.wait_for(asyncio.shield(self._feeder), left())
            await asyncio.wait_for(self._intake.wait_quiet(), left())
        await self._cancel_tasks()
        if self._db.shared:
            await self._intake.release()
        await self._book.close()
        self._intake.abandon()
        await self._index.flush()

    async def _cancel_tasks(self) -> None:
        if self._feeder is not None:
            self._feeder.cancel()
            await asyncio.gather(self._feeder, return_exceptions=True)
            self._feeder = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def __aenter__(self) -> IngestPipeline:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def join(self) -> None:
        """Wait until no job is pending or in progress (everything submitted so far, and
        everything left by an earlier run, has finished)."""
        if not self._running:
            raise RuntimeError("the pipeline is not running")
        await self._intake.wait_idle()

    @property
    def idle(self) -> bool:
        """Nothing pending or in progress right now (background work may go ahead)."""
        return not self._running or self._intake.idle

    async def wait_idle(self) -> None:
        """Return once nothing is pending or in progress (immediately when stopped)."""
        if self._running:
            await self._intake.wait_idle()

    # --- submitting -----------------------------------------------------------------------------

    async def submit(
        self, request: IngestRequest, *, progress: ProgressCallback | None = None
    ) -> Ticket:
        """Persist the request as a job, then hand it to the workers. Returns once the job is
        durable and fewer than ``queue_size`` of this process's jobs are unfinished (the
        backpressure). ``progress`` gets fractions 0..1 on the event loop (videos report
        sampling progress; every item ends with 1.0 once saved)."""
        return (await self._submit([request], [progress]))[0]

    async def submit_many(self, requests: Iterable[IngestRequest]) -> list[Ticket]:
        """Persist several requests (one transaction per owner: an album, a folder scan), then
        wait for room as :meth:`submit` does. Tickets are in the order of ``requests``."""
        items = list(requests)
        return await self._submit(items, [None] * len(items))

    async def _submit(
        self, requests: list[IngestRequest], progress: list[ProgressCallback | None]
    ) -> list[Ticket]:
        if not self._running:
            raise RuntimeError("start() the pipeline before submitting")
        if not requests:
            return []
        return await self._intake.submit(requests, progress)
