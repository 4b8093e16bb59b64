"""What goes into the ingest pipeline (:class:`IngestRequest`, stored as the durable job payload)
and what comes out of it (:class:`IngestOutcome`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from storage import Job, LocalFile, MediaKind, NewMedia
from storage.records import VIDEO_KINDS, Media, MediaFacts

__all__ = [
    "PAYLOAD_VERSION",
    "VIDEO_KINDS",
    "IngestOutcome",
    "IngestRequest",
    "NearDuplicate",
    "OutcomeCallback",
    "OutcomeStatus",
    "ProgressCallback",
]

PAYLOAD_VERSION = 1
_FACT_NAMES: frozenset[str] = frozenset(f.name for f in fields(MediaFacts))

ProgressCallback = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class IngestRequest:
    """One item to ingest for ``owner_id``: its :class:`~storage.records.MediaFacts` (as the bot
    or the CLI describes it) plus how to get it; stored as the job payload.

    ``too_large``: the file itself cannot be downloaded, index ``facts.thumbnail_file_id``
    instead. ``path`` is what the folder CLI's fetch reads; ``local`` is recorded with the item
    so the CLI knows the file next time.
    """

    owner_id: int
    facts: MediaFacts
    too_large: bool = False
    path: str | None = None
    local: LocalFile | None = None

    @classmethod
    def of(
        cls,
        owner_id: int,
        kind: MediaKind,
        file_unique_id: str,
        *,
        too_large: bool = False,
        path: str | None = None,
        local: LocalFile | None = None,
        **facts: Any,
    ) -> IngestRequest:
        """A request from the item's facts given as keywords (``file_id=``, ``caption=``, ...)."""
        return cls(
            owner_id,
            MediaFacts(kind, file_unique_id, **facts),
            too_large=too_large,
            path=path,
            local=local,
        )

    @property
    def kind(self) -> MediaKind:
        return self.facts.kind

    @property
    def file_unique_id(self) -> str:
        """The idempotency key within the owner (``local.file_unique_id`` for a local file)."""
        return self.facts.file_unique_id

    @property
    def is_video(self) -> bool:
        """Sampled into frames rather than decoded as one picture."""
        return self.facts.is_video

    @property
    def has_thumbnail(self) -> bool:
        return self.facts.has_thumbnail

    @classmethod
    def for_local_file(
        cls, owner_id: int, file: LocalFile, kind: MediaKind = "photo", **facts: Any
    ) -> IngestRequest:
        """A file of a local folder: keyed by its content hash, fetched from ``file.path``."""
        return cls.of(
            owner_id,
            kind,
            file.file_unique_id,
            size=file.size,
            path=file.path,
            local=file,
            **facts,
        )

    @classmethod
    def from_media(cls, owner_id: int, media: Media) -> IngestRequest:
        """The request that would fetch a stored item again (background re-embedding).

        A thumbnail-only item comes back with ``too_large=True`` and its stored
        ``thumbnail_file_id``, so the same thumbnail is fetched again.
        """
        stored = {name: getattr(media, name) for name in _FACT_NAMES if hasattr(media, name)}
        return cls(
            owner_id,
            MediaFacts(**stored),
            too_large=media.status == "thumbnail",
            path=media.path,
        )

    def to_payload(self) -> dict[str, Any]:
        """JSON object for the job row (the owner is the job's own column): the facts and the
        fetch hints side by side, as one flat object."""
        data: dict[str, Any] = asdict(self.facts)
        data.update(too_large=self.too_large, path=self.path)
        data["local"] = asdict(self.local) if self.local is not None else None
        data = {k: v for k, v in data.items() if v is not None and v is not False}
        data["v"] = PAYLOAD_VERSION
        return data

    @classmethod
    def from_payload(cls, owner_id: int, payload: Mapping[str, Any]) -> IngestRequest:
        """Inverse of :meth:`to_payload`; unknown keys (a newer writer) are ignored."""
        facts = {k: v for k, v in payload.items() if k in _FACT_NAMES}
        local = payload.get("local")
        return cls(
            owner_id,
            MediaFacts(**facts),
            too_large=bool(payload.get("too_large", False)),
            path=payload.get("path"),
            local=LocalFile(**local) if isinstance(local, Mapping) else local,
        )

    @classmethod
    def from_job(cls, job: Job) -> IngestRequest:
        return cls.from_payload(job.owner_id, job.payload)

    def new_media(self, **measured: Any) -> NewMedia:
        """The storage record. ``measured`` (width, height, duration read from the file) wins
        over the message's values (see :meth:`MediaFacts.measured`)."""
        return NewMedia.from_facts(self.facts.measured(**measured), local=self.local)


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
