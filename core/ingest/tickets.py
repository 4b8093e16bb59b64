"""The caller's side of a submitted job: a :class:`Ticket` to await, and the :class:`TicketBook`
of this process's unfinished tickets that bounds them (the pipeline's backpressure)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

from core.errors import IngestInterruptedError
from core.ingest.request import IngestOutcome, IngestRequest, ProgressCallback

log = logging.getLogger(__name__)

__all__ = ["Progress", "Ticket", "TicketBook"]


class Progress:
    """Forwards fractions to a callback: clamped, never decreasing, each value at most once.
    Call :meth:`report` on the event loop and :meth:`threadsafe` from a worker thread."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._last = -1.0

    def report(self, fraction: float) -> None:
        if self._callback is None:
            return
        fraction = min(max(float(fraction), 0.0), 1.0)
        if fraction <= self._last:
            return
        self._last = fraction
        try:
            self._callback(fraction)
        except Exception:  # the bot's message edit failing must not fail the item
            log.exception("progress callback failed")

    def threadsafe(self, scale: float) -> Callable[[float], None] | None:
        if self._callback is None:
            return None
        loop = asyncio.get_running_loop()

        def relay(fraction: float) -> None:
            loop.call_soon_threadsafe(self.report, fraction * scale)

        return relay


class Ticket:
    """A submitted job: ``await ticket.result()`` returns its :class:`IngestOutcome` once the
    job is committed (or failed); raises :class:`~core.errors.IngestInterruptedError` if the
    pipeline stops first (the job itself stays in the database and resumes at next start)."""

    def __init__(
        self,
        job_id: int,
        request: IngestRequest,
        future: asyncio.Future[IngestOutcome],
        progress: ProgressCallback | None,
    ) -> None:
        self.job_id = job_id
        self.request = request
        self._future = future
        self._progress = Progress(progress)

    def __repr__(self) -> str:
        return f"Ticket(job_id={self.job_id}, done={self.done()})"

    def done(self) -> bool:
        return self._future.done()

    async def result(self) -> IngestOutcome:
        return await asyncio.shield(self._future)

    def report_progress(self, fraction: float) -> None:
        """On the event loop: the job is ``fraction`` (0..1) done."""
        self._progress.report(fraction)

    def progress_relay(self, scale: float) -> Callable[[float], None] | None:
        """A callback for a worker thread whose 0..1 maps to ``0..scale`` of the job (None when
        nobody listens, so the thread skips the work of reporting)."""
        return self._progress.threadsafe(scale)

    def resolve(self, outcome: IngestOutcome) -> None:
        """The job ended: a success first reports 1.0, then the waiting caller gets it."""
        if outcome.status != "failed":
            self._progress.report(1.0)
        if not self._future.done():
            self._future.set_result(outcome)

    def interrupt(self) -> None:
        """The pipeline stopped before the job finished; it resumes at the next start."""
        if self._future.done():
            return
        self._future.set_exception(
            IngestInterruptedError(
                f"stopped before job {self.job_id} finished; it resumes at next start"
            )
        )
        self._future.exception()  # retrieved: no "never retrieved" warning


class TicketBook:
    """The tickets of this process's unfinished jobs, by job id. A submit waits for room (at
    most ``limit`` unfinished) until :meth:`close`; every resolved ticket makes room."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._tickets: dict[int, Ticket] = {}
        self._room = asyncio.Condition()
        self._open = False

    def __len__(self) -> int:
        return len(self._tickets)

    def __iter__(self) -> Iterator[Ticket]:
        return iter(list(self._tickets.values()))

    def open(self) -> None:
        self._room = asyncio.Condition()
        self._open = True

    def issue(
        self, job_id: int, request: IngestRequest, progress: ProgressCallback | None
    ) -> Ticket:
        """Register the ticket of a job just made durable."""
        ticket = Ticket(job_id, request, asyncio.get_running_loop().create_future(), progress)
        self._tickets[job_id] = ticket
        return ticket

    def get(self, job_id: int) -> Ticket | None:
        return self._tickets.get(job_id)

    async def wait_for_room(self) -> None:
        """Return once at most ``limit`` tickets are unfinished, or the book was closed."""
        async with self._room:
            await self._room.wait_for(lambda: len(self._tickets) <= self.limit or not self._open)

    async def settle(self, outcome: IngestOutcome) -> bool:
        """Resolve the job's ticket, if this process holds one; True when it did."""
        ticket = self._tickets.pop(outcome.job_id, None)
        if ticket is None:
            return False
        ticket.resolve(outcome)
        async with self._room:
            self._room.notify_all()
        return True

    def seal(self) -> None:
        """Stopping: submits still waiting for room return at the next resolved ticket."""
        self._open = False

    async def close(self) -> None:
        """Interrupt every unfinished ticket and release the submits waiting for room."""
        self._open = False
        for ticket in list(self._tickets.values()):
            ticket.interrupt()
        self._tickets.clear()
        async with self._room:
            self._room.notify_all()
