"""Send search hits back as the user's own media, by ``file_id``: nothing is ever re-uploaded.

Telegram's rules shape the parcels (``sendMediaGroup`` takes 2-10 items; photos and videos mix,
documents only group with documents; animations and video notes cannot be in an album):

- photos and videos go together in albums of 2-10, split evenly (13 hits: 7 + 6, not 10 + 3);
- image documents go in albums of their own, so they stay documents (a file sent as a file
  keeps its full resolution);
- animations and video notes are sent one by one; one item of any kind is sent alone;
- a video hit starts at the matched second (``start_timestamp``, whole seconds, Bot API 8.3)
  and says so in a short caption, because the preview does not show it;
- parcels go out in the order of their best hit, so the best match is always first.

A file id that Telegram no longer accepts (the bot token changed, the file expired) fails an
album as a whole; its items are then sent one by one and the ones that still fail are skipped
and counted, so one bad item never hides the others. Every message sent is recorded with the
item it shows (:class:`~storage.results.ResultStore`), so "/delete" or "/similar" as a reply to
a result finds the item, also after a restart.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    InputMediaDocument,
    InputMediaPhoto,
    InputMediaVideo,
    Message,
    ReplyParameters,
)

from core.search.results import Hit

if TYPE_CHECKING:
    from aiogram import Bot

    from storage.results import ResultStore

log = logging.getLogger(__name__)

ALBUM_MAX = 10
VISUAL_KINDS = ("photo", "video")  # may share an album


@dataclass
class Delivery:
    """What reached the chat: one ``(message, hit)`` per item shown, and what could not."""

    sent: list[tuple[Message, Hit]] = field(default_factory=list)
    skipped: list[Hit] = field(default_factory=list)

    @property
    def message_ids(self) -> list[int]:
        return [m.message_id for m, _ in self.sent]


def start_second(hit: Hit) -> int | None:
    """The whole second a video hit should start at, within the video, or None for 0 / none.

    An int, never a ``timedelta``: aiogram turns a timedelta into a Unix time.
    """
    if hit.timestamp is None or hit.media.kind != "video":
        return None
    second = max(0, round(float(hit.timestamp)))
    duration = hit.media.duration
    if duration is not None and duration > 0:
        second = min(second, math.floor(duration))
    return second or None


def format_moment(seconds: int) -> str:
    """``75`` -> ``"1:15"``; ``3725`` -> ``"1:02:05"``."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def video_caption(hit: Hit) -> str | None:
    second = start_second(hit)
    return f"▶ {format_moment(second)}" if second else None


def split_evenly(items: Sequence[Hit], size: int = ALBUM_MAX) -> list[list[Hit]]:
    """Chunks of at most ``size`` whose lengths differ by at most one, order kept."""
    if not items:
        return []
    chunks = math.ceil(len(items) / size)
    base, extra = divmod(len(items), chunks)
    out: list[list[Hit]] = []
    start = 0
    for i in range(chunks):
        end = start + base + (1 if i < extra else 0)
        out.append(list(items[start:end]))
        start = end
    return out


def plan_parcels(hits: Sequence[Hit]) -> list[list[Hit]]:
    """Group hits into what one send call carries (see the module docstring)."""
    rank = {id(h): i for i, h in enumerate(hits)}
    sendable = [h for h in hits if h.media.file_id]
    visual = [h for h in sendable if h.media.kind in VISUAL_KINDS]
    documents = [h for h in sendable if h.media.kind == "document"]
    alone = [h for h in sendable if h.media.kind not in (*VISUAL_KINDS, "document")]
    parcels = [*split_evenly(visual), *split_evenly(documents), *([h] for h in alone)]
    parcels.sort(key=lambda p: min(rank[id(h)] for h in p))
    return parcels


def _input_media(hit: Hit) -> InputMediaPhoto | InputMediaVideo | InputMediaDocument:
    file_id = hit.media.file_id
    assert file_id is not None
    kind = hit.media.kind
    if kind == "photo":
        return InputMediaPhoto(media=file_id)
    if kind == "video":
        return InputMediaVideo(
            media=file_id, start_timestamp=start_second(hit), caption=video_caption(hit)
        )
    return InputMediaDocument(media=file_id)


async def _send_one(bot: Bot, chat_id: int, hit: Hit, reply: ReplyParameters | None) -> Message:
    media = hit.media
    file_id = media.file_id
    assert file_id is not None
    common: dict[str, Any] = {"chat_id": chat_id, "reply_parameters": reply}
    if media.kind == "photo":
        return await bot.send_photo(photo=file_id, **common)
    if media.kind == "video":
        return await bot.send_video(
            video=file_id,
            start_timestamp=start_second(hit),
            caption=video_caption(hit),
            **common,
        )
    if media.kind == "animation":
        return await bot.send_animation(animation=file_id, **common)
    if media.kind == "video_note":
        return await bot.send_video_note(video_note=file_id, **common)
    return await bot.send_document(document=file_id, **common)


async def send_hits(
    bot: Bot,
    chat_id: int,
    hits: Sequence[Hit],
    *,
    reply_to: int | None = None,
    results: ResultStore | None = None,
) -> Delivery:
    """Send ``hits`` to the chat as the owner's own media (see the module docstring).

    The first message replies to ``reply_to`` (the query), when given and still there. With
    ``results``, every message sent is recorded with its item. Errors other than a refused file
    (a blocked bot, a network failure after the transport's retries) propagate.
    """
    delivery = Delivery(skipped=[h for h in hits if not h.media.file_id])
    reply = (
        ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
        if reply_to is not None
        else None
    )
    for parcel in plan_parcels(hits):
        if len(parcel) > 1:
            try:
                messages = await bot.send_media_group(
                    chat_id=chat_id,
                    media=[_input_media(h) for h in parcel],
                    reply_parameters=reply,
                )
            except TelegramBadRequest as exc:
                log.warning(
                    "album of %d results refused (%s); sending one by one", len(parcel), exc
                )
            else:
                delivery.sent.extend(zip(messages, parcel, strict=False))
                reply = None
                continue
        for hit in parcel:
            try:
                message = await _send_one(bot, chat_id, hit, reply)
            except TelegramBadRequest as exc:
                log.warning("result media %s not sent: %s", hit.media.id, exc)
                delivery.skipped.append(hit)
                continue
            delivery.sent.append((message, hit))
            reply = None
    if results is not None and delivery.sent:
        await results.record(
            chat_id, [(m.message_id, h.media.id, h.unit_id) for m, h in delivery.sent]
        )
    return delivery
