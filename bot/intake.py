"""The ingest desk of one running bot: submits items as durable jobs and hands them to the answer
collector, so the ingest handlers only read the message and decide.

The answer is left to :mod:`bot.albums`, which keeps it to one message per album and per burst
of items sent one by one. In a group the desk is ``quiet``: it speaks only when something went
wrong, and a kept item gets a 👌 reaction instead; while a video is processed in a private
chat, the chat shows "typing…" (:mod:`bot.courtesy`).

Job ids go into ``services.live_jobs`` so :mod:`bot.notify` does not report them again as work
resumed after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiogram.types import Message

from bot.albums import AlbumCollector, GroupKey
from bot.courtesy import IngestGestures
from bot.fetch import DOWNLOAD_LIMIT, is_local_mode
from bot.reports import ItemResult
from bot.services import check_quota
from bot.shared_albums import shared_albums_for
from core.ingest.request import IngestRequest
from core.ingest.tickets import Ticket
from storage.records import MediaFacts, Owner

if TYPE_CHECKING:
    from bot.services import BotServices

log = logging.getLogger(__name__)

# How long a stopping bot waits for albums in progress to get their acknowledgement.
SHUTDOWN_DRAIN_S = 5.0


class IngestDesk:
    """Submits items and collects their answers; one per dispatcher (closed at shutdown)."""

    def __init__(self, services: BotServices) -> None:
        self.services = services
        self.answers = AlbumCollector(
            services.bot, services.settings.bot.album_wait_s, on_answer=self._remember
        )
        self.local = is_local_mode(services.bot, services.settings)
        self.gestures = IngestGestures(services.bot, services.settings.bot.chat_action_interval_s)
        self.shared = shared_albums_for(services)  # albums across front ends (PostgreSQL)

    async def quota_refusal(self, owner: Owner, media: MediaFacts, lang: str) -> str | None:
        """Why the owner may not add this item (its video length counts), or None."""
        video_seconds = (media.duration or 0.0) if media.is_video else 0.0
        return await check_quota(self.services, owner, lang=lang, video_seconds=video_seconds)

    def too_large(self, media: MediaFacts) -> bool:
        """Over the Bot API's download limit (a local Bot API server lifts it)."""
        return not self.local and (media.size or 0) > DOWNLOAD_LIMIT

    async def take(
        self, message: Message, request: IngestRequest, lang: str, *, video: bool, quiet: bool
    ) -> None:
        """Submit the item, hand it to the collector (a video reports its progress in its
        answer) and show the chat what happens: a 👌 once kept (quiet), "typing…" (video)."""
        key: list[GroupKey] = []  # known once the job is durable and collected

        def progress(fraction: float) -> None:
            if key:
                self.answers.progress(key[0], message.message_id, fraction)

        ticket = await self._submit(request, progress if video else None)
        key.append(self.collect(message, lang, ticket=ticket, video=video, quiet=quiet))
        if quiet:
            self.gestures.react_when_kept(message.chat.id, message.message_id, ticket)
        elif video:
            self.gestures.busy_while(message.chat.id, ticket)

    def collect(
        self,
        message: Message,
        lang: str,
        result: ItemResult | None = None,
        *,
        ticket: Ticket | None = None,
        video: bool = False,
        quiet: bool,
    ) -> GroupKey:
        """Hand the item to the answer collector (one answer per album or burst; an album on a
        shared database to whichever front end answers it)."""
        if self.shared is not None and message.media_group_id is not None:
            self.shared.add(
                message.chat.id,
                message.media_group_id,
                message.message_id,
                lang=lang,
                quiet=quiet,
                ticket=ticket,
                result=result,
            )
            return (message.chat.id, message.media_group_id)
        return self.answers.add(
            message.chat.id,
            message.media_group_id,
            message.message_id,
            lang=lang,
            ticket=ticket,
            result=result,
            video=video,
            quiet=quiet,
        )

    async def _remember(self, chat_id: int, message_id: int, result: ItemResult) -> None:
        """The answer stands for the item: /delete or /similar in reply to "Saved" works too."""
        if result.owner_id is None or result.media_id is None:
            return
        results = self.services.engine.queries.results(result.owner_id)
        await results.record(chat_id, [(message_id, result.media_id, None)])

    async def _submit(
        self, request: IngestRequest, progress: Callable[[float], None] | None = None
    ) -> Ticket:
        ticket = await self.services.engine.library.submit(request, progress=progress)
        self.services.live_jobs.add(ticket.job_id)
        log.info(
            "queued job %d: %s %s of owner %d%s",
            ticket.job_id,
            request.kind,
            request.file_unique_id,
            request.owner_id,
            f" (album {request.facts.album_id})" if request.facts.album_id else "",
        )
        return ticket

    async def close(self, **_: Any) -> None:
        """Shutdown: albums in progress still get their answer, gestures stop."""
        await self.answers.close(drain_s=SHUTDOWN_DRAIN_S)
        if self.shared is not None:
            await self.shared.close(drain_s=SHUTDOWN_DRAIN_S)
        await self.gestures.close()
