"""Ingest: photos, image files, albums, videos, animations and video notes sent or forwarded to the
bot become searchable items of the owner's collection.

Each message is turned into an :class:`~core.ingest.request.IngestRequest` (the facts of
:mod:`bot.message_facts`) and submitted at once: the job is durable before the handler returns,
whatever happens to the process next. The answer is left to :mod:`bot.albums` through the
dispatcher's :class:`~bot.intake.IngestDesk` (``intake``), which keeps it to one message per
album and per burst of items sent one by one (thirty forwarded photos get one answer, not
thirty):

* an item alone: one reply once it is committed (saved, near-duplicate, already in the
  collection, or why it could not be read); a video (GIF, video note) shows its progress in
  that message first;
* several: one message counting "n of N", then the summary.

Files over the Bot API's 20 MB download limit are indexed from their thumbnail when they have
one (unless a local Bot API server lifts the limit). Documents that are neither pictures nor
videos get a short explanation in private chats. In group chats (their own router) the bot only
speaks up when something went wrong, so a busy group is not flooded with "saved": a kept item
gets a 👌 reaction instead.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.types import Message

from bot.i18n import t
from bot.intake import IngestDesk
from bot.message_facts import build_request, document_mime, is_media_document, media_of
from bot.reports import ItemResult

if TYPE_CHECKING:
    from storage.records import Owner


async def on_private_media(message: Message, owner: Owner, lang: str, intake: IngestDesk) -> None:
    await take_media(message, owner, lang, intake, quiet=False)


async def on_group_media(message: Message, owner: Owner, lang: str, intake: IngestDesk) -> None:
    await take_media(message, owner, lang, intake, quiet=True)


async def take_media(
    message: Message, owner: Owner, lang: str, intake: IngestDesk, *, quiet: bool
) -> None:
    """Refuse (quota, too large without a thumbnail) or submit one item of the message."""
    media = media_of(message)
    if media is None:  # the filters let through only what media_of knows
        if not quiet:
            await on_not_media(message, lang, intake)
        return
    refusal = await intake.quota_refusal(owner, media, lang)
    if refusal is not None:
        refused = ItemResult.refused("quota", media.kind, note=refusal)
        intake.collect(message, lang, refused, quiet=quiet)
        return
    too_large = intake.too_large(media)
    if too_large and media.thumbnail_file_id is None:
        refused = ItemResult.refused("file_too_large", media.kind)
        intake.collect(message, lang, refused, quiet=quiet)
        return
    request = build_request(owner.id, media, too_large=too_large)
    video = media.is_video and not too_large
    await intake.take(message, request, lang, video=video, quiet=quiet)


async def on_not_media(message: Message, lang: str, intake: IngestDesk) -> None:
    """A PDF, an archive, ...: a short explanation (private chats only: its router's filter)."""
    doc = message.document
    name = (doc.file_name if doc is not None else None) or document_mime(message) or "file"
    note = t("reports-not-media-document", lang, name=html.escape(name))
    refused = ItemResult.refused("not_media", "document", note=note)
    intake.collect(message, lang, refused, quiet=False)


async def ignore(message: Message) -> None:
    """A group's document that is no media: nothing to keep, nothing to say."""


def _register_media(router: Router, handler: Callable[..., Awaitable[None]]) -> None:
    for media_filter in (F.photo, F.animation, F.video, F.video_note):
        router.message.register(handler, media_filter)
    router.message.register(handler, F.document, is_media_document)


def build_router() -> Router:
    """The ingest handlers, private and group; a new Router per dispatcher."""
    private = Router(name="ingest-private")
    private.message.filter(F.chat.type == ChatType.PRIVATE)
    _register_media(private, on_private_media)
    private.message.register(on_not_media, F.document)
    groups = Router(name="ingest-groups")
    groups.message.filter(F.chat.type != ChatType.PRIVATE)
    _register_media(groups, on_group_media)
    groups.message.register(ignore, F.document)
    r = Router(name="ingest")
    r.include_routers(private, groups)
    return r
