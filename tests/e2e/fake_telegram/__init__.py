"""A fake Telegram Bot API server for end-to-end tests.

The bot under test talks to it over real HTTP exactly as it talks to Telegram (aiogram's aiohttp
transport: urlencoded or multipart bodies, ``attach://`` uploads, JSON results, file downloads),
so the wire format, file handling, long polling, album concurrency and error mapping are all
exercised. The server keeps the state a bot can observe (chats, message ids, files, pending
updates, callback and inline answers, commands) and enforces the Bot API limits bots most often
break, so such bugs fail tests here instead of surprising users later.

Tests play the user's side with builders (``send_photo``, ``send_album``, ``press_button``,
``inline_query``, ...) and await the bot's output with event-driven helpers (``next_message``,
``wait_for``, ``wait_call``); nothing sleeps. Faults (429, 5xx, 403, dropped connections,
held requests) are injected per method.

Modules, by concern: ``state`` (the shared records), ``server`` (the composition root),
``app`` and ``dispatch`` (HTTP and method table), ``updates`` and ``webhook`` (delivery),
``sending``, ``editing``, ``answers``, ``profile`` (Bot API methods), ``chats``, ``files``,
``uploads`` (messages and files), ``faults`` and ``flood`` (misbehaviour and limits),
``user_side``, ``user_media`` and ``inspection`` (what tests call), ``protocol``, ``text``,
``people``, ``records``, ``images`` (vocabulary and records).
"""

from .faults import Fault, Gate, at_most_once, fingerprint
from .flood import FloodControl, FloodRule, message_cost
from .images import image_size, make_jpeg
from .people import FakeGroup, FakeMember, FakeUser, origin_channel, origin_hidden_user, origin_user
from .protocol import (
    ALL_UPDATE_TYPES,
    BLOCKED,
    CALLBACK_ANSWER_LIMIT,
    CALLBACK_DATA_LIMIT,
    CAPTION_LIMIT,
    CHAT_ACTIONS,
    CHAT_NOT_FOUND,
    DEFAULT_UPDATE_TYPES,
    DESCRIPTION_LIMITS,
    DOWNLOAD,
    DOWNLOAD_LIMIT,
    FILE_KINDS,
    FILE_TOO_BIG,
    INLINE_OFFSET_LIMIT,
    INLINE_RESULTS_LIMIT,
    JSON_FIELDS,
    MAX_REQUEST_SIZE,
    MEDIA_GROUP_MAX,
    MEDIA_GROUP_MIN,
    NOT_MODIFIED,
    PHOTO_UPLOAD_LIMIT,
    POLL_CONFLICT,
    QUERY_TOO_OLD,
    REACTION_EMOJI,
    TEXT_LIMIT,
    TYPE_MISMATCH,
    UPDATES_LIMIT,
    UPLOAD_LIMIT,
    WRONG_FILE_ID,
    WRONG_GETFILE_ID,
    ApiError,
    utf16_len,
)
from .records import ApiCall, SentMessage, StoredFile, UpdateRecord, UploadedFile
from .server import FakeTelegramServer
from .state import ServerState
from .text import html_visible_text, visible_text

__all__ = [
    "ALL_UPDATE_TYPES",
    "BLOCKED",
    "CALLBACK_ANSWER_LIMIT",
    "CALLBACK_DATA_LIMIT",
    "CAPTION_LIMIT",
    "CHAT_ACTIONS",
    "CHAT_NOT_FOUND",
    "DEFAULT_UPDATE_TYPES",
    "DESCRIPTION_LIMITS",
    "DOWNLOAD",
    "DOWNLOAD_LIMIT",
    "FILE_KINDS",
    "FILE_TOO_BIG",
    "INLINE_OFFSET_LIMIT",
    "INLINE_RESULTS_LIMIT",
    "JSON_FIELDS",
    "MAX_REQUEST_SIZE",
    "MEDIA_GROUP_MAX",
    "MEDIA_GROUP_MIN",
    "NOT_MODIFIED",
    "PHOTO_UPLOAD_LIMIT",
    "POLL_CONFLICT",
    "QUERY_TOO_OLD",
    "REACTION_EMOJI",
    "TEXT_LIMIT",
    "TYPE_MISMATCH",
    "UPDATES_LIMIT",
    "UPLOAD_LIMIT",
    "WRONG_FILE_ID",
    "WRONG_GETFILE_ID",
    "ApiCall",
    "ApiError",
    "FakeGroup",
    "FakeMember",
    "FakeTelegramServer",
    "FakeUser",
    "Fault",
    "FloodControl",
    "FloodRule",
    "Gate",
    "SentMessage",
    "ServerState",
    "StoredFile",
    "UpdateRecord",
    "UploadedFile",
    "at_most_once",
    "fingerprint",
    "html_visible_text",
    "image_size",
    "make_jpeg",
    "message_cost",
    "origin_channel",
    "origin_hidden_user",
    "origin_user",
    "utf16_len",
    "visible_text",
]
