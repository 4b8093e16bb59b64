"""What a Telegram message says about its media, read once into
:class:`~storage.records.MediaFacts`: the largest photo size, the forward origin as a short
text, the caption, the original date, the album id, a document's file name; and which documents
are media at all.

Pure functions of the message, so the ingest handlers stay about answering, and these rules
are testable without a chat.
"""

from __future__ import annotations

import mimetypes
from dataclasses import replace

from aiogram.types import (
    Animation,
    Message,
    MessageOriginChannel,
    MessageOriginChat,
    MessageOriginHiddenUser,
    MessageOriginUser,
    Video,
    VideoNote,
)

from bot.fetch import DOWNLOAD_LIMIT
from core.ingest.request import IngestRequest
from storage.records import MediaFacts, MediaKind

# Image types Pillow cannot read as a raster picture: told apart like any other file.
NOT_RASTER = frozenset({"image/svg+xml", "image/x-icon", "image/vnd.djvu"})
UNTYPED = frozenset({"", "application/octet-stream"})


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


def media_of(message: Message) -> MediaFacts | None:
    """The facts of a message's media we can store, read once from the message, or None (text,
    PDF, sticker, ...)."""
    facts = _file_facts(message)
    if facts is None:
        return None
    return replace(
        facts,
        caption=(message.caption or "").strip() or None,
        forward_origin=origin_text(message),
        message_id=message.message_id,
        message_date=message_date(message),
        album_id=message.media_group_id,
        taken_at=origin_date(message),
    )


def _file_facts(message: Message) -> MediaFacts | None:
    """What the message says about its file: the largest photo size, or the animation, video,
    video note or media document."""
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        return MediaFacts(
            "photo",
            largest.file_unique_id,
            file_id=largest.file_id,
            size=largest.file_size,
            width=largest.width,
            height=largest.height,
            mime="image/jpeg",
        )
    if message.animation is not None:  # before document: Telegram fills both for a GIF
        a = message.animation
        return _clip_facts("animation", a, width=a.width, height=a.height, mime=a.mime_type)
    if message.video is not None:
        v = message.video
        return _clip_facts("video", v, width=v.width, height=v.height, mime=v.mime_type)
    if message.video_note is not None:
        n = message.video_note
        return _clip_facts("video_note", n, width=n.length, height=n.length, mime="video/mp4")
    if message.document is not None and is_media_document(message):
        d = message.document
        return MediaFacts(
            "document",
            d.file_unique_id,
            file_id=d.file_id,
            size=d.file_size,
            mime=document_mime(message),
            thumbnail_file_id=d.thumbnail.file_id if d.thumbnail else None,
            thumbnail_file_unique_id=d.thumbnail.file_unique_id if d.thumbnail else None,
            file_name=(d.file_name or "").strip() or None,
        )
    return None


def _clip_facts(
    kind: MediaKind,
    clip: Animation | Video | VideoNote,
    *,
    width: int,
    height: int,
    mime: str | None,
) -> MediaFacts:
    """An animation, video or video note: its file, its length and its cover picture."""
    thumb = clip.thumbnail
    return MediaFacts(
        kind,
        clip.file_unique_id,
        file_id=clip.file_id,
        size=clip.file_size,
        width=width,
        height=height,
        duration=float(clip.duration),
        mime=mime,
        thumbnail_file_id=thumb.file_id if thumb else None,
        thumbnail_file_unique_id=thumb.file_unique_id if thumb else None,
    )


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


def origin_date(message: Message) -> int | None:
    """When a forwarded picture was originally posted (what "march 2024" means for it); None
    for the user's own message, whose date is the message date already."""
    origin = message.forward_origin
    return int(origin.date.timestamp()) if origin is not None else None


def build_request(owner_id: int, media: MediaFacts, *, too_large: bool) -> IngestRequest:
    """The durable job for the facts :func:`media_of` read (too large: index the thumbnail)."""
    return IngestRequest(owner_id, media, too_large=too_large)
