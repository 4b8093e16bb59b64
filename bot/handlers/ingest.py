"""Ingest: photos, image files, albums, videos, animations and video notes sent or forwarded to the
bot become searchable items of the owner's collection.

Each message is turned into an :class:`~core.ingest.pipeline.IngestRequest` (the largest photo size,
the forward origin as a short text, the caption, the original date, the album id) and submitted at
once: the job is durable before the handler returns, whatever happens to the process next.
The answer is left to :mod:`bot.albums`, which keeps it to one message per album and per burst
of items sent one by one (thirty forwarded photos get one answer, not thirty):

* an item alone: one reply once it is committed (saved, near-duplicate, already in the
  collection, or why it could not be read); a video (GIF, video note) shows its progress in
  that message first;
* several: one message counting "n of N", then the summary.

Files over the Bot API's 20 MB download limit are indexed from their thumbnail when they have
one (unless a local Bot API server lifts the limit). Documents that are neither pictures nor
videos get a short explanation. In group chats the bot only speaks up when something went
wrong, so a busy group is not flooded with "saved": a kept item gets a 👌 reaction instead.
While a video is processed in a private chat, the chat shows "typing…" (:mod:`bot.courtesy`).

Job ids go into ``services.live_jobs`` so :mod:`bot.notify` does not report them again as work
resumed after a restart.
"""

from __future__ import annotations

import html
import logging
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiogram import F, Router
from aiogram.types import (
    Message,
    MessageOriginChannel,
    MessageOriginChat,
    MessageOriginHiddenUser,
    MessageOriginUser,
)

from bot.albums import AlbumCollector, GroupKey
from bot.courtesy import IngestGestures
from bot.fetch import DOWNLOAD_LIMIT, is_local_mode
from bot.i18n import tr
from bot.reports import TEXTS, ItemResult
from bot.services import check_quota
from core.ingest.pipeline import VIDEO_KINDS, IngestRequest, Ticket
from storage.records import MediaKind, Owner
from storage.results import ResultStore

if TYPE_CHECKING:
    from bot.services import BotServices

log = logging.getLogger(__name__)

# How long a stopping bot waits for albums in progress to get their acknowledgement.
SHUTDOWN_DRAIN_S = 5.0
# Image types Pillow cannot read as a raster picture: told apart like any other file.
NOT_RASTER = frozenset({"image/svg+xml", "image/x-icon", "image/vnd.djvu"})
UNTYPED = frozenset({"", "application/octet-stream"})


@dataclass(frozen=True, slots=True)
class Media:
    """What the bot needs to know about one media message to submit it."""

    kind: MediaKind
    file_id: str
    file_unique_id: str
    size: int | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    mime: str | None = None
    thumbnail_file_id: str | None = None
    thumbnail_file_unique_id: str | None = None

    @property
    def is_video(self) -> bool:
        mime = (self.mime or "").lower()
        return self.kind in VIDEO_KINDS or (
            self.kind == "document" and (mime.startswith("video/") or mime == "image/gif")
        )


def document_mime(message: Message) -> str | None:
    """The document's type as Telegram says it, else guessed from its file name."""
    doc = message.document
    if doc is None:
        return None
    mime = (doc.mime_type or "").lower()
    if not mime or mime == "application/octet-stream":
        guessed = mimetypes.guess_type(doc.file_name or "")[0]
        mime = guessed or mime
    return mime or None


def is_media_document(message: Message) -> bool:
    """An image or a video sent as a file (a GIF file counts as a video). A file of no known
    type (clients send octet-stream for names they do not know) is fetched and its bytes
    decide, unless it is too big to be worth a look."""
    mime = document_mime(message) or ""
    if mime in NOT_RASTER:
        return False
    if mime in UNTYPED:
        doc = message.document
        return doc is not None and (doc.file_size or 0) <= DOWNLOAD_LIMIT
    return mime.startswith(("image/", "video/"))


def media_of(message: Message) -> Media | None:
    """The media of a message we can store, or None (text, PDF, sticker, ...)."""
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        return Media(
            "photo",
            largest.file_id,
            largest.file_unique_id,
            size=largest.file_size,
            width=largest.width,
            height=largest.height,
            mime="image/jpeg",
        )
    if message.animation is not None:  # before document: Telegram fills both for a GIF
        a = message.animation
        return Media(
            "animation",
            a.file_id,
            a.file_unique_id,
            size=a.file_size,
            width=a.width,
            height=a.height,
            duration=float(a.duration),
            mime=a.mime_type,
            thumbnail_file_id=a.thumbnail.file_id if a.thumbnail else None,
            thumbnail_file_unique_id=a.thumbnail.file_unique_id if a.thumbnail else None,
        )
    if message.video is not None:
        v = message.video
        return Media(
            "video",
            v.file_id,
            v.file_unique_id,
            size=v.file_size,
            width=v.width,
            height=v.height,
            duration=float(v.duration),
            mime=v.mime_type,
            thumbnail_file_id=v.thumbnail.file_id if v.thumbnail else None,
            thumbnail_file_unique_id=v.thumbnail.file_unique_id if v.thumbnail else None,
        )
    if message.video_note is not None:
        n = message.video_note
        return Media(
            "video_note",
            n.file_id,
            n.file_unique_id,
            size=n.file_size,
            width=n.length,
            height=n.length,
            duration=float(n.duration),
            mime="video/mp4",
            thumbnail_file_id=n.thumbnail.file_id if n.thumbnail else None,
            thumbnail_file_unique_id=n.thumbnail.file_unique_id if n.thumbnail else None,
        )
    if message.document is not None and is_media_document(message):
        d = message.document
        return Media(
            "document",
            d.file_id,
            d.file_unique_id,
            size=d.file_size,
            mime=document_mime(message),
            thumbnail_file_id=d.thumbnail.file_id if d.thumbnail else None,
            thumbnail_file_unique_id=d.thumbnail.file_unique_id if d.thumbnail else None,
        )
    return None


def origin_text(message: Message) -> str | None:
    """Who a forwarded message came from, as a short plain text ("Trips (@trips)")."""
    origin = message.forward_origin
    if origin is None:
        return None
    if isinstance(origin, MessageOriginUser):
        user = origin.sender_user
        name = user.full_name
        return f"{name} (@{user.username})" if user.username else name
    if isinstance(origin, MessageOriginHiddenUser):
        return origin.sender_user_name
    if isinstance(origin, MessageOriginChat):
        title = origin.sender_chat.title or origin.sender_chat.full_name
        return f"{title} ({origin.author_signature})" if origin.author_signature else title
    if isinstance(origin, MessageOriginChannel):
        title = origin.chat.title or "channel"
        return f"{title} (@{origin.chat.username})" if origin.chat.username else title
    return None


def message_date(message: Message) -> int:
    """When the picture was first posted: the original date of a forward, else the message's."""
    origin = message.forward_origin
    date = origin.date if origin is not None else message.date
    return int(date.timestamp())


def build_request(
    message: Message, owner_id: int, media: Media, *, too_large: bool
) -> IngestRequest:
    caption = (message.caption or "").strip() or None
    return IngestRequest(
        owner_id,
        media.kind,
        media.file_unique_id,
        file_id=media.file_id,
        size=media.size,
        width=media.width,
        height=media.height,
        duration=media.duration,
        caption=caption,
        forward_origin=origin_text(message),
        message_id=message.message_id,
        message_date=message_date(message),
        album_id=message.media_group_id,
        mime=media.mime,
        too_large=too_large,
        thumbnail_file_id=media.thumbnail_file_id,
        thumbnail_file_unique_id=media.thumbnail_file_unique_id,
    )


class Ingest:
    """The handlers, sharing the answer collector and the services of one dispatcher."""

    def __init__(self, services: BotServices) -> None:
        self.services = services
        self.answers = AlbumCollector(
            services.bot, services.settings.album_wait_s, on_answer=self._remember
        )
        self.local = is_local_mode(services.bot, services.settings)
        self.gestures = IngestGestures(services.bot, services.settings.chat_action_interval_s)

    async def media(self, message: Message, owner: Owner, lang: str) -> None:
        media = media_of(message)
        if media is None:  # the filters let through only what media_of knows
            await self.not_media(message, lang)
            return
        refusal = await check_quota(
            self.services,
            owner,
            lang=lang,
            video_seconds=(media.duration or 0.0) if media.is_video else 0.0,
        )
        if refusal is not None:
            self._collect(message, lang, ItemResult.refused("quota", media.kind, note=refusal))
            return
        too_large = not self.local and (media.size or 0) > DOWNLOAD_LIMIT
        if too_large and media.thumbnail_file_id is None:
            self._collect(message, lang, ItemResult.refused("file_too_large", media.kind))
            return
        request = build_request(message, owner.id, media, too_large=too_large)
        key: list[GroupKey] = []  # known once the job is durable and collected

        def progress(fraction: float) -> None:
            if key:
                self.answers.progress(key[0], message.message_id, fraction)

        video = media.is_video and not too_large
        ticket = await self._submit(request, progress if video else None)
        key.append(self._collect(message, lang, ticket=ticket, video=video))
        if message.chat.type != "private":
            self.gestures.react_when_kept(message.chat.id, message.message_id, ticket)
        elif video:
            self.gestures.busy_while(message.chat.id, ticket)

    def _collect(
        self,
        message: Message,
        lang: str,
        result: ItemResult | None = None,
        *,
        ticket: Ticket | None = None,
        video: bool = False,
    ) -> GroupKey:
        """Hand the item to the answer collector (one answer per album or burst)."""
        return self.answers.add(
            message.chat.id,
            message.media_group_id,
            message.message_id,
            lang=lang,
            ticket=ticket,
            result=result,
            video=video,
            quiet=message.chat.type != "private",
        )

    async def _remember(self, chat_id: int, message_id: int, result: ItemResult) -> None:
        """The answer stands for the item: /delete or /similar in reply to "Saved" works too."""
        if result.owner_id is None or result.media_id is None:
            return
        store = ResultStore(self.services.engine.db, result.owner_id)
        await store.record(chat_id, [(message_id, result.media_id, None)])

    async def _submit(
        self, request: IngestRequest, progress: Callable[[float], None] | None = None
    ) -> Ticket:
        pipeline = self.services.engine.pipeline
        assert pipeline is not None, "the bot's engine always runs an ingest pipeline"
        ticket = await pipeline.submit(request, progress=progress)
        self.services.live_jobs.add(ticket.job_id)
        log.info(
            "queued job %d: %s %s of owner %d%s",
            ticket.job_id,
            request.kind,
            request.file_unique_id,
            request.owner_id,
            f" (album {request.album_id})" if request.album_id else "",
        )
        return ticket

    async def not_media(self, message: Message, lang: str) -> None:
        """A PDF, an archive, ...: a short explanation (in private chats only)."""
        if message.chat.type != "private":
            return
        doc = message.document
        name = (doc.file_name if doc is not None else None) or document_mime(message) or "file"
        note = tr(TEXTS, "not_media_document", lang, name=html.escape(name))
        self._collect(message, lang, ItemResult.refused("not_media", "document", note=note))

    async def close(self, **_: Any) -> None:
        await self.answers.close(drain_s=SHUTDOWN_DRAIN_S)
        await self.gestures.close()


def router(services: BotServices) -> Router:
    """The ingest handlers; a new Router per dispatcher (a Router belongs to only one)."""
    ingest = Ingest(services)
    r = Router(name="ingest")
    r.message.register(ingest.media, F.photo)
    r.message.register(ingest.media, F.animation)
    r.message.register(ingest.media, F.video)
    r.message.register(ingest.media, F.video_note)
    r.message.register(ingest.media, F.document, is_media_document)
    r.message.register(ingest.not_media, F.document)
    r.shutdown.register(ingest.close)
    return r
