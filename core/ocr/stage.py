"""The durable OCR stage: reads the text of every stored item in the background, after the item
is saved and searchable by its look, and puts it into the text index (source ``"ocr"``).

    stage = OcrStage(db, reader, fetch, settings.ocr, fetch_attempts=4, retry_backoff_s=1.0)
    await stage.start()       # 'running' rows of a stopped process go back to 'pending'
    stage.wake()              # new items were saved (the engine calls it on each outcome)
    await stage.drain()       # until nothing is pending (CLI, tests)
    await stage.rerun(owner)  # read every item of an owner (None: of all owners) again
    await stage.stop()

The work list is the ``ocr_state`` column of ``media`` (storage/ocr_queue.py): every item starts
'pending', so nothing in the commit path knows about OCR, and a crash loses nothing. Items are
claimed in small batches, round-robin across owners; each is fetched through the same callback
as ingest, decoded and read in the stage's own threads (never on the event loop).

A failure never touches the saved item: a file that is gone or cannot be decoded makes the row
'failed' with the error; a transient failure (network, a full disk) puts it back to 'pending'
until ``max_attempts`` claims, then 'failed'. With ``pipeline`` given, each batch first gives
way to ingest (waiting up to ``yield_s`` for it to be idle), so new items go first.

``owner_kinds`` scopes the stage to the owners whose files its ``fetch`` can get (the CLI:
``("local",)``, the bot: ``("user", "chat")``; None: every owner): claims, start-up recovery,
re-runs of everyone and ``drain`` see only those, so two front ends sharing a database never
fail each other's items.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor

from core.errors import FetchError, ImageError, ImageFinderError, OcrError, VideoError
from core.ingest.fetch import Fetch, Fetcher
from core.ingest.pipeline import IngestPipeline
from core.ocr.frames import executor_runner, join_texts, load_pictures
from core.ocr.reader import OcrReader
from core.settings import OcrSettings
from storage import Database, OwnerKind
from storage.leases import DEFAULT_LEASE_S
from storage.ocr_queue import OcrItem

log = logging.getLogger(__name__)

__all__ = ["OcrStage"]

# Without a wake-up, look for pending items this often anyway (items another process stored).
IDLE_POLL_S = 60.0


class OcrStage:
    """See the module docstring."""

    def __init__(
        self,
        db: Database,
        reader: OcrReader,
        fetch: Fetch,
        settings: OcrSettings,
        *,
        fetch_attempts: int = 4,
        retry_backoff_s: float = 1.0,
        pipeline: IngestPipeline | None = None,
        yield_s: float = 5.0,
        idle_poll_s: float = IDLE_POLL_S,
        owner_kinds: Collection[OwnerKind] | None = None,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> None:
        self._db = db
        self.lease_s = lease_s  # a claimed item's hold, renewed every third while it is read
        self.owner_kinds: frozenset[OwnerKind] | None = (
            frozenset(owner_kinds) if owner_kinds is not None else None
        )
        self.reader = reader
        self._fetch = Fetcher(fetch, attempts=fetch_attempts, backoff_s=retry_backoff_s)
        self.settings = settings
        self.pipeline = pipeline
        self.yield_s = yield_s
        self.idle_poll_s = idle_poll_s
        self._executor: ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._asked = 0  # wake-ups so far; a claim that starts after wake-up n sees its items
        self._drains: list[tuple[int, asyncio.Future[None]]] = []
        self._gate = asyncio.Semaphore(reader.threads)  # items with pictures in memory
        self.read = 0  # items read by this process (monitoring, tests)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Recover what a stopped process left 'running', then work in the background."""
        if self.running:
            return
        requeued = failed = 0
        if not self._db.shared:  # shared: other workers' items; leases tell who died
            requeued, failed = await self._db.ocr.requeue_running(
                max_attempts=self.settings.max_attempts, kinds=self.owner_kinds
            )
        if requeued or failed:
            log.info("OCR: %d interrupted item(s) resumed, %d given up", requeued, failed)
        self._executor = ThreadPoolExecutor(self.reader.threads, thread_name_prefix="ocr")
        self._task = asyncio.create_task(self._run(), name="ocr")
        self._task.add_done_callback(self._ended)

    async def stop(self) -> None:
        """Stop claiming; reads in flight finish in their threads, their items stay 'running'
        and are resumed at the next start. Frees the reader."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
        self.reader.close()

    def wake(self) -> None:
        """New items may be pending: claim now rather than at the next idle poll."""
        self._asked += 1
        self._wake.set()

    async def drain(self) -> None:
        """Return once every item in the stage's scope that was pending when called has been
        read or given up (items failing transiently are retried first). Raises when the stage
        is not running or its loop died."""
        if not self.running:
            raise OcrError("the OCR stage is not running")
        self.wake()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drains.append((self._asked, done))
        await done

    async def rerun(self, owner_id: int | None = None) -> int:
        """Read every item of ``owner_id`` (None: of every owner in the stage's scope) again;
        returns how many."""
        count = await self._db.ocr.rerun(owner_id, kinds=self.owner_kinds)
        self.wake()
        return count

    async def counts(self, owner_id: int | None = None) -> dict[str, int]:
        """Items per OCR state (progress for the CLI, monitoring)."""
        return await self._db.ocr.counts(owner_id, kinds=self.owner_kinds)

    # --- the loop -------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            asked = self._asked
            self._wake.clear()
            batch = await self._db.ocr.claim(
                self.settings.batch_size,
                kinds=self.owner_kinds,
                max_attempts=self.settings.max_attempts,
                lease_s=self.lease_s,
            )
            if not batch:
                self._drained(asked)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.idle_poll_s)
                continue
            await self._yield()
            renewing = asyncio.create_task(self._renew(batch))
            try:
                await asyncio.gather(*(self._one(item) for item in batch))
            finally:
                renewing.cancel()
                await asyncio.gather(renewing, return_exceptions=True)

    async def _renew(self, batch: list[OcrItem]) -> None:
        """Keep the batch's claims while it is read (slow pictures, a busy machine), so another
        worker takes an item over only when this one died."""
        keys = [(item.owner_id, item.media.id) for item in batch]
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                await self._db.ocr.renew(keys, lease_s=self.lease_s)
            except Exception:  # the next round tries again; the lease has two more thirds
                log.exception("cannot renew the leases of OCR items")

    def _drained(self, asked: int) -> None:
        """A claim that started after wake-up ``asked`` found nothing: those drains are done."""
        waiting = []
        for target, future in self._drains:
            if target <= asked:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((target, future))
        self._drains = waiting

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The loop stopped (stop() or a bug): nobody may wait for it forever."""
        error = None if task.cancelled() else task.exception()
        if error is not None:
            log.error("the OCR stage stopped: %r", error)
        for _, future in self._drains:
            if not future.done():
                future.set_exception(OcrError(f"the OCR stage stopped: {error or 'stopped'}"))
        self._drains = []

    async def _yield(self) -> None:
        """Let the ingest pipeline go first: wait for it to be idle, but not forever."""
        if self.pipeline is None or self.pipeline.idle:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.pipeline.wait_idle(), self.yield_s)

    # --- one item -------------------------------------------------------------------------------

    async def _one(self, item: OcrItem) -> None:
        owner, media_id = item.owner_id, item.media.id
        queue = self._db.ocr
        try:
            if not item.units:
                await queue.done(owner, media_id, skipped=True)
                return
            text = await self._text_of(item)
            await self._db.owner(owner).texts.put(media_id, "ocr", text or None)
            await queue.done(owner, media_id)
            self.read += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"
            if _permanent(exc):
                log.info("OCR of item %d (owner %d) failed: %s", media_id, owner, message)
                await queue.failed(owner, media_id, message)
                return
            if not isinstance(exc, ImageFinderError | OSError):
                log.exception("OCR of item %d (owner %d) failed unexpectedly", media_id, owner)
            state = await queue.retry(
                owner, media_id, message, max_attempts=self.settings.max_attempts
            )
            log.info("OCR of item %d (owner %d): %s; now %s", media_id, owner, message, state)

    async def _text_of(self, item: OcrItem) -> str:
        """Fetch, decode and read the item's pictures (at most ``threads`` items at once hold
        pictures in memory); the texts of several frames are joined, each line once."""
        executor = self._executor
        if executor is None:
            raise OcrError("the OCR stage is stopped")
        run = executor_runner(executor)
        async with self._gate:
            pictures = await load_pictures(self._fetch, item, self.settings.max_side, run)
            texts = []
            for picture in pictures:
                result = await run(functools.partial(self.reader.read, picture))
                texts.append(result.text)
        return join_texts(texts)


def _permanent(exc: BaseException) -> bool:
    """A failure that a retry cannot help: the file is gone or refused, or cannot be decoded."""
    if isinstance(exc, FetchError):
        return not exc.retryable
    return isinstance(exc, ImageError | VideoError)
