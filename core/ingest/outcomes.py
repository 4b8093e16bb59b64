"""Outcome delivery: how a job's end reaches its waiting caller (the ticket), the optional
``on_outcome`` listener, and, for a failure, the job row (back to ``pending`` or ``failed``)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable

from core.errors import ImageFinderError, JobStateError, UnknownOwnerError
from core.ingest.request import IngestOutcome, IngestRequest, OutcomeCallback
from core.ingest.slots import durable
from core.ingest.tickets import TicketBook
from storage import Database, Job

log = logging.getLogger(__name__)

__all__ = ["OutcomeDelivery", "error_code"]


async def tell_listener(listener: OutcomeCallback | None, outcome: IngestOutcome) -> None:
    """Hand an outcome to the process's listener; its failure never fails the job."""
    if listener is None:
        return
    try:
        result = listener(outcome)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("outcome callback failed for job %d", outcome.job_id)


def error_code(exc: BaseException) -> str:
    """The :mod:`core.errors` code an outcome reports for ``exc``."""
    return exc.code if isinstance(exc, ImageFinderError) else "internal"


class OutcomeDelivery:
    """Resolves tickets and records failures. ``on_retry`` is called when a failed job went
    back to ``pending`` (the feeder may claim it again)."""

    def __init__(
        self,
        db: Database,
        book: TicketBook,
        on_retry: Callable[[], None],
        on_outcome: OutcomeCallback | None = None,
    ) -> None:
        self._db = db
        self._book = book
        self._on_retry = on_retry
        self._on_outcome = on_outcome

    async def resolve(self, outcome: IngestOutcome) -> None:
        """The caller's ticket (when this process holds it), then the listener."""
        await self._book.settle(outcome)
        await tell_listener(self._on_outcome, outcome)

    async def duplicate(self, job: Job, request: IngestRequest, media_id: int) -> None:
        """The owner already had this file: ``media_id`` is the stored one."""
        await self.resolve(IngestOutcome("duplicate", job.id, request, media_id=media_id))

    async def fail(
        self, job: Job, request: IngestRequest | None, exc: BaseException, *, retry: bool = False
    ) -> None:
        """Record a failure; with ``retry`` the job goes back to ``pending`` while the database
        allows more claims, else the caller hears ``failed``."""
        code, message = error_code(exc), str(exc) or type(exc).__name__
        state = "failed"
        try:
            state = await durable(
                self._db.owner(job.owner_id).jobs.fail(
                    job.id,
                    f"{code}: {message}",
                    retry=retry,
                    outcome={"reason": code, "message": message},
                )
            )
        except (JobStateError, UnknownOwnerError):
            pass  # the owner deleted everything meanwhile: the job is gone
        except Exception:
            log.exception("cannot record the failure of job %d", job.id)
        if state == "pending":
            log.warning("job %d failed (%s: %s); will retry", job.id, code, message)
            self._on_retry()
            return
        log.info("job %d failed: %s: %s", job.id, code, message)
        if request is None:
            request = _request_of(job)
        await self.resolve(IngestOutcome("failed", job.id, request, reason=code, message=message))


def _request_of(job: Job) -> IngestRequest:
    """The job's request for its outcome, or a stand-in when the payload is unreadable."""
    try:
        return IngestRequest.from_job(job)
    except (TypeError, ValueError):
        return IngestRequest.of(job.owner_id, "photo", f"job-{job.id}")
