"""``python -m bot worker``: an inference worker for front ends that only enqueue.

With a PostgreSQL collection database (DATABASE_URL) several front ends (``python -m bot`` with
INGEST_REMOTE=true) persist jobs and answer users, and any number of workers on any machines
claim those jobs with leases (:mod:`storage.leases`), download the files by their file_id
through the Bot API (BOT_TOKEN, TELEGRAM_API_BASE), embed and commit them; a commit notifies the
front ends, which send the acknowledgement. Workers run the OCR stage too. There are no handlers
and no polling here.

SIGTERM (or SIGINT) stops claiming, lets the jobs in hand finish for a moment, hands back at once
the ones that could not (another worker claims them without waiting for the lease) and exits 0.
The worker's name on the jobs it holds is ``hostname:pid``.
"""

from __future__ import annotations

import asyncio
import logging

from bot.app import StopSignals, create_bot
from bot.config import BOT_OWNER_KINDS, BotAppSettings, StartupError
from bot.fetch import make_fetch
from core.engine.engine import Engine
from core.ingest.fetch import Fetch

log = logging.getLogger(__name__)

# How long a stopping worker lets the jobs it holds finish before handing them back.
STOP_GRACE_S = 10.0


def worker_settings(settings: BotAppSettings) -> BotAppSettings:
    """The settings a worker runs with: a shared database is required, and whatever the
    settings file says for the front ends, this process embeds (INGEST_REMOTE off)."""
    if not settings.database.shared:
        raise StartupError(
            "python -m bot worker needs a shared PostgreSQL database: set DATABASE_URL "
            "(postgresql://...) for the worker and the front ends"
        )
    ingest = settings.ingest.model_copy(update={"remote": False})
    return settings.model_copy(update={"ingest": ingest})


async def run_worker(
    settings: BotAppSettings,
    *,
    fetch: Fetch | None = None,
    stop: asyncio.Event | None = None,
    ready: bool = True,
) -> None:
    """Work until SIGTERM/SIGINT (or ``stop``): the ingest pipeline and the OCR stage over the
    shared database. ``fetch`` replaces the Bot API download (tests)."""
    settings = worker_settings(settings)
    signals = StopSignals(stop if stop is not None else asyncio.Event())
    signals.install()
    bot = create_bot(settings)
    try:
        engine = await Engine.open(
            settings, fetch=fetch or make_fetch(bot, settings), ocr_owner_kinds=BOT_OWNER_KINDS
        )
        signals.started = True
        try:
            if ready:
                print(f"worker {engine.db.worker} ready", flush=True)
            log.info("worker %s ready", engine.db.worker)
            await signals.stop.wait()
            log.info("worker %s stopping", engine.db.worker)
            if engine.pipeline is not None:
                await engine.pipeline.stop(timeout=STOP_GRACE_S)
        finally:
            await engine.close()
    finally:
        signals.remove()
        await bot.session.close()
