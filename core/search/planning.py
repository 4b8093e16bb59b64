"""Turning a :class:`~core.search.query.Query` into vectors: which model answers, and the
query and exclusion vectors in that model's space.

* **Model.** The owner's *active* models are those named by ``ActiveModels.active()``
  that are loaded here (all loaded models while the owner has none recorded), in the order of
  ``configs``; the first is the owner's *primary* model. A text goes to the model the router
  picks when that model is active for the owner, else to the one a router over the active
  models picks (during a model change the old model keeps answering until the switch). A
  photo or an item alone uses the primary model: one model is enough for photo-to-photo
  similarity and the primary one is the cheapest to keep warm. Text with a photo or an item
  uses the text's model for both, since the two vectors must live in the same space.
* **Query vector.** Text and photo vectors are combined as
  ``normalise(w * text + (1 - w) * photo)`` with ``w = SEARCH_TEXT_WEIGHT``. An item's vector is
  its stored one (a whole video: the normalised mean of its frames). A query of only quoted
  phrases or filters has none: it is answered by the text index or the filters alone, and only
  its exclusions are encoded (in the primary model).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.errors import EmptyQueryError, ItemNotReadyError, NotFoundError, OnlyExclusionsError
from core.models.config import BundleConfig
from core.models.embedder import AsyncEmbedder, l2_normalize
from core.models.routing import ActiveModelRouter
from core.search.query import Query

if TYPE_CHECKING:
    from storage.db import Database
    from storage.repositories import OwnerStore


@dataclass(slots=True)
class QueryPlan:
    """What a query turned into: the model, the query vector and the exclusion vectors."""

    model_id: str
    vector: np.ndarray | None  # float32 [D], unit length; None: only phrases or filters
    exclude: np.ndarray  # float32 [E, D]
    own_media: int | None = None  # the query item, never a result of itself


class QueryPlanner:
    """Chooses the answering model and encodes a query (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        embedder: AsyncEmbedder,
        router: ActiveModelRouter,
        configs: Mapping[str, BundleConfig],
        text_weight: float,
    ) -> None:
        self._db = db
        self._embedder = embedder
        self._router = router
        self._configs = dict(configs)
        self._text_weight = float(text_weight)

    async def active_models(self, owner_id: int) -> list[str]:
        """The loaded models that answer for this owner, primary first (see the module doc)."""
        stored = set((await self._db.owner(owner_id).models.active()).values())
        active = [m for m in self._configs if m in stored]
        return active or list(self._configs)

    def text_model(self, text: str, active: Sequence[str]) -> str:
        """The model that embeds ``text`` for an owner whose active models are ``active``."""
        return self._router.route_id(text, active)

    async def plan(self, owner_id: int, store: OwnerStore, query: Query) -> QueryPlan:
        """Choose the model and build the query and exclusion vectors."""
        text = query.text.strip() if query.text else ""
        picture = bool(text) or query.image is not None or query.has_item
        if not picture and not query.phrases and not query.filters.active:
            if query.exclude:
                raise OnlyExclusionsError(
                    "the query only says what to leave out: "
                    + ", ".join(f"-{t}" for t in query.exclude)
                )
            raise EmptyQueryError("the query is empty")
        active = await self.active_models(owner_id)
        if not picture:  # phrases or filters: no query vector, only the exclusions'
            _, exclude = await self._encode(active[0], "", query)
            return QueryPlan(active[0], None, np.ascontiguousarray(exclude))
        model_id = self.text_model(text, active) if text else active[0]
        own_media: int | None = None
        item_vector: np.ndarray | None = None
        if query.has_item:
            model_id, item_vector, own_media = await self._item_vector(
                store, query, [model_id, *(m for m in active if m != model_id)]
            )
        positive, exclude = await self._encode(model_id, text, query)
        visual = item_vector if positive.image is None else positive.image
        vector = self._combine(positive.text, visual)
        return QueryPlan(model_id, vector, np.ascontiguousarray(exclude), own_media)

    async def _item_vector(
        self, store: OwnerStore, query: Query, models: Sequence[str]
    ) -> tuple[str, np.ndarray, int]:
        """(model, vector, media id) of the query item in the first of ``models`` that has a
        stored vector for it."""
        unit_ids, own_media = await self._item_units(store, query)
        for candidate in models:
            ids, vecs = await store.vectors.of_units(candidate, unit_ids)
            if len(ids):
                return candidate, l2_normalize(vecs.mean(axis=0, keepdims=True))[0], own_media
        raise ItemNotReadyError(
            "the item has no vector for the loaded models yet (being re-embedded)"
        )

    @staticmethod
    async def _item_units(store: OwnerStore, query: Query) -> tuple[list[int], int]:
        """The query item's unit ids and media id, or :class:`NotFoundError`."""
        if query.unit_id is not None:
            unit = (await store.units.by_ids([query.unit_id])).get(int(query.unit_id))
            if unit is None:
                raise NotFoundError(f"unit {query.unit_id} not found")
            return [unit.id], unit.media_id
        assert query.media_id is not None
        units = await store.units.of_media(query.media_id)
        if not units:
            raise NotFoundError(f"item {query.media_id} not found")
        return [u.id for u in units], int(query.media_id)

    async def _encode(self, model_id: str, text: str, query: Query) -> tuple[_Encoded, np.ndarray]:
        """The positive text and photo vectors, and the exclusion vectors [E, D], encoded
        concurrently (one text batch, one photo)."""
        texts = ([text] if text else []) + list(query.exclude)
        text_task = self._embedder.encode_texts(texts, model_id=model_id) if texts else _none()
        image_task = (
            self._embedder.encode_images([query.image], model_id=model_id)
            if query.image is not None
            else _none()
        )
        text_vecs, image_vecs = await asyncio.gather(text_task, image_task)
        image = None if image_vecs is None else np.asarray(image_vecs[0], np.float32)
        dim = self._configs[model_id].embed_dim
        exclude = np.zeros((0, dim), dtype=np.float32)
        positive: np.ndarray | None = None
        if text_vecs is not None:
            text_vecs = np.asarray(text_vecs, dtype=np.float32)
            if text:
                positive, exclude = text_vecs[0], text_vecs[1:]
            else:
                exclude = text_vecs
        return _Encoded(positive, image), exclude

    def _combine(self, text: np.ndarray | None, visual: np.ndarray | None) -> np.ndarray:
        """``normalise(w * text + (1 - w) * visual)``, or whichever of the two there is."""
        positive: np.ndarray | None
        if text is not None and visual is not None:
            w = self._text_weight
            positive = w * text + (1.0 - w) * visual
        else:
            positive = text if text is not None else visual
        assert positive is not None
        combined: np.ndarray = l2_normalize(np.asarray(positive, dtype=np.float32).reshape(1, -1))[
            0
        ]
        return combined


@dataclass(slots=True)
class _Encoded:
    """The positive vectors of a query as encoded: its text's and its photo's, if any."""

    text: np.ndarray | None
    image: np.ndarray | None


async def _none() -> None:
    return None
