"""The pipeline's numbers: each one given explicitly, else from :class:`~core.settings.Settings`."""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import Settings

__all__ = ["IngestLimits"]


@dataclass(frozen=True, slots=True)
class IngestLimits:
    workers: int
    queue_size: int
    batch_size: int
    max_attempts: int
    retry_backoff_s: float
    near_duplicate_threshold: float
    merge_similarity: float

    def __post_init__(self) -> None:
        if min(self.workers, self.queue_size, self.batch_size, self.max_attempts) < 1:
            raise ValueError("workers, queue_size, batch_size and max_attempts must be >= 1")

    @classmethod
    def resolve(
        cls,
        settings: Settings,
        *,
        workers: int | None = None,
        queue_size: int | None = None,
        batch_size: int | None = None,
        max_attempts: int | None = None,
        retry_backoff_s: float | None = None,
        near_duplicate_threshold: float | None = None,
    ) -> IngestLimits:
        """The explicit values, the settings' for those left None."""

        def pick(value: float | None, default: float) -> float:
            return default if value is None else value

        s = settings
        return cls(
            workers=int(pick(workers, s.ingest_workers)),
            queue_size=int(pick(queue_size, s.ingest_queue_size)),
            batch_size=int(pick(batch_size, s.ingest_batch_size)),
            max_attempts=int(pick(max_attempts, s.ingest_max_attempts)),
            retry_backoff_s=pick(retry_backoff_s, s.ingest_retry_backoff_s),
            near_duplicate_threshold=pick(near_duplicate_threshold, s.near_duplicate_threshold),
            merge_similarity=s.video_merge_similarity,
        )
