"""Which messages are search queries: aiogram filters for the private and the group routers.

A private chat is a conversation with the bot, so any plain text is a query, and so is a photo
with a "?" caption or sent as a reply. In a group the bot must be addressed (a reply to it, its
@username), or it would answer every chat line and swallow every photo meant for the
collection. Each filter hands the handler what the query says (``query_text`` or
``query_caption``) through aiogram's filter data.
"""

from __future__ import annotations

from typing import Any

from aiogram.types import Message

from bot.identity import BotIdentity, strip_mention

# A query photo is fetched at the smallest Telegram size at least this wide (the models look at
# 224-336 px): less to download and decode than the original.
QUERY_PHOTO_MIN_SIDE = 320

FilterResult = bool | dict[str, Any]


def pick_photo_size(message: Message) -> tuple[str, int | None] | None:
    """(file id, size) of the query picture: the smallest photo size that is wide enough, or
    an image document; None when the message holds no picture."""
    if message.photo:
        sizes = sorted(message.photo, key=lambda p: p.width * p.height)
        for size in sizes:
            if min(size.width, size.height) >= QUERY_PHOTO_MIN_SIDE:
                return size.file_id, size.file_size
        return sizes[-1].file_id, sizes[-1].file_size
    doc = message.document
    if doc is not None and (doc.mime_type or "").startswith("image/"):
        return doc.file_id, doc.file_size
    return None


def _is_own_text(message: Message) -> bool:
    """A text the user typed: not empty, not a command, not forwarded or sent via a bot."""
    text = message.text or ""
    if not text.strip() or text.startswith("/"):
        return False
    return message.via_bot is None and message.forward_origin is None


def _is_own_picture(message: Message) -> bool:
    """A single picture the user sent (a forward is something to keep; its caption is someone
    else's; an album is a batch to store)."""
    if message.media_group_id is not None or pick_photo_size(message) is None:
        return False
    return message.via_bot is None and message.forward_origin is None


async def private_text_query(message: Message) -> FilterResult:
    """Any text the user typed in a private chat."""
    if not _is_own_text(message):
        return False
    return {"query_text": message.text or ""}


async def group_text_query(message: Message, identity: BotIdentity) -> FilterResult:
    """A text in a group that replies to the bot or starts with its @username."""
    if not _is_own_text(message):
        return False
    text = message.text or ""
    if await identity.is_replied_to(message):
        return {"query_text": text}
    rest = strip_mention(text, await identity.username())
    return False if rest is None else {"query_text": rest}


async def private_photo_query(message: Message) -> FilterResult:
    """A picture with a "?" caption, or sent as a reply to any message."""
    if not _is_own_picture(message):
        return False
    caption = (message.caption or "").strip()
    if caption.startswith("?") or message.reply_to_message is not None:
        return {"query_caption": caption.removeprefix("?").strip()}
    return False


async def group_photo_query(message: Message, identity: BotIdentity) -> FilterResult:
    """A picture in a group that replies to the bot, or whose caption asks ("?") and names the
    bot ("?@bot on a beach", "@bot ?on a beach"); a "?" alone may be meant for people, "@bot"
    alone lets a photo in to be kept."""
    if not _is_own_picture(message):
        return False
    caption = (message.caption or "").strip()
    asked = caption.startswith("?")
    rest = caption.removeprefix("?").lstrip()
    named = strip_mention(rest, await identity.username())
    if named is not None:
        rest = named.lstrip()
        if not asked and rest.startswith("?"):
            asked, rest = True, rest[1:].lstrip()
    if (named is not None and asked) or await identity.is_replied_to(message):
        return {"query_caption": rest.strip()}
    return False
