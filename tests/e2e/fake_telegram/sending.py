"""The bot's sending methods: sendMessage, send<Media>, sendMediaGroup, copy and forward.

Each checks its parameters in Telegram's order (chat, text, keyboard, reply, files), so the
first error a bot provokes is the one Telegram would answer.
"""

from __future__ import annotations

import copy
from typing import Any

from .chats import ChatLog, new_media_group_id
from .dispatch import Handler
from .files import media_fields
from .protocol import MEDIA_GROUP_MAX, MEDIA_GROUP_MIN, bad, now
from .records import ApiCall, StoredFile
from .state import ServerState
from .text import check_caption, check_markup, check_text
from .uploads import Uploads, start_timestamp

MEDIA_METHODS = {
    "sendPhoto": "photo",
    "sendVideo": "video",
    "sendDocument": "document",
    "sendAnimation": "animation",
    "sendVideoNote": "video_note",
    "sendAudio": "audio",
}
CONTENT_KEYS = ("text", "photo", "video", "document", "animation", "video_note", "audio")

# One album item ready to send: (item, file, caption, start_timestamp, cover).
AlbumItem = tuple[dict[str, Any], StoredFile, str | None, int | None, list[StoredFile] | None]


def content_of(message: dict[str, Any]) -> dict[str, Any]:
    """The content fields of a message (what copyMessage and forwardMessage carry over)."""
    content = {k: copy.deepcopy(message[k]) for k in CONTENT_KEYS if k in message}
    if "caption" in message:
        content["caption"] = message["caption"]
    return content


def album_items(media: Any) -> list[tuple[dict[str, Any], str]]:
    """A sendMediaGroup ``media`` as (item, type) pairs, refused as Telegram refuses albums."""
    if not isinstance(media, list) or not all(isinstance(item, dict) for item in media):
        raise bad("Bad Request: can't parse media JSON object")
    if len(media) > MEDIA_GROUP_MAX:
        raise bad("Bad Request: too much messages to send as an album")
    if len(media) < MEDIA_GROUP_MIN:
        raise bad("Bad Request: media group must include 2-10 items")
    kinds = [str(item.get("type")) for item in media]
    for kind in kinds:
        if kind not in ("photo", "video", "document", "audio"):
            raise bad(f'Bad Request: can\'t parse InputMedia: unsupported type "{kind}"')
    for solo in ("document", "audio"):
        if solo in kinds and set(kinds) != {solo}:
            raise bad(f"Bad Request: {solo}s can't be mixed with other media types")
    return list(zip(media, kinds, strict=True))


class Sender:
    """Bot API methods that put new messages into a chat."""

    def __init__(self, state: ServerState, chats: ChatLog, uploads: Uploads) -> None:
        self._state = state
        self._chats = chats
        self._uploads = uploads

    def handlers(self) -> dict[str, Handler]:
        media = {name: self._media_sender(kind) for name, kind in MEDIA_METHODS.items()}
        return {
            "sendMessage": self.send_message,
            **media,
            "sendMediaGroup": self.send_media_group,
            "copyMessage": self.copy_message,
            "forwardMessage": self.forward_message,
        }

    async def send_message(self, call: ApiCall) -> dict[str, Any]:
        chat_id = self._chats.resolve_chat(call)
        parse_mode = call.params.get("parse_mode")
        text = check_text(call.params.get("text"), parse_mode)
        markup = check_markup(call.params.get("reply_markup"))
        reply = self._chats.reply_target(call, chat_id)
        message = self._chats.new_message(chat_id, from_bot=True)
        message["text"] = text
        if reply is not None:
            message["reply_to_message"] = reply
        if markup is not None:
            message["reply_markup"] = markup
        self._chats.record_sent(
            call, message, raw_text=str(call.params["text"]), parse_mode=parse_mode
        )
        return message

    def _media_sender(self, kind: str) -> Handler:
        async def handler(call: ApiCall) -> dict[str, Any]:
            return await self.send_media(call, kind)

        return handler

    async def send_media(self, call: ApiCall, kind: str) -> dict[str, Any]:
        """sendPhoto, sendVideo, ...: one media message (``kind`` names the file parameter)."""
        chat_id = self._chats.resolve_chat(call)
        parse_mode = call.params.get("parse_mode")
        caption = check_caption(call.params.get("caption"), parse_mode)
        markup = check_markup(call.params.get("reply_markup"))
        reply = self._chats.reply_target(call, chat_id)
        meta = dict(call.params)
        meta["_thumbnail"] = self._uploads.thumbnail(call, call.params.get("thumbnail"))
        stored = self._uploads.resolve(call, call.params.get(kind), kind, name=kind, meta=meta)
        start = cover = None
        if kind == "video":
            start = start_timestamp(call.params.get("start_timestamp"), stored)
            cover = self._uploads.cover(call, call.params.get("cover"))
        message = self._chats.new_message(chat_id, from_bot=True)
        message.update(media_fields(stored, start_timestamp=start, cover=cover))
        if caption is not None:
            message["caption"] = caption
        if reply is not None:
            message["reply_to_message"] = reply
        if markup is not None:
            message["reply_markup"] = markup
        self._chats.record_sent(
            call,
            message,
            raw_text=call.params.get("caption"),
            parse_mode=parse_mode,
            start_timestamp=start,
        )
        return message

    async def send_media_group(self, call: ApiCall) -> list[dict[str, Any]]:
        """sendMediaGroup: every item is checked before any message is sent."""
        chat_id = self._chats.resolve_chat(call)
        items = album_items(call.params.get("media"))
        reply = self._chats.reply_target(call, chat_id)
        resolved = [self._album_item(call, item, kind) for item, kind in items]
        group_id = new_media_group_id()
        date = now()
        shared = {k: v for k, v in call.params.items() if k != "media"}
        messages = []
        for item, stored, caption, start, cover in resolved:
            message = self._chats.new_message(chat_id, from_bot=True, date=date)
            message["media_group_id"] = group_id
            message.update(media_fields(stored, start_timestamp=start, cover=cover))
            if caption is not None:
                message["caption"] = caption
            if reply is not None:
                message["reply_to_message"] = copy.deepcopy(reply)
            self._chats.record_sent(
                call,
                message,
                params={**shared, "item": item},
                raw_text=item.get("caption"),
                parse_mode=item.get("parse_mode"),
                start_timestamp=start,
            )
            messages.append(message)
        return messages

    def _album_item(self, call: ApiCall, item: dict[str, Any], kind: str) -> AlbumItem:
        if not isinstance(item.get("media"), str) or not item["media"]:
            raise bad("Bad Request: can't parse InputMedia: media not found")
        caption = check_caption(item.get("caption"), item.get("parse_mode"))
        meta = dict(item)
        meta["_thumbnail"] = self._uploads.thumbnail(call, item.get("thumbnail"))
        stored = self._uploads.resolve(call, item["media"], kind, name="media", meta=meta)
        start = cover = None
        if kind == "video":
            start = start_timestamp(item.get("start_timestamp"), stored)
            cover = self._uploads.cover(call, item.get("cover"))
        return item, stored, caption, start, cover

    def _source_message(self, call: ApiCall) -> dict[str, Any]:
        from_chat = self._chats.resolve_chat(call, "from_chat_id", sending=False)
        message_id = call.int_param("message_id")
        key = (from_chat, message_id or 0)
        source = self._chats.current(key)
        if source is None or self._chats.was_deleted(key):
            raise bad("Bad Request: message to copy not found")
        return source

    def _video_start(self, call: ApiCall, content: dict[str, Any]) -> int | None:
        """Apply ``video_start_timestamp`` to a copied or forwarded video."""
        if "video" not in content:
            return None
        stored = self._state.files[content["video"]["file_id"]]
        start = start_timestamp(call.params.get("video_start_timestamp"), stored)
        if start is not None:
            content["video"]["start_timestamp"] = start
        return start

    async def copy_message(self, call: ApiCall) -> dict[str, Any]:
        chat_id = self._chats.resolve_chat(call)
        content = content_of(self._source_message(call))
        parse_mode = call.params.get("parse_mode")
        if "caption" in call.params:
            content.pop("caption", None)
            caption = check_caption(call.params.get("caption"), parse_mode)
            if caption is not None:
                content["caption"] = caption
        markup = check_markup(call.params.get("reply_markup"))
        reply = self._chats.reply_target(call, chat_id)
        start = self._video_start(call, content)
        message = self._chats.new_message(chat_id, from_bot=True)
        message.update(content)
        if reply is not None:
            message["reply_to_message"] = reply
        if markup is not None:
            message["reply_markup"] = markup
        self._chats.record_sent(call, message, start_timestamp=start)
        return {"message_id": message["message_id"]}

    async def forward_message(self, call: ApiCall) -> dict[str, Any]:
        chat_id = self._chats.resolve_chat(call)
        source = self._source_message(call)
        content = content_of(source)
        start = self._video_start(call, content)
        message = self._chats.new_message(chat_id, from_bot=True)
        message.update(content)
        message["forward_origin"] = {
            "type": "user",
            "date": source["date"],
            "sender_user": copy.deepcopy(source["from"]),
        }
        self._chats.record_sent(call, message, start_timestamp=start)
        return message
