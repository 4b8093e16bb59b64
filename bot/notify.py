"""Telling users about work finished after a restart.

A job is durable from the moment the bot received the item, so a crash or a restart never loses
it: the next start resumes it. But the handler that would have answered is gone, so nobody would
tell the user. The pipeline reports every outcome to a :class:`ResumedReporter` (wired in by
:func:`bot.app.open_bot_app`); outcomes of jobs a live handler is waiting for (their ids are in
``services.live_jobs``) are skipped, the others are collected per owner and, once that owner's
outcomes have been quiet for a moment, summarised in ONE message ("After a restart I finished
saving ...: 3 of 3"). On a shared database album items are left to the album's shared answer.

An outcome can arrive a moment before the submitting handler has recorded its job id (a
duplicate resolves fast), so the live check is made again when the summary is due.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiogram.exceptions import TelegramAPIError

from bot.i18n import pick_lang
from bot.progress import reply_to
from bot.reports import ItemResult, resumed_text
from core.ingest.pipeline import IngestOutcome

if TYPE_CHECKING:
    from bot.services import BotServices

log = logging.getLogger(__name__)

MIN_WAIT_S = 1.0  # quiet time before a summary is sent (twice the album wait, within these)
MAX_QUIET_S = 5.0
MAX_WAIT_S = 30.0  # a long backlog still gets a summary this often


class ResumedReporter:
    """Collects outcomes of jobs no handler waits for; one summary message per owner."""

    def __init__(
        self, services: BotServices, *, wait_s: float | None = None, max_wait_s: float = MAX_WAIT_S
    ) -> None:
        self.services = services
        if wait_s is None:
            wait_s = min(max(MIN_WAIT_S, 2 * services.settings.bot.album_wait_s), MAX_QUIET_S)
        self.wait_s = wait_s
        self.max_wait_s = max_wait_s
        self.sent: list[tuple[int, str]] = []  # (chat id, text), for logs and tests
        self._pending: dict[int, list[IngestOutcome]] = {}
        self._since: dict[int, float] = {}
        self._timers: dict[int, asyncio.Task[None]] = {}

    async def __call__(self, outcome: IngestOutcome) -> None:
        live = self.services.live_jobs
        if outcome.job_id in live:
            live.discard(outcome.job_id)
            return
        if outcome.request.facts.album_id is not None and self.services.engine.db.shared:
            return  # the album's shared answer (bot.shared_albums) reports it, whoever holds it
        owner_id = outcome.request.owner_id
        loop = asyncio.get_running_loop()
        self._pending.setdefault(owner_id, []).append(outcome)
        first = self._since.setdefault(owner_id, loop.time())
        delay = min(self.wait_s, max(0.0, first + self.max_wait_s - loop.time()))
        timer = self._timers.get(owner_id)
        if timer is not None and not timer.done():
            timer.cancel()
        self._timers[owner_id] = asyncio.create_task(self._later(owner_id, delay))

    async def _later(self, owner_id: int, delay: float) -> None:
        await asyncio.sleep(delay)
        self._timers.pop(owner_id, None)
        await self.flush(owner_id)

    async def flush(self, owner_id: int) -> None:
        """Send the owner's summary now (if any outcome is still unreported)."""
        outcomes = self._pending.pop(owner_id, [])
        self._since.pop(owner_id, None)
        live = self.services.live_jobs
        resumed = []
        for outcome in outcomes:
            if outcome.job_id in live:
                live.discard(outcome.job_id)  # a handler answered it after all
            else:
                resumed.append(outcome)
        if not resumed:
            return
        try:
            owner = await self.services.engine.owners.get(owner_id)
        except Exception:
            log.exception("cannot look up owner %d to report resumed items", owner_id)
            return
        if owner is None:
            return  # the owner deleted everything meanwhile
        try:
            chat_id = int(owner.external_id)
        except ValueError:
            return  # not a Telegram owner (a local folder)
        lang = pick_lang(owner.settings.get("lang"))
        text = resumed_text([ItemResult.from_outcome(o) for o in resumed], lang)
        ids = (o.request.facts.message_id for o in resumed)
        first = min((i for i in ids if i), default=None)
        try:
            await self.services.bot.send_message(chat_id, text, reply_parameters=reply_to(first))
        except TelegramAPIError as exc:
            log.info("cannot report %d resumed item(s) to %s: %s", len(resumed), chat_id, exc)
            return
        self.sent.append((chat_id, text))
        log.info("reported %d item(s) finished after a restart to chat %s", len(resumed), chat_id)

    async def close(self) -> None:
        """Send what is due now (shutdown)."""
        for timer in list(self._timers.values()):
            timer.cancel()
        self._timers.clear()
        for owner_id in list(self._pending):
            await self.flush(owner_id)
