"""Ingest: photos, image files, albums, videos, animations and video notes sent or forwarded to the
bot become searchable items of the owner's collection.

Each message is turned into an :class:`~core.ingest.IngestRequest` (the largest photo size, the
forward origin as a short text, the caption, the original date, the album id) and submitted at
once: the job is durable before the handler returns, whatever happens to the process next.
Then the user hears how it ended:

* a single photo or file: one reply once it is committed (saved, near-duplicate, already in the
  collection, or why it could not be read);
* a video (or GIF, video note): one progress message, edited while frames are sampled and
  finally replaced by the result;
* an album: one acknowledgement for all items (:mod:`bot.albums`).

Files over the Bot API's 20 MB download limit are indexed from their thumbnail when they have
one (unless a local Bot API server lifts the limit). Documents that are neither pictures nor
videos get a short explanation. In group chats the bot only speaks up when something went
wrong, so a busy group is not flooded with "saved".

Job ids go into ``services.live_jobs`` so :mod:`bot.notify` does not report them again as work
resumed after a restart.
"""

from __future__ import annotations

import html
import logging
import mimetypes
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

from bot.albums import AlbumCollector
from bot.fetch import DOWNLOAD_LIMIT, is_local_mode
from bot.i18n import tr
from bot.progress import ProgressMessage, reply_to
from bot.reports import TEXTS, ItemResult, item_text
from bot.services import check_quota
from core.errors import IngestInterruptedError
from core.ingest import VIDEO_KINDS, IngestRequest, Ticket
from storage.records import MediaKind, Owner
from storage.results import ResultStore

if TYPE_CHECKING:
    from bot.services import BotServices

log = logging.getLogger(__name__)

# How long a stopping bot waits for albums in progress to get their acknowledgement.
SHUTDOWN_DRAIN_S = 5.0
# Image types Pillow cannot read as a raster picture: told apart like any other file.
NOT_RASTER = frozenset({"image/svg+xml", "image/x-icon", "image/vnd.djvu"})


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
    """An image or a video sent as a file (a GIF file counts as a video)."""
    mime = document_mime(message) or ""
    if mime in NOT_RASTER:
        return False
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


def _progress_text(fraction: float, lang: str) -> str | None:
    """A video's progress in steps of 10 %; None at 100 % (the result replaces it anyway)."""
    if fraction >= 1.0:
        return None
    return tr(TEXTS, "video_progress", lang, percent=int(fraction * 10) * 10)


class Ingest:
    """The handlers, sharing the album collector and the services of one dispatcher."""

    def __init__(self, services: BotServices) -> None:
        self.services = services
        self.albums = AlbumCollector(services.bot, services.settings.album_wait_s)
        self.local = is_local_mode(services.bot, services.settings)

    async def media(self, message: Message, owner: Owner, lang: str) -> None:
        media = media_of(message)
        if media is None:  # the filters let through only what media_of knows
            await self.not_media(message, lang)
            return
        quiet = message.chat.type != "private"
        album = message.media_group_id
        refusal = await check_quota(
            self.services,
            owner,
            lang=lang,
            video_seconds=(media.duration or 0.0) if media.is_video else 0.0,
        )
        if refusal is not None:
            await self._refused(message, lang, "quota", media, text=refusal, quiet=quiet)
            return
        too_large = not self.local and (media.size or 0) > DOWNLOAD_LIMIT
        if too_large and media.thumbnail_file_id is None:
            await self._refused(message, lang, "file_too_large", media, quiet=quiet)
            return
        request = build_request(message, owner.id, media, too_large=too_large)
        if album is not None:
            ticket = await self._submit(request)
            self.albums.add(
                message.chat.id, album, message.message_id, lang=lang, ticket=ticket, quiet=quiet
            )
            return
        progress: ProgressMessage | None = None
        if media.is_video and not too_large and not quiet:
            progress = ProgressMessage(
                self.services.bot, message.chat.id, reply_to_message_id=message.message_id
            )
        ticket = await self._submit(request, progress, lang)  # durable first, then talk
        if progress is not None and not progress.sent and progress.pending is None:
            await progress.show(tr(TEXTS, "video_started", lang))
        try:
            outcome = await ticket.result()
        except IngestInterruptedError:
            if progress is not None:
                await progress.finish(tr(TEXTS, "interrupted", lang))
            return  # the job resumes at the next start, and bot.notify reports it
        result = ItemResult.from_outcome(outcome)
        text = item_text(result, lang, is_video=media.is_video)
        answer_id: int | None = None
        if progress is not None:
            await progress.finish(text)
            answer_id = progress.message_id
        elif not quiet or _worth_saying(result):
            answer = await message.answer(text, reply_parameters=reply_to(message.message_id))
            answer_id = answer.message_id
        if answer_id is not None and outcome.media_id is not None:
            await self._remember(owner, message.chat.id, answer_id, outcome.media_id)

    async def _remember(self, owner: Owner, chat_id: int, message_id: int, media_id: int) -> None:
        """The answer stands for the item: /delete or /similar in reply to "Saved" works too."""
        try:
            await ResultStore(self.services.engine.db, owner.id).record(
                chat_id, [(message_id, media_id, None)]
            )
        except Exception:  # a convenience, never a reason to fail the answer
            log.exception("cannot record answer %d for item %d", message_id, media_id)

    async def _submit(
        self, request: IngestRequest, progress: ProgressMessage | None = None, lang: str = "en"
    ) -> Ticket:
        callback = None
        if progress is not None:
            message = progress

            def callback(fraction: float) -> None:
                text = _progress_text(fraction, lang)
                if text is not None:
                    message.set(text)

        pipeline = self.services.engine.pipeline
        assert pipeline is not None, "the bot's engine always runs an ingest pipeline"
        ticket = await pipeline.submit(request, progress=callback)
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

    async def _refused(
        self,
        message: Message,
        lang: str,
        reason: str,
        media: Media,
        *,
        text: str | None = None,
        quiet: bool,
    ) -> None:
        """An item that never reaches the pipeline: counted in its album, or answered."""
        if message.media_group_id is not None:
            self.albums.add(
                message.chat.id,
                message.media_group_id,
                message.message_id,
                lang=lang,
                result=ItemResult.refused(reason, media.kind),
                quiet=quiet,
            )
            return
        if text is None:
            text = item_text(ItemResult.refused(reason, media.kind), lang)
        await message.answer(text, reply_parameters=reply_to(message.message_id))

    async def not_media(self, message: Message, lang: str) -> None:
        """A PDF, an archive, ...: a short explanation (in private chats only)."""
        if message.chat.type != "private":
            return
        if message.media_group_id is not None:
            self.albums.add(
                message.chat.id,
                message.media_group_id,
                message.message_id,
                lang=lang,
                result=ItemResult.refused("not_media", "document"),
            )
            return
        doc = message.document
        name = (doc.file_name if doc is not None else None) or document_mime(message) or "file"
        await message.answer(
            tr(TEXTS, "not_media_document", lang, name=html.escape(name)),
            reply_parameters=reply_to(message.message_id),
        )

    async def close(self, **_: Any) -> None:
        await self.albums.close(drain_s=SHUTDOWN_DRAIN_S)


def _worth_saying(result: ItemResult) -> bool:
    """In a group only problems and half-successes get an answer."""
    return result.status == "failed" or result.near_duplicate or result.thumbnail_only


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
