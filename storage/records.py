"""Plain records that go in and out of storage. No SQL here, no behaviour beyond validation."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import numpy as np

OwnerKind = Literal["user", "chat", "local"]
# Telegram's own field names, so the bot maps a message to a kind without a table.
MediaKind = Literal["photo", "video", "animation", "video_note", "document"]
MediaStatus = Literal["ready", "thumbnail"]
UnitKind = Literal["image", "frame", "thumbnail"]
JobState = Literal["pending", "running", "done", "failed"]

OWNER_KINDS: tuple[str, ...] = ("user", "chat", "local")
MEDIA_KINDS: tuple[str, ...] = ("photo", "video", "animation", "video_note", "document")
JOB_STATES: tuple[str, ...] = ("pending", "running", "done", "failed")
# Kinds sampled into frames rather than decoded as one picture.
VIDEO_KINDS: tuple[str, ...] = ("video", "animation", "video_note")


@dataclass(frozen=True, slots=True)
class Owner:
    id: int
    kind: OwnerKind
    external_id: str  # Telegram user/chat id as text, or a local name
    settings: dict[str, Any]
    created_at: int


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file of a local folder. ``media_id`` is set on rows read back from storage."""

    path: str
    size: int
    mtime_ns: int
    sha256: str  # hex digest of the content
    media_id: int | None = None

    @property
    def file_unique_id(self) -> str:
        """The idempotency key for local content: the same bytes at two paths are one item."""
        return "local:" + self.sha256


@dataclass(frozen=True, slots=True)
class MediaFacts:
    """One item as its message describes it, before anything is fetched: defined once, so the
    bot's reading of a message, the durable ingest job and the stored row all carry the same
    description instead of copying fields by hand.

    ``file_unique_id`` is the idempotency key within the owner. The sizes are the message's
    claims, only a hint (clients send 0 for "unknown"; :meth:`measured` lets the file win).
    ``mime`` and ``thumbnail_file_unique_id`` steer the fetch and are not stored with the item.
    """

    kind: MediaKind
    file_unique_id: str
    file_id: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None  # seconds
    caption: str | None = None
    forward_origin: str | None = None
    message_id: int | None = None
    message_date: int | None = None  # unix seconds
    album_id: str | None = None
    mime: str | None = None
    thumbnail_file_id: str | None = None
    thumbnail_file_unique_id: str | None = None
    file_name: str | None = None  # an image document's or a local file's name
    taken_at: int | None = None  # unix seconds: EXIF capture time, or a forward's post date

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

    def measured(self, **measured: float | None) -> MediaFacts:
        """These facts with what the file says (``width``, ``height``, ``duration``) winning
        over the message's values, which are only a hint; zero or negative means unknown."""
        values: dict[str, float | None] = {
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
        return replace(self, **values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class NewMedia(MediaFacts):
    """An item about to be stored: its facts (only ``kind`` and ``file_unique_id`` must be
    known) plus, for a file from disk, ``local`` (with ``file_unique_id=local.file_unique_id``).
    ``mime`` and ``thumbnail_file_unique_id`` steer the fetch and are not stored."""

    local: LocalFile | None = None

    @classmethod
    def from_facts(cls, facts: MediaFacts, *, local: LocalFile | None = None) -> NewMedia:
        """The row for an item its message described (``facts``, measured already)."""
        return cls(**{f.name: getattr(facts, f.name) for f in fields(MediaFacts)}, local=local)


@dataclass(frozen=True, slots=True)
class NewUnit:
    """What will be embedded: a photo (``image``), a video frame at ``timestamp`` seconds, or a
    video's thumbnail standing in for a file too large to fetch."""

    kind: UnitKind = "image"
    timestamp: float | None = None

    def __post_init__(self) -> None:
        if self.kind == "frame":
            if self.timestamp is None or not self.timestamp >= 0:
                raise ValueError("a frame needs a timestamp >= 0 (seconds)")
        elif self.kind in ("image", "thumbnail"):
            if self.timestamp is not None:
                raise ValueError(f"an {self.kind} unit has no timestamp")
        else:
            raise ValueError(f"unknown unit kind {self.kind!r}")

    @classmethod
    def image(cls) -> NewUnit:
        return cls("image")

    @classmethod
    def frame(cls, timestamp: float) -> NewUnit:
        return cls("frame", float(timestamp))

    @classmethod
    def thumbnail(cls) -> NewUnit:
        return cls("thumbnail")


@dataclass(frozen=True, slots=True)
class Media:
    id: int
    owner_id: int
    kind: MediaKind
    status: MediaStatus
    file_unique_id: str
    file_id: str | None
    size: int | None
    width: int | None
    height: int | None
    duration: float | None
    caption: str | None
    forward_origin: str | None
    message_id: int | None
    message_date: int | None
    album_id: str | None
    thumbnail_file_id: str | None
    created_at: int
    path: str | None  # local items: one of the paths holding this content (the smallest)
    file_name: str | None = None
    taken_at: int | None = None  # unix seconds, when known (see MediaFacts)
    ocr_state: str = "pending"  # the OCR stage's progress (storage.ocr_queue.OCR_STATES)


@dataclass(frozen=True, slots=True)
class Unit:
    id: int
    media_id: int
    kind: UnitKind
    timestamp: float | None  # seconds into the video for a frame, else None


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    owner_id: int
    state: JobState
    payload: dict[str, Any]
    attempts: int  # how many times a worker claimed it
    last_error: str | None
    media_id: int | None  # set when done: the item stored, or the existing one if a duplicate
    duplicate: bool | None
    created_at: int
    updated_at: int
    lease_until: int | None = None  # while running: unix s the holder's claim lasts until
    worker: str | None = None  # who claimed it last (``Database.worker``)
    outcome: dict[str, Any] | None = None  # what a front end answers with (storage.owner_jobs)
    front: str | None = None  # the front end that owes the sender its answer (storage.owed)


@dataclass(frozen=True, slots=True)
class CommitResult:
    """Outcome of :meth:`OwnerMedia.commit`.

    ``versions`` holds the new ``index_version`` per model id; an index that added exactly
    ``unit_ids`` to a state matching the previous version may record these.
    """

    media_id: int
    duplicate: bool
    unit_ids: tuple[int, ...] = ()  # in the order the units were given; empty for a duplicate
    versions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """What a deletion removed, for the indexes to follow: unit ids per model id and the new
    ``index_version`` of each of those models."""

    media_ids: tuple[int, ...] = ()
    unit_ids: tuple[int, ...] = ()  # every unit removed, with or without vectors
    by_model: dict[str, tuple[int, ...]] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """Everything of an owner went: drop the owner's whole index for each of ``models``."""

    media_count: int
    models: tuple[str, ...]
    versions: dict[str, int] = field(default_factory=dict)  # empty when the owner was deleted


@dataclass(frozen=True, slots=True)
class VectorSnapshot:
    """Vectors of one (owner, model) read in one transaction together with their version."""

    version: int
    ids: np.ndarray  # int64 [n], ascending unit ids
    vectors: np.ndarray  # float32 [n, d]


@dataclass(frozen=True, slots=True)
class VectorTopUp:
    """Vectors of one (owner, model) past a unit id, with the version and a fingerprint (count
    and sum) of the unit ids up to it, read in one transaction: enough for a cached index to
    tell whether storage changed only by additions past what it holds."""

    version: int
    held_count: int  # vectors with unit_id <= the given id
    held_sum: int  # sum of those unit ids
    ids: np.ndarray  # int64 [n], ascending unit ids > the given id
    vectors: np.ndarray  # float32 [n, d]


@dataclass(frozen=True, slots=True)
class MissingVectors:
    """An item with units that still need a vector for some model (background re-embedding)."""

    media: Media
    units: tuple[Unit, ...]


@dataclass(frozen=True, slots=True)
class OwnerStats:
    media_by_kind: dict[str, int]
    thumbnail_only: int  # items indexed from a thumbnail only
    units: int
    vectors_by_model: dict[str, int]
    jobs_by_state: dict[str, int]

    @property
    def media_total(self) -> int:
        return sum(self.media_by_kind.values())
