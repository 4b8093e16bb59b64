"""Search an owner's collection: the one entry point the bot and the CLI call.

A query (:mod:`core.search.query`) is a text (routed to a model), a photo (bytes or a file), an
item already in the collection (its stored vector is reused, nothing is re-encoded), or a text
together with a photo or an item; any of them may carry ``-word`` / ``-"a phrase"``
exclusions, quoted phrases and filters (the language: :mod:`core.search.language`). Photos and
video frames are searched together and every video collapses to its best frame and that
frame's timestamp. One search (``elapsed_ms`` covers all of it):

1. **Model** and 2. **query vector**: :mod:`core.search.planning` (none for a query of only
   phrases or filters).
3. **Scope**: :mod:`core.search.filters`: the items the filters and phrases allow, minus those
   whose text holds an excluded term; read once.
4. **Fetch**: :mod:`core.search.retrieval`, within the scope, with exclusions
   (:mod:`core.search.exclusions`) applied to every fetched unit.
5. **Relevance cut**: :mod:`core.search.relevance`.
6. **Text and fusion**: a text query's words and phrases are looked up in the text index and
   fused with the vector ranking (:mod:`core.search.fusion`); a date order sorts the result,
   and filters alone list what they allow by date. When neither side has anything the answer
   is empty with ``reason="no_match"`` and the best score, not the least bad noise.
7. **Page**: :mod:`core.search.results`, with snippets of text matches
   (:mod:`core.search.snippets`). Pages have no duplicates and no gaps.

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
from core.search.filters import MediaScope, QueryFilters, media_scope
from core.search.fusion import (
    Fused,
    by_date,
    excluded_media,
    filter_listing,
    from_text,
    fuse,
    text_ranking,
)
from core.search.language import search_words
from core.search.planning import QueryPlan, QueryPlanner
from core.search.query import Query, Strictness
from core.search.relevance import Ranking, relevance_margin
from core.search.results import SearchResult, fused_hits, search_result, with_snippets
from core.search.retrieval import CandidateRetriever
from core.search.snippets import query_stems
from core.settings import given_or

if TYPE_CHECKING:
    from collections.abc import Sequence

    from core.settings import SearchSettings
    from storage.db import Database
    from storage.owner_texts import TextMatch
    from storage.repositories import OwnerStore


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
        self._retriever = CandidateRetriever(index, direct_max=settings.direct_max)

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
        await self._index.refresh([(owner_id, plan.model_id)])  # changes by other processes
        floor = self._configs[plan.model_id].relevance_floor
        scope = await media_scope(
            store,
            QueryFilters() if query.listing else query.filters,  # a listing reads them itself
            phrases=query.phrases,
            exclude=query.exclude,
            phrase_limit=self._settings.phrase_limit,
        )
        thresholds = await exclusion_thresholds(
            self._index, owner_id, plan, floor=floor, loose_margin=self.margin("loose")
        )
        exclusions = ExclusionFilter(store, plan, thresholds)
        want = query.offset + limit
        if query.listing:
            fused = await filter_listing(store, query.filters, scope, exclusions, want=want)
        else:
            fused = await self._ranked(owner_id, store, plan, query, scope, exclusions, want)
        if not fused.seen_any and (query.filters.narrows or query.phrases or scope.denied):
            fused.seen_any = await store.filters.count() > 0  # filtered out is "no match"
        hits = await fused_hits(
            store, fused, query.offset, limit, model_id=plan.model_id, vector=plan.vector
        )
        page = fused.items[query.offset : query.offset + limit]
        stems = query_stems((*self._text_words(query), *query.phrases))
        hits = await with_snippets(store, hits, {r.media_id: r.sources for r in page}, stems)
        return search_result(
            query,
            fused,
            hits,
            model_id=plan.model_id,
            limit=limit,
            elapsed_ms=(time.perf_counter() - started) * 1000.0,
        )

    async def _ranked(
        self,
        owner_id: int,
        store: OwnerStore,
        plan: QueryPlan,
        query: Query,
        scope: MediaScope,
        exclusions: ExclusionFilter,
        want: int,
    ) -> Fused:
        """The relevant items of a query with words, phrases, a photo or an item: the vector
        ranking fused with the text matches, in date order when the query asks for it."""
        settings = self._settings
        text, text_complete = await self._text_matches(store, query, plan, scope, exclusions, want)
        depth = max(settings.fusion_depth, len(text))  # see core.search.fusion
        sort = query.filters.sort
        if text:
            want = max(want, depth)
        if sort != "relevance":
            want = max(want, settings.sort_depth)
        if plan.vector is None:
            fused = from_text(text, text_complete=text_complete)
        else:
            vector = Ranking()
            if not scope.nothing:
                vector = await self._retriever.rank(
                    owner_id,
                    store,
                    plan,
                    exclusions,
                    floor=self._configs[plan.model_id].relevance_floor,
                    margin=self.margin(query.strictness),
                    want=want,
                    scope=scope,
                )
            fused = fuse(
                vector,
                text,
                k=settings.rrf_k,
                depth=depth,
                text_complete=text_complete,
                text_weight=settings.text_match_weight,
            )
        if sort != "relevance":
            fused = await by_date(store, fused, sort == "newest", depth=settings.sort_depth)
        return fused

    async def _text_matches(
        self,
        store: OwnerStore,
        query: Query,
        plan: QueryPlan,
        scope: MediaScope,
        exclusions: ExclusionFilter,
        want: int,
    ) -> tuple[list[TextMatch], bool]:
        """The text index's matches of a text query within the scope (none for a photo or an
        item: their words steer the picture), and whether they are all of them. A query of
        phrases alone pages through them (at least ``want`` + 1); fused with pictures, the first
        ``SEARCH_TEXT_LIMIT`` take part."""
        words = self._text_words(query)
        if query.image is not None or query.has_item or scope.nothing:
            return [], True
        if not words and not query.phrases:
            return [], True
        settings = self._settings
        base = (
            settings.text_limit if plan.vector is not None else max(settings.text_limit, want + 1)
        )
        found, complete = await text_ranking(
            store,
            words,
            query.phrases,
            scope.ids(),
            limit=base,
            need=want + 1 if plan.vector is None else max(1, base // 2),
            cap=max(base, settings.phrase_limit),
            min_share=settings.text_min_share,
        )
        found = [m for m in found if scope.admits(m.media_id) and m.media_id != plan.own_media]
        dropped = await excluded_media(store, exclusions, [m.media_id for m in found])
        return [m for m in found if m.media_id not in dropped], complete

    @staticmethod
    def _text_words(query: Query) -> tuple[str, ...]:
        """The words of the query the text index must find."""
        return search_words(query.text.split()) if query.text else ()

    def margin(self, strictness: Strictness) -> float:
        """The relevance margin (cosine below the best hit) for a strictness."""
        return relevance_margin(self._settings, strictness)

    async def active_models(self, owner_id: int) -> list[str]:
        """The loaded models that answer for this owner, primary first."""
        return await self._planner.active_models(owner_id)

    def text_model(self, text: str, active: Sequence[str]) -> str:
        """The model that embeds ``text`` for an owner whose active models are ``active``."""
        return self._planner.text_model(text, active)
