"""The commit stage: the near-duplicate hint, then the item, its units, its vectors and the
job's ``done`` state in ONE transaction, then the indexes. Only then is the caller told
"saved": never of something a crash could still lose."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence

import numpy as np

from core.errors import JobStateError, UnknownOwnerError
from core.index.manager import IndexManager
from core.ingest.decode import PreparedItem
from core.ingest.outcomes import OutcomeDelivery
from core.ingest.request import IngestOutcome, NearDuplicate
from core.ingest.slots import activate_complete_models, durable
from storage import CommitResult, Database, OwnerStore

log = logging.getLogger(__name__)

__all__ = ["NEAR_DUPLICATE_K", "ItemCommitter"]

# Units searched for a near-duplicate (the first hit whose row still exists wins).
NEAR_DUPLICATE_K = 4


class ItemCommitter:
    """Stores embedded items. ``slots`` (slot -> model) are given to an owner without any after
    its first commit in this process (:func:`~core.ingest.slots.activate_complete_models`)."""

    def __init__(
        self,
        db: Database,
        index: IndexManager,
        outcomes: OutcomeDelivery,
        *,
        models: Sequence[str],
        slots: Mapping[str, str],
        near_duplicate_threshold: float,
        merge_similarity: float,
    ) -> None:
        self._db = db
        self._index = index
        self._outcomes = outcomes
        self.models = tuple(models)
        self.slots = dict(slots)
        self.near_duplicate_threshold = near_duplicate_threshold
        self.merge_similarity = merge_similarity
        self._activated: set[int] = set()

    async def commit(
        self, item: PreparedItem, vectors: dict[str, np.ndarray], primaries: dict[int, str]
    ) -> None:
        """Store one item and resolve its job (``primaries`` caches each owner's primary model
        for the batch)."""
        job, request = item.job, item.request
        store = self._db.owner(job.owner_id)
        vectors = item.merge_moments(vectors, self.merge_similarity)
        near = await self._near_duplicate_hint(store, vectors, primaries, job.id)
        try:
            result = await durable(
                store.media.commit(
                    request.new_media(**item.measured),
                    item.units,
                    vectors,
                    job_id=job.id,
                    outcome=saved_outcome(item, near),
                )
            )
        except (JobStateError, UnknownOwnerError) as exc:
            await self._outcomes.fail(job, request, exc)
            return
        if result.duplicate:
            await self._outcomes.duplicate(job, request, result.media_id)
            return
        await self._add_to_indexes(job.owner_id, result, vectors)
        if near is not None:
            await self._record_pair(store, result.media_id, near)
        if job.owner_id not in self._activated:
            await self._activate(store, primaries)
        outcome = IngestOutcome(
            "saved",
            job.id,
            request,
            media_id=result.media_id,
            unit_ids=result.unit_ids,
            timestamps=tuple(u.timestamp for u in item.units),
            near_duplicate_of=near,
            thumbnail_only=item.thumbnail_only,
        )
        await self._outcomes.resolve(outcome)

    async def _near_duplicate_hint(
        self,
        store: OwnerStore,
        vectors: dict[str, np.ndarray],
        primaries: dict[int, str],
        job_id: int,
    ) -> NearDuplicate | None:
        """The stored item this one looks like (a video by its first frame), if any."""
        try:
            primary = await self._primary(store, primaries)
            return await self._near_duplicate(store, primary, vectors[primary][0])
        except Exception:  # a hint for the user, never a reason not to save
            log.exception("near-duplicate check failed for job %d", job_id)
            return None

    async def _record_pair(self, store: OwnerStore, media_id: int, near: NearDuplicate) -> None:
        """Keep the pair for /duplicates; the item is saved whether or not this works."""
        try:
            await store.near_duplicates.record(media_id, near.media_id, near.score)
        except Exception:
            log.exception("cannot record near-duplicate %d ~ %d", media_id, near.media_id)

    async def _primary(self, store: OwnerStore, cache: dict[int, str]) -> str:
        """The model near-duplicates are looked up with: the first loaded model active for the
        owner (its vectors are complete), else the first loaded model."""
        found = cache.get(store.owner_id)
        if found is None:
            active = set((await store.models.active()).values())
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
        units = await store.units.by_ids([u for u, _ in candidates])
        for unit_id, score in candidates:
            unit = units.get(unit_id)
            if unit is not None:
                return NearDuplicate(unit.media_id, float(min(score, 1.0)))
        return None

    async def _add_to_indexes(
        self, owner_id: int, result: CommitResult, vectors: dict[str, np.ndarray]
    ) -> None:
        ids = np.asarray(result.unit_ids, dtype=np.int64)
        for model_id, version in result.versions.items():
            try:
                await self._index.add(owner_id, model_id, ids, vectors[model_id], version)
            except Exception:
                # Committed is committed: forget the cached index, it is rebuilt from SQLite.
                log.exception("index add failed for owner %d, %s", owner_id, model_id)
                with contextlib.suppress(Exception):
                    await self._index.drop(owner_id, model_id)

    async def _activate(self, store: OwnerStore, primaries: dict[int, str]) -> None:
        """After an owner's first commit in this process: slots for its complete models."""
        self._activated.add(store.owner_id)
        try:
            if await activate_complete_models(store, self.slots):
                primaries.pop(store.owner_id, None)
        except Exception:  # the re-embedder sets the slots on its next pass
            log.exception("cannot record the active models of owner %d", store.owner_id)


def saved_outcome(item: PreparedItem, near: NearDuplicate | None) -> dict[str, object]:
    """What the job row keeps of a saved item's outcome beyond its columns (storage adds the
    unit ids), for a front end on another machine (:mod:`core.ingest.remote`)."""
    return {
        "timestamps": [u.timestamp for u in item.units],
        "near_duplicate_of": None if near is None else [near.media_id, near.score],
        "thumbnail_only": item.thumbnail_only,
    }
