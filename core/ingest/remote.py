"""Submitting from a front end whose jobs inference workers run (INGEST_REMOTE=true).

The front end persists each request as a durable job, exactly as the pipeline does, and
returns the same :class:`~core.ingest.tickets.Ticket`; the workers (``python -m bot worker``,
any machine) claim, embed and commit it. Storage's notices of finished jobs
(:func:`storage.job_feed.finished_jobs`) say which tickets to resolve from their job rows (state,
media id, duplicate flag and the ``outcome`` JSON); every ``poll_s`` of silence, and after a
reconnect, all awaited jobs are read again. Progress fractions do not travel; a saved item
reports 1.0.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from contextlib import aclosing
from typing import Any

from core.errors import JobStateError
from core.ingest.outcomes import tell_listener
from core.ingest.request import (
    IngestOutcome,
    IngestRequest,
    NearDuplicate,
    OutcomeCallback,
    ProgressCallback,
)
from core.ingest.slots import durable
from core.ingest.tickets import Ticket, TicketBook
from storage import Database, Job
from storage.job_feed import finished_jobs

log = logging.getLogger(__name__)

__all__ = ["RemoteTickets", "outcome_of", "request_of", "take_over"]

POLL_S = 5.0  # re-read awaited jobs after this long without a notice


class RemoteTickets:
    """``submit`` / ``submit_many`` as :class:`~core.ingest.pipeline.IngestPipeline` has
    them, for a database (PostgreSQL) that workers elsewhere serve. ``queue_size``: at most
    this many unfinished tickets before a submit waits (the backpressure)."""

    def __init__(
        self,
        db: Database,
        *,
        queue_size: int,
        poll_s: float = POLL_S,
        on_outcome: OutcomeCallback | None = None,
    ) -> None:
        if not db.shared:
            raise ValueError("remote ingest needs a shared (PostgreSQL) database")
        self._db = db
        self._book = TicketBook(queue_size)
        self.poll_s = poll_s
        self._on_outcome = on_outcome
        self._lock = asyncio.Lock()  # a job's ticket exists before its notification is handled
        self._listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def idle(self) -> bool:
        """No ticket of this process waits for a worker."""
        return len(self._book) == 0

    async def start(self) -> None:
        """Listen for finished jobs (returns once the first LISTEN is in place)."""
        if self.running:
            return
        self._book.open()
        self._listening.clear()
        self._task = asyncio.create_task(self._listen(), name="ingest-remote-listener")
        listening = asyncio.ensure_future(self._listening.wait())
        await asyncio.wait({listening, self._task}, return_when=asyncio.FIRST_COMPLETED)
        listening.cancel()
        if self._task.done():
            self._task.result()  # raises the listener's failure

    async def stop(self) -> None:
        """Stop listening; waiting callers get IngestInterruptedError (their jobs go on)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._book.close()

    # --- submitting -----------------------------------------------------------------------------

    async def submit(
        self, request: IngestRequest, *, progress: ProgressCallback | None = None
    ) -> Ticket:
        """Persist the request as a job; the ticket resolves when a worker finished it."""
        return (await self._submit([request], [progress]))[0]

    async def submit_many(self, requests: Iterable[IngestRequest]) -> list[Ticket]:
        """Several requests, one transaction per owner; tickets in the order of ``requests``."""
        items = list(requests)
        return await self._submit(items, [None] * len(items))

    async def _submit(
        self, requests: list[IngestRequest], progress: list[ProgressCallback | None]
    ) -> list[Ticket]:
        if not self.running:
            raise RuntimeError("start() remote ingest before submitting")
        if not requests:
            return []
        by_owner: dict[int, list[int]] = {}
        for i, request in enumerate(requests):
            by_owner.setdefault(request.owner_id, []).append(i)
        tickets: list[Ticket | None] = [None] * len(requests)
        async with self._lock:
            for owner_id, positions in by_owner.items():
                payloads = [requests[i].to_payload() for i in positions]
                jobs = self._db.owner(owner_id).jobs
                ids = await durable(jobs.enqueue_many(payloads, front=self._db.worker))
                for i, job_id in zip(positions, ids, strict=True):
                    tickets[i] = self._book.issue(job_id, requests[i], progress[i])
        await self._book.wait_for_room()
        return [t for t in tickets if t is not None]

    # --- listening ------------------------------------------------------------------------------

    async def _listen(self) -> None:
        """Resolve tickets as notices arrive; a failed check waits for the next notice."""
        feed = finished_jobs(self._db.connections, quiet_s=self.poll_s, alive_as=self._db.worker)
        async with aclosing(feed):
            async for job_ids in feed:
                self._listening.set()
                try:
                    await self.check(job_ids)
                except Exception:
                    log.exception("reading finished jobs failed; trying again at the next notice")

    async def check(self, job_ids: Iterable[int] | None = None) -> int:
        """Resolve the tickets of those of ``job_ids`` (None: of every awaited job, after taking
        over what stopped front ends owed) whose jobs finished; returns how many."""
        if job_ids is None:
            await self.adopt()
        async with self._lock:
            held = {t.job_id: t for t in self._book}
            wanted = [i for i in job_ids if i in held] if job_ids is not None else list(held)
        if not wanted:
            return 0
        jobs = await self._db.queue.by_ids(wanted)
        resolved: list[int] = []
        for job_id in wanted:
            outcome = _finished(jobs.get(job_id), held[job_id])
            if outcome is not None:
                resolved.append(job_id)
                await self._resolve(outcome)
        await self._db.owed.settle(resolved, self._db.worker)
        return len(resolved)

    async def adopt(self) -> int:
        """Answer for front ends that stopped: their finished jobs are told to the listener
        now, their running ones when they finish. Returns how many jobs are awaited anew."""
        unfinished = await take_over(self._db, self._tell)
        albums = [job.id for job, r in unfinished if r.facts.album_id is not None]
        await self._db.owed.settle(albums, self._db.worker)  # the album's shared answer
        async with self._lock:
            for job, request in unfinished:
                if request.facts.album_id is None:
                    self._book.issue(job.id, request, None)
        return len(unfinished) - len(albums)

    async def _tell(self, outcome: IngestOutcome) -> None:
        await tell_listener(self._on_outcome, outcome)

    async def _resolve(self, outcome: IngestOutcome) -> None:
        if await self._book.settle(outcome):
            await tell_listener(self._on_outcome, outcome)


async def take_over(
    db: Database, tell: Callable[[IngestOutcome], Awaitable[None]], *, embeds: bool = False
) -> list[tuple[Job, IngestRequest]]:
    """Make this process owe what front ends no longer running owed (storage.owed_answers;
    ``embeds``: this process embeds them too). Finished jobs are told now and owed no more,
    except album items, whose album's shared answer (bot.shared_albums) covers them; returns
    the unfinished jobs with their requests."""
    jobs = await db.owed.adopt(db.worker, embeds=embeds)
    told: list[int] = []
    unfinished: list[tuple[Job, IngestRequest]] = []
    for job in jobs:
        request = request_of(job)
        if job.state not in ("done", "failed"):
            unfinished.append((job, request))
            continue
        if request.facts.album_id is None:
            await tell(outcome_of(job, request))
        told.append(job.id)
    if jobs:
        log.info("took over %d job(s) of front ends no longer running", len(jobs))
    await db.owed.settle(told, db.worker)
    return unfinished


def request_of(job: Job) -> IngestRequest:
    """The request a job was queued for; a stand-in naming the job if its payload is damaged."""
    try:
        return IngestRequest.from_job(job)
    except (TypeError, ValueError):
        return IngestRequest.of(job.owner_id, "photo", f"job-{job.id}")


def _finished(job: Job | None, ticket: Ticket) -> IngestOutcome | None:
    """The outcome of a finished (or vanished) job, None while it is pending or running."""
    if job is None:  # the owner deleted everything meanwhile
        return IngestOutcome(
            "failed",
            ticket.job_id,
            ticket.request,
            reason=JobStateError.code,
            message=f"job {ticket.job_id} no longer exists",
        )
    if job.state not in ("done", "failed"):
        return None
    return outcome_of(job, ticket.request)


def outcome_of(job: Job, request: IngestRequest) -> IngestOutcome:
    """A finished job's :class:`IngestOutcome`, rebuilt from its row."""
    data: dict[str, Any] = job.outcome or {}
    if job.state == "failed":
        code, _, message = (job.last_error or "").partition(": ")
        return IngestOutcome(
            "failed",
            job.id,
            request,
            reason=data.get("reason") or code or "internal",
            message=data.get("message") or message or job.last_error,
        )
    if job.duplicate:
        return IngestOutcome("duplicate", job.id, request, media_id=job.media_id)
    near = data.get("near_duplicate_of")
    return IngestOutcome(
        "saved",
        job.id,
        request,
        media_id=job.media_id,
        unit_ids=tuple(int(u) for u in data.get("unit_ids", ())),
        timestamps=tuple(data.get("timestamps", ())),
        near_duplicate_of=NearDuplicate(int(near[0]), float(near[1])) if near else None,
        thumbnail_only=bool(data.get("thumbnail_only", False)),
    )
