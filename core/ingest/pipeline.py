"""The ingest pipeline: from "the user sent a photo" to "it is searchable", losing nothing.

    pipeline = IngestPipeline(db, embedder, index, settings, fetch)
    await pipeline.start()                       # requeues work a stopped process left behind
    ticket = await pipeline.submit(IngestRequest(owner_id, "photo", unique_id, file_id=...))
    outcome = await ticket.result()              # only after the commit
    await pipeline.stop()                        # finishes what it holds, writes the indexes

How a job flows, and why:

1. **Persist first.** :meth:`IngestPipeline.submit` writes the request as a durable job row
   (``pending``) before anything else, so a crash after ``submit`` returns cannot lose it.
2. **Claim.** One feeder task claims pending jobs from SQLite (``Database.claim_jobs``,
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
   (``OwnerStore.commit_media``), then add the vectors to the indexes with the versions that
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

Models: every loaded model embeds every new item. An owner's *slots* (``OwnerStore.
active_models()``, slot = the bundle's ``name``) say which models answer for it; after its first
commit in a process an owner that has no slots gets one per loaded model whose vectors are
complete, and :mod:`core.ingest.reembed` fills in and switches the rest.

The job payload is :meth:`IngestRequest.to_payload` (JSON). One process per database: start-up
puts jobs left ``running`` back to ``pending``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from PIL import Image

from core.errors import (
    FetchError,
    FileGoneError,
    FileTooLargeError,
    ImageError,
    ImageFinderError,
    IncompleteModelError,
    IngestInterruptedError,
    JobStateError,
    UnknownOwnerError,
    UnreadableThumbnailError,
)
from core.index.owner_index import IndexManager
from core.media.image import decode_image, looks_like_still_image
from core.media.video import frame_from_thumbnail, sample_video
from core.models.embedder import AsyncEmbedder
from core.settings import Settings
from storage import Database, Job, LocalFile, MediaKind, NewMedia, NewUnit, OwnerStore
from storage.records import MEDIA_KINDS, Media

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = [
    "VIDEO_KINDS",
    "Fetch",
    "IngestOutcome",
    "IngestPipeline",
    "IngestRequest",
    "NearDuplicate",
    "OutcomeCallback",
    "ProgressCallback",
    "Ticket",
    "activate_complete_models",
    "distinct_moments",
    "durable",
    "fetch_with_retry",
    "local_fetcher",
    "model_slot",
]

PAYLOAD_VERSION = 1
VIDEO_KINDS: tuple[str, ...] = ("video", "animation", "video_note")
# Share of a video's progress spent sampling; embedding and the commit take the rest.
SAMPLING_SHARE = 0.9
MAX_BACKOFF_S = 300.0
# Decoded images waiting for the embedder, in batches: bounds memory, keeps the embedder fed.
READY_BATCHES = 4
# Units searched for a near-duplicate (the first hit whose row still exists wins).
NEAR_DUPLICATE_K = 4


@dataclass(frozen=True, slots=True)
class IngestRequest:
    """One item to ingest, as the bot or the CLI describes it; stored as the job payload.

    ``file_unique_id`` is the idempotency key within the owner (Telegram's ``file_unique_id``;
    ``local.file_unique_id`` for a local file). ``too_large``: the file itself cannot be
    downloaded, index ``thumbnail_file_id`` instead. ``path`` is what the folder CLI's fetch
    reads; ``local`` is recorded with the item so the CLI knows the file next time.
    """

    owner_id: int
    kind: MediaKind
    file_unique_id: str
    file_id: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    caption: str | None = None
    forward_origin: str | None = None
    message_id: int | None = None
    message_date: int | None = None
    album_id: str | None = None
    mime: str | None = None
    too_large: bool = False
    thumbnail_file_id: str | None = None
    thumbnail_file_unique_id: str | None = None
    path: str | None = None
    local: LocalFile | None = None

    def __post_init__(self) -> None:
        if self.kind not in MEDIA_KINDS:
            raise ValueError(f"unknown media kind {self.kind!r}; expected one of {MEDIA_KINDS}")
        if not self.file_unique_id:
            raise ValueError("file_unique_id must not be empty")

    @property
    def is_video(self) -> bool:
        """Sampled into frames rather than decoded as one picture."""
        if self.kind in VIDEO_KINDS:
            return True
        mime = (self.mime or "").lower()
        return self.kind == "document" and (mime.startswith("video/") or mime == "image/gif")

    @property
    def has_thumbnail(self) -> bool:
        return self.thumbnail_file_id is not None

    @classmethod
    def for_local_file(
        cls, owner_id: int, file: LocalFile, kind: MediaKind = "photo", **fields: Any
    ) -> IngestRequest:
        """A file of a local folder: keyed by its content hash, fetched from ``file.path``."""
        return cls(
            owner_id,
            kind,
            file.file_unique_id,
            size=file.size,
            path=file.path,
            local=file,
            **fields,
        )

    @classmethod
    def from_media(cls, owner_id: int, media: Media) -> IngestRequest:
        """The request that would fetch a stored item again (background re-embedding).

        A thumbnail-only item comes back with ``too_large=True`` and its stored
        ``thumbnail_file_id``, so the same thumbnail is fetched again.
        """
        return cls(
            owner_id,
            media.kind,
            media.file_unique_id,
            file_id=media.file_id,
            size=media.size,
            width=media.width,
            height=media.height,
            duration=media.duration,
            caption=media.caption,
            forward_origin=media.forward_origin,
            message_id=media.message_id,
            message_date=media.message_date,
            album_id=media.album_id,
            too_large=media.status == "thumbnail",
            thumbnail_file_id=media.thumbnail_file_id,
            path=media.path,
        )

    def to_payload(self) -> dict[str, Any]:
        """JSON object for the job row (the owner is the job's own column)."""
        data = asdict(self)
        del data["owner_id"]
        data = {k: v for k, v in data.items() if v is not None and v is not False}
        data["v"] = PAYLOAD_VERSION
        return data

    @classmethod
    def from_payload(cls, owner_id: int, payload: Mapping[str, Any]) -> IngestRequest:
        """Inverse of :meth:`to_payload`; unknown keys (a newer writer) are ignored."""
        names = set(cls.__dataclass_fields__) - {"owner_id"}
        fields: dict[str, Any] = {k: v for k, v in payload.items() if k in names}
        if isinstance(fields.get("local"), Mapping):
            fields["local"] = LocalFile(**fields["local"])
        return cls(owner_id, **fields)

    @classmethod
    def from_job(cls, job: Job) -> IngestRequest:
        return cls.from_payload(job.owner_id, job.payload)

    def new_media(self, **measured: Any) -> NewMedia:
        """The storage record. ``measured`` (width, height, duration read from the file) wins
        over the message's values, which are only a hint; zero or negative means unknown."""
        values = {
            "width": self.width,
            "height": self.height,
            "duration": self.duration,
        }
        for key, value in measured.items():
            if value is not None and value > 0:  # what the file says beats what the message says
                values[key] = value
        for key, value in values.items():
            if value is not None and value <= 0:  # clients and forwards send 0 for "unknown"
                values[key] = None
        return NewMedia(
            self.kind,
            self.file_unique_id,
            file_id=self.file_id,
            size=self.size,
            caption=self.caption,
            forward_origin=self.forward_origin,
            message_id=self.message_id,
            message_date=self.message_date,
            album_id=self.album_id,
            thumbnail_file_id=self.thumbnail_file_id,
            local=self.local,
            **values,
        )


Fetch = Callable[[IngestRequest, bool], Awaitable[bytes | Path]]
"""``await fetch(request, thumbnail)``: the file's bytes (or a local path), or with ``thumbnail``
the bytes of its thumbnail. Raise :class:`~core.errors.FetchError` (``retryable=False`` when a
retry cannot help), :class:`~core.errors.FileTooLargeError` or
:class:`~core.errors.FileGoneError`; any other exception counts as a transient failure."""

ProgressCallback = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class NearDuplicate:
    """A stored item the new one looks almost exactly like (cosine ``score``)."""

    media_id: int
    score: float


OutcomeStatus = Literal["saved", "duplicate", "failed"]


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """How a job ended. ``saved``: stored now (``media_id``, ``unit_ids``, maybe
    ``near_duplicate_of``); ``duplicate``: the owner already had this file (``media_id`` is the
    stored one); ``failed``: nothing stored, ``reason`` is an error code of :mod:`core.errors`
    and ``message`` says what went wrong."""

    status: OutcomeStatus
    job_id: int
    request: IngestRequest
    media_id: int | None = None
    unit_ids: tuple[int, ...] = ()
    timestamps: tuple[float | None, ...] = ()  # per unit: seconds into a video, else None
    near_duplicate_of: NearDuplicate | None = None
    thumbnail_only: bool = False
    reason: str | None = None
    message: str | None = None

    @property
    def saved(self) -> bool:
        return self.status == "saved"

    @property
    def stored_as_picture(self) -> bool:
        """A "video" kept as one picture because its bytes were a still image: a single unit
        without a timestamp (video frames have one; a cover is ``thumbnail_only``)."""
        return (
            self.saved
            and self.request.is_video
            and not self.thumbnail_only
            and len(self.unit_ids) == 1
            and all(t is None for t in self.timestamps)
        )

    @property
    def duplicate(self) -> bool:
        return self.status == "duplicate"

    @property
    def failed(self) -> bool:
        return self.status == "failed"


OutcomeCallback = Callable[[IngestOutcome], Awaitable[None] | None]


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
        self._progress = _Progress(progress)

    def __repr__(self) -> str:
        return f"Ticket(job_id={self.job_id}, done={self.done()})"

    def done(self) -> bool:
        return self._future.done()

    async def result(self) -> IngestOutcome:
        return await asyncio.shield(self._future)


class _Progress:
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


def model_slot(config: Any) -> str:
    """The ``active_models`` slot of a model: its bundle name, so a new version of a model
    replaces the old one in the same slot and a new model gets a slot of its own."""
    return str(config.name)


async def activate_complete_models(store: OwnerStore, slots: Mapping[str, str]) -> dict[str, str]:
    """Give the owner each ``slot -> model`` it has no slot for yet, when that model's vectors
    are complete; returns the slots set. Existing slots are left alone (switching them is
    :mod:`core.ingest.reembed`'s job)."""
    active = await store.active_models()
    added: dict[str, str] = {}
    for slot, model_id in slots.items():
        if slot in active:
            continue
        try:
            await durable(store.set_active_models({slot: model_id}))
        except IncompleteModelError:
            continue
        except UnknownOwnerError:
            return added
        added[slot] = model_id
    return added


def local_fetcher(root: Path | None = None) -> Fetch:
    """A fetch callback for local files: returns ``root / request.path`` without reading it
    (decoders read paths directly). A missing file raises :class:`FileGoneError`; local files
    have no thumbnails."""

    async def fetch(request: IngestRequest, thumbnail: bool) -> bytes | Path:
        if thumbnail:
            raise FileGoneError("a local file has no separate thumbnail")
        if request.path is None:
            raise FileGoneError(f"item {request.file_unique_id} has no local path")
        path = Path(request.path)
        if root is not None and not path.is_absolute():
            path = root / path
        if not await asyncio.to_thread(path.is_file):
            raise FileGoneError(f"{path} no longer exists")
        return path

    return fetch


async def fetch_with_retry(
    fetch: Fetch,
    request: IngestRequest,
    thumbnail: bool,
    *,
    attempts: int,
    backoff_s: float,
) -> bytes | Path:
    """Call ``fetch`` up to ``attempts`` times, waiting ``backoff_s``, then twice that, ...
    between tries. Raises the last :class:`FetchError` (other exceptions are wrapped in one)."""
    for attempt in range(1, max(attempts, 1) + 1):
        try:
            data = await fetch(request, thumbnail)
        except FetchError as exc:
            if not exc.retryable or attempt >= attempts:
                raise
            reason = str(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the bot's download errors, timeouts, OSError, ...
            if attempt >= attempts:
                raise FetchError(f"{type(exc).__name__}: {exc}") from exc
            reason = f"{type(exc).__name__}: {exc}"
        else:
            if isinstance(data, bytes | bytearray | memoryview):
                return bytes(data)
            if isinstance(data, Path):
                return data
            raise TypeError(f"fetch returned {type(data).__name__}, expected bytes or a Path")
        delay = min(backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
        log.info("fetch of %s failed (%s); try %d in %.1f s", request.file_unique_id, reason,
                 attempt + 1, delay)  # fmt: skip
        await asyncio.sleep(delay)
    raise AssertionError("unreachable")


async def durable(write: Awaitable[T]) -> T:
    """Let a database write run to its end even if the awaiting task is cancelled: a write cut
    short at the wrong moment could leave the shared writer connection inside a transaction,
    and a finished write is what the next start relies on anyway."""
    return await asyncio.shield(write)


def _error_code(exc: BaseException) -> str:
    return exc.code if isinstance(exc, ImageFinderError) else "internal"


def _rgb(img: Image.Image) -> Image.Image:
    return img if img.mode == "RGB" else img.convert("RGB")


@dataclass(slots=True)
class _Prepared:
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


class IngestPipeline:
    """The ingest pipeline (see the module docstring). Numbers default to ``settings``."""

    def __init__(
        self,
        db: Database,
        embedder: AsyncEmbedder,
        index: IndexManager,
        settings: Settings,
        fetch: Fetch,
        *,
        workers: int | None = None,
        queue_size: int | None = None,
        batch_size: int | None = None,
        max_attempts: int | None = None,
        retry_backoff_s: float | None = None,
        near_duplicate_threshold: float | None = None,
        on_outcome: OutcomeCallback | None = None,
    ) -> None:
        self._db = db
        self._embedder = embedder
        self._index = index
        self._settings = settings
        self._fetch = fetch
        self.workers = workers if workers is not None else settings.ingest_workers
        self.queue_size = queue_size if queue_size is not None else settings.ingest_queue_size
        self.batch_size = batch_size if batch_size is not None else settings.ingest_batch_size
        self.max_attempts = (
            max_attempts if max_attempts is not None else settings.ingest_max_attempts
        )
        self.retry_backoff_s = (
            retry_backoff_s if retry_backoff_s is not None else settings.ingest_retry_backoff_s
        )
        self.near_duplicate_threshold = (
            near_duplicate_threshold
            if near_duplicate_threshold is not None
            else settings.near_duplicate_threshold
        )
        self.merge_similarity = settings.video_merge_similarity
        if min(self.workers, self.queue_size, self.batch_size, self.max_attempts) < 1:
            raise ValueError("workers, queue_size, batch_size and max_attempts must be >= 1")
        self._on_outcome = on_outcome

        self.models: tuple[str, ...] = embedder.model_ids
        configs = {m: embedder.get(m).config for m in self.models}
        self.slots: dict[str, str] = {}
        for model_id in self.models:  # the last model listed with a name owns its slot
            self.slots[model_slot(configs[model_id])] = model_id
        self.target_size = max(c.image.size for c in configs.values())

        self._tickets: dict[int, Ticket] = {}
        self._jobs: asyncio.Queue[Job] | None = None
        self._ready: deque[_Prepared] = deque()
        self._ready_images = 0
        self._ready_limit = READY_BATCHES * self.batch_size
        self._ready_cond: asyncio.Condition | None = None
        self._room: asyncio.Condition | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._in_flight = 0
        self._submitting = 0
        self._activated: set[int] = set()
        # Held while a submit persists jobs and registers their tickets, and while the feeder
        # claims: a job is never claimed (and finished) before its ticket exists.
        self._claim_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._feeder: asyncio.Task[None] | None = None
        self._running = False
        self.requeued = (0, 0)  # (requeued, failed) by the last start()

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        """Put jobs a stopped process left ``running`` back to ``pending`` (or ``failed`` after
        too many claims), then start the feeder, the fetch/decode workers and the embedder."""
        if self._running:
            return
        self.requeued = await durable(self._db.requeue_running())
        if any(self.requeued):
            log.info("start-up: %d job(s) requeued, %d failed", *self.requeued)
        self._jobs = asyncio.Queue(maxsize=self.queue_size)
        self._ready_cond = asyncio.Condition()
        self._room = asyncio.Condition()
        self._ready.clear()
        self._ready_images = 0
        self._idle.clear()
        self._wake.set()
        self._running = True
        self._feeder = asyncio.create_task(self._feed(), name="ingest-feeder")
        self._tasks = [
            asyncio.create_task(self._work(), name=f"ingest-worker-{i}")
            for i in range(self.workers)
        ]
        self._tasks.append(asyncio.create_task(self._embed_loop(), name="ingest-embedder"))

    async def stop(self, *, timeout: float | None = None) -> None:
        """Stop claiming, let the jobs already claimed finish (at most ``timeout`` seconds, then
        they are abandoned and resume at the next start), and write the changed indexes.
        Waiting callers of unfinished jobs get :class:`IngestInterruptedError`."""
        if not self._running:
            return
        self._running = False
        self._wake.set()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - loop.time())

        with contextlib.suppress(TimeoutError):
            if self._feeder is not None:
                # Not cancelled mid-claim: it finishes handing over what it claimed, then ends.
                await asyncio.wait_for(asyncio.shield(self._feeder), left())
            await asyncio.wait_for(self._quiet.wait(), left())
        if self._feeder is not None:
            self._feeder.cancel()
            await asyncio.gather(self._feeder, return_exceptions=True)
            self._feeder = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._in_flight = 0
        self._quiet.set()
        for ticket in list(self._tickets.values()):
            if not ticket._future.done():
                ticket._future.set_exception(
                    IngestInterruptedError(
                        f"stopped before job {ticket.job_id} finished; it resumes at next start"
                    )
                )
                ticket._future.exception()  # retrieved: no "never retrieved" warning
        self._tickets.clear()
        self._idle.set()
        if self._room is not None:
            async with self._room:
                self._room.notify_all()
        await self._index.flush()

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
        await self._idle.wait()

    @property
    def idle(self) -> bool:
        """Nothing pending or in progress right now (background work may go ahead)."""
        return not self._running or self._idle.is_set()

    async def wait_idle(self) -> None:
        """Return once nothing is pending or in progress (immediately when stopped)."""
        if self._running:
            await self._idle.wait()

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
        if not self._running or self._room is None:
            raise RuntimeError("start() the pipeline before submitting")
        if not requests:
            return []
        self._submitting += 1
        self._idle.clear()
        try:
            async with self._claim_lock:
                tickets = await self._persist(requests, progress)
        finally:
            self._submitting -= 1
            self._wake.set()  # also after a failure: the feeder re-checks and may go idle
        async with self._room:
            await self._room.wait_for(
                lambda: len(self._tickets) <= self.queue_size or not self._running
            )
        return tickets

    async def _persist(
        self, requests: list[IngestRequest], progress: list[ProgressCallback | None]
    ) -> list[Ticket]:
        """One transaction per owner; each owner's tickets are registered right after its
        commit, so a later owner's failure (e.g. unknown) leaves no job without its ticket."""
        by_owner: dict[int, list[int]] = {}
        for i, request in enumerate(requests):
            by_owner.setdefault(request.owner_id, []).append(i)
        loop = asyncio.get_running_loop()
        tickets: list[Ticket | None] = [None] * len(requests)
        for owner_id, positions in by_owner.items():
            ids = await durable(
                self._db.owner(owner_id).enqueue_jobs([requests[i].to_payload() for i in positions])
            )
            for i, job_id in zip(positions, ids, strict=True):
                ticket = Ticket(job_id, requests[i], loop.create_future(), progress[i])
                self._tickets[job_id] = ticket
                tickets[i] = ticket
        return [t for t in tickets if t is not None]

    # --- feeder ---------------------------------------------------------------------------------

    async def _feed(self) -> None:
        assert self._jobs is not None
        while self._running:
            self._wake.clear()
            free = max(1, self._jobs.maxsize - self._jobs.qsize())
            try:
                async with self._claim_lock:
                    jobs = await durable(self._db.claim_jobs(min(free, self.batch_size)))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cannot claim ingest jobs; retrying")
                await asyncio.sleep(max(self.retry_backoff_s, 0.1))
                continue
            if not jobs:
                if self._in_flight == 0 and self._submitting == 0 and not self._wake.is_set():
                    self._idle.set()
                await self._wake.wait()
                continue
            self._idle.clear()
            self._quiet.clear()
            self._in_flight += len(jobs)
            for i, job in enumerate(jobs):
                try:
                    await self._jobs.put(job)
                except asyncio.CancelledError:
                    # Stopping: these stay ``running`` in SQLite and resume at the next start.
                    for _ in jobs[i:]:
                        self._settle()
                    raise

    def _settle(self) -> None:
        """One claimed job left the pipeline (done, failed or back to pending)."""
        self._in_flight -= 1
        if self._in_flight <= 0:
            self._in_flight = 0
            self._quiet.set()
            self._wake.set()  # let the feeder see whether anything is left

    async def _resolve(self, outcome: IngestOutcome) -> None:
        ticket = self._tickets.pop(outcome.job_id, None)
        if ticket is not None:
            if outcome.status != "failed":
                ticket._progress.report(1.0)
            if not ticket._future.done():
                ticket._future.set_result(outcome)
            if self._room is not None:
                async with self._room:
                    self._room.notify_all()
        if self._on_outcome is not None:
            try:
                result = self._on_outcome(outcome)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("outcome callback failed for job %d", outcome.job_id)

    async def _fail(
        self, job: Job, request: IngestRequest | None, exc: BaseException, *, retry: bool = False
    ) -> None:
        """Record a failure; with ``retry`` the job goes back to ``pending`` while the database
        allows more claims, else the caller hears ``failed``."""
        code, message = _error_code(exc), str(exc) or type(exc).__name__
        state = "failed"
        try:
            state = await durable(
                self._db.owner(job.owner_id).fail_job(job.id, f"{code}: {message}", retry=retry)
            )
        except (JobStateError, UnknownOwnerError):
            pass  # the owner deleted everything meanwhile: the job is gone
        except Exception:
            log.exception("cannot record the failure of job %d", job.id)
        if state == "pending":
            log.warning("job %d failed (%s: %s); will retry", job.id, code, message)
            self._wake.set()
            return
        log.info("job %d failed: %s: %s", job.id, code, message)
        if request is None:
            try:
                request = IngestRequest.from_job(job)
            except (TypeError, ValueError):
                request = IngestRequest(job.owner_id, "photo", f"job-{job.id}")
        await self._resolve(IngestOutcome("failed", job.id, request, reason=code, message=message))

    # --- fetch and decode -----------------------------------------------------------------------

    async def _work(self) -> None:
        assert self._jobs is not None
        while True:
            job = await self._jobs.get()
            queued = False
            try:
                queued = await self._prepare(job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug for one item must not stop the worker
                log.exception("ingest job %d failed unexpectedly", job.id)
                await self._fail(job, None, exc, retry=True)
            finally:
                self._jobs.task_done()
                if not queued:
                    self._settle()

    async def _prepare(self, job: Job) -> bool:
        """Fetch and decode one job; True when it went on to the embedder."""
        try:
            request = IngestRequest.from_job(job)
        except (TypeError, ValueError) as exc:
            await self._fail(job, None, ValueError(f"unreadable job payload: {exc}"))
            return False
        store = self._db.owner(job.owner_id)
        ticket = self._tickets.get(job.id)
        existing = await store.find_media(request.file_unique_id)
        if existing is not None:
            try:
                if request.local is not None:
                    await durable(store.put_local_file(request.local, existing.id))
                await durable(store.finish_job(job.id, media_id=existing.id, duplicate=True))
            except (JobStateError, UnknownOwnerError) as exc:
                await self._fail(job, request, exc)
                return False
            await self._resolve(IngestOutcome("duplicate", job.id, request, media_id=existing.id))
            return False
        try:
            prepared = await self._load(job, request, ticket)
        except (ImageFinderError, OSError) as exc:
            # Bad content and exhausted fetches are final; OSError reading a local path too.
            await self._fail(job, request, exc)
            return False
        await self._put_ready(prepared)
        return True

    async def _load(self, job: Job, request: IngestRequest, ticket: Ticket | None) -> _Prepared:
        thumbnail = request.too_large
        data: bytes | Path | None = None
        if not thumbnail:
            try:
                data = await self._fetch_bytes(request, thumbnail=False)
            except FileTooLargeError:
                if not (request.is_video and request.has_thumbnail):
                    raise
                thumbnail = True
        if thumbnail:
            thumb = await self._fetch_bytes(request, thumbnail=True)
            try:
                image = await asyncio.to_thread(thumbnail_image, thumb, self.target_size)
            except ImageError as exc:
                raise UnreadableThumbnailError(f"the thumbnail does not decode: {exc}") from exc
            return _Prepared(job, request, ticket, [NewUnit.thumbnail()], [image])
        assert data is not None
        if request.is_video and not await asyncio.to_thread(_is_still_image, data):
            s = self._settings
            sample = await asyncio.to_thread(
                sample_video,
                data,
                min_gap_s=s.video_min_gap_s,
                max_gap_s=s.video_max_gap_s,
                max_frames=s.video_max_frames,
                scene_threshold=s.video_scene_threshold,
                target_size=self.target_size,
                progress=ticket._progress.threadsafe(SAMPLING_SHARE) if ticket else None,
            )
            info = sample.info
            return _Prepared(
                job,
                request,
                ticket,
                [NewUnit.frame(f.timestamp) for f in sample.frames],
                [_rgb(f.image) for f in sample.frames],
                {"width": info.width, "height": info.height, "duration": info.duration},
            )
        img = await asyncio.to_thread(decode_image, data, target_size=self.target_size)
        return _Prepared(job, request, ticket, [NewUnit.image()], [img])

    async def _fetch_bytes(self, request: IngestRequest, *, thumbnail: bool) -> bytes | Path:
        return await fetch_with_retry(
            self._fetch,
            request,
            thumbnail,
            attempts=self.max_attempts,
            backoff_s=self.retry_backoff_s,
        )

    async def _put_ready(self, item: _Prepared) -> None:
        assert self._ready_cond is not None
        async with self._ready_cond:
            await self._ready_cond.wait_for(
                lambda: not self._ready or self._ready_images + item.size <= self._ready_limit
            )
            self._ready.append(item)
            self._ready_images += item.size
            self._ready_cond.notify_all()

    async def _take_batch(self) -> list[_Prepared]:
        """Everything ready, across owners, up to ``batch_size`` images (one long video may
        exceed it alone)."""
        assert self._ready_cond is not None
        async with self._ready_cond:
            await self._ready_cond.wait_for(lambda: bool(self._ready))
            batch = [self._ready.popleft()]
            count = batch[0].size
            while self._ready and count + self._ready[0].size <= self.batch_size:
                item = self._ready.popleft()
                batch.append(item)
                count += item.size
            self._ready_images -= count
            self._ready_cond.notify_all()
        return batch

    # --- embed, check, commit -------------------------------------------------------------------

    async def _embed_loop(self) -> None:
        while True:
            batch = await self._take_batch()
            settled = 0
            try:
                vectors, errors = await self._encode(batch)
                primaries: dict[int, str] = {}
                for item, vecs, error in zip(batch, vectors, errors, strict=True):
                    try:
                        if error is not None:
                            known = isinstance(error, ImageFinderError)
                            await self._fail(item.job, item.request, error, retry=not known)
                        else:
                            await self._commit(item, vecs, primaries)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        log.exception("ingest job %d failed unexpectedly", item.job.id)
                        await self._fail(item.job, item.request, exc, retry=True)
                    finally:
                        settled += 1
                        self._settle()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("ingest batch failed unexpectedly")
                for item in batch[settled:]:
                    await self._fail(item.job, item.request, exc, retry=True)
                    self._settle()

    async def _encode(
        self, batch: Sequence[_Prepared]
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
                for i in live:
                    try:
                        vectors[i][model_id] = await self._embedder.encode_images(
                            batch[i].images, model_id=model_id
                        )
                    except asyncio.CancelledError:
                        raise
                    except Exception as item_exc:
                        errors[i] = item_exc
                continue
            start = 0
            for i in live:
                n = batch[i].size
                vectors[i][model_id] = out[start : start + n]
                start += n
        return vectors, errors

    async def _primary(self, store: OwnerStore, cache: dict[int, str]) -> str:
        """The model near-duplicates are looked up with: the first loaded model active for the
        owner (its vectors are complete), else the first loaded model."""
        found = cache.get(store.owner_id)
        if found is None:
            active = set((await store.active_models()).values())
            found = next((m for m in self.models if m in active), self.models[0])
            cache[store.owner_id] = found
        return found

    async def _near_duplicate(
        self, store: OwnerStore, model_id: str, vector: np.ndarray
    ) -> NearDuplicate | None:
        if self.near_duplicate_threshold >= 1.0:
            return None  # turned off
        hits = await self._index.search(store.owner_id, model_id, vector[None, :], NEAR_DUPLICATE_K)
        candidates = [(u, s) for u, s in (hits[0] if hits else []) if u >= 0]
        candidates = [(u, s) for u, s in candidates if s >= self.near_duplicate_threshold]
        if not candidates:
            return None
        units = await store.units([u for u, _ in candidates])
        for unit_id, score in candidates:
            unit = units.get(unit_id)
            if unit is not None:
                return NearDuplicate(unit.media_id, float(min(score, 1.0)))
        return None

    async def _commit(
        self, item: _Prepared, vectors: dict[str, np.ndarray], primaries: dict[int, str]
    ) -> None:
        job, request = item.job, item.request
        store = self._db.owner(job.owner_id)
        vectors = _merge_moments(item, vectors, self.merge_similarity)
        try:
            primary = await self._primary(store, primaries)
            near = await self._near_duplicate(store, primary, vectors[primary][0])
        except Exception:  # a hint for the user, never a reason not to save
            log.exception("near-duplicate check failed for job %d", job.id)
            near = None
        try:
            result = await durable(
                store.commit_media(
                    request.new_media(**item.measured), item.units, vectors, job_id=job.id
                )
            )
        except (JobStateError, UnknownOwnerError) as exc:
            await self._fail(job, request, exc)
            return
        if result.duplicate:
            outcome = IngestOutcome("duplicate", job.id, request, media_id=result.media_id)
            await self._resolve(outcome)
            return
        ids = np.asarray(result.unit_ids, dtype=np.int64)
        for model_id, version in result.versions.items():
            try:
                await self._index.add(job.owner_id, model_id, ids, vectors[model_id], version)
            except Exception:
                # Committed is committed: forget the cached index, it is rebuilt from SQLite.
                log.exception("index add failed for owner %d, %s", job.owner_id, model_id)
                with contextlib.suppress(Exception):
                    await self._index.drop(job.owner_id, model_id)
        if job.owner_id not in self._activated:
            self._activated.add(job.owner_id)
            try:
                if await activate_complete_models(store, self.slots):
                    primaries.pop(job.owner_id, None)
            except Exception:  # the re-embedder sets the slots on its next pass
                log.exception("cannot record the active models of owner %d", job.owner_id)
        outcome = IngestOutcome(
            "saved",
            job.id,
            request,
            media_id=result.media_id,
            unit_ids=result.unit_ids,
            timestamps=tuple(u.timestamp for u in item.units),
            near_duplicate_of=near,
            thumbnail_only=any(u.kind == "thumbnail" for u in item.units),
        )
        await self._resolve(outcome)


def distinct_moments(vectors: Mapping[str, np.ndarray], similarity: float) -> list[int]:
    """Indices of the frames that are moments of their own: a frame whose vector is at least
    ``similarity`` (cosine) like the last kept frame's, for every model, shows the model
    nothing new and merges into it. The sampler compares pixels, which cannot tell a pan or a
    gesture from a new subject; the model can. ``similarity >= 1`` keeps every frame."""
    count = min(len(v) for v in vectors.values())
    keep = [0] if count else []
    for i in range(1, count):
        last = keep[-1]
        if similarity >= 1.0 or any(float(v[i] @ v[last]) < similarity for v in vectors.values()):
            keep.append(i)
    return keep


def _merge_moments(
    item: _Prepared, vectors: dict[str, np.ndarray], similarity: float
) -> dict[str, np.ndarray]:
    """Drop a video's frames that repeat the moment before them (see :func:`distinct_moments`),
    from ``item`` and from the returned vectors; the earlier frame's timestamp stays."""
    if len(item.units) < 2 or any(u.kind != "frame" for u in item.units):
        return vectors
    keep = distinct_moments(vectors, similarity)
    if len(keep) == len(item.units):
        return vectors
    item.units = [item.units[i] for i in keep]
    item.images = [item.images[i] for i in keep]
    return {m: v[keep] for m, v in vectors.items()}


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
