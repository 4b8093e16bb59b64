"""Bot API vocabulary: the limits, update types and error texts Telegram uses, and ``ApiError``.

Kept in one place so every part of the fake refuses what Telegram refuses, in Telegram's words.
"""

from __future__ import annotations

import time
from typing import Any

# Bot API limits (https://core.telegram.org/bots/api and ../shared/reference/telegram.md §1).
DOWNLOAD_LIMIT = 20 * 1024 * 1024
PHOTO_UPLOAD_LIMIT = 10 * 1024 * 1024
UPLOAD_LIMIT = 50 * 1024 * 1024
MAX_REQUEST_SIZE = 64 * 1024 * 1024  # aiohttp's default of 1 MiB would reject real uploads
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64
CALLBACK_ANSWER_LIMIT = 200
INLINE_RESULTS_LIMIT = 50
INLINE_OFFSET_LIMIT = 64
MEDIA_GROUP_MIN = 2
MEDIA_GROUP_MAX = 10
UPDATES_LIMIT = 100

# Error descriptions as Telegram words them (aiogram users match on these substrings).
BLOCKED = "Forbidden: bot was blocked by the user"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
WRONG_FILE_ID = "Bad Request: wrong file identifier/HTTP URL specified"
WRONG_GETFILE_ID = "Bad Request: wrong file_id or the file is temporarily unavailable"
FILE_TOO_BIG = "Bad Request: file is too big"
TYPE_MISMATCH = "Bad Request: type of file mismatch"
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
CHAT_NOT_FOUND = "Bad Request: chat not found"
POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
    "is running"
)

ALL_UPDATE_TYPES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
)
# Telegram's default when allowed_updates was never given: everything but these three.
DEFAULT_UPDATE_TYPES = frozenset(ALL_UPDATE_TYPES) - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)

# The emoji Telegram accepts in ReactionTypeEmoji (Bot API, "ReactionTypeEmoji").
_REACTIONS = (
    "👍 👎 ❤ 🔥 🥰 👏 😁 🤔 🤯 😱 🤬 😢 🎉 🤩 🤮 💩 🙏 👌 🕊 🤡 🥱 🥴 😍 🐳 ❤‍🔥 🌚 🌭 💯 🤣 ⚡ 🍌 "
    "🏆 💔 🤨 😐 🍓 🍾 💋 🖕 😈 😴 😭 🤓 👻 👨‍💻 👀 🎃 🙈 😇 😨 🤝 ✍ 🤗 🫡 🎅 🎄 ☃ 💅 🤪 🗿 🆒 💘 "
    "🙉 🦄 😘 💊 🙊 😎 👾 🤷‍♂ 🤷 🤷‍♀ 😡"
)
REACTION_EMOJI = frozenset(_REACTIONS.split())
DESCRIPTION_LIMITS = {"description": 512, "short_description": 120}


# Fields that aiogram sends as JSON text inside a form.
JSON_FIELDS = frozenset(
    {
        "allowed_updates",
        "button",
        "caption_entities",
        "commands",
        "entities",
        "link_preview_options",
        "media",
        "menu_button",
        "message_ids",
        "reply_markup",
        "reply_parameters",
        "results",
        "scope",
    }
)


FILE_KINDS = ("photo", "video", "document", "animation", "video_note", "audio", "thumbnail")

# The pseudo-method of file downloads (GET /file/...), for :meth:`FakeTelegramServer.fail`.
DOWNLOAD = "download"


class ApiError(Exception):
    """A Bot API error answer: HTTP status = ``error_code``, as Telegram does."""

    def __init__(self, code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description
        self.retry_after = retry_after


def bad(description: str) -> ApiError:
    """A 400 Bad Request with Telegram's wording."""
    return ApiError(400, description)


def error_body(code: int, description: str, retry_after: int | None) -> dict[str, Any]:
    """The JSON body of an error answer (``parameters.retry_after`` for a 429)."""
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return body


def utf16_len(text: str) -> int:
    """Telegram counts text limits in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def now() -> int:
    """Telegram dates are whole Unix seconds."""
    return int(time.time())


def as_bool(value: Any) -> bool:
    """A boolean parameter as forms send it ("true", "1") or as JSON does."""
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)
