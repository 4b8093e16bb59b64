"""The engine behind handler tests: the real :class:`~core.engine.engine.Engine` over a temporary
SQLite database, with the two parts that need models replaced by scripted stand-ins.

What stays real is everything the handlers talk to: ``engine.owners`` (owners, settings, stats),
``engine.library`` (items by id and by file, deletes), ``engine.queries.results`` (search
sessions behind the buttons, which message showed which item). What is scripted:

- :class:`ScriptedSearch` answers ``engine.queries.search`` with the results a test queued (or
  "nothing matched") and records every :class:`~core.search.query.Query` it was asked;
- :class:`ScriptedPipeline` takes ``engine.library.submit``: it records the request, stores the
  item (a real media row, so /stats and duplicates behave) and resolves the ticket at once,
  unless the test set another outcome.

No ONNX model is loaded and nothing is embedded, so a handler test costs a few milliseconds.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from bot.config import BotAppSettings
from core.engine.engine import Engine
from core.index.manager import IndexManager
from core.ingest.request import IngestOutcome, IngestRequest, OutcomeStatus, ProgressCallback
from core.ingest.tickets import Ticket
from core.models.config import BundleConfig, ImageConfig, TextConfig
from core.models.routing import TextRouter
from core.search.query import Query
from core.search.results import Hit, SearchResult
from storage import Database
from storage.records import Media, NewMedia, NewUnit

if TYPE_CHECKING:
    from core.ingest.pipeline import IngestPipeline
    from core.models.embedder import AsyncEmbedder
    from core.search.service import SearchService

# The model the scripted search claims to answer with (the router needs one to exist).
FAKE_MODEL = BundleConfig(
    name="fake-clip",
    version="1",
    embed_dim=8,
    languages=("en", "ru"),
    image=ImageConfig(size=32),
    text=TextConfig(context_length=8, tokenizer="hf"),
)


class ScriptedSearch:
    """Stands in for :class:`~core.search.service.SearchService`: answers are queued with
    :meth:`answer` (a result, or an exception to raise); without one the answer is "nothing
    matched". ``asked`` holds ``(owner_id, query)`` for every search, oldest first."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, Query]] = []
        self._answers: deque[SearchResult | Exception] = deque()

    def answer(self, result: SearchResult | Exception) -> None:
        self._answers.append(result)

    async def search(self, owner_id: int, query: Query) -> SearchResult:
        self.asked.append((owner_id, query))
        answer = self._answers.popleft() if self._answers else no_match(query)
        if isinstance(answer, Exception):
            raise answer
        return answer


class ScriptedPipeline:
    """Stands in for :class:`~core.ingest.pipeline.IngestPipeline`. ``outcome(request,
    job_id)`` decides how a job ends; the default stores the item and reports it saved (or a
    duplicate when the owner has that file already). ``submitted`` holds every request."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.submitted: list[IngestRequest] = []
        self.outcome: Callable[[IngestRequest, int], Any] = self.store
        self._job_ids = itertools.count(1)

    async def submit(
        self, request: IngestRequest, *, progress: ProgressCallback | None = None
    ) -> Ticket:
        job_id = next(self._job_ids)
        self.submitted.append(request)
        ticket = Ticket(job_id, request, asyncio.get_running_loop().create_future(), progress)
        outcome = self.outcome(request, job_id)
        if asyncio.iscoroutine(outcome):
            outcome = await outcome
        ticket.resolve(outcome)
        return ticket

    async def submit_many(self, requests: list[IngestRequest]) -> list[Ticket]:
        return [await self.submit(request) for request in requests]

    async def store(self, request: IngestRequest, job_id: int) -> IngestOutcome:
        """The item as a real media row with one unit (no vectors: nothing is searched)."""
        media = self.db.owner(request.owner_id).media
        committed = await media.commit(request.new_media(), [NewUnit("image")], {})
        status: OutcomeStatus = "duplicate" if committed.duplicate else "saved"
        return IngestOutcome(
            status,
            job_id,
            request,
            media_id=committed.media_id,
            unit_ids=committed.unit_ids,
            timestamps=tuple(None for _ in committed.unit_ids),
        )

    @staticmethod
    def failing(reason: str) -> Callable[[IngestRequest, int], IngestOutcome]:
        """An ``outcome`` that fails every job with error code ``reason``."""

        def fail(request: IngestRequest, job_id: int) -> IngestOutcome:
            return IngestOutcome("failed", job_id, request, reason=reason, message=reason)

        return fail

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class NoEmbedder:
    """Nothing is embedded here; the engine only closes its embedder."""

    def close(self) -> None:
        return None


def no_match(query: Query) -> SearchResult:
    """What a search answers when nothing passes the relevance cut."""
    return SearchResult(
        hits=[],
        model_id=FAKE_MODEL.model_id,
        elapsed_ms=5.0,
        reason="no_match",
        best_score=0.1,
        offset=query.offset,
        limit=query.limit,
        strictness=query.strictness,
        excluded=query.exclude,
    )


def found(
    media: list[Media], *, offset: int = 0, limit: int = 10, total: int | None = None
) -> SearchResult:
    """A page of hits for ``media`` (best first); ``total`` beyond the page means "More"."""
    total = len(media) + offset if total is None else total
    hits = [
        Hit(m, round(0.9 - i * 0.01, 6), unit_id=m.id, timestamp=None) for i, m in enumerate(media)
    ]
    return SearchResult(
        hits=hits,
        model_id=FAKE_MODEL.model_id,
        elapsed_ms=12.0,
        offset=offset,
        limit=limit,
        total=total,
        has_more=total > offset + limit,
    )


async def open_engine(
    settings: BotAppSettings, search: ScriptedSearch
) -> tuple[Engine, ScriptedPipeline]:
    """The real Engine over a new database under ``settings.data.dir``, with the stand-ins."""
    data_dir = Path(settings.data.dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    db = await Database.open(data_dir / "handlers.db")
    pipeline = ScriptedPipeline(db)
    engine = Engine(
        settings,
        db,
        [],
        cast("AsyncEmbedder", NoEmbedder()),
        IndexManager.under(data_dir, db.vectors, settings.index),
        TextRouter([FAKE_MODEL]),
        cast("SearchService", search),
        cast("IngestPipeline", pipeline),
    )
    return engine, pipeline


async def stored_photo(engine: Engine, owner_id: int, name: str) -> Media:
    """An item already in the owner's collection (file id ``file-<name>``)."""
    facts = NewMedia("photo", f"uniq-{name}", file_id=f"file-{name}", width=640, height=480)
    committed = await engine.db.owner(owner_id).media.commit(facts, [NewUnit("image")], {})
    media = await engine.library.item(owner_id, committed.media_id)
    assert media is not None
    return media
