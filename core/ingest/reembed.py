"""Background re-embedding when the configured models change; each owner switches atomically.

    reembedder = Reembedder(db, embedder, index, fetch, settings=settings.ingest, pipeline=pipeline)
    reembedder.start()          # background task; ``await reembedder.wait()`` -> report

Which models answer for an owner is stored as *slots* (``ActiveModels.active()``): slot =
the bundle's ``name`` (:func:`core.ingest.slots.model_slot`), value = ``name@version``. The
search service uses exactly the loaded models named there. The *targets* are the loaded models, one
per slot (when two loaded models share a name, the one listed last is the target: list a new version
after the old one). For every owner whose slots differ from the targets:

1. an owner with no slot at all first gets each target whose vectors are already complete
   (nothing to fetch for an owner whose items were all ingested with every loaded model);
2. every item with a unit lacking a target's vector (``OwnerVectors.missing``) is fetched
   again through the same callback as ingest (``IngestRequest.from_media``), decoded in a
   thread, embedded in small batches on the embedder's image lane, stored with
   ``add_vectors`` (bumping the index version) and added to the index. Vectors for the other
   targets an item lacks are computed from the same download;
3. when no unit lacks a target any more, the owner's slots move to the targets in ONE
   transaction (``set_active_models``, which re-checks completeness inside it). Until then the
   old slots keep answering with the old vectors, which stay in SQLite (dropping them, and the
   old bundle, is the operator's call once :attr:`ReembedReport.complete`).

Video frames are re-embedded at their stored timestamps: :func:`core.media.frame_clock.frames_at`
reads the video on the sampler's own frame clock (frame index / fps, or each GIF frame's own
duration), so a timestamp gives back exactly the frame that was embedded, whatever the sampling
settings are now. This keeps unit ids (and with them every index, and the old model's answers)
unchanged.

Resumable by construction: the work list is what SQLite says is missing, so a restart continues
where the last run stopped. An item that cannot be fetched or decoded any more is reported in
:attr:`OwnerReembed.failures` and keeps its owner on the old models (no item silently drops out
of search); it is tried again on the next run. Low priority: with ``pipeline`` given, each batch
first waits (up to ``yield_s``) for the ingest pipeline to be idle, and batches are small, so
new items from users go first on the shared image lane.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from core.errors import (
    ImageFinderError,
    IncompleteModelError,
    UnknownOwnerError,
    UnknownUnitError,
)
from core.index.manager import IndexManager
from core.ingest.decode import thumbnail_image
from core.ingest.fetch import Fetch, Fetcher
from core.ingest.pipeline import IngestPipeline
from core.ingest.request import IngestRequest
from core.ingest.slots import activate_complete_models, model_slot
from core.media.frame_clock import frames_at
from core.media.image import decode_image
from core.models.embedder import AsyncEmbedder
from core.settings import IngestSettings, given_or
from storage import Database, MissingVectors, OwnerStore, Unit

log = logging.getLogger(__name__)

__all__ = ["ItemFailure", "OwnerReembed", "ReembedReport", "Reembedder"]

# Rounds per owner: a second one only runs when the switch found new gaps (another process).
MAX_ROUNDS = 3
OWNER_PAGE = 500

SwitchCallback = Callable[[int, dict[str, str], dict[str, str]], Awaitable[None] | None]
"""``on_switch(owner_id, new_slots, previous_slots)`` after an owner switched."""


@dataclass(frozen=True, slots=True)
class ItemFailure:
    media_id: int
    reason: str  # an error code of core.errors
    message: str


@dataclass(slots=True)
class OwnerReembed:
    """What one owner's pass did. ``pending``: target models the owner still lacks (it keeps
    answering with its old slots for those)."""

    owner_id: int
    activated: dict[str, str] = field(default_factory=dict)  # slots set without re-embedding
    switched: dict[str, str] = field(default_factory=dict)  # slots moved after re-embedding
    embedded: dict[str, int] = field(default_factory=dict)  # model id -> units embedded
    failures: list[ItemFailure] = field(default_factory=list)
    pending: tuple[str, ...] = ()


@dataclass(slots=True)
class ReembedReport:
    owners: list[OwnerReembed] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every owner answers with the target models (old bundles may be retired)."""
        return not any(o.pending for o in self.owners)

    @property
    def embedded(self) -> int:
        return sum(sum(o.embedded.values()) for o in self.owners)

    @property
    def failures(self) -> list[ItemFailure]:
        return [f for o in self.owners for f in o.failures]


class Reembedder:
    """Brings every owner's vectors and slots to the target models (see the module doc)."""

    def __init__(
        self,
        db: Database,
        embedder: AsyncEmbedder,
        index: IndexManager,
        fetch: Fetch,
        *,
        settings: IngestSettings,
        models: Sequence[str] | None = None,
        batch_size: int | None = None,
        workers: int | None = None,
        max_attempts: int | None = None,
        retry_backoff_s: float | None = None,
        pipeline: IngestPipeline | None = None,
        yield_s: float = 5.0,
        on_switch: SwitchCallback | None = None,
    ) -> None:
        self._db = db
        self._embedder = embedder
        self._index = index
        self.batch_size = given_or(batch_size, settings.batch_size)
        self.workers = given_or(workers, settings.workers)
        self.max_attempts = given_or(max_attempts, settings.max_attempts)
        self.retry_backoff_s = given_or(retry_backoff_s, settings.retry_backoff_s)
        if min(self.batch_size, self.workers, self.max_attempts) < 1:  # 0 is no "default"
            raise ValueError("batch_size, workers and max_attempts must be >= 1")
        self._fetch = Fetcher(fetch, attempts=self.max_attempts, backoff_s=self.retry_backoff_s)
        self._pipeline = pipeline
        self.yield_s = yield_s
        self._on_switch = on_switch
        ids = tuple(models) if models is not None else embedder.model_ids
        self.targets: dict[str, str] = {}
        for model_id in ids:
            self.targets[model_slot(embedder.get(model_id).config)] = model_id
        self.target_size = max(embedder.get(m).config.image.size for m in self.targets.values())
        self._task: asyncio.Task[ReembedReport] | None = None

    # --- background task ------------------------------------------------------------------------

    def start(self) -> asyncio.Task[ReembedReport]:
        """Run :meth:`run` in the background (once at a time)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="reembed")
        return self._task

    async def wait(self) -> ReembedReport:
        if self._task is None:
            raise RuntimeError("start() first")
        return await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Cancel the background run; what was stored stays, the next run continues."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # --- passes ---------------------------------------------------------------------------------

    async def run(self) -> ReembedReport:
        """One pass over every owner. A failing owner is logged and the pass goes on."""
        report = ReembedReport()
        after = 0
        while True:
            owner_ids = await self._db.owners.ids(after=after, limit=OWNER_PAGE)
            if not owner_ids:
                break
            after = owner_ids[-1]
            for owner_id in owner_ids:
                try:
                    result = await self.reembed_owner(owner_id)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.exception("re-embedding owner %d failed", owner_id)
                    result = OwnerReembed(
                        owner_id,
                        failures=[ItemFailure(0, getattr(exc, "code", "internal"), str(exc))],
                        pending=tuple(self.targets.values()),
                    )
                if result.activated or result.switched or result.pending or result.embedded:
                    report.owners.append(result)
        if report.embedded or report.failures:
            log.info(
                "re-embedding pass: %d unit(s) embedded, %d owner(s) still pending, %d failure(s)",
                report.embedded,
                sum(1 for o in report.owners if o.pending),
                len(report.failures),
            )
        return report

    async def reembed_owner(self, owner_id: int) -> OwnerReembed:
        """Fill in and switch one owner (see the module docstring)."""
        store = self._db.owner(owner_id)
        result = OwnerReembed(owner_id)
        active = await store.models.active()
        if not active:
            result.activated = await activate_complete_models(store, self.targets)
            active = await store.models.active()
        wanted = {s: m for s, m in self.targets.items() if active.get(s) != m}
        for _ in range(MAX_ROUNDS):
            if not wanted:
                break
            failed: set[int] = set()
            for model_id in wanted.values():
                others = [m for m in wanted.values() if m != model_id]
                await self._fill(store, model_id, others, result, failed)
            ready = {}
            for slot, model_id in wanted.items():
                if not await store.vectors.missing(model_id, limit=1):
                    ready[slot] = model_id
            if ready:
                try:
                    await store.models.set_active(ready)
                except IncompleteModelError:
                    continue  # items arrived without these vectors meanwhile: another round
                except UnknownOwnerError:
                    return result
                previous = {s: active[s] for s in ready if s in active}
                result.switched.update(ready)
                for slot in ready:
                    del wanted[slot]
                log.info("owner %d now answers with %s", owner_id, sorted(ready.values()))
                await self._notify(owner_id, ready, previous)
            if failed:
                break  # the same items would fail again now
        result.pending = tuple(wanted.values())
        return result

    async def _notify(self, owner_id: int, new: dict[str, str], previous: dict[str, str]) -> None:
        if self._on_switch is None:
            return
        try:
            res = self._on_switch(owner_id, dict(new), previous)
            if inspect.isawaitable(res):
                await res
        except Exception:
            log.exception("switch callback failed for owner %d", owner_id)

    async def _fill(
        self,
        store: OwnerStore,
        model_id: str,
        others: list[str],
        result: OwnerReembed,
        failed: set[int],
    ) -> None:
        """Embed every unit of the owner lacking ``model_id`` (and, from the same download,
        ``others`` where those lack it too)."""
        cursor = 0
        while True:
            items = await store.vectors.missing(
                model_id, limit=self.batch_size, after_media_id=cursor
            )
            if not items:
                return
            cursor = items[-1].media.id
            items = [it for it in items if it.media.id not in failed]
            if not items:
                continue
            await self._yield()
            loaded = await self._load_all(store.owner_id, items, result, failed)
            if not loaded:
                continue
            pairs = [
                (u, img) for item, imgs in loaded for u, img in zip(item.units, imgs, strict=True)
            ]
            await self._add(store, model_id, pairs, result, failed)
            for other in others:
                ids = [u.id for u, _ in pairs]
                have_ids, _ = await store.vectors.of_units(other, ids)
                have = set(have_ids.tolist())
                lacking = [(u, img) for u, img in pairs if u.id not in have]
                if lacking:
                    await self._add(store, other, lacking, result, failed)

    async def _yield(self) -> None:
        """Let the ingest pipeline go first: wait for it to be idle, but not forever."""
        if self._pipeline is None or self._pipeline.idle:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._pipeline.wait_idle(), self.yield_s)

    async def _load_all(
        self,
        owner_id: int,
        items: list[MissingVectors],
        result: OwnerReembed,
        failed: set[int],
    ) -> list[tuple[MissingVectors, list[Image.Image]]]:
        gate = asyncio.Semaphore(self.workers)

        async def one(item: MissingVectors) -> list[Image.Image] | None:
            async with gate:
                try:
                    return await self._load(owner_id, item)
                except (ImageFinderError, OSError) as exc:
                    code = getattr(exc, "code", "io")
                    log.warning("cannot re-embed item %d: %s: %s", item.media.id, code, exc)
                    result.failures.append(ItemFailure(item.media.id, code, str(exc)))
                    failed.add(item.media.id)
                    return None

        images = await asyncio.gather(*(one(item) for item in items))
        return [(item, imgs) for item, imgs in zip(items, images, strict=True) if imgs is not None]

    async def _load(self, owner_id: int, item: MissingVectors) -> list[Image.Image]:
        """The pictures of the item's units, in the order of ``item.units``."""
        request = IngestRequest.from_media(owner_id, item.media)
        kinds = {u.kind for u in item.units}
        got: dict[int, Image.Image] = {}
        if "thumbnail" in kinds:
            data = await self._fetch(request, thumbnail=True)
            img = await asyncio.to_thread(thumbnail_image, data, self.target_size)
            got.update({u.id: img for u in item.units if u.kind == "thumbnail"})
        if kinds & {"image", "frame"}:
            data = await self._fetch(request, thumbnail=False)
            frames = [u for u in item.units if u.kind == "frame"]
            if frames:
                times = [float(u.timestamp or 0.0) for u in frames]
                found = await asyncio.to_thread(
                    frames_at, data, times, target_size=self.target_size
                )
                got.update({u.id: f.image for u, f in zip(frames, found, strict=True)})
            if "image" in kinds:
                img = await asyncio.to_thread(decode_image, data, target_size=self.target_size)
                got.update({u.id: img for u in item.units if u.kind == "image"})
        return [got[u.id] for u in item.units]

    async def _add(
        self,
        store: OwnerStore,
        model_id: str,
        pairs: list[tuple[Unit, Image.Image]],
        result: OwnerReembed,
        failed: set[int],
    ) -> None:
        """Embed, store (one transaction) and index; on trouble, fall back to one item at a
        time so a deleted or unreadable item does not hold up the others."""
        try:
            vecs = await self._embedder.encode_images([img for _, img in pairs], model_id=model_id)
            await self._store(store, model_id, [u.id for u, _ in pairs], vecs, result)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if len({u.media_id for u, _ in pairs}) > 1:
                log.info("re-embedding batch failed (%s); going item by item", exc)
        groups: dict[int, list[tuple[Unit, Image.Image]]] = {}
        for unit, img in pairs:
            groups.setdefault(unit.media_id, []).append((unit, img))
        for media_id, group in groups.items():
            try:
                vecs = await self._embedder.encode_images(
                    [img for _, img in group], model_id=model_id
                )
                await self._store(store, model_id, [u.id for u, _ in group], vecs, result)
            except asyncio.CancelledError:
                raise
            except UnknownUnitError:
                continue  # deleted meanwhile: nothing to re-embed
            except Exception as exc:
                code = getattr(exc, "code", "internal")
                result.failures.append(ItemFailure(media_id, code, str(exc)))
                failed.add(media_id)

    async def _store(
        self,
        store: OwnerStore,
        model_id: str,
        unit_ids: list[int],
        vecs: np.ndarray,
        result: OwnerReembed,
    ) -> None:
        version = await store.vectors.add(model_id, unit_ids, vecs)
        ids = np.asarray(unit_ids, dtype=np.int64)
        try:
            await self._index.add(store.owner_id, model_id, ids, vecs, version)
        except Exception:
            log.exception("index add failed for owner %d, %s", store.owner_id, model_id)
            with contextlib.suppress(Exception):
                await self._index.drop(store.owner_id, model_id)
        result.embedded[model_id] = result.embedded.get(model_id, 0) + len(unit_ids)
