"""The pipeline's numbers: each one given explicitly, else from its settings section."""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import IngestSettings, VideoSettings, given_or

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
    lease_s: float = 60.0  # how long a claim holds a job; renewed every third of it

    def __post_init__(self) -> None:
        if min(self.workers, self.queue_size, self.batch_size, self.max_attempts) < 1:
            raise ValueError("workers, queue_size, batch_size and max_attempts must be >= 1")

    @classmethod
    def resolve(
        cls,
        ingest: IngestSettings,
        video: VideoSettings,
        *,
        workers: int | None = None,
        queue_size: int | None = None,
        batch_size: int | None = None,
        max_attempts: int | None = None,
        retry_backoff_s: float | None = None,
        near_duplicate_threshold: float | None = None,
        lease_s: float | None = None,
    ) -> IngestLimits:
        """The explicit values (0 included), the sections' for those left None."""
        s = ingest
        return cls(
            workers=given_or(workers, s.workers),
            queue_size=given_or(queue_size, s.queue_size),
            batch_size=given_or(batch_size, s.batch_size),
            max_attempts=given_or(max_attempts, s.max_attempts),
            retry_backoff_s=given_or(retry_backoff_s, s.retry_backoff_s),
            near_duplicate_threshold=given_or(near_duplicate_threshold, s.near_duplicate_threshold),
            merge_similarity=video.merge_similarity,
            lease_s=given_or(lease_s, s.lease_s),
        )
