"""Edits and deletions of the bot's messages, with Telegram's "message is not modified" rule.

Edits change a :class:`SentMessage` in place and keep its earlier states in ``history``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from .chats import ChatLog
from .dispatch import Handler
from .files import media_fields
from .protocol import NOT_MODIFIED, bad, now
from .records import ApiCall, SentMessage
from .text import check_caption, check_markup, check_text
from .uploads import Uploads, start_timestamp


class Editor:
    """editMessage* and deleteMessage(s)."""

    def __init__(self, chats: ChatLog, uploads: Uploads) -> None:
        self._chats = chats
        self._uploads = uploads

    def handlers(self) -> dict[str, Handler]:
        return {
            "editMessageText": self.edit_message_text,
            "editMessageCaption": self.edit_message_caption,
            "editMessageMedia": self.edit_message_media,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "deleteMessage": self.delete_message,
            "deleteMessages": self.delete_messages,
        }

    def _editable(self, call: ApiCall) -> SentMessage | None:
        """The bot message an edit targets; None for inline messages."""
        if call.params.get("inline_message_id"):
            return None
        chat_id = self._chats.resolve_chat(call)
        message_id = call.int_param("message_id")
        if message_id is None:
            raise bad("Bad Request: message identifier is not specified")
        key = (chat_id, message_id)
        if not self._chats.exists(key):
            raise bad("Bad Request: message to edit not found")
        sent = self._chats.bot_message(key)
        if sent is None:
            raise bad("Bad Request: message can't be edited")
        return sent

    def _apply_edit(
        self,
        sent: SentMessage,
        call: ApiCall,
        changes: dict[str, Any],
        markup: dict[str, Any] | None,
        *,
        remove: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Change the message in place, keeping its previous state in ``history``."""
        sent.history.append(copy.deepcopy(sent.message))
        sent.edit_methods.append(call.method)
        for key in remove:
            sent.message.pop(key, None)
        sent.message.update(changes)
        # An edit without reply_markup removes the inline keyboard, as on Telegram.
        if markup is None:
            sent.message.pop("reply_markup", None)
        else:
            sent.message["reply_markup"] = markup
        sent.message["edit_date"] = now()
        return sent.message

    async def edit_message_text(self, call: ApiCall) -> dict[str, Any] | bool:
        sent = self._editable(call)
        parse_mode = call.params.get("parse_mode")
        text = check_text(call.params.get("text"), parse_mode)
        markup = check_markup(call.params.get("reply_markup"))
        if sent is None:
            return True
        if "text" not in sent.message:
            raise bad("Bad Request: there is no text in the message to edit")
        raw = str(call.params["text"])
        if (
            text == sent.message["text"]
            and (raw if parse_mode else text) == (sent.raw_text if sent.parse_mode else text)
            and markup == sent.message.get("reply_markup")
        ):
            raise bad(NOT_MODIFIED)
        sent.raw_text, sent.parse_mode = raw, parse_mode
        return self._apply_edit(sent, call, {"text": text}, markup)

    async def edit_message_caption(self, call: ApiCall) -> dict[str, Any] | bool:
        sent = self._editable(call)
        parse_mode = call.params.get("parse_mode")
        caption = check_caption(call.params.get("caption"), parse_mode)
        markup = check_markup(call.params.get("reply_markup"))
        if sent is None:
            return True
        if "text" in sent.message:
            raise bad("Bad Request: there is no caption in the message to edit")
        if caption == sent.message.get("caption") and markup == sent.message.get("reply_markup"):
            raise bad(NOT_MODIFIED)
        sent.raw_text, sent.parse_mode = call.params.get("caption"), parse_mode
        if caption is None:
            return self._apply_edit(sent, call, {}, markup, remove=("caption",))
        return self._apply_edit(sent, call, {"caption": caption}, markup)

    async def edit_message_media(self, call: ApiCall) -> dict[str, Any] | bool:
        sent = self._editable(call)
        item = call.params.get("media")
        if not isinstance(item, dict) or not isinstance(item.get("media"), str):
            raise bad("Bad Request: can't parse InputMedia JSON object")
        kind = str(item.get("type"))
        if kind not in ("photo", "video", "document", "animation", "audio"):
            raise bad(f'Bad Request: can\'t parse InputMedia: unsupported type "{kind}"')
        caption = check_caption(item.get("caption"), item.get("parse_mode"))
        markup = check_markup(call.params.get("reply_markup"))
        meta = dict(item)
        meta["_thumbnail"] = self._uploads.thumbnail(call, item.get("thumbnail"))
        stored = self._uploads.resolve(call, item["media"], kind, name="media", meta=meta)
        start = start_timestamp(item.get("start_timestamp"), stored) if kind == "video" else None
        if sent is None:
            return True
        if "text" in sent.message:
            raise bad("Bad Request: there is no media in the message to edit")
        if sent.media_group_id and kind not in ("photo", "video") and sent.kind != kind:
            raise bad("Bad Request: can't change the type of an album item")
        changes = media_fields(stored, start_timestamp=start)
        if caption is not None:
            changes["caption"] = caption
        sent.start_timestamp = start
        media_keys = ("photo", "video", "document", "animation", "audio", "caption")
        return self._apply_edit(sent, call, changes, markup, remove=media_keys)

    async def edit_message_reply_markup(self, call: ApiCall) -> dict[str, Any] | bool:
        sent = self._editable(call)
        markup = check_markup(call.params.get("reply_markup"))
        if sent is None:
            return True
        if markup == sent.message.get("reply_markup"):
            raise bad(NOT_MODIFIED)
        return self._apply_edit(sent, call, {}, markup)

    async def delete_message(self, call: ApiCall) -> bool:
        chat_id = self._chats.resolve_chat(call, sending=False)
        key = (chat_id, call.int_param("message_id") or 0)
        if not self._chats.exists(key):
            raise bad("Bad Request: message to delete not found")
        self._chats.mark_deleted(key)
        return True

    async def delete_messages(self, call: ApiCall) -> bool:
        chat_id = self._chats.resolve_chat(call, sending=False)
        ids = call.params.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad("Bad Request: message_ids must be a list of 1-100 identifiers")
        for message_id in ids:
            key = (chat_id, int(message_id))
            if self._chats.exists(key):
                self._chats.mark_deleted(key)
        return True
