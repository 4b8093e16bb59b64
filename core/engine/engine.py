"""The composition root shared by the bot and the local CLI: one object wires storage, models,
indexes, ingest and search from one :class:`~core.settings.Settings`.

Start-up order matters: the database (migrations) first, then every model bundle is loaded and
registered (a bundle that does not validate stops start-up with its file named), then the
indexes, the search service, and last the ingest pipeline, which resumes unfinished jobs. The
OCR stage starts with the pipeline (when OCR is enabled and tesseract's data is there) and reads
saved items' text in the background, giving way to new items. The background re-embedder starts
only when asked, after the pipeline, so it yields to new items.

With INGEST_REMOTE (a front end over PostgreSQL) neither the pipeline nor OCR run here:
submitted jobs are left to inference workers (``python -m bot worker``) and
:class:`~core.ingest.remote.RemoteTickets` resolves the tickets when they finish.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.engine.folders import FolderSync
from core.engine.library import Library
from core.engine.owners import OwnerService
from core.engine.queries import Queries
from core.errors import BundleError
from core.index.manager import IndexManager
from core.ingest.pipeline import Fetch, IngestPipeline, OutcomeCallback
from core.ingest.reembed import Reembedder
from core.ingest.remote import RemoteTickets
from core.ingest.request import IngestOutcome
from core.models.bundle import Bundle, load_bundle
from core.models.config import BundleConfig
from core.models.embedder import AsyncEmbedder, OnnxEmbedder
from core.models.routing import TextRouter
from core.ocr import APT_PACKAGES, OcrReader, OcrStage, find_tessdata
from core.search.collection import CollectionService
from core.search.service import SearchService
from core.settings import EmbedSettings, OcrSettings, Settings
from storage import Database, OwnerKind
from storage.db import default_database_path
from storage.housekeeping import Housekeeper, Retention

log = logging.getLogger(__name__)


class ConfigurationError(BundleError):
    """A setting points at nothing usable (no model directories, for instance)."""


def load_bundles(dirs: Sequence[Path]) -> list[Bundle]:
    """Every configured bundle, validated; an empty list is a configuration error."""
    if not dirs:
        raise ConfigurationError(
            "MODEL_DIRS",
            "no model bundle is configured: set MODEL_DIRS to one or more bundle directories "
            "(see README, section Models)",
        )
    bundles = [load_bundle(Path(d)) for d in dirs]
    seen: dict[str, Path] = {}
    for b in bundles:
        if b.model_id in seen:
            raise ConfigurationError(b.path, f"same model id {b.model_id} as {seen[b.model_id]}")
        seen[b.model_id] = b.path
    return bundles


@dataclass
class Engine:
    """Everything a front end needs; build it with :meth:`open`, release it with :meth:`close`.

    Front ends call the application services (``owners``, ``library``, ``folders``,
    ``queries``); the components below them (``db``, ``index``, ``search``, ``pipeline``) are
    the wiring, public for tests, benchmarks and maintenance tools.
    """

    settings: Settings
    db: Database
    bundles: list[Bundle]
    embedder: AsyncEmbedder
    index: IndexManager
    router: TextRouter
    search: SearchService
    pipeline: IngestPipeline | None = None
    reembedder: Reembedder | None = None
    ocr: OcrStage | None = None
    remote: RemoteTickets | None = None
    owners: OwnerService = field(init=False, repr=False)
    library: Library = field(init=False, repr=False)
    folders: FolderSync = field(init=False, repr=False)
    queries: Queries = field(init=False, repr=False)
    _closed: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        """Wire the application services over the components (no I/O)."""
        collection = CollectionService(self.db, self.index)
        self.owners = OwnerService(self.db, collection)
        self.library = Library(self.db, collection, self.remote or self.pipeline)
        self.folders = FolderSync(self.db, self.library)
        self.queries = Queries(self.db, self.search)

    @property
    def configs(self) -> dict[str, BundleConfig]:
        return {b.model_id: b.config for b in self.bundles}

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        fetch: Fetch | None = None,
        on_outcome: OutcomeCallback | None = None,
        validate: bool = True,
        ocr_owner_kinds: Collection[OwnerKind] | None = None,
        front_end: bool = False,
    ) -> Engine:
        """Open storage and models; with ``fetch`` also start the ingest pipeline and the OCR
        stage, which reads the items of owners of ``ocr_owner_kinds`` (those ``fetch`` can
        get; None: every owner's). ``front_end``: this process answers the senders of what it
        queues; on a shared database its pipeline then embeds only its own jobs (and those of
        front ends that stopped), never another front end's."""
        bundles = load_bundles(settings.data.model_dirs)
        embed = settings.embed
        embedders = [_embedder(b, embed) for b in bundles]
        if validate:
            for emb in embedders:
                emb.validate()  # fails here, naming the file, rather than on the first query
        settings.data.dir.mkdir(parents=True, exist_ok=True)
        db = await Database.open(
            settings.database.url or default_database_path(settings.data.dir),
            readers=settings.database.pool_size,
        )
        remote = settings.ingest.remote and fetch is not None
        if remote:
            fetch = None  # workers fetch and embed; this process only enqueues
        try:
            for b in bundles:
                await db.models.register(b.model_id, b.config.embed_dim)
            embedder = AsyncEmbedder(embedders, image_batch_size=embed.batch_size)
            index = IndexManager.under(
                settings.data.dir, db.vectors, settings.index, shared=settings.database.shared
            )
            router = TextRouter([b.config for b in bundles])
            configs = {b.model_id: b.config for b in bundles}
            search = SearchService(db, embedder, index, router, configs, settings.search)
            ocr = (
                open_ocr_stage(db, settings, fetch, ocr_owner_kinds) if fetch is not None else None
            )
            pipeline = (
                IngestPipeline(
                    db,
                    embedder,
                    index,
                    settings.ingest,
                    fetch,
                    video=settings.video,
                    on_outcome=_waking(ocr, on_outcome),
                    own_jobs=front_end,
                )
                if fetch is not None
                else None
            )
            tickets = _remote_tickets(db, settings, on_outcome) if remote else None
            engine = cls(
                settings, db, bundles, embedder, index, router, search, pipeline, ocr=ocr,
                remote=tickets,
            )  # fmt: skip
            if tickets is not None:
                await tickets.start()
            if pipeline is not None:
                await pipeline.start()
            if ocr is not None:
                ocr.pipeline = pipeline
                await ocr.start()
        except BaseException:
            await db.close()
            raise
        log.info("engine ready: models %s", ", ".join(configs))
        return engine

    def start_reembedding(self, fetch: Fetch) -> Reembedder:
        """Bring every owner to the configured models in the background (core.ingest.reembed)."""
        self.reembedder = Reembedder(
            self.db,
            self.embedder,
            self.index,
            fetch,
            settings=self.settings.ingest,
            pipeline=self.pipeline,
        )
        self.reembedder.start()
        return self.reembedder

    def housekeeper(self, retention: Retention, *, interval_s: float, chunk: int) -> Housekeeper:
        """The periodic purge of old jobs, results and sessions over this engine's database;
        the caller starts and stops it with its own lifecycle."""
        return Housekeeper(self.db, retention, interval_s=interval_s, chunk=chunk)

    async def close(self) -> None:
        """Finish in-flight work, write indexes, close the database. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.reembedder is not None:
                await self.reembedder.stop()
            if self.ocr is not None:
                await self.ocr.stop()
            if self.pipeline is not None:
                await self.pipeline.stop()
            if self.remote is not None:
                await self.remote.stop()
            await self.index.flush()
            await self.index.close()
        finally:
            self.embedder.close()
            await self.db.close()

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def open_ocr_stage(
    db: Database,
    settings: Settings,
    fetch: Fetch,
    owner_kinds: Collection[OwnerKind] | None = None,
) -> OcrStage | None:
    """The OCR stage, or None when OCR is switched off or cannot run here (one warning line
    naming the packages to install)."""
    ocr: OcrSettings = settings.ocr
    if not ocr.enabled:
        return None
    tessdata = find_tessdata(ocr.languages, ocr.tessdata)
    if tessdata is None:
        where = f" in {ocr.tessdata}" if ocr.tessdata is not None else ""
        log.warning(
            "OCR is off: no tesseract data for %s%s (Debian: apt-get install %s; or set "
            "OCR_TESSDATA, or OCR_ENABLED=false to silence this)",
            ocr.languages,
            where,
            APT_PACKAGES,
        )
        return None
    reader = OcrReader.from_settings(tessdata, ocr)
    return OcrStage(
        db,
        reader,
        fetch,
        ocr,
        fetch_attempts=settings.ingest.max_attempts,
        retry_backoff_s=settings.ingest.retry_backoff_s,
        owner_kinds=owner_kinds,
        lease_s=settings.ingest.lease_s,
    )


def _embedder(bundle: Bundle, embed: EmbedSettings) -> OnnxEmbedder:
    """One model's ONNX sessions, sized by EMBED_*."""
    return OnnxEmbedder(
        bundle,
        threads=embed.threads,
        graph_optimization=embed.graph_optimization,
        batch_size=embed.batch_size,
        image_runs=embed.image_runs,
        memory_mb=embed.memory_mb,
    )


def _remote_tickets(
    db: Database, settings: Settings, on_outcome: OutcomeCallback | None
) -> RemoteTickets:
    """A front end whose jobs inference workers run (INGEST_REMOTE): tickets resolve when the
    workers' commits are announced."""
    return RemoteTickets(db, queue_size=settings.ingest.queue_size, on_outcome=on_outcome)


def _waking(ocr: OcrStage | None, on_outcome: OutcomeCallback | None) -> OutcomeCallback | None:
    """The front end's outcome listener, which first tells the OCR stage an item was saved."""
    if ocr is None:
        return on_outcome

    def outcome(result: IngestOutcome) -> Awaitable[None] | None:
        if result.saved:
            ocr.wake()
        return on_outcome(result) if on_outcome is not None else None

    return outcome
