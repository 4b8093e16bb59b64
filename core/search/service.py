"""Search an owner's collection, and delete from it, keeping SQLite and the indexes in step.

A query is a text (routed to a model), a photo (bytes or a file), an item already in the
collection (its stored vector is reused, nothing is re-encoded), or a text together with a photo
or an item; any of them may carry ``-word`` / ``-"a phrase"`` exclusions. Photos and video
frames are searched together and every video collapses to its best frame and that frame's
timestamp. One search (``elapsed_ms`` covers all of it):

1. **Model.** The owner's *active* models are those named by ``OwnerStore.active_models()``
   that are loaded here (all loaded models while the owner has none recorded), in the order of
   ``configs``; the first is the owner's *primary* model. A text goes to the model the router
   picks when that model is active for the owner, else to the one a router over the active
   models picks (during a model change the old model keeps answering until the switch). A
   photo or an item alone uses the primary model: one model is enough for photo-to-photo
   similarity and the primary one is the cheapest to keep warm. Text with a photo or an item
   uses the text's model for both, since the two vectors must live in the same space.
2. **Query vector.** Text and photo vectors are combined as
   ``normalise(w * text + (1 - w) * photo)`` with ``w = SEARCH_TEXT_WEIGHT``. An item's vector is
   its stored one (a whole video: the normalised mean of its frames).
3. **Fetch.** The index is asked for ``4 x (offset + limit + 1)`` units (at least 32); units
   whose rows are gone (a deletion racing the index) and the query item itself are skipped,
   exclusions are applied (below), and frames collapse to their media. If the page cannot be
   filled yet and the index had more, the request grows 4x, until the page is full, the
   relevance cut is passed, or the index is exhausted.
4. **Relevance cut.** A hit is kept when ``score >= relevance_floor`` of the model and
   ``score >= best - margin``, the margin chosen by the strictness (``SEARCH_MARGIN_STRICT`` /
   ``_NORMAL`` / ``_LOOSE``). Scores come from the index in descending order, so the kept hits
   are a prefix: once a fetched score falls below the cut, every relevant item has been seen.
   When nothing passes the answer is empty with ``reason="no_match"`` and the best score, not
   the least bad noise.
5. **Page.** Order is score descending, then media id; a page is ``[offset, offset + limit)``
   of that list. Only hits scoring strictly above the last fetched score (or all of them once
   the cut or the end of the index was reached) are counted, so items tied at the fetch
   boundary can never shift between pages: pages have no duplicates and no gaps.

**Exclusions** (``"a circle -red"``). Subtracting the exclusion's vector from the query's
(rclip's way) shifts every score and breaks the meaning of the relevance floor, and comparing a
hit's cosine to the exclusion text with its cosine to the query compares two texts whose cosines
are not on the same scale. Instead an exclusion is treated as a query of its own: a unit is
dropped when it would be a (loose) result of searching the excluded term, i.e. its cosine to the
term is at least ``max(floor, best_term_score - SEARCH_MARGIN_LOOSE)``, where the best term score
is taken over the whole collection (one extra index lookup of k=1 per term). Exclusions work on
units, so a video keeps its frames that do not show the excluded thing. The cosines of the
fetched units come from their stored vectors (one SQLite read per fetch round).

Deleting an item (:meth:`CollectionService.delete_media`) or everything an owner has
(:meth:`CollectionService.clear` keeps the owner and its settings, :meth:`forget_owner` does not)
commits in SQLite first, then removes the units from every index, or drops the owner's index
files. If the index step fails the index is dropped from memory and rebuilt from SQLite on next
use; a stale index entry is never shown meanwhile because every hit is looked up in SQLite.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from core.errors import EmptyQueryError, NotFoundError, OnlyExclusionsError
from core.index.owner_index import IndexManager
from core.models.config import BundleConfig
from core.models.embedder import AsyncEmbedder, l2_normalize
from core.models.routing import TextRouter
from storage.records import DeleteResult, Media, PurgeResult, Unit

if TYPE_CHECKING:
    from core.settings import Settings
    from storage.db import Database
    from storage.repositories import OwnerStore

log = logging.getLogger(__name__)

Strictness = Literal["strict", "normal", "loose"]
STRICTNESS: tuple[str, ...] = ("strict", "normal", "loose")
Reason = Literal["no_match", "empty", "past_end"]
"""Why ``hits`` is empty: ``no_match`` = nothing passed the relevance cut (``best_score`` says
how close the best candidate came); ``empty`` = nothing to search (no indexed item, or only the
query item itself); ``past_end`` = there are results, but ``offset`` is beyond them."""

# How many units to fetch per wanted item: frames collapse and exclusions drop units.
OVERFETCH = 4
MIN_FETCH = 32


# --- query parsing ------------------------------------------------------------------------------

# "-" at the start of a word (start of text or after whitespace), followed by a quoted phrase
# (straight, curly or guillemet quotes; a missing closing quote runs to the end of the text) or
# by a word that does not start with a digit (so "-5 degrees" stays a number) or another dash.
_EXCLUSION = re.compile(
    r"""(?<!\S)-(?:
        "(?P<q1>[^"]*)"?
      | “(?P<q2>[^”]*)”?
      | «(?P<q3>[^»]*)»?
      | „(?P<q4>[^“”]*)[“”]?
      | (?P<word>[^\s\d\-"“«„]\S*)
    )""",
    re.VERBOSE,
)
_TRAILING = ".,;:!?)]}"
_DASHES = "-‐‑‒–—―−"


def parse_query(text: str) -> tuple[str, tuple[str, ...]]:
    """Split a query into the text to look for and the terms to leave out.

    ``'cat on a sofa -dog -"red blanket"'`` -> ``("cat on a sofa", ("dog", "red blanket"))``.
    A ``-`` counts only at the start of a word ("e-mail" and "-5" are plain text); quotes may be
    ``"..."``, ``“...”``, ``«...»`` or ``„...“``. Words made only of dashes are dropped, spaces
    are collapsed, and exclusions are deduplicated ignoring case. The positive text may come
    back empty: the caller decides whether that is an error (it is for a text-only query).
    """
    excluded: list[str] = []
    seen: set[str] = set()

    def take(match: re.Match[str]) -> str:
        groups = match.groupdict()
        term = next((g for k, g in groups.items() if k != "word" and g is not None), None)
        if term is None:
            term = (groups["word"] or "").rstrip(_TRAILING)
        term = " ".join(term.split())
        if term and term.casefold() not in seen:
            seen.add(term.casefold())
            excluded.append(term)
        return " "

    rest = _EXCLUSION.sub(take, text)
    positive = " ".join(w for w in rest.split() if w.strip(_DASHES))
    return positive, tuple(excluded)


# --- requests and answers -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Query:
    """One search request. At least one of ``text``, ``image``, ``unit_id`` / ``media_id``.

    ``text`` is the positive text only; build from what a user typed with :meth:`from_text`,
    which moves ``-word`` exclusions into ``exclude``. ``image`` and an existing item
    (``unit_id``: one photo or one video frame; ``media_id``: a whole item) are exclusive.
    ``limit=None`` means ``SEARCH_DEFAULT_LIMIT``; larger than ``SEARCH_MAX_LIMIT`` is clamped.
    """

    text: str | None = None
    image: bytes | Path | None = None
    unit_id: int | None = None
    media_id: int | None = None
    exclude: tuple[str, ...] = ()
    strictness: Strictness = "normal"
    offset: int = 0
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.strictness not in STRICTNESS:
            raise ValueError(f"strictness must be one of {STRICTNESS}, got {self.strictness!r}")
        if self.offset < 0:
            raise ValueError("offset must be >= 0")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be >= 1")
        given = sum(x is not None for x in (self.image, self.unit_id, self.media_id))
        if given > 1:
            raise ValueError("give at most one of image, unit_id and media_id")
        if isinstance(self.exclude, str):
            raise TypeError("exclude must be a sequence of terms, not one string")

    @classmethod
    def from_text(
        cls,
        text: str | None,
        *,
        image: bytes | Path | None = None,
        unit_id: int | None = None,
        media_id: int | None = None,
        exclude: Iterable[str] = (),
        strictness: Strictness = "normal",
        offset: int = 0,
        limit: int | None = None,
    ) -> Query:
        """A query from what the user typed (``-word`` exclusions parsed out of ``text``)."""
        positive, excluded = parse_query(text or "")
        return cls(
            text=positive or None,
            image=image,
            unit_id=unit_id,
            media_id=media_id,
            exclude=_dedupe((*excluded, *exclude)),
            strictness=strictness,
            offset=offset,
            limit=limit,
        )

    @property
    def has_item(self) -> bool:
        return self.unit_id is not None or self.media_id is not None


@dataclass(frozen=True, slots=True)
class Hit:
    """One item found. ``unit_id`` is the matching photo or frame; ``timestamp`` is the moment
    (seconds) of the best frame for a video, ``None`` for a photo or a thumbnail."""

    media: Media
    score: float  # cosine similarity to the query vector
    unit_id: int
    timestamp: float | None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One page of answers, or why there is none (``reason``)."""

    hits: list[Hit]
    model_id: str | None  # the model that answered
    elapsed_ms: float  # the whole search: embedding, index and database
    reason: Reason | None = None
    best_score: float | None = None  # of the best candidate, even when it did not pass the cut
    offset: int = 0
    limit: int = 0
    total: int = 0  # relevant items found; exact when ``total_exact``, else a lower bound
    total_exact: bool = True
    has_more: bool = False  # a next page (offset + limit) has at least one hit
    strictness: Strictness = "normal"
    excluded: tuple[str, ...] = ()  # the exclusion terms that were applied

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.has_more else None


# --- deletion -----------------------------------------------------------------------------------


class CollectionService:
    """Deletes from an owner's collection: rows and vectors in SQLite, then index entries."""

    def __init__(self, db: Database, index: IndexManager) -> None:
        self._db = db
        self._index = index

    async def delete_media(self, owner_id: int, media_id: int) -> DeleteResult:
        """Delete one item with its units, vectors and index entries. Raises
        :class:`NotFoundError` if it is not the owner's (already deleted, or another owner's)."""
        result = await self.delete_media_many(owner_id, [media_id])
        if not result.media_ids:
            raise NotFoundError(f"item {media_id} not found")
        return result

    async def delete_media_many(self, owner_id: int, media_ids: Iterable[int]) -> DeleteResult:
        """Delete several items in one transaction; unknown ids are ignored (see the result)."""
        result = await self._db.owner(owner_id).delete_media_many(media_ids)
        await self.apply_delete(owner_id, result)
        return result

    async def apply_delete(self, owner_id: int, result: DeleteResult) -> None:
        """Remove from the indexes what a committed storage deletion removed (also for
        ``OwnerStore.remove_local_files`` and ``delete_model_vectors`` results)."""
        for model_id, unit_ids in result.by_model.items():
            version = result.versions.get(model_id)
            if version is None or not unit_ids:
                continue
            try:
                await self._index.remove(
                    owner_id, model_id, np.asarray(unit_ids, dtype=np.int64), version
                )
            except Exception:
                # SQLite already committed: forget the in-memory index, rebuild on next use.
                log.exception("index removal failed owner=%s model=%s", owner_id, model_id)
                await self._index.drop(owner_id, model_id)

    async def clear(self, owner_id: int) -> PurgeResult:
        """Delete every item, unit, vector and job of the owner and its index files; the owner,
        its settings and active models stay."""
        result = await self._db.owner(owner_id).delete_all_media()
        await self._index.drop_owner(owner_id)
        return result

    async def forget_owner(self, owner_id: int) -> PurgeResult:
        """Forget the owner entirely (rows, settings, vectors, jobs) and its index files."""
        result = await self._db.owner(owner_id).delete_owner()
        await self._index.drop_owner(owner_id)
        return result


# --- search -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Plan:
    """What a query turned into: the model, the query vector and the exclusion vectors."""

    model_id: str
    vector: np.ndarray  # float32 [D], unit length
    exclude: np.ndarray  # float32 [E, D]
    own_media: int | None = None  # the query item, never a result of itself


@dataclass(slots=True)
class _Ranking:
    items: list[tuple[Unit, float]] = field(default_factory=list)  # one per media, sorted
    complete: bool = True  # every relevant item is in ``items``
    best: float | None = None
    seen_any: bool = False  # at least one searchable unit besides the query item


class SearchService:
    """The search engine the bot and the CLI call (see the module docstring).

    ``configs`` maps every loaded model id to its bundle config, in priority order (the first
    active one is an owner's primary model); ``embedder`` must serve all of them.
    """

    def __init__(
        self,
        db: Database,
        embedder: AsyncEmbedder,
        index: IndexManager,
        router: TextRouter,
        configs: Mapping[str, BundleConfig],
        settings: Settings,
    ) -> None:
        if not configs:
            raise ValueError("at least one model config is needed")
        for model_id, cfg in configs.items():
            if cfg.model_id != model_id:
                raise ValueError(f"config {cfg.model_id!r} is filed under {model_id!r}")
        missing = set(configs) - set(embedder.model_ids)
        if missing:
            raise ValueError(f"no embedder for {sorted(missing)}")
        self._db = db
        self._embedder = embedder
        self._index = index
        self._router = router
        self._configs = dict(configs)
        self._settings = settings
        self._routers: dict[tuple[str, ...], TextRouter] = {}
        self.collection = CollectionService(db, index)

    # -- public API

    async def search_text(
        self,
        owner_id: int,
        text: str,
        *,
        strictness: Strictness = "normal",
        offset: int = 0,
        limit: int | None = None,
    ) -> SearchResult:
        """Search by what the user typed, ``-word`` exclusions included."""
        query = Query.from_text(text, strictness=strictness, offset=offset, limit=limit)
        return await self.search(owner_id, query)

    async def search_image(
        self,
        owner_id: int,
        image: bytes | Path,
        *,
        text: str | None = None,
        strictness: Strictness = "normal",
        offset: int = 0,
        limit: int | None = None,
    ) -> SearchResult:
        """Search by a photo (encoded bytes or a file), optionally with a text (and
        exclusions) steering it, e.g. a photo sent with a caption."""
        query = Query.from_text(
            text, image=image, strictness=strictness, offset=offset, limit=limit
        )
        return await self.search(owner_id, query)

    async def search_similar(
        self,
        owner_id: int,
        *,
        unit_id: int | None = None,
        media_id: int | None = None,
        text: str | None = None,
        strictness: Strictness = "normal",
        offset: int = 0,
        limit: int | None = None,
    ) -> SearchResult:
        """Items like one already in the collection (a photo or video frame by ``unit_id``, or a
        whole item by ``media_id``), reusing stored vectors; the item itself is never a hit.
        Raises :class:`NotFoundError` for an id that is not the owner's."""
        if (unit_id is None) == (media_id is None):
            raise ValueError("give exactly one of unit_id and media_id")
        query = Query.from_text(
            text,
            unit_id=unit_id,
            media_id=media_id,
            strictness=strictness,
            offset=offset,
            limit=limit,
        )
        return await self.search(owner_id, query)

    async def search(self, owner_id: int, query: Query) -> SearchResult:
        """Answer any :class:`Query`. Raises :class:`EmptyQueryError` (nothing to look for;
        :class:`OnlyExclusionsError` when only exclusions were given), :class:`NotFoundError`
        (an item that is not the owner's) and the embedder's image errors for bad photo bytes.
        """
        started = time.perf_counter()
        limit = query.limit or self._settings.search_default_limit
        limit = min(limit, self._settings.search_max_limit)
        store = self._db.owner(owner_id)
        plan = await self._plan(owner_id, store, query)
        cfg = self._configs[plan.model_id]
        margin = self.margin(query.strictness)
        thresholds = await self._exclusion_thresholds(owner_id, plan, cfg.relevance_floor)
        ranking = await self._rank(
            owner_id,
            store,
            plan,
            floor=cfg.relevance_floor,
            margin=margin,
            exclusion_thresholds=thresholds,
            want=query.offset + limit,
        )
        end = query.offset + limit
        chosen = ranking.items[query.offset : end]
        media = await store.media_by_ids(u.media_id for u, _ in chosen) if chosen else {}
        hits = [
            Hit(media[u.media_id], round(float(s), 6), u.id, u.timestamp)
            for u, s in chosen
            if u.media_id in media  # deleted between the ranking and now
        ]
        reason: Reason | None = None
        if not hits:
            if not ranking.seen_any:
                reason = "empty"
            elif not ranking.items:
                reason = "no_match"
            else:
                reason = "past_end"
        return SearchResult(
            hits=hits,
            model_id=plan.model_id,
            elapsed_ms=(time.perf_counter() - started) * 1000.0,
            reason=reason,
            best_score=None if ranking.best is None else round(ranking.best, 6),
            offset=query.offset,
            limit=limit,
            total=len(ranking.items),
            total_exact=ranking.complete,
            has_more=len(ranking.items) > end,
            strictness=query.strictness,
            excluded=query.exclude,
        )

    def margin(self, strictness: Strictness) -> float:
        """The relevance margin (cosine below the best hit) for a strictness."""
        s = self._settings
        margins = {
            "strict": s.search_margin_strict,
            "normal": s.search_margin_normal,
            "loose": s.search_margin_loose,
        }
        try:
            return float(margins[strictness])
        except KeyError:
            raise ValueError(f"strictness must be one of {STRICTNESS}") from None

    async def active_models(self, owner_id: int) -> list[str]:
        """The loaded models that answer for this owner, primary first (see the module doc)."""
        stored = set((await self._db.owner(owner_id).active_models()).values())
        active = [m for m in self._configs if m in stored]
        return active or list(self._configs)

    def text_model(self, text: str, active: Sequence[str]) -> str:
        """The model that embeds ``text`` for an owner whose active models are ``active``."""
        routed = self._router.route_id(text)
        if routed in active:
            return routed
        key = tuple(active)
        router = self._routers.get(key)
        if router is None:
            router = self._routers[key] = TextRouter(self._configs[m] for m in key)
        return router.route_id(text)

    # -- collection (delegated, so callers hold one object)

    async def delete_media(self, owner_id: int, media_id: int) -> DeleteResult:
        return await self.collection.delete_media(owner_id, media_id)

    async def clear(self, owner_id: int) -> PurgeResult:
        return await self.collection.clear(owner_id)

    async def forget_owner(self, owner_id: int) -> PurgeResult:
        return await self.collection.forget_owner(owner_id)

    # -- internals

    async def _plan(self, owner_id: int, store: OwnerStore, query: Query) -> _Plan:
        """Choose the model and build the query and exclusion vectors."""
        text = query.text.strip() if query.text else ""
        if not text and query.image is None and not query.has_item:
            if query.exclude:
                raise OnlyExclusionsError(
                    "the query only says what to leave out: "
                    + ", ".join(f"-{t}" for t in query.exclude)
                )
            raise EmptyQueryError("the query is empty")
        active = await self.active_models(owner_id)
        model_id = self.text_model(text, active) if text else active[0]

        own_media: int | None = None
        item_vector: np.ndarray | None = None
        if query.has_item:
            unit_ids, own_media = await self._item_units(store, query)
            order = [model_id, *(m for m in active if m != model_id)]
            for candidate in order:
                ids, vecs = await store.vectors_for_units(candidate, unit_ids)
                if len(ids):
                    model_id = candidate
                    item_vector = l2_normalize(vecs.mean(axis=0, keepdims=True))[0]
                    break
            else:
                raise NotFoundError(
                    "the item has no vector for the loaded models yet (being re-embedded)"
                )

        texts = ([text] if text else []) + list(query.exclude)
        text_task = self._embedder.encode_texts(texts, model_id=model_id) if texts else _none()
        image_task = (
            self._embedder.encode_images([query.image], model_id=model_id)
            if query.image is not None
            else _none()
        )
        text_vecs, image_vecs = await asyncio.gather(text_task, image_task)
        visual = item_vector if image_vecs is None else np.asarray(image_vecs[0], np.float32)
        dim = self._configs[model_id].embed_dim
        exclude = np.zeros((0, dim), dtype=np.float32)
        positive: np.ndarray | None = None
        if text_vecs is not None:
            text_vecs = np.asarray(text_vecs, dtype=np.float32)
            if text:
                positive, exclude = text_vecs[0], text_vecs[1:]
            else:
                exclude = text_vecs
        if positive is not None and visual is not None:
            w = float(self._settings.search_text_weight)
            positive = w * positive + (1.0 - w) * visual
        elif positive is None:
            positive = visual
        assert positive is not None
        vector = l2_normalize(np.asarray(positive, dtype=np.float32).reshape(1, -1))[0]
        return _Plan(model_id, vector, np.ascontiguousarray(exclude), own_media)

    @staticmethod
    async def _item_units(store: OwnerStore, query: Query) -> tuple[list[int], int]:
        """The query item's unit ids and media id, or :class:`NotFoundError`."""
        if query.unit_id is not None:
            unit = (await store.units([query.unit_id])).get(int(query.unit_id))
            if unit is None:
                raise NotFoundError(f"unit {query.unit_id} not found")
            return [unit.id], unit.media_id
        assert query.media_id is not None
        units = await store.units_of_media(query.media_id)
        if not units:
            raise NotFoundError(f"item {query.media_id} not found")
        return [u.id for u in units], int(query.media_id)

    async def _exclusion_thresholds(self, owner_id: int, plan: _Plan, floor: float) -> np.ndarray:
        """Per exclusion term, the cosine at or above which a unit is dropped: what a loose
        search for the term would return (its best score in the collection minus the loose
        margin, never below the model's floor)."""
        if not len(plan.exclude):
            return np.zeros(0, dtype=np.float32)
        tops = await self._index.search(owner_id, plan.model_id, plan.exclude, 1)
        loose = self.margin("loose")
        out = [max(floor, row[0][1] - loose) if row else np.inf for row in tops]
        return np.asarray(out, dtype=np.float32)

    async def _rank(
        self,
        owner_id: int,
        store: OwnerStore,
        plan: _Plan,
        *,
        floor: float,
        margin: float,
        exclusion_thresholds: np.ndarray,
        want: int,
    ) -> _Ranking:
        """Relevant items, one per media, in page order (see steps 3-5 of the module doc)."""
        k = max(MIN_FETCH, OVERFETCH * (want + 1))
        units: dict[int, Unit | None] = {}
        excluded: dict[int, bool] = {}
        while True:
            raw = (await self._index.search(owner_id, plan.model_id, plan.vector, k))[0]
            exhausted = len(raw) < k
            new = [uid for uid, _ in raw if uid not in units]
            if new:
                found = await store.units(new)
                units.update((uid, found.get(uid)) for uid in new)
            valid: list[tuple[Unit, float]] = []
            for uid, score in raw:
                unit = units[uid]
                if unit is not None and unit.media_id != plan.own_media:
                    valid.append((unit, score))
            if len(exclusion_thresholds):
                await self._mark_excluded(
                    store, plan, exclusion_thresholds, [u.id for u, _ in valid], excluded
                )
                kept = [(u, s) for u, s in valid if not excluded[u.id]]
            else:
                kept = valid
            if not kept:
                if exhausted or (raw and raw[-1][1] < floor):
                    return _Ranking(seen_any=bool(valid))
                k *= OVERFETCH
                continue
            # Ties in score: the lower unit id first, so the best frame does not flicker.
            kept.sort(key=lambda us: (-us[1], us[0].id))
            best = kept[0][1]
            threshold = max(floor, best - margin)
            last = raw[-1][1]
            complete = exhausted or last < threshold
            items: list[tuple[Unit, float]] = []
            media_seen: set[int] = set()
            for unit, score in kept:
                if score < threshold:
                    break
                if unit.media_id in media_seen:
                    continue
                media_seen.add(unit.media_id)
                # Below the last fetched score an unfetched unit may tie: only count the sure.
                if complete or score > last:
                    items.append((unit, score))
            if complete or len(items) > want:
                items.sort(key=lambda us: (-us[1], us[0].media_id))
                return _Ranking(items, complete, best, True)
            k *= OVERFETCH

    async def _mark_excluded(
        self,
        store: OwnerStore,
        plan: _Plan,
        thresholds: np.ndarray,
        unit_ids: list[int],
        excluded: dict[int, bool],
    ) -> None:
        """Decide, for units not decided yet, whether an exclusion term matches them."""
        todo = [u for u in unit_ids if u not in excluded]
        if not todo:
            return
        ids, vecs = await store.vectors_for_units(plan.model_id, todo)
        for uid in todo:
            excluded[uid] = True  # no stored vector: a row deleted meanwhile
        if len(ids):
            scores = l2_normalize(vecs) @ plan.exclude.T  # [n, E]
            hit = (scores >= thresholds[None, :]).any(axis=1)
            for uid, is_excluded in zip(ids.tolist(), hit.tolist(), strict=True):
                excluded[uid] = bool(is_excluded)


async def _none() -> None:
    return None


def _dedupe(terms: Iterable[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    out: list[str] = []
    for term in terms:
        term = " ".join(str(term).split())
        if term and term.casefold() not in seen:
            seen.add(term.casefold())
            out.append(term)
    return tuple(out)
