"""Search an owner's collection: the one entry point the bot and the CLI call.

A query (:mod:`core.search.query`) is a text (routed to a model), a photo (bytes or a file), an
item already in the collection (its stored vector is reused, nothing is re-encoded), or a text
together with a photo or an item; any of them may carry ``-word`` / ``-"a phrase"``
exclusions. Photos and video frames are searched together and every video collapses to its
best frame and that frame's timestamp. One search (``elapsed_ms`` covers all of it):

1. **Model** and 2. **query vector**: :mod:`core.search.planning`.
3. **Fetch**: :mod:`core.search.retrieval`, with exclusions (:mod:`core.search.exclusions`)
   applied to every fetched unit.
4. **Relevance cut**: :mod:`core.search.relevance`. When nothing passes the answer is empty
   with ``reason="no_match"`` and the best score, not the least bad noise.
5. **Page**: :mod:`core.search.results`. Order is score descending, then media id; pages have
   no duplicates and no gaps.

Deleting from a collection is :class:`~core.search.collection.CollectionService`'s job.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from core.index.manager import IndexManager
from core.models.config import BundleConfig
from core.models.embedder import AsyncEmbedder
from core.models.routing import ActiveModelRouter, TextRouter
from core.search.exclusions import ExclusionFilter, exclusion_thresholds
from core.search.planning import QueryPlanner
from core.search.query import Query, Strictness
from core.search.relevance import relevance_margin
from core.search.results import SearchResult, page_hits, search_result
from core.search.retrieval import CandidateRetriever
from core.settings import given_or

if TYPE_CHECKING:
    from collections.abc import Sequence

    from core.settings import SearchSettings
    from storage.db import Database


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
        settings: SearchSettings,
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
        self._index = index
        self._configs = dict(configs)
        self._settings = settings
        self._planner = QueryPlanner(
            db,
            embedder,
            ActiveModelRouter(router, configs),
            configs,
            text_weight=settings.text_weight,
        )
        self._retriever = CandidateRetriever(index)

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
        limit = given_or(query.limit, self._settings.default_limit)
        limit = min(limit, self._settings.max_limit)
        store = self._db.owner(owner_id)
        plan = await self._planner.plan(owner_id, store, query)
        floor = self._configs[plan.model_id].relevance_floor
        thresholds = await exclusion_thresholds(
            self._index, owner_id, plan, floor=floor, loose_margin=self.margin("loose")
        )
        ranking = await self._retriever.rank(
            owner_id,
            store,
            plan,
            ExclusionFilter(store, plan, thresholds),
            floor=floor,
            margin=self.margin(query.strictness),
            want=query.offset + limit,
        )
        hits = await page_hits(store, ranking, query.offset, limit)
        return search_result(
            query,
            ranking,
            hits,
            model_id=plan.model_id,
            limit=limit,
            elapsed_ms=(time.perf_counter() - started) * 1000.0,
        )

    def margin(self, strictness: Strictness) -> float:
        """The relevance margin (cosine below the best hit) for a strictness."""
        return relevance_margin(self._settings, strictness)

    async def active_models(self, owner_id: int) -> list[str]:
        """The loaded models that answer for this owner, primary first."""
        return await self._planner.active_models(owner_id)

    def text_model(self, text: str, active: Sequence[str]) -> str:
        """The model that embeds ``text`` for an owner whose active models are ``active``."""
        return self._planner.text_model(text, active)
