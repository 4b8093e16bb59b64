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
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import html
import io
import itertools
import json
import math
import mimetypes
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiohttp
from aiohttp import web
from PIL import Image

T = TypeVar("T")

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
_FILE_ID_PREFIX = {
    "photo": "AgACAgIAAxkBAA",
    "video": "BAACAgIAAxkBAA",
    "document": "BQACAgIAAxkBAA",
    "animation": "CgACAgIAAxkBAA",
    "video_note": "DQACAgIAAxkBAA",
    "audio": "CQACAgIAAxkBAA",
    "thumbnail": "AAMCAgADGQEAA",
}
_FILE_DIRS = {
    "photo": ("photos", ".jpg"),
    "video": ("videos", ".mp4"),
    "document": ("documents", ""),
    "animation": ("animations", ".mp4"),
    "video_note": ("video_notes", ".mp4"),
    "audio": ("music", ".mp3"),
    "thumbnail": ("thumbnails", ".jpg"),
}
_PHOTO_SIDES = (90, 320, 800, 1280, 2560)  # Telegram's s, m, x, y, w sizes
_INLINE_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")


class ApiError(Exception):
    """A Bot API error answer: HTTP status = ``error_code``, as Telegram does."""

    def __init__(self, code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description
        self.retry_after = retry_after


def _bad(description: str) -> ApiError:
    return ApiError(400, description)


def utf16_len(text: str) -> int:
    """Telegram counts text limits in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _now() -> int:
    return int(time.time())


# --------------------------------------------------------------------------- HTML parse mode

_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "blockquote",
        "code",
        "del",
        "em",
        "i",
        "ins",
        "pre",
        "s",
        "span",
        "strike",
        "strong",
        "tg-emoji",
        "tg-spoiler",
        "tg-time",
        "u",
    }
)
_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*)?>")
_ENTITY_RE = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")


def html_visible_text(text: str) -> str:
    """The text a user sees for ``parse_mode=HTML``; raises like Telegram on broken markup.

    Catches the classic bug of user input (``a < b``) interpolated into HTML unescaped.
    """
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            offset = len(text[:i].encode())
            match = _TAG_RE.match(text, i)
            if match is None:
                name = re.match(r"</?([^\s<>]*)", text[i:])
                bad = name.group(1) if name else ""
                raise _bad(
                    f'Bad Request: can\'t parse entities: Unsupported start tag "{bad}" '
                    f"at byte offset {offset}"
                )
            closing, name = match.group(1) == "/", match.group(2).lower()
            if name not in _HTML_TAGS:
                raise _bad(
                    f'Bad Request: can\'t parse entities: Unsupported start tag "{name}" '
                    f"at byte offset {offset}"
                )
            if closing:
                if not stack:
                    raise _bad(
                        f"Bad Request: can't parse entities: Unexpected end tag at byte offset "
                        f"{offset}"
                    )
                if stack[-1] != name:
                    raise _bad(
                        "Bad Request: can't parse entities: Unmatched end tag at byte offset "
                        f'{offset}, expected "</{stack[-1]}>", found "</{name}>"'
                    )
                stack.pop()
            else:
                stack.append(name)
            i = match.end()
            continue
        if ch == "&":
            entity = _ENTITY_RE.match(text, i)
            if entity is not None:
                out.append(html.unescape(entity.group()))
                i = entity.end()
                continue
        out.append(ch)
        i += 1
    if stack:
        raise _bad(
            "Bad Request: can't parse entities: Can't find end tag corresponding to start tag "
            f'"{stack[-1]}"'
        )
    return "".join(out)


def visible_text(text: str, parse_mode: str | None) -> str:
    """Text after entity parsing (HTML is parsed and checked; Markdown modes are kept as is)."""
    if parse_mode and parse_mode.lower() == "html":
        return html_visible_text(text)
    return text


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class FakeUser:
    """A Telegram user; the private chat with the bot has the same id."""

    id: int
    first_name: str
    language_code: str | None = None
    username: str | None = None
    last_name: str | None = None

    @property
    def chat_id(self) -> int:
        return self.id

    def api(self) -> dict[str, Any]:
        """The ``User`` object as it appears in updates."""
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    def chat(self) -> dict[str, Any]:
        """The private ``Chat`` object."""
        chat: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            chat["last_name"] = self.last_name
        if self.username:
            chat["username"] = self.username
        return chat


@dataclass(frozen=True)
class FakeGroup:
    """A group chat the bot is a member of (ids of groups are negative).

    ``privacy``: the bot's privacy mode applies here (the default: getMe answers
    ``can_read_all_group_messages: false`` and the bot is not an admin). Telegram then keeps
    from the bot every message except commands (``/cmd`` or ``/cmd@this_bot``, not
    ``/cmd@other_bot``), messages that mention it by @username, replies to its messages and
    messages sent via it; the fake does the same (the message exists, no update is pushed).
    """

    id: int
    title: str
    type: Literal["group", "supergroup"] = "supergroup"
    privacy: bool = True
    admins: frozenset[int] = frozenset()  # user ids getChatMember calls administrators

    @property
    def chat_id(self) -> int:
        return self.id

    def chat(self) -> dict[str, Any]:
        """The group ``Chat`` object."""
        return {"id": self.id, "type": self.type, "title": self.title}


@dataclass(frozen=True)
class FakeMember(FakeUser):
    """A user posting in a group: pass it to any user-side builder instead of the user."""

    group: FakeGroup | None = None

    @property
    def chat_id(self) -> int:
        return self.group.id if self.group is not None else self.id

    @property
    def person(self) -> FakeUser:
        """The user alone (their private chat with the bot)."""
        return FakeUser(self.id, self.first_name, self.language_code, self.username, self.last_name)


@dataclass(frozen=True)
class UploadedFile:
    """One multipart file part of a request."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class StoredFile:
    """A file known to the fake: bytes, ids and the metadata its media object needs.

    ``file_size`` may exceed ``len(data)`` to simulate big files without allocating them.
    """

    file_id: str
    file_unique_id: str
    kind: str
    data: bytes
    file_size: int
    file_path: str
    mime_type: str | None = None
    file_name: str | None = None
    width: int | None = None
    height: int | None = None
    duration: int | None = None
    length: int | None = None
    thumbnail: StoredFile | None = None
    photo_group: list[StoredFile] | None = None  # all sizes of one photo, largest last

    def photo_size(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": self.width or 0,
            "height": self.height or 0,
            "file_size": self.file_size,
        }


@dataclass(eq=False)
class ApiCall:
    """One request the bot made, as received, with the fake's answer."""

    index: int
    method: str
    params: dict[str, Any]  # JSON fields decoded; other values as sent (strings for forms)
    raw: dict[str, Any]
    files: dict[str, UploadedFile]
    content_type: str
    status: int | None = None  # None while being handled; 499 if the client hung up
    result: Any = None
    description: str | None = None
    injected: bool = False  # answered by an injected fault
    request: Any = field(default=None, repr=False, compare=False)
    at: float = field(default_factory=time.monotonic)  # when it arrived (the loop's clock)

    @property
    def ok(self) -> bool:
        return self.status == 200

    def int_param(self, name: str) -> int | None:
        value = self.params.get(name)
        if value is None or value == "":
            return None
        return int(value)

    @property
    def chat_id(self) -> int | None:
        try:
            return self.int_param("chat_id")
        except (TypeError, ValueError):
            return None


@dataclass(eq=False)
class SentMessage:
    """A message the bot sent; ``message`` is its current state (edits are applied in place)."""

    method: str
    call: ApiCall
    message: dict[str, Any]
    params: dict[str, Any]  # the request's params; for album items also the item under "item"
    raw_text: str | None = None  # text or caption as sent, before entity parsing
    parse_mode: str | None = None
    start_timestamp: int | None = None
    deleted: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier states, oldest first
    edit_methods: list[str] = field(default_factory=list)

    @property
    def chat_id(self) -> int:
        return int(self.message["chat"]["id"])

    @property
    def message_id(self) -> int:
        return int(self.message["message_id"])

    @property
    def text(self) -> str | None:
        return self.message.get("text")

    @property
    def caption(self) -> str | None:
        return self.message.get("caption")

    @property
    def kind(self) -> str:
        """Content kind, checked in aiogram's ``Message.content_type`` order."""
        for kind in ("text", "animation", "document", "photo", "video", "video_note", "audio"):
            if kind in self.message:
                return kind
        return "unknown"

    @property
    def media(self) -> dict[str, Any] | None:
        """The media object (for photos, the largest size)."""
        kind = self.kind
        if kind == "photo":
            return self.message["photo"][-1]
        if kind in ("text", "unknown"):
            return None
        return self.message[kind]

    @property
    def file_id(self) -> str | None:
        media = self.media
        return media["file_id"] if media else None

    @property
    def file_unique_id(self) -> str | None:
        media = self.media
        return media["file_unique_id"] if media else None

    @property
    def media_group_id(self) -> str | None:
        return self.message.get("media_group_id")

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        """The keyboard: inline ones as stored on the message, reply keyboards from the request."""
        requested = self.params.get("reply_markup")
        if isinstance(requested, dict) and "inline_keyboard" not in requested:
            return requested
        return self.message.get("reply_markup")

    @property
    def reply_to_message_id(self) -> int | None:
        reply = self.message.get("reply_to_message")
        return int(reply["message_id"]) if reply else None

    def buttons(self) -> list[dict[str, Any]]:
        """Inline buttons of the current keyboard, row by row flattened."""
        markup = self.message.get("reply_markup") or {}
        return [button for row in markup.get("inline_keyboard", []) for button in row]

    def button(self, text: str) -> dict[str, Any]:
        """The inline button whose text equals ``text`` (or, failing that, contains it)."""
        buttons = self.buttons()
        for button in buttons:
            if button.get("text") == text:
                return button
        for button in buttons:
            if text.lower() in str(button.get("text", "")).lower():
                return button
        labels = [button.get("text") for button in buttons]
        raise AssertionError(f"no button {text!r} on message {self.message_id}: {labels}")


@dataclass(eq=False)
class UpdateRecord:
    """A pushed update and what polling did with it."""

    update: dict[str, Any]
    delivered: int = 0  # how many getUpdates answers carried it
    confirmed: bool = False  # a later getUpdates offset acknowledged it
    dropped: bool = False  # its type was not in allowed_updates

    @property
    def update_id(self) -> int:
        return int(self.update["update_id"])

    @property
    def type(self) -> str:
        return next(key for key in self.update if key != "update_id")


# The pseudo-method of file downloads (GET /file/...), for :meth:`FakeTelegramServer.fail`.
DOWNLOAD = "download"


def _method_matches(pattern: str, method: str) -> bool:
    """``"*"`` means any method but getUpdates: polling faults are asked for by name."""
    if pattern == "*":
        return method not in ("getUpdates", DOWNLOAD)
    return pattern.lower() == method.lower()


@dataclass(eq=False)
class Fault:
    """An injected failure for matching calls, applied before the method runs.

    ``drop="before"`` closes the connection without executing the call; ``drop="after"``
    executes it and then closes the connection (the bot never learns it succeeded).
    """

    method: str
    status: int = 500
    description: str = "Internal Server Error"
    retry_after: int | None = None
    times: int | None = 1  # None: every matching call
    when: Callable[[ApiCall], bool] | None = None
    drop: Literal["before", "after"] | None = None
    hits: int = 0

    @property
    def active(self) -> bool:
        return self.times is None or self.hits < self.times

    def matches(self, call: ApiCall) -> bool:
        if not self.active or not _method_matches(self.method, call.method):
            return False
        return self.when is None or bool(self.when(call))


def message_cost(call: ApiCall) -> int:
    """How many messages a call puts into a chat, as Telegram's flood control counts them."""
    method = call.method.lower()
    if method == "sendchataction" or not method.startswith(("send", "edit", "copy", "forward")):
        return 0
    media = call.params.get("media")
    if method == "sendmediagroup" and isinstance(media, list):
        return len(media)
    return 1


def at_most_once(call: ApiCall) -> bool:
    """A call that, done twice, shows the user the same thing twice."""
    method = call.method.lower()
    return method != "sendchataction" and method.startswith(("send", "copy", "forward"))


def fingerprint(call: ApiCall) -> str:
    """What a call delivers, independent of its upload's random ``attach://`` names."""
    params = {k: re.sub(r"attach://[\w-]+", "attach://", str(v)) for k, v in call.raw.items()}
    uploads = sorted(hashlib.sha256(f.data).hexdigest() for f in call.files.values())
    return json.dumps([call.method, sorted(params.items()), uploads])


@dataclass(frozen=True)
class FloodRule:
    """At most ``limit`` messages per ``period_s``, all at once at most (a leaky bucket: the
    bursts-then-429 Telegram shows). ``slack`` absorbs the bot's and our clocks reading the
    same send a few milliseconds apart."""

    limit: float
    period_s: float
    slack: float = 1.0


class FloodControl:
    """Telegram's flood control: the limits (once ``enforce``d) and the chats a 429 closed.

    Every 429 the fake answers (injected or enforced) closes its chat, or the whole bot for a
    call without a chat, for ``retry_after`` seconds; a call arriving there before that is a
    ``violation`` (and, enforced, gets a 429 itself, as on Telegram)."""

    def __init__(self) -> None:
        self.private: FloodRule | None = None
        self.group: FloodRule | None = None
        self.bot: FloodRule | None = None
        self.enforced = False
        self.closed: dict[int | None, float] = {}  # chat (None: the bot) -> deadline
        self.violations: list[ApiCall] = []
        self.rejected: list[ApiCall] = []  # calls over a limit
        self._levels: dict[object, tuple[float, float]] = {}  # bucket -> (level, at)

    def enforce(
        self,
        *,
        private: FloodRule | None = None,
        group: FloodRule | None = FloodRule(20, 60.0),
        bot: FloodRule | None = FloodRule(30, 1.0),
    ) -> None:
        self.private, self.group, self.bot, self.enforced = private, group, bot, True

    def close(self, call: ApiCall, retry_after: float) -> None:
        key = call.chat_id
        deadline = time.monotonic() + retry_after
        self.closed[key] = max(deadline, self.closed.get(key, 0.0))

    def closed_for(self, chat_id: int | None, now: float) -> float:
        deadline = self.closed.get(None, 0.0)
        if chat_id is not None:
            deadline = max(deadline, self.closed.get(chat_id, 0.0))
        return max(0.0, deadline - now)

    def check(self, call: ApiCall) -> ApiError | None:
        """The 429 this call gets, if any; records violations and calls over a limit."""
        if call.method == "getUpdates":
            return None
        remaining = self.closed_for(call.chat_id, call.at)
        if remaining > 0:
            self.violations.append(call)
            return self._too_many(remaining) if self.enforced else None
        cost = message_cost(call)
        if not self.enforced or not cost or call.chat_id is None:
            return None
        chat_rule = self.group if call.chat_id < 0 else self.private
        buckets = [(k, r) for k, r in ((call.chat_id, chat_rule), (None, self.bot)) if r]
        waits = [self._overflow(key, rule, cost, call.at) for key, rule in buckets]
        if any(wait > 0 for wait in waits):
            self.rejected.append(call)
            return self._too_many(max(waits))
        for key, rule in buckets:
            level, _ = self._level(key, rule, call.at)
            self._levels[key] = (level + cost, call.at)
        return None

    def _level(self, key: object, rule: FloodRule, now: float) -> tuple[float, float]:
        level, at = self._levels.get(key, (0.0, now))
        return max(0.0, level - (now - at) * rule.limit / rule.period_s), now

    def _overflow(self, key: object, rule: FloodRule, cost: int, now: float) -> float:
        """Seconds until ``cost`` more fits the bucket; 0 when it fits now."""
        level, _ = self._level(key, rule, now)
        excess = level + cost - rule.limit - rule.slack
        return max(0.0, excess * rule.period_s / rule.limit)

    @staticmethod
    def _too_many(seconds: float) -> ApiError:
        retry_after = max(1, math.ceil(seconds))
        return ApiError(
            429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
        )


class Gate:
    """Holds matching requests until released: a slow Telegram, made deterministic."""

    def __init__(
        self,
        server: FakeTelegramServer,
        method: str,
        when: Callable[[ApiCall], bool] | None,
        times: int | None,
    ) -> None:
        self._server = server
        self.method = method
        self.when = when
        self.times = times
        self.held: list[ApiCall] = []
        self._released = asyncio.Event()

    def takes(self, call: ApiCall) -> bool:
        if self.times is not None and len(self.held) >= self.times:
            return False
        if not _method_matches(self.method, call.method):
            return False
        return self.when is None or bool(self.when(call))

    async def hold(self, call: ApiCall) -> None:
        self.held.append(call)
        self._server.notify()
        await self._released.wait()

    async def arrived(self, n: int = 1, *, timeout: float = 10.0) -> ApiCall:
        """Wait until ``n`` requests are being held; returns the n-th."""
        await self._server.wait_for(
            lambda _: len(self.held) >= n, timeout=timeout, what=f"{n} held {self.method}"
        )
        return self.held[n - 1]

    def release(self) -> None:
        """Let held (and later matching) requests through."""
        self._released.set()
        with contextlib.suppress(ValueError):
            self._server.gates.remove(self)


# --------------------------------------------------------------------------- helpers


def origin_user(user: FakeUser, date: int | None = None) -> dict[str, Any]:
    """``forward_origin`` of a message forwarded from a user."""
    return {"type": "user", "date": date or _now() - 3600, "sender_user": user.api()}


def origin_hidden_user(name: str, date: int | None = None) -> dict[str, Any]:
    """``forward_origin`` of a user who hides their account in forwards."""
    return {"type": "hidden_user", "date": date or _now() - 3600, "sender_user_name": name}


def origin_channel(
    chat_id: int, title: str, message_id: int, date: int | None = None
) -> dict[str, Any]:
    """``forward_origin`` of a channel post."""
    return {
        "type": "channel",
        "date": date or _now() - 3600,
        "chat": {"id": chat_id, "type": "channel", "title": title},
        "message_id": message_id,
    }


def image_size(data: bytes) -> tuple[int, int] | None:
    """Pixel size from the image header, or None when it is not an image Pillow knows."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except Exception:  # any undecodable input
        return None


def make_jpeg(
    width: int = 640, height: int = 480, color: tuple[int, int, int] = (200, 40, 40)
) -> bytes:
    """A small real JPEG (a colour field with a darker square) for file round trips."""
    img = Image.new("RGB", (width, height), color)
    img.paste(tuple(c // 3 for c in color), (width // 4, height // 4, width // 2, height // 2))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


def _thumbnail_jpeg(data: bytes, side: int) -> bytes | None:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (side, side))
            small = img.convert("RGB")
            small.thumbnail((side, side))
            out = io.BytesIO()
            small.save(out, "JPEG", quality=80)
            return out.getvalue()
    except Exception:  # truncated or corrupt: Telegram would have only the original
        return None


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)


def _inaccessible(chat: dict[str, Any], message_id: int) -> dict[str, Any]:
    return {"chat": chat, "message_id": message_id, "date": 0}


# --------------------------------------------------------------------------- server


class FakeTelegramServer:
    """Bot API over HTTP on 127.0.0.1 with an ephemeral port; an async context manager.

    ``local_dir`` switches on the local Bot API server mode (``TelegramAPIServer(is_local=
    True)``): getFile writes the file there and returns its absolute path, with no 20 MB
    limit, and ``file://`` paths are accepted as uploads.
    """

    def __init__(
        self,
        token: str = "123456:TEST-fake-telegram-token",
        *,
        bot_username: str = "image_finder_test_bot",
        bot_name: str = "Image Finder",
        host: str = "127.0.0.1",
        port: int = 0,
        local_dir: Path | None = None,
        supports_inline_queries: bool = True,
        can_read_all_group_messages: bool = False,
    ) -> None:
        if not re.fullmatch(r"\d+:\S+", token):
            raise ValueError("token must look like '<digits>:<secret>'")
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_user: dict[str, Any] = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
        }
        self.host = host
        self.port = port
        self.local_dir = local_dir.resolve() if local_dir is not None else None
        # What getMe says: inline mode on (@BotFather /setinline), privacy mode on.
        self.supports_inline_queries = supports_inline_queries
        self.can_read_all_group_messages = can_read_all_group_messages

        self.users: dict[int, FakeUser] = {}
        self.groups: dict[int, FakeGroup] = {}
        self.blocked: set[int] = set()
        self.calls: list[ApiCall] = []
        self.unknown_methods: list[str] = []
        self.errors: list[ApiCall] = []  # error answers the fake produced (not injected)
        self.allowed_errors: list[str] = []  # substrings assert_clean() tolerates
        self.sent: list[SentMessage] = []
        self.files: dict[str, StoredFile] = {}
        self.downloads: list[str] = []  # file_ids fetched over /file/
        self.failed_downloads: list[str] = []  # file_ids whose download got an injected fault
        self.callback_queries: dict[str, dict[str, Any]] = {}
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.inline_queries: dict[str, dict[str, Any]] = {}
        self.inline_answers: dict[str, dict[str, Any]] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.bot_settings: dict[str, Any] = {}
        self.chat_actions: list[tuple[int, str]] = []
        self.reactions: dict[tuple[int, int], list[str]] = {}  # (chat, message) -> emoji
        # (setting, language_code or "") -> text: descriptions as getMyDescription returns them
        self.descriptions: dict[tuple[str, str], str] = {}
        self.faults: list[Fault] = []
        self.gates: list[Gate] = []
        self.flood = FloodControl()
        self.duplicates: list[tuple[ApiCall, ApiCall]] = []  # (unanswered first, repeat)
        self._unanswered: dict[str, ApiCall] = {}  # sends done whose answer was dropped
        self.updates: dict[int, UpdateRecord] = {}
        self.webhook: dict[str, Any] | None = None
        self.webhook_errors: list[str] = []

        self._pending: list[dict[str, Any]] = []
        self._allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
        self._next_update_id = 700_000_001
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._bot_messages: dict[tuple[int, int], SentMessage] = {}
        self._deleted: set[tuple[int, int]] = set()
        self._next_message_id: dict[int, int] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._file_counter = itertools.count(1)
        self._query_counter = itertools.count(4_000_000_001)
        self._cursors: dict[int, int] = {}
        self._poll_generation = 0
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._webhook_task: asyncio.Task[None] | None = None

        self._handlers: dict[str, Callable[[ApiCall], Awaitable[Any]]] = {
            "getMe": self._get_me,
            "getChatMember": self._get_chat_member,
            "logOut": self._true,
            "close": self._true,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendPhoto": self._media_sender("photo"),
            "sendVideo": self._media_sender("video"),
            "sendDocument": self._media_sender("document"),
            "sendAnimation": self._media_sender("animation"),
            "sendVideoNote": self._media_sender("video_note"),
            "sendAudio": self._media_sender("audio"),
            "sendMediaGroup": self._send_media_group,
            "copyMessage": self._copy_message,
            "forwardMessage": self._forward_message,
            "getFile": self._get_file,
            "answerCallbackQuery": self._answer_callback_query,
            "answerInlineQuery": self._answer_inline_query,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageMedia": self._edit_message_media,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "deleteMessages": self._delete_messages,
            "sendChatAction": self._send_chat_action,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setMessageReaction": self._set_message_reaction,
            "setMyDescription": self._set_description("description"),
            "setMyShortDescription": self._set_description("short_description"),
            "getMyDescription": self._get_description("description"),
            "getMyShortDescription": self._get_description("short_description"),
            "setMyName": self._store_setting("name"),
            "setChatMenuButton": self._store_setting("menu_button"),
        }
        self._canonical = {name.lower(): name for name in self._handlers}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> FakeTelegramServer:
        app = web.Application(client_max_size=MAX_REQUEST_SIZE)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        # handler_cancellation: a client that hangs up (stop_polling, a killed bot) ends its
        # long poll here too, as on Telegram.
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        self._closing = True
        self.notify()
        for gate in list(self.gates):
            gate.release()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegramServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """Base URL, e.g. for ``TELEGRAM_API_BASE`` or ``TelegramAPIServer.from_base``."""
        return f"http://{self.host}:{self.port}"

    def api_server(self) -> Any:
        """aiogram's ``TelegramAPIServer`` for this fake (local mode when ``local_dir``)."""
        from aiogram.client.telegram import TelegramAPIServer

        return TelegramAPIServer.from_base(self.url, is_local=self.local_dir is not None)

    def make_bot(self, **kwargs: Any) -> Any:
        """An ``aiogram.Bot`` wired to this fake through the real aiohttp session."""
        from aiogram import Bot
        from aiogram.client.session.aiohttp import AiohttpSession

        return Bot(self.token, session=AiohttpSession(api=self.api_server()), **kwargs)

    # ------------------------------------------------------------------ events and waiting

    def notify(self) -> None:
        """Wake everyone waiting for a state change."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_for(
        self,
        predicate: Callable[[FakeTelegramServer], T],
        *,
        timeout: float = 10.0,
        what: str | None = None,
    ) -> T:
        """Wait until ``predicate(server)`` is truthy and return its value (no polling sleeps).

        On timeout raise AssertionError with the recent traffic, so failures explain themselves.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._changed
            value = predicate(self)
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out after {timeout:g}s waiting for {what or predicate}\n"
                    + self.transcript()
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def mark(self) -> int:
        """A position in the call log, for ``wait_call(..., since=mark)``."""
        return len(self.calls)

    def calls_of(self, method: str, *, since: int = 0) -> list[ApiCall]:
        """Completed calls of a method (case-insensitive; "*" for all)."""
        return [
            call
            for call in self.calls[since:]
            if call.status is not None and (method == "*" or call.method.lower() == method.lower())
        ]

    async def wait_call(
        self,
        method: str,
        *,
        n: int = 1,
        since: int = 0,
        where: Callable[[ApiCall], bool] | None = None,
        timeout: float = 10.0,
    ) -> ApiCall:
        """Wait for the n-th completed call of ``method`` after ``since``; return it."""

        def found(_: FakeTelegramServer) -> ApiCall | None:
            calls = [c for c in self.calls_of(method, since=since) if where is None or where(c)]
            return calls[n - 1] if len(calls) >= n else None

        return await self.wait_for(found, timeout=timeout, what=f"call #{n} of {method}")

    def polls_in_flight(self, *, since: int = 0) -> list[ApiCall]:
        """getUpdates requests still waiting for updates (the bot is idle)."""
        return [c for c in self.calls[since:] if c.method == "getUpdates" and c.status is None]

    async def wait_poll(self, *, since: int = 0, timeout: float = 10.0) -> ApiCall:
        """Wait until a getUpdates request (made after ``since``) is waiting here."""
        found = await self.wait_for(
            lambda s: s.polls_in_flight(since=since), timeout=timeout, what="a waiting getUpdates"
        )
        return found[-1]

    def messages(self, chat_id: int, *, include_deleted: bool = False) -> list[SentMessage]:
        """Messages the bot sent to a chat, in order."""
        return [
            sent
            for sent in self.sent
            if sent.chat_id == chat_id and (include_deleted or not sent.deleted)
        ]

    async def next_message(self, chat_id: int, *, timeout: float = 10.0) -> SentMessage:
        """The bot's next message in a chat not yet returned by next_message(s)."""
        return (await self.next_messages(chat_id, 1, timeout=timeout))[0]

    async def next_messages(
        self, chat_id: int, n: int, *, timeout: float = 10.0
    ) -> list[SentMessage]:
        """The bot's next ``n`` messages in a chat (an album counts one per item)."""
        start = self._cursors.get(chat_id, 0)

        def ready(_: FakeTelegramServer) -> list[SentMessage] | None:
            sent = self.messages(chat_id, include_deleted=True)
            return sent[start : start + n] if len(sent) >= start + n else None

        batch = await self.wait_for(ready, timeout=timeout, what=f"{n} message(s) to {chat_id}")
        self._cursors[chat_id] = start + n
        return batch

    async def wait_message(
        self,
        chat_id: int,
        where: Callable[[SentMessage], bool],
        *,
        timeout: float = 10.0,
    ) -> SentMessage:
        """The first (not deleted) bot message in a chat matching ``where``."""

        def found(_: FakeTelegramServer) -> SentMessage | None:
            return next((m for m in self.messages(chat_id) if where(m)), None)

        return await self.wait_for(found, timeout=timeout, what=f"a matching message to {chat_id}")

    async def wait_edit(
        self, message: SentMessage, *, edits: int = 1, timeout: float = 10.0
    ) -> SentMessage:
        """Wait until a bot message has been edited ``edits`` times in total."""
        await self.wait_for(
            lambda _: len(message.history) >= edits,
            timeout=timeout,
            what=f"{edits} edit(s) of message {message.message_id}",
        )
        return message

    async def wait_callback_answer(self, query_id: str, *, timeout: float = 10.0) -> dict[str, Any]:
        return await self.wait_for(
            lambda _: self.callback_answers.get(query_id),
            timeout=timeout,
            what=f"answerCallbackQuery for {query_id}",
        )

    async def wait_inline_answer(self, query_id: str, *, timeout: float = 10.0) -> dict[str, Any]:
        return await self.wait_for(
            lambda _: self.inline_answers.get(query_id),
            timeout=timeout,
            what=f"answerInlineQuery for {query_id}",
        )

    async def wait_delivered(
        self, update: int | str | dict[str, Any], *, timeout: float = 10.0
    ) -> None:
        """Wait until a getUpdates answer (or a webhook call) carried this update.

        Takes what a builder returned (a message dict or a query id), an update or its id.
        """
        record = self.update_record(update)
        await self.wait_for(
            lambda _: record.delivered > 0,
            timeout=timeout,
            what=f"delivery of update {record.update_id}",
        )

    async def wait_confirmed(
        self, update: int | str | dict[str, Any], *, timeout: float = 10.0
    ) -> None:
        """Wait until the bot acknowledged this update (a getUpdates offset moved past it)."""
        record = self.update_record(update)
        await self.wait_for(
            lambda _: record.confirmed,
            timeout=timeout,
            what=f"confirmation of update {record.update_id}",
        )

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet acknowledged by the bot."""
        return list(self._pending)

    def unanswered_callbacks(self) -> list[str]:
        """Callback queries the bot never answered (the user's client would keep spinning)."""
        return [qid for qid in self.callback_queries if qid not in self.callback_answers]

    def transcript(self, last: int = 30) -> str:
        """A readable tail of the traffic, for failure messages."""
        lines = [f"--- last {last} of {len(self.calls)} calls ---"]
        for call in self.calls[-last:]:
            brief = {
                k: (v if len(str(v)) < 80 else str(v)[:77] + "...") for k, v in call.params.items()
            }
            if call.status is None:
                answer = "(in flight)"
            elif call.status == 200:
                answer = "200"
            else:
                answer = f"{call.status} {call.description}"
            lines.append(f"#{call.index} {call.method} {brief} -> {answer}")
        lines.append(f"pending updates: {[u['update_id'] for u in self._pending]}")
        if self.unknown_methods:
            lines.append(f"unknown methods: {self.unknown_methods}")
        return "\n".join(lines)

    def assert_clean(self, allow: Iterable[str] = ()) -> None:
        """Fail on unknown methods and on error answers the bot provoked (bot bugs)."""
        allowed = [*self.allowed_errors, *allow]
        problems = [f"unknown Bot API method called: {name}" for name in self.unknown_methods]
        problems += [f"delivered twice: #{a.index} and #{b.index}" for a, b in self.duplicates]
        if self.flood.enforced:
            problems += [f"sent during a 429 wait: #{c.index}" for c in self.flood.violations]
        for call in self.errors:
            if not any(text in (call.description or "") for text in allowed):
                problems.append(f"{call.method} -> {call.status} {call.description}")
        if problems:
            raise AssertionError("\n".join(problems) + "\n" + self.transcript())

    # ------------------------------------------------------------------ fault injection

    def fail(
        self,
        method: str,
        status: int = 500,
        description: str | None = None,
        *,
        retry_after: int | None = None,
        times: int | None = 1,
        when: Callable[[ApiCall], bool] | None = None,
    ) -> Fault:
        """Answer the next ``times`` matching calls with an error.

        ``method="*"`` matches every method except getUpdates; ``when`` filters by the call
        (e.g. ``lambda c: c.chat_id == alice.id``); ``times=None`` never wears off.
        """
        if description is None:
            description = {
                400: "Bad Request",
                403: "Forbidden",
                429: f"Too Many Requests: retry after {retry_after}",
                500: "Internal Server Error",
                502: "Bad Gateway",
                503: "Service Unavailable",
            }.get(status, "Error")
        fault = Fault(method, status, description, retry_after, times, when)
        self.faults.append(fault)
        return fault

    def fail_retry_after(
        self,
        method: str,
        retry_after: int = 1,
        *,
        times: int | None = 1,
        when: Callable[[ApiCall], bool] | None = None,
    ) -> Fault:
        """429 Too Many Requests with ``parameters.retry_after`` (TelegramRetryAfter)."""
        return self.fail(method, 429, retry_after=retry_after, times=times, when=when)

    def fail_blocked(
        self,
        method: str = "*",
        *,
        times: int | None = 1,
        when: Callable[[ApiCall], bool] | None = None,
    ) -> Fault:
        """403 "bot was blocked by the user" for the next matching calls."""
        return self.fail(method, 403, BLOCKED, times=times, when=when)

    def fail_not_modified(self, method: str = "editMessageText", *, times: int | None = 1) -> Fault:
        """400 "message is not modified" even though the edit changes something."""
        return self.fail(method, 400, NOT_MODIFIED, times=times)

    def drop_connection(
        self,
        method: str,
        *,
        after: bool = False,
        times: int | None = 1,
        when: Callable[[ApiCall], bool] | None = None,
    ) -> Fault:
        """Close the connection instead of answering; ``after=True`` executes the call first."""
        fault = Fault(method, 0, "connection dropped", None, times, when)
        fault.drop = "after" if after else "before"
        self.faults.append(fault)
        return fault

    def enforce_flood_limits(
        self,
        *,
        private: FloodRule | None = None,
        group: FloodRule | None = FloodRule(20, 60.0),
        bot: FloodRule | None = FloodRule(30, 1.0),
    ) -> FloodControl:
        """Answer calls over Telegram's limits with a real 429 (per private chat, per group or
        channel, for the whole bot; an album counts each item), and calls to a chat a 429
        closed too. Off by default: tests that do not pace their bot stay fast."""
        self.flood.enforce(private=private, group=group, bot=bot)
        return self.flood

    def hold(
        self,
        method: str,
        *,
        when: Callable[[ApiCall], bool] | None = None,
        times: int | None = None,
    ) -> Gate:
        """Hold matching requests (before they take effect) until ``gate.release()``."""
        gate = Gate(self, method, when, times)
        self.gates.append(gate)
        return gate

    def block(self, user: FakeUser | int) -> None:
        """The user blocks the bot: every send or edit to their chat answers 403."""
        self.blocked.add(user if isinstance(user, int) else user.id)

    def unblock(self, user: FakeUser | int) -> None:
        self.blocked.discard(user if isinstance(user, int) else user.id)

    def set_file_size(self, file_id: str, size: int) -> None:
        """Pretend a stored file is ``size`` bytes (e.g. over the 20 MB getFile limit)."""
        stored = self.files[file_id]
        stored.file_size = size

    # ------------------------------------------------------------------ user side: builders

    def user(
        self,
        id: int | None = None,
        first_name: str = "Alice",
        language_code: str | None = "en",
        *,
        username: str | None = None,
        last_name: str | None = None,
    ) -> FakeUser:
        """Register a user (and their private chat with the bot)."""
        if id is None:
            id = 1000 + len(self.users) + 1
        person = FakeUser(id, first_name, language_code, username, last_name)
        self.users[id] = person
        return person

    def push_update(self, content: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw update (``{"message": {...}}``); validated with aiogram first.

        A malformed update would make aiogram's polling loop retry forever, so it fails here.
        """
        from aiogram.types import Update

        update = {"update_id": self._next_update_id, **content}
        try:
            Update.model_validate(update)
        except Exception as exc:
            raise ValueError(f"update would not validate in aiogram: {exc}") from exc
        self._next_update_id += 1
        self._pending.append(update)
        self.updates[update["update_id"]] = UpdateRecord(update)
        self.notify()
        return update

    def _user_message(
        self,
        user: FakeUser,
        content: dict[str, Any],
        *,
        reply_to: Any = None,
        forward_origin: dict[str, Any] | FakeUser | None = None,
        media_group_id: str | None = None,
        date: int | None = None,
    ) -> dict[str, Any]:
        if user.id not in self.users:
            self.users[user.id] = user.person if isinstance(user, FakeMember) else user
        group = self.groups.get(user.chat_id) if isinstance(user, FakeMember) else None
        if group is not None:
            message = self._new_message(group.id, from_bot=False, date=date, sender=user)
        else:
            message = self._new_message(user.id, from_bot=False, date=date)
        message.update(content)
        if media_group_id is not None:
            message["media_group_id"] = media_group_id
        if forward_origin is not None:
            if isinstance(forward_origin, FakeUser):
                forward_origin = origin_user(forward_origin)
            message["forward_origin"] = forward_origin
        if reply_to is not None:
            message["reply_to_message"] = self._reply_copy(user.chat_id, reply_to)
        if group is not None and not self._bot_receives(group, message):
            return message  # privacy mode: the message is in the group, the bot never sees it
        self.push_update({"message": message})
        return message

    def _reply_copy(self, chat_id: int, target: Any) -> dict[str, Any]:
        if isinstance(target, SentMessage):
            key = (target.chat_id, target.message_id)
        elif isinstance(target, dict):
            key = (int(target["chat"]["id"]), int(target["message_id"]))
        else:
            key = (chat_id, int(target))
        if key not in self._messages:
            raise ValueError(f"no message {key} to reply to")
        replied = copy.deepcopy(self._messages[key])
        replied.pop("reply_to_message", None)  # one level deep, as Telegram sends it
        return replied

    def send_text(
        self,
        user: FakeUser,
        text: str,
        *,
        reply_to: Any = None,
        forward_origin: dict[str, Any] | FakeUser | None = None,
    ) -> dict[str, Any]:
        """The user sends a text message (a leading "/word" becomes a bot_command entity)."""
        content: dict[str, Any] = {"text": text}
        command = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
        if command:
            content["entities"] = [
                {"type": "bot_command", "offset": 0, "length": utf16_len(command.group())}
            ]
        return self._user_message(user, content, reply_to=reply_to, forward_origin=forward_origin)

    def send_command(
        self, user: FakeUser, command: str, args: str = "", *, reply_to: Any = None
    ) -> dict[str, Any]:
        """The user sends ``/command args``."""
        text = "/" + command.lstrip("/") + (f" {args}" if args else "")
        return self.send_text(user, text, reply_to=reply_to)

    def send_photo(
        self,
        user: FakeUser,
        data: bytes,
        *,
        caption: str | None = None,
        media_group_id: str | None = None,
        forward_origin: dict[str, Any] | FakeUser | None = None,
        reply_to: Any = None,
        width: int | None = None,
        height: int | None = None,
    ) -> dict[str, Any]:
        """The user sends (or forwards) a compressed photo.

        Telegram's smaller sizes are made as real downscaled JPEGs; the largest size is the
        given bytes unchanged, so the bot downloads exactly what the test chose. Bytes Pillow
        cannot read need ``width``/``height`` and yield a single size.
        """
        sizes = self._register_photo(data, width=width, height=height)
        content: dict[str, Any] = {"photo": [size.photo_size() for size in sizes]}
        if caption is not None:
            content["caption"] = caption
        return self._user_message(
            user,
            content,
            reply_to=reply_to,
            forward_origin=forward_origin,
            media_group_id=media_group_id,
        )

    def send_document(
        self,
        user: FakeUser,
        data: bytes,
        *,
        file_name: str = "file.bin",
        mime_type: str | None = None,
        caption: str | None = None,
        media_group_id: str | None = None,
        forward_origin: dict[str, Any] | FakeUser | None = None,
        reply_to: Any = None,
        thumbnail: bytes | None = None,
        file_size: int | None = None,
    ) -> dict[str, Any]:
        """The user sends a file as a document (e.g. an uncompressed image or a PDF)."""
        stored = self._register_file(
            "document",
            data,
            file_name=file_name,
            mime_type=mime_type or mimetypes.guess_type(file_name)[0],
            thumbnail=thumbnail,
            file_size=file_size,
        )
        content = self._media_fields(stored)
        if caption is not None:
            content["caption"] = caption
        return self._user_message(
            user,
            content,
            reply_to=reply_to,
            forward_origin=forward_origin,
            media_group_id=media_group_id,
        )

    def send_video(
        self,
        user: FakeUser,
        data: bytes,
        *,
        duration: int = 10,
        width: int = 640,
        height: int = 360,
        thumbnail: bytes | None = None,
        file_size: int | None = None,
        caption: str | None = None,
        media_group_id: str | None = None,
        forward_origin: dict[str, Any] | FakeUser | None = None,
        reply_to: Any = None,
        file_name: str | None = "video.mp4",
        mime_type: str = "video/mp4",
    ) -> dict[str, Any]:
        """The user sends a video; ``file_size`` pretends it is bigger (e.g. over 20 MB)."""
        stored = self._register_file(
            "video",
            data,
            duration=duration,
            width=width,
            height=height,
            thumbnail=thumbnail,
            file_size=file_size,
            file_name=file_name,
            mime_type=mime_type,
        )
        content = self._media_fields(stored)
        if caption is not None:
            content["caption"] = caption
        return self._user_message(
            user,
            content,
            reply_to=reply_to,
            forward_origin=forward_origin,
            media_group_id=media_group_id,
        )

    def send_animation(
        self,
        user: FakeUser,
        data: bytes,
        *,
        duration: int = 3,
        width: int = 320,
        height: int = 240,
        thumbnail: bytes | None = None,
        file_size: int | None = None,
        caption: str | None = None,
        forward_origin: dict[str, Any] | FakeUser | None = None,
        reply_to: Any = None,
        file_name: str = "animation.mp4",
        mime_type: str = "video/mp4",
    ) -> dict[str, Any]:
        """The user sends a GIF/animation (Telegram also fills ``document``, as here)."""
        stored = self._register_file(
            "animation",
            data,
            duration=duration,
            width=width,
            height=height,
            thumbnail=thumbnail,
            file_size=file_size,
            file_name=file_name,
            mime_type=mime_type,
        )
        content = self._media_fields(stored)
        if caption is not None:
            content["caption"] = caption
        return self._user_message(user, content, reply_to=reply_to, forward_origin=forward_origin)

    def send_video_note(
        self,
        user: FakeUser,
        data: bytes,
        *,
        duration: int = 5,
        length: int = 240,
        thumbnail: bytes | None = None,
        file_size: int | None = None,
        forward_origin: dict[str, Any] | FakeUser | None = None,
        reply_to: Any = None,
    ) -> dict[str, Any]:
        """The user sends a round video message."""
        stored = self._register_file(
            "video_note",
            data,
            duration=duration,
            length=length,
            thumbnail=thumbnail,
            file_size=file_size,
        )
        return self._user_message(
            user, self._media_fields(stored), reply_to=reply_to, forward_origin=forward_origin
        )

    async def send_album(
        self,
        user: FakeUser,
        items: Sequence[tuple[str, bytes] | dict[str, Any]],
        *,
        caption: str | None = None,
        forward_origin: dict[str, Any] | FakeUser | None = None,
        batches: Sequence[int] | None = None,
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """The user sends an album: one message per item sharing ``media_group_id``.

        ``items`` are ``(kind, bytes)`` with kind photo/video/document, or dicts of keyword
        arguments for the matching ``send_*`` builder plus ``"kind"``. The caption goes on the
        first item. ``batches=[2, 1]`` pushes two items, waits until a getUpdates answer carried
        them, then pushes the last one: an album split across polling batches, deterministically.
        """
        if not items:
            raise ValueError("an album needs items")
        sizes = list(batches) if batches else [len(items)]
        if sum(sizes) != len(items):
            raise ValueError("batches must add up to the number of items")
        group_id = self.new_media_group_id()
        date = _now()
        messages: list[dict[str, Any]] = []
        pending = iter(enumerate(items))
        for batch_no, size in enumerate(sizes):
            if batch_no:
                await self.wait_for(
                    lambda _: all(self.update_record(m).delivered for m in messages),
                    timeout=timeout,
                    what="delivery of the album's previous batch",
                )
            for _ in range(size):
                index, item = next(pending)
                if isinstance(item, tuple):
                    kind, data = item
                    kwargs: dict[str, Any] = {"data": data}
                else:
                    kwargs = dict(item)
                    kind = kwargs.pop("kind")
                if index == 0 and caption is not None:
                    kwargs.setdefault("caption", caption)
                messages.append(
                    self._album_item(
                        user, kind, kwargs, group_id, date, forward_origin=forward_origin
                    )
                )
        return messages

    @staticmethod
    def new_media_group_id() -> str:
        """A fresh ``media_group_id``, for albums built item by item with ``send_photo``."""
        return str(13_000_000_000_000_000 + secrets.randbelow(10**15))

    def _album_item(
        self,
        user: FakeUser,
        kind: str,
        kwargs: dict[str, Any],
        group_id: str,
        date: int,
        *,
        forward_origin: dict[str, Any] | FakeUser | None,
    ) -> dict[str, Any]:
        data = kwargs.pop("data")
        caption = kwargs.pop("caption", None)
        if kind == "photo":
            sizes = self._register_photo(data, **kwargs)
            content: dict[str, Any] = {"photo": [s.photo_size() for s in sizes]}
        elif kind in ("video", "document"):
            if kind == "video":
                kwargs.setdefault("duration", 10)
                kwargs.setdefault("width", 640)
                kwargs.setdefault("height", 360)
                kwargs.setdefault("mime_type", "video/mp4")
            else:
                kwargs.setdefault("file_name", "file.bin")
            content = self._media_fields(self._register_file(kind, data, **kwargs))
        else:
            raise ValueError(f"albums hold photos, videos or documents, not {kind}")
        if caption is not None:
            content["caption"] = caption
        return self._user_message(
            user,
            content,
            forward_origin=forward_origin,
            media_group_id=group_id,
            date=date,
        )

    def press_button(
        self,
        user: FakeUser,
        message: SentMessage | dict[str, Any],
        callback_data: str | None = None,
        *,
        text: str | None = None,
        stale: bool = False,
    ) -> str:
        """The user presses an inline button of a bot message; returns the callback query id.

        Give ``callback_data`` (any string, so tampered data can be tested) or the button's
        ``text``. The update carries the message's current state; a deleted message, or any
        with ``stale=True`` (too old), arrives as an inaccessible one (``date: 0``).
        """
        if isinstance(message, SentMessage):
            chat_id, message_id = message.chat_id, message.message_id
        else:
            chat_id, message_id = int(message["chat"]["id"]), int(message["message_id"])
        current = self._messages.get((chat_id, message_id))
        if callback_data is None:
            if text is None:
                raise ValueError("give callback_data or the button text")
            sent = self._bot_messages.get((chat_id, message_id))
            if sent is None:
                raise ValueError("only bot messages have buttons")
            callback_data = sent.button(text).get("callback_data")
            if callback_data is None:
                raise ValueError(f"button {text!r} has no callback_data")
        if stale or current is None or (chat_id, message_id) in self._deleted:
            return self.press_stale(user, chat_id, message_id, callback_data)
        return self._push_callback(user, copy.deepcopy(current), callback_data)

    def press_stale(self, user: FakeUser, chat_id: int, message_id: int, callback_data: str) -> str:
        """A press on a button whose message the bot can no longer access."""
        chat = self.users[chat_id].chat() if chat_id in self.users else user.chat()
        return self._push_callback(user, _inaccessible(chat, message_id), callback_data)

    def _push_callback(self, user: FakeUser, message: dict[str, Any], data: str) -> str:
        query_id = str(next(self._query_counter))
        query = {
            "id": query_id,
            "from": user.api(),
            "chat_instance": str(-(10**18) - int(message["chat"]["id"])),
            "message": message,
            "data": data,
        }
        self.callback_queries[query_id] = query
        self.push_update({"callback_query": query})
        return query_id

    def inline_query(
        self, user: FakeUser, query: str, offset: str = "", *, chat_type: str = "sender"
    ) -> str:
        """The user types ``@bot query``; returns the inline query id."""
        query_id = str(next(self._query_counter))
        inline = {
            "id": query_id,
            "from": user.api(),
            "query": query,
            "offset": offset,
            "chat_type": chat_type,
        }
        self.inline_queries[query_id] = inline
        self.push_update({"inline_query": inline})
        return query_id

    def update_record(self, what: int | str | dict[str, Any]) -> UpdateRecord:
        """The update behind an update id, an update, a user message or a query id."""
        if isinstance(what, int):
            return self.updates[what]
        if isinstance(what, dict) and "update_id" in what:
            return self.updates[int(what["update_id"])]
        for record in self.updates.values():
            content = record.update[record.type]
            if content is what or (isinstance(what, str) and content.get("id") == what):
                return record
        raise KeyError(f"{what!r} was not pushed as an update")

    # ------------------------------------------------------------------ file store

    def _new_file_ids(self, kind: str, data: bytes) -> tuple[str, str]:
        # Real file_ids are ~80 characters: keep that, so a bot that stuffs them into
        # 64-byte callback_data fails here as it would on Telegram.
        number = next(self._file_counter)
        blob = number.to_bytes(4, "big") + secrets.token_bytes(54)
        file_id = _FILE_ID_PREFIX[kind] + base64.urlsafe_b64encode(blob).decode().rstrip("=")
        digest = hashlib.sha256(kind.encode() + b"\0" + data).digest()[:12]
        unique = "AQAD" + base64.urlsafe_b64encode(digest).decode().rstrip("=")
        return file_id, unique

    def _store(self, kind: str, data: bytes, **meta: Any) -> StoredFile:
        file_id, unique = self._new_file_ids(kind, data)
        folder, ext = _FILE_DIRS[kind]
        if kind == "document" and meta.get("file_name"):
            ext = Path(str(meta["file_name"])).suffix
        number = len(self.files) + 1
        file_size = meta.pop("file_size", None) or len(data)
        stored = StoredFile(
            file_id=file_id,
            file_unique_id=unique,
            kind=kind,
            data=data,
            file_size=int(file_size),
            file_path=f"{folder}/file_{number}{ext}",
            **meta,
        )
        self.files[file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _register_photo(
        self, data: bytes, *, width: int | None = None, height: int | None = None
    ) -> list[StoredFile]:
        """Store a photo as Telegram does: several sizes, each its own file, largest last."""
        size = image_size(data)
        if size is None:
            if width is None or height is None:
                raise ValueError("photo bytes are not an image; give width and height")
            size = (width, height)
        w, h = size
        group: list[StoredFile] = []
        for side in _PHOTO_SIDES:
            if max(w, h) <= side:
                break
            small = _thumbnail_jpeg(data, side)
            if small is None:
                break
            sw, sh = image_size(small) or (side, side)
            group.append(self._store("photo", small, width=sw, height=sh, mime_type="image/jpeg"))
        group.append(self._store("photo", data, width=w, height=h, mime_type="image/jpeg"))
        for item in group:
            item.photo_group = group
        return group

    def _register_file(
        self,
        kind: str,
        data: bytes,
        *,
        thumbnail: bytes | None = None,
        file_size: int | None = None,
        **meta: Any,
    ) -> StoredFile:
        thumb = None
        if thumbnail is not None:
            tw, th = image_size(thumbnail) or (320, 180)
            thumb = self._store("thumbnail", thumbnail, width=tw, height=th)
        return self._store(kind, data, thumbnail=thumb, file_size=file_size, **meta)

    def _media_fields(
        self,
        stored: StoredFile,
        *,
        start_timestamp: int | None = None,
        cover: list[StoredFile] | None = None,
    ) -> dict[str, Any]:
        """The message fields Telegram sets for a file of this kind."""
        if stored.kind == "photo":
            group = stored.photo_group or [stored]
            return {"photo": [size.photo_size() for size in group]}
        obj: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
        }
        if stored.kind in ("video", "animation"):
            obj.update(
                width=stored.width or 0, height=stored.height or 0, duration=stored.duration or 0
            )
        if stored.kind == "video_note":
            obj.update(length=stored.length or 0, duration=stored.duration or 0)
        if stored.kind == "audio":
            obj["duration"] = stored.duration or 0
        if stored.file_name and stored.kind != "video_note":
            obj["file_name"] = stored.file_name
        if stored.mime_type and stored.kind != "video_note":
            obj["mime_type"] = stored.mime_type
        if stored.thumbnail is not None:
            obj["thumbnail"] = stored.thumbnail.photo_size()
        if start_timestamp is not None:
            obj["start_timestamp"] = start_timestamp
        if cover:
            obj["cover"] = [size.photo_size() for size in cover]
        fields = {stored.kind: obj}
        if stored.kind == "animation":
            # "For backward compatibility, when this field is set, the document field will
            # also be set" (Bot API, Message.animation).
            fields["document"] = {
                k: v for k, v in obj.items() if k not in ("width", "height", "duration")
            }
        return fields

    # ------------------------------------------------------------------ HTTP plumbing

    def _error_body(self, code: int, description: str, retry_after: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return body

    async def _read_request(
        self, request: web.Request
    ) -> tuple[dict[str, Any], dict[str, UploadedFile], str]:
        raw: dict[str, Any] = dict(request.query)
        files: dict[str, UploadedFile] = {}
        ctype = request.content_type
        if request.method == "POST" and request.can_read_body:
            if ctype == "application/json":
                body = await request.json()
                if not isinstance(body, dict):
                    raise _bad("Bad Request: request body must be a JSON object")
                raw.update(body)
            else:
                form = await request.post()
                for name, value in form.items():
                    if isinstance(value, web.FileField):
                        files[name] = UploadedFile(
                            name, value.filename, value.content_type, value.file.read()
                        )
                    else:
                        raw[name] = value
        return raw, files, ctype

    @staticmethod
    def _decode(raw: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, value in raw.items():
            if name in JSON_FIELDS and isinstance(value, str):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise _bad(f"Bad Request: can't parse {name} JSON object") from exc
            params[name] = value
        return params

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._serve_api(request)
        except asyncio.CancelledError:
            # The client hung up (stop_polling, a killed bot): the call never completes.
            for call in reversed(self.calls):
                if call.status is None and call.request is request:
                    call.status, call.description = 499, "client disconnected"
                    break
            self.notify()
            raise

    async def _serve_api(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(self._error_body(401, "Unauthorized", None), status=401)
        name = request.match_info["method"]
        method = self._canonical.get(name.lower())
        call = ApiCall(len(self.calls), method or name, {}, {}, {}, request.content_type)
        call.request = request
        self.calls.append(call)
        try:
            raw, files, _ = await self._read_request(request)
            call.raw, call.files = raw, files
            call.params = self._decode(raw)
        except ApiError as exc:
            return self._answer_error(call, exc)
        except web.HTTPRequestEntityTooLarge:
            return self._answer_error(call, ApiError(413, "Request Entity Too Large"))
        except (ValueError, json.JSONDecodeError):
            return self._answer_error(call, _bad("Bad Request: can't parse request"))
        if method is None:
            self.unknown_methods.append(name)
            call.status, call.description = 404, "Not Found"
            self.notify()
            return web.json_response(self._error_body(404, "Not Found", None), status=404)

        for gate in list(self.gates):
            if gate.takes(call):
                await gate.hold(call)
        flood = self.flood.check(call)
        if flood is not None:
            return self._answer_error(call, flood)
        fault = next((f for f in self.faults if f.matches(call)), None)
        if fault is not None:
            fault.hits += 1
            if fault.drop is None:
                call.injected = True
                return self._answer_error(
                    call, ApiError(fault.status, fault.description, retry_after=fault.retry_after)
                )
            if fault.drop == "before":
                return self._drop(request, call)
        try:
            result = await self._handlers[method](call)
        except ApiError as exc:
            return self._answer_error(call, exc)
        call.status, call.result = 200, result
        self._note_delivery(call, answered=fault is None or fault.drop != "after")
        if fault is not None and fault.drop == "after":
            return self._drop(request, call)
        self.notify()
        return web.json_response({"ok": True, "result": result})

    def _note_delivery(self, call: ApiCall, *, answered: bool) -> None:
        """Remember sends the bot never heard back about; a repeat of one is a duplicate."""
        if not at_most_once(call):
            return
        key = fingerprint(call)
        first = self._unanswered.pop(key, None)
        if first is not None:
            self.duplicates.append((first, call))
        if not answered:
            self._unanswered[key] = call

    def _answer_error(self, call: ApiCall, exc: ApiError) -> web.Response:
        call.status, call.description = exc.code, exc.description
        if exc.retry_after is not None:
            self.flood.close(call, exc.retry_after)
        if not call.injected and exc.description != BLOCKED:
            self.errors.append(call)
        self.notify()
        body = self._error_body(exc.code, exc.description, exc.retry_after)
        return web.json_response(body, status=exc.code)

    def _drop(self, request: web.Request, call: ApiCall) -> web.Response:
        call.injected = True
        if call.status is None:
            call.status, call.description = 0, "connection dropped"
        if request.transport is not None:
            request.transport.close()
        self.notify()
        return web.Response(status=500)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401, text="Unauthorized")
        stored = self._files_by_path.get(request.match_info["path"])
        if stored is None:
            return web.json_response(self._error_body(404, "Not Found", None), status=404)
        call = ApiCall(len(self.calls), DOWNLOAD, {"file_id": stored.file_id}, {}, {}, "")
        fault = next((f for f in self.faults if f.matches(call)), None)
        if fault is not None:  # fail(DOWNLOAD, 502): the file server answers an error
            fault.hits += 1
            self.failed_downloads.append(stored.file_id)
            self.notify()
            return web.Response(status=fault.status, text=fault.description)
        self.downloads.append(stored.file_id)
        self.notify()
        return web.Response(body=stored.data, content_type="application/octet-stream")

    # ------------------------------------------------------------------ shared validation

    def _chat(self, call: ApiCall, name: str = "chat_id", *, sending: bool = True) -> int:
        value = call.params.get(name)
        if value is None or value == "":
            raise _bad(f"Bad Request: {name} is empty")
        chat_id: int | None
        try:
            chat_id = int(value)
        except (TypeError, ValueError):
            username = str(value).lstrip("@")
            chat_id = next((u.id for u in self.users.values() if u.username == username), None)
        if chat_id is None or (chat_id not in self.users and chat_id not in self.groups):
            raise _bad(CHAT_NOT_FOUND)
        if sending and chat_id in self.blocked:
            raise ApiError(403, BLOCKED)
        return chat_id

    def _text(self, text: Any, parse_mode: Any) -> str:
        if text is None or str(text) == "":
            raise _bad("Bad Request: message text is empty")
        shown = visible_text(str(text), parse_mode)
        if not shown.strip():
            raise _bad("Bad Request: text must be non-empty")
        if utf16_len(shown) > TEXT_LIMIT:
            raise _bad("Bad Request: message is too long")
        return shown

    def _caption(self, caption: Any, parse_mode: Any) -> str | None:
        if caption is None or caption == "":
            return None
        shown = visible_text(str(caption), parse_mode)
        if utf16_len(shown) > CAPTION_LIMIT:
            raise _bad("Bad Request: message caption is too long")
        return shown or None

    def _markup(self, call: ApiCall) -> dict[str, Any] | None:
        """Validate ``reply_markup``; return it when it is an inline keyboard."""
        markup = call.params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            from aiogram.types import InlineKeyboardMarkup

            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad("Bad Request: can't parse inline keyboard button: rows must be arrays")
            for button in (b for row in rows for b in row):
                if not isinstance(button, dict) or not button.get("text"):
                    raise _bad("Bad Request: can't parse inline keyboard button: Text is empty")
                actions = [a for a in _INLINE_BUTTON_ACTIONS if a in button]
                if len(actions) != 1:
                    raise _bad(
                        "Bad Request: can't parse inline keyboard button: exactly one of the "
                        f"optional fields must be used, got {actions}"
                    )
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
                    raise _bad("Bad Request: BUTTON_DATA_INVALID")
            try:
                InlineKeyboardMarkup.model_validate(markup)
            except Exception as exc:
                raise _bad("Bad Request: can't parse reply keyboard markup JSON object") from exc
            return markup
        if not any(k in markup for k in ("keyboard", "remove_keyboard", "force_reply")):
            raise _bad("Bad Request: can't parse reply keyboard markup JSON object")
        return None

    def _reply_to(self, call: ApiCall, chat_id: int) -> dict[str, Any] | None:
        params = call.params.get("reply_parameters")
        allow_missing = _as_bool(call.params.get("allow_sending_without_reply", False))
        if isinstance(params, dict):
            message_id = params.get("message_id")
            allow_missing = allow_missing or _as_bool(
                params.get("allow_sending_without_reply", False)
            )
            target_chat = int(params.get("chat_id", chat_id))
        else:
            message_id = call.params.get("reply_to_message_id")
            target_chat = chat_id
        if message_id is None:
            return None
        key = (target_chat, int(message_id))
        if key not in self._messages or key in self._deleted:
            if allow_missing:
                return None
            raise _bad("Bad Request: message to be replied not found")
        replied = copy.deepcopy(self._messages[key])
        replied.pop("reply_to_message", None)
        return replied

    def _new_message(
        self,
        chat_id: int,
        *,
        from_bot: bool,
        date: int | None = None,
        sender: FakeUser | None = None,
    ) -> dict[str, Any]:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        group = self.groups.get(chat_id)
        if group is not None:
            if not from_bot and sender is None:
                raise ValueError("a user message in a group needs its sender")
            author = dict(self.bot_user) if from_bot or sender is None else sender.api()
            posted: dict[str, Any] = {
                "message_id": message_id,
                "from": author,
                "chat": group.chat(),
                "date": date or _now(),
            }
            self._messages[(chat_id, message_id)] = posted
            return posted
        person = self.users[chat_id]
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": dict(self.bot_user) if from_bot else person.api(),
            "chat": person.chat(),
            "date": date or _now(),
        }
        self._messages[(chat_id, message_id)] = message
        return message

    def _record_sent(
        self,
        call: ApiCall,
        message: dict[str, Any],
        *,
        params: dict[str, Any] | None = None,
        raw_text: str | None = None,
        parse_mode: str | None = None,
        start_timestamp: int | None = None,
    ) -> SentMessage:
        sent = SentMessage(
            method=call.method,
            call=call,
            message=message,
            params=params if params is not None else call.params,
            raw_text=raw_text,
            parse_mode=parse_mode,
            start_timestamp=start_timestamp,
        )
        self.sent.append(sent)
        self._bot_messages[(sent.chat_id, sent.message_id)] = sent
        return sent

    def _resolve_file(
        self,
        call: ApiCall,
        value: Any,
        kind: str,
        *,
        name: str,
        meta: dict[str, Any] | None = None,
    ) -> StoredFile:
        """A file parameter: ``attach://`` part, same-named part, file_id or local path."""
        meta = meta or {}
        upload: UploadedFile | None = None
        if value is None and name in call.files:
            upload = call.files[name]
        elif isinstance(value, str) and value.startswith("attach://"):
            upload = call.files.get(value.removeprefix("attach://"))
            if upload is None:
                raise _bad(f'Bad Request: can\'t find attached file "{value}"')
        elif value is None or value == "":
            raise _bad(f"Bad Request: there is no {name} in the request")
        if upload is not None:
            return self._store_upload(upload, kind, meta)
        text = str(value)
        if text.startswith("file://"):
            if self.local_dir is None:
                raise _bad(WRONG_FILE_ID)
            path = Path(text.removeprefix("file://"))
            if not path.is_file():
                raise _bad("Bad Request: file not found")
            return self._store_upload(
                UploadedFile(name, path.name, None, path.read_bytes()), kind, meta
            )
        stored = self.files.get(text)
        if stored is None:
            raise _bad(WRONG_FILE_ID)  # unknown id, or a URL: the fake has no network
        if stored.kind != kind:
            raise _bad(TYPE_MISMATCH)
        return stored

    def _store_upload(self, upload: UploadedFile, kind: str, meta: dict[str, Any]) -> StoredFile:
        size = len(upload.data)
        if size == 0:
            raise _bad("Bad Request: file must be non-empty")
        limit = PHOTO_UPLOAD_LIMIT if kind == "photo" else UPLOAD_LIMIT
        if size > limit:
            raise ApiError(413, "Request Entity Too Large")
        if kind == "photo":
            if image_size(upload.data) is None:
                raise _bad("Bad Request: IMAGE_PROCESS_FAILED")
            return self._register_photo(upload.data)[-1]

        def number(key: str) -> int | None:
            value = meta.get(key)
            return int(value) if value not in (None, "") else None

        extra: dict[str, Any] = {}
        if kind in ("video", "animation", "video_note", "audio"):
            extra["duration"] = number("duration") or 0
        if kind in ("video", "animation"):
            extra["width"] = number("width") or 0
            extra["height"] = number("height") or 0
        if kind == "video_note":
            extra["length"] = number("length") or 0
        if kind != "video_note":
            extra["file_name"] = upload.filename
            extra["mime_type"] = upload.content_type
            if upload.filename and (
                not upload.content_type or upload.content_type == "application/octet-stream"
            ):
                extra["mime_type"] = mimetypes.guess_type(upload.filename)[0] or (
                    upload.content_type
                )
        thumb = meta.get("_thumbnail")
        return self._store(kind, upload.data, thumbnail=thumb, **extra)

    def _thumbnail_upload(self, call: ApiCall, value: Any) -> StoredFile | None:
        if not isinstance(value, str) or not value.startswith("attach://"):
            return None  # thumbnails can only be uploaded, never reused (Bot API)
        upload = call.files.get(value.removeprefix("attach://"))
        if upload is None:
            raise _bad(f'Bad Request: can\'t find attached file "{value}"')
        size = image_size(upload.data)
        if size is None:
            raise _bad("Bad Request: thumbnail is not a JPEG image")
        return self._store("thumbnail", upload.data, width=size[0], height=size[1])

    @staticmethod
    def _start_timestamp(value: Any, stored: StoredFile) -> int | None:
        """Seconds from which the video plays (Bot API 8.3).

        Stricter than Telegram on purpose: a value past the video's end is refused, which
        catches a ``timedelta`` (aiogram turns it into a Unix time) or milliseconds.
        """
        if value is None or value == "":
            return None
        try:
            seconds = int(value)
        except (TypeError, ValueError) as exc:
            raise _bad("Bad Request: invalid start_timestamp specified") from exc
        if seconds < 0 or (stored.duration and seconds > stored.duration):
            raise _bad(
                f"Bad Request: start_timestamp {seconds} is outside the video "
                f"(duration {stored.duration} s)"
            )
        return seconds

    def _cover(self, call: ApiCall, value: Any) -> list[StoredFile] | None:
        if value is None or value == "":
            return None
        photo = self._resolve_file(call, value, "photo", name="cover")
        return photo.photo_group or [photo]

    # ------------------------------------------------------------------ methods: bot, updates

    async def _true(self, call: ApiCall) -> bool:
        return True

    async def _get_chat_member(self, call: ApiCall) -> dict[str, Any]:
        """The admins :meth:`group` was told of (as its creator); everyone else a member."""
        chat_id, user_id = call.chat_id, call.int_param("user_id")
        group = self.groups.get(chat_id) if chat_id is not None else None
        if group is None or user_id is None or user_id not in self.users:
            raise _bad("Bad Request: member not found")
        user = self.users[user_id].api()
        if user_id in group.admins:  # the owner: the admin kind with the fewest fields
            return {"status": "creator", "user": user, "is_anonymous": False}
        return {"status": "member", "user": user}

    async def _get_me(self, call: ApiCall) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": self.can_read_all_group_messages,
            "supports_inline_queries": self.supports_inline_queries,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _store_setting(self, name: str) -> Callable[[ApiCall], Awaitable[Any]]:
        async def handler(call: ApiCall) -> bool:
            self.bot_settings[name] = dict(call.params)
            return True

        return handler

    def _set_description(self, name: str) -> Callable[[ApiCall], Awaitable[Any]]:
        """setMyDescription / setMyShortDescription: per language, within Telegram's limits."""
        store = self._store_setting(name)

        async def handler(call: ApiCall) -> bool:
            text = str(call.params.get(name) or "")
            language = str(call.params.get("language_code") or "")
            if language and not re.fullmatch(r"[a-z]{2}", language):
                raise _bad("Bad Request: LANG_CODE_INVALID")
            if len(text) > DESCRIPTION_LIMITS[name]:
                raise _bad(f"Bad Request: {name} is too long")
            self.descriptions[(name, language)] = text
            return await store(call)

        return handler

    def _get_description(self, name: str) -> Callable[[ApiCall], Awaitable[Any]]:
        async def handler(call: ApiCall) -> dict[str, Any]:
            language = str(call.params.get("language_code") or "")
            return {name: self.descriptions.get((name, language), "")}

        return handler

    async def _get_updates(self, call: ApiCall) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        offset = call.int_param("offset")
        limit = min(max(call.int_param("limit") or UPDATES_LIMIT, 1), UPDATES_LIMIT)
        timeout = max(call.int_param("timeout") or 0, 0)
        allowed = call.params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else DEFAULT_UPDATE_TYPES
        if offset is not None:
            self._confirm(offset)

        # A newer getUpdates ends the one still waiting, as on Telegram.
        self._poll_generation += 1
        generation = self._poll_generation
        self.notify()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._changed
            if self._closing:
                return []
            if generation != self._poll_generation:
                raise ApiError(409, POLL_CONFLICT)
            batch = self._deliverable(limit)
            remaining = deadline - loop.time()
            if batch or remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
        for update in batch:
            self.updates[update["update_id"]].delivered += 1
        return copy.deepcopy(batch)

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            keep = self._pending[offset:]
            gone = self._pending[: len(self._pending) - len(keep)]
        else:
            keep = [u for u in self._pending if u["update_id"] >= offset]
            gone = [u for u in self._pending if u["update_id"] < offset]
        for update in gone:
            self.updates[update["update_id"]].confirmed = True
        self._pending = keep
        if gone:
            self.notify()

    def _deliverable(self, limit: int) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        for update in list(self._pending):
            record = self.updates[update["update_id"]]
            if record.type not in self._allowed_updates:
                record.dropped = True
                self._pending.remove(update)
                continue
            batch.append(update)
            if len(batch) >= limit:
                break
        return batch

    async def _set_webhook(self, call: ApiCall) -> bool:
        url = str(call.params.get("url") or "")
        if not url:
            return await self._delete_webhook(call)
        if not url.startswith(("https://", "http://127.", "http://localhost")):
            raise _bad("Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        allowed = call.params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else DEFAULT_UPDATE_TYPES
        if _as_bool(call.params.get("drop_pending_updates", False)):
            self._confirm(self._next_update_id)
        self.webhook = {"url": url, "secret_token": call.params.get("secret_token")}
        self._poll_generation += 1  # a waiting getUpdates ends with 409
        if self._webhook_task is None:
            self._webhook_task = asyncio.create_task(self._webhook_loop())
        self.notify()
        return True

    async def _delete_webhook(self, call: ApiCall) -> bool:
        if _as_bool(call.params.get("drop_pending_updates", False)):
            self._confirm(self._next_update_id)
        self.webhook = None
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            self._webhook_task = None
        return True

    async def _get_webhook_info(self, call: ApiCall) -> dict[str, Any]:
        return {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }

    async def _webhook_loop(self) -> None:
        """Deliver pending updates to the webhook one by one, confirming on a 2xx answer."""
        async with aiohttp.ClientSession() as session:
            while self.webhook is not None and not self._closing:
                event = self._changed
                batch = self._deliverable(1)
                if not batch:
                    await event.wait()
                    continue
                update = batch[0]
                headers = {}
                if self.webhook.get("secret_token"):
                    headers["X-Telegram-Bot-Api-Secret-Token"] = str(self.webhook["secret_token"])
                self.updates[update["update_id"]].delivered += 1
                try:
                    async with session.post(
                        self.webhook["url"], json=update, headers=headers
                    ) as resp:
                        body = await resp.read()
                        status = resp.status
                except aiohttp.ClientError as exc:
                    self.webhook_errors.append(f"{update['update_id']}: {exc!r}")
                    self.notify()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), 0.2)
                    continue
                if not 200 <= status < 300:
                    self.webhook_errors.append(f"{update['update_id']}: HTTP {status}")
                    self.notify()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), 0.2)
                    continue
                self._confirm(update["update_id"] + 1)
                await self._webhook_reply(body)

    async def _webhook_reply(self, body: bytes) -> None:
        """A webhook may answer with a method call; Telegram executes it (result unseen)."""
        try:
            reply = json.loads(body) if body else None
        except json.JSONDecodeError:
            return
        if not isinstance(reply, dict) or "method" not in reply:
            return
        name = str(reply.pop("method"))
        method = self._canonical.get(name.lower())
        call = ApiCall(len(self.calls), method or name, {}, reply, {}, "webhook-reply")
        self.calls.append(call)
        if method is None:
            self.unknown_methods.append(name)
            call.status = 404
            return
        try:
            call.params = self._decode(reply)
            call.result, call.status = await self._handlers[method](call), 200
        except ApiError as exc:
            call.status, call.description = exc.code, exc.description
            self.errors.append(call)
        self.notify()

    # ------------------------------------------------------------------ methods: sending

    async def _send_message(self, call: ApiCall) -> dict[str, Any]:
        chat_id = self._chat(call)
        parse_mode = call.params.get("parse_mode")
        text = self._text(call.params.get("text"), parse_mode)
        markup = self._markup(call)
        reply = self._reply_to(call, chat_id)
        message = self._new_message(chat_id, from_bot=True)
        message["text"] = text
        if reply is not None:
            message["reply_to_message"] = reply
        if markup is not None:
            message["reply_markup"] = markup
        self._record_sent(call, message, raw_text=str(call.params["text"]), parse_mode=parse_mode)
        return message

    def _media_sender(self, kind: str) -> Callable[[ApiCall], Awaitable[Any]]:
        async def handler(call: ApiCall) -> dict[str, Any]:
            return await self._send_media(call, kind)

        return handler

    async def _send_media(self, call: ApiCall, kind: str) -> dict[str, Any]:
        chat_id = self._chat(call)
        parse_mode = call.params.get("parse_mode")
        caption = self._caption(call.params.get("caption"), parse_mode)
        markup = self._markup(call)
        reply = self._reply_to(call, chat_id)
        meta = dict(call.params)
        meta["_thumbnail"] = self._thumbnail_upload(call, call.params.get("thumbnail"))
        stored = self._resolve_file(call, call.params.get(kind), kind, name=kind, meta=meta)
        start = cover = None
        if kind == "video":
            start = self._start_timestamp(call.params.get("start_timestamp"), stored)
            cover = self._cover(call, call.params.get("cover"))
        message = self._new_message(chat_id, from_bot=True)
        message.update(self._media_fields(stored, start_timestamp=start, cover=cover))
        if caption is not None:
            message["caption"] = caption
        if reply is not None:
            message["reply_to_message"] = reply
        if markup is not None:
            message["reply_markup"] = markup
        self._record_sent(
            call,
            message,
            raw_text=call.params.get("caption"),
            parse_mode=parse_mode,
            start_timestamp=start,
        )
        return message

    async def _send_media_group(self, call: ApiCall) -> list[dict[str, Any]]:
        chat_id = self._chat(call)
        media = call.params.get("media")
        if not isinstance(media, list) or not all(isinstance(item, dict) for item in media):
            raise _bad("Bad Request: can't parse media JSON object")
        if len(media) > MEDIA_GROUP_MAX:
            raise _bad("Bad Request: too much messages to send as an album")
        if len(media) < MEDIA_GROUP_MIN:
            raise _bad("Bad Request: media group must include 2-10 items")
        kinds = [str(item.get("type")) for item in media]
        for kind in kinds:
            if kind not in ("photo", "video", "document", "audio"):
                raise _bad(f'Bad Request: can\'t parse InputMedia: unsupported type "{kind}"')
        for solo in ("document", "audio"):
            if solo in kinds and set(kinds) != {solo}:
                raise _bad(f"Bad Request: {solo}s can't be mixed with other media types")
        reply = self._reply_to(call, chat_id)
        resolved = []
        for item, kind in zip(media, kinds, strict=True):
            if not isinstance(item.get("media"), str) or not item["media"]:
                raise _bad("Bad Request: can't parse InputMedia: media not found")
            caption = self._caption(item.get("caption"), item.get("parse_mode"))
            meta = dict(item)
            meta["_thumbnail"] = self._thumbnail_upload(call, item.get("thumbnail"))
            stored = self._resolve_file(call, item["media"], kind, name="media", meta=meta)
            start = cover = None
            if kind == "video":
                start = self._start_timestamp(item.get("start_timestamp"), stored)
                cover = self._cover(call, item.get("cover"))
            resolved.append((item, stored, caption, start, cover))
        group_id = self.new_media_group_id()
        date = _now()
        shared = {k: v for k, v in call.params.items() if k != "media"}
        messages = []
        for item, stored, caption, start, cover in resolved:
            message = self._new_message(chat_id, from_bot=True, date=date)
            message["media_group_id"] = group_id
            message.update(self._media_fields(stored, start_timestamp=start, cover=cover))
            if caption is not None:
                message["caption"] = caption
            if reply is not None:
                message["reply_to_message"] = copy.deepcopy(reply)
            self._record_sent(
                call,
                message,
                params={**shared, "item": item},
                raw_text=item.get("caption"),
                parse_mode=item.get("parse_mode"),
                start_timestamp=start,
            )
            messages.append(message)
        return messages

    def _content_of(self, message: dict[str, Any]) -> dict[str, Any]:
        keys = ("text", "photo", "video", "document", "animation", "video_note", "audio")
        content = {k: copy.deepcopy(message[k]) for k in keys if k in message}
        if "caption" in message:
            content["caption"] = message["caption"]
        return content

    def _source_message(self, call: ApiCall) -> dict[str, Any]:
        from_chat = self._chat(call, "from_chat_id", sending=False)
        message_id = call.int_param("message_id")
        key = (from_chat, message_id or 0)
        if key not in self._messages or key in self._deleted:
            raise _bad("Bad Request: message to copy not found")
        return self._messages[key]

    async def _copy_message(self, call: ApiCall) -> dict[str, Any]:
        chat_id = self._chat(call)
        source = self._source_message(call)
        content = self._content_of(source)
        parse_mode = call.params.get("parse_mode")
        if "caption" in call.params:
            content.pop("caption", None)
            caption = self._caption(call.params.get("caption"), parse_mode)
            if caption is not None:
                content["caption"] = caption
        markup = self._markup(call)
        reply = self._reply_to(call, chat_id)
        start = None
        if "video" in content:
            stored = self.files[content["video"]["file_id"]]
            start = self._start_timestamp(call.params.get("video_start_timestamp"), stored)
            if start is not None:
                content["video"]["start_timestamp"] = start
        message = self._new_message(chat_id, from_bot=True)
        message.update(content)
        if reply is not None:
            message["reply_to_message"] = reply
        if markup is not None:
            message["reply_markup"] = markup
        self._record_sent(call, message, start_timestamp=start)
        return {"message_id": message["message_id"]}

    async def _forward_message(self, call: ApiCall) -> dict[str, Any]:
        chat_id = self._chat(call)
        source = self._source_message(call)
        content = self._content_of(source)
        start = None
        if "video" in content:
            stored = self.files[content["video"]["file_id"]]
            start = self._start_timestamp(call.params.get("video_start_timestamp"), stored)
            if start is not None:
                content["video"]["start_timestamp"] = start
        message = self._new_message(chat_id, from_bot=True)
        message.update(content)
        message["forward_origin"] = {
            "type": "user",
            "date": source["date"],
            "sender_user": copy.deepcopy(source["from"]),
        }
        self._record_sent(call, message, start_timestamp=start)
        return message

    # ------------------------------------------------------------------ methods: files

    async def _get_file(self, call: ApiCall) -> dict[str, Any]:
        file_id = str(call.params.get("file_id") or "")
        stored = self.files.get(file_id)
        if stored is None:
            raise _bad(WRONG_GETFILE_ID)
        file_path = stored.file_path
        if self.local_dir is not None:
            local = self.local_dir / self.token / stored.file_path
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(stored.data)
            file_path = str(local)
        elif stored.file_size > DOWNLOAD_LIMIT:
            raise _bad(FILE_TOO_BIG)
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "file_path": file_path,
        }

    # ------------------------------------------------------------------ methods: answers

    async def _answer_callback_query(self, call: ApiCall) -> bool:
        query_id = str(call.params.get("callback_query_id") or "")
        if query_id not in self.callback_queries or query_id in self.callback_answers:
            raise _bad(QUERY_TOO_OLD)
        text = call.params.get("text")
        if text is not None and utf16_len(str(text)) > CALLBACK_ANSWER_LIMIT:
            raise _bad("Bad Request: MESSAGE_TOO_LONG")
        self.callback_answers[query_id] = {
            "text": text,
            "show_alert": _as_bool(call.params.get("show_alert", False)),
            "url": call.params.get("url"),
            "cache_time": call.int_param("cache_time"),
        }
        return True

    async def _answer_inline_query(self, call: ApiCall) -> bool:
        from aiogram.types import inline_query_result_union as results_module

        query_id = str(call.params.get("inline_query_id") or "")
        if query_id not in self.inline_queries or query_id in self.inline_answers:
            raise _bad(QUERY_TOO_OLD)
        results = call.params.get("results")
        if not isinstance(results, list):
            raise _bad("Bad Request: can't parse results JSON object")
        if len(results) > INLINE_RESULTS_LIMIT:
            raise _bad("Bad Request: RESULTS_TOO_MUCH")
        next_offset = call.params.get("next_offset")
        if next_offset is not None and len(str(next_offset).encode()) > INLINE_OFFSET_LIMIT:
            raise _bad("Bad Request: NEXT_OFFSET_INVALID")
        seen: set[str] = set()
        for result in results:
            if not isinstance(result, dict):
                raise _bad("Bad Request: can't parse InlineQueryResult JSON object")
            result_id = str(result.get("id", ""))
            if not 1 <= len(result_id.encode()) <= 64:
                raise _bad("Bad Request: RESULT_ID_INVALID")
            if result_id in seen:
                raise _bad("Bad Request: RESULT_ID_DUPLICATE")
            seen.add(result_id)
            self._check_inline_result(result, results_module)
        self.inline_answers[query_id] = {
            "results": results,
            "next_offset": next_offset,
            "is_personal": _as_bool(call.params.get("is_personal", False)),
            "cache_time": call.int_param("cache_time"),
            "button": call.params.get("button"),
        }
        return True

    def _check_inline_result(self, result: dict[str, Any], module: Any) -> None:
        kind = str(result.get("type"))
        cached_field = {
            "photo": "photo_file_id",
            "video": "video_file_id",
            "document": "document_file_id",
            "gif": "gif_file_id",
            "mpeg4_gif": "mpeg4_file_id",
        }.get(kind)
        if cached_field and cached_field in result:
            stored = self.files.get(str(result[cached_field]))
            if stored is None:
                raise _bad(WRONG_FILE_ID)
            expected = {"gif": "animation", "mpeg4_gif": "animation"}.get(kind, kind)
            if stored.kind != expected:
                raise _bad(TYPE_MISMATCH)
        candidates = [
            cls
            for cls in getattr(module.InlineQueryResultUnion, "__args__", ())
            if cls.model_fields["type"].default == kind
        ]
        if cached_field:
            cached = cached_field in result
            candidates = [
                c for c in candidates if c.__name__.startswith("InlineQueryResultCached") == cached
            ]
        if not candidates:
            raise _bad(f'Bad Request: unsupported inline query result type "{kind}"')
        markup = result.get("reply_markup")
        if markup is not None:
            self._markup(ApiCall(-1, "inline", {"reply_markup": markup}, {}, {}, ""))
        caption = result.get("caption")
        if caption is not None:
            self._caption(caption, result.get("parse_mode"))
        try:
            candidates[0].model_validate(result)
        except Exception as exc:
            raise _bad(f"Bad Request: can't parse InlineQueryResult: {exc}") from exc

    # ------------------------------------------------------------------ methods: edits

    def _editable(self, call: ApiCall) -> SentMessage | None:
        """The bot message an edit targets; None for inline messages."""
        if call.params.get("inline_message_id"):
            return None
        chat_id = self._chat(call)
        message_id = call.int_param("message_id")
        if message_id is None:
            raise _bad("Bad Request: message identifier is not specified")
        key = (chat_id, message_id)
        if key not in self._messages or key in self._deleted:
            raise _bad("Bad Request: message to edit not found")
        sent = self._bot_messages.get(key)
        if sent is None:
            raise _bad("Bad Request: message can't be edited")
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
        sent.message["edit_date"] = _now()
        return sent.message

    async def _edit_message_text(self, call: ApiCall) -> dict[str, Any] | bool:
        sent = self._editable(call)
        parse_mode = call.params.get("parse_mode")
        text = self._text(call.params.get("text"), parse_mode)
        markup = self._markup(call)
        if sent is None:
            return True
        if "text" not in sent.message:
            raise _bad("Bad Request: there is no text in the message to edit")
        raw = str(call.params["text"])
        if (
            text == sent.message["text"]
            and (raw if parse_mode else text) == (sent.raw_text if sent.parse_mode else text)
            and markup == sent.message.get("reply_markup")
        ):
            raise _bad(NOT_MODIFIED)
        sent.raw_text, sent.parse_mode = raw, parse_mode
        return self._apply_edit(sent, call, {"text": text}, markup)

    async def _edit_message_caption(self, call: ApiCall) -> dict[str, Any] | bool:
        sent = self._editable(call)
        parse_mode = call.params.get("parse_mode")
        caption = self._caption(call.params.get("caption"), parse_mode)
        markup = self._markup(call)
        if sent is None:
            return True
        if "text" in sent.message:
            raise _bad("Bad Request: there is no caption in the message to edit")
        if caption == sent.message.get("caption") and markup == sent.message.get("reply_markup"):
            raise _bad(NOT_MODIFIED)
        sent.raw_text, sent.parse_mode = call.params.get("caption"), parse_mode
        if caption is None:
            return self._apply_edit(sent, call, {}, markup, remove=("caption",))
        return self._apply_edit(sent, call, {"caption": caption}, markup)

    async def _edit_message_media(self, call: ApiCall) -> dict[str, Any] | bool:
        sent = self._editable(call)
        item = call.params.get("media")
        if not isinstance(item, dict) or not isinstance(item.get("media"), str):
            raise _bad("Bad Request: can't parse InputMedia JSON object")
        kind = str(item.get("type"))
        if kind not in ("photo", "video", "document", "animation", "audio"):
            raise _bad(f'Bad Request: can\'t parse InputMedia: unsupported type "{kind}"')
        caption = self._caption(item.get("caption"), item.get("parse_mode"))
        markup = self._markup(call)
        meta = dict(item)
        meta["_thumbnail"] = self._thumbnail_upload(call, item.get("thumbnail"))
        stored = self._resolve_file(call, item["media"], kind, name="media", meta=meta)
        start = (
            self._start_timestamp(item.get("start_timestamp"), stored) if kind == "video" else None
        )
        if sent is None:
            return True
        if "text" in sent.message:
            raise _bad("Bad Request: there is no media in the message to edit")
        if sent.media_group_id and kind not in ("photo", "video") and sent.kind != kind:
            raise _bad("Bad Request: can't change the type of an album item")
        changes = self._media_fields(stored, start_timestamp=start)
        if caption is not None:
            changes["caption"] = caption
        sent.start_timestamp = start
        media_keys = ("photo", "video", "document", "animation", "audio", "caption")
        return self._apply_edit(sent, call, changes, markup, remove=media_keys)

    async def _edit_message_reply_markup(self, call: ApiCall) -> dict[str, Any] | bool:
        sent = self._editable(call)
        markup = self._markup(call)
        if sent is None:
            return True
        if markup == sent.message.get("reply_markup"):
            raise _bad(NOT_MODIFIED)
        return self._apply_edit(sent, call, {}, markup)

    async def _delete_message(self, call: ApiCall) -> bool:
        chat_id = self._chat(call, sending=False)
        key = (chat_id, call.int_param("message_id") or 0)
        if key not in self._messages or key in self._deleted:
            raise _bad("Bad Request: message to delete not found")
        self._mark_deleted(key)
        return True

    async def _delete_messages(self, call: ApiCall) -> bool:
        chat_id = self._chat(call, sending=False)
        ids = call.params.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise _bad("Bad Request: message_ids must be a list of 1-100 identifiers")
        for message_id in ids:
            key = (chat_id, int(message_id))
            if key in self._messages and key not in self._deleted:
                self._mark_deleted(key)
        return True

    def _mark_deleted(self, key: tuple[int, int]) -> None:
        self._deleted.add(key)
        sent = self._bot_messages.get(key)
        if sent is not None:
            sent.deleted = True

    def is_deleted(self, message: SentMessage | dict[str, Any]) -> bool:
        """Whether the bot (or user) deleted this message."""
        if isinstance(message, SentMessage):
            return message.deleted
        return (int(message["chat"]["id"]), int(message["message_id"])) in self._deleted

    # ------------------------------------------------------------------ methods: misc

    async def _send_chat_action(self, call: ApiCall) -> bool:
        chat_id = self._chat(call)
        action = str(call.params.get("action") or "")
        if action not in CHAT_ACTIONS:
            raise _bad("Bad Request: wrong parameter action in request")
        self.chat_actions.append((chat_id, action))
        return True

    async def _set_message_reaction(self, call: ApiCall) -> bool:
        """A bot may set one emoji reaction (of Telegram's list) on a message it can see."""
        chat_id = self._chat(call)
        message_id = call.int_param("message_id")
        if message_id is None or (chat_id, message_id) not in self._messages:
            raise _bad("Bad Request: message to react not found")
        raw = call.params.get("reaction") or "[]"
        try:
            reaction = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError as exc:
            raise _bad("Bad Request: can't parse reaction JSON object") from exc
        if not isinstance(reaction, list) or len(reaction) > 1:
            raise _bad("Bad Request: REACTIONS_TOO_MANY")
        emoji = []
        for item in reaction:
            if not isinstance(item, dict) or item.get("type") != "emoji":
                raise _bad("Bad Request: REACTION_INVALID")
            if item.get("emoji") not in REACTION_EMOJI:
                raise _bad("Bad Request: REACTION_INVALID")
            emoji.append(str(item["emoji"]))
        self.reactions[(chat_id, message_id)] = emoji
        return True

    @staticmethod
    def _commands_key(call: ApiCall) -> tuple[str, str]:
        scope = call.params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(call.params.get("language_code") or "")

    async def _set_my_commands(self, call: ApiCall) -> bool:
        commands = call.params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("Bad Request: can't parse commands JSON object")
        for item in commands:
            if not isinstance(item, dict) or not _COMMAND_RE.fullmatch(str(item.get("command"))):
                raise _bad("Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(item.get("description") or "")) <= 256:
                raise _bad("Bad Request: command description must be 1-256 characters")
        language = str(call.params.get("language_code") or "")
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise _bad("Bad Request: LANG_CODE_INVALID")
        self.commands[self._commands_key(call)] = commands
        return True

    async def _get_my_commands(self, call: ApiCall) -> list[dict[str, Any]]:
        return self.commands.get(self._commands_key(call), [])

    async def _delete_my_commands(self, call: ApiCall) -> bool:
        self.commands.pop(self._commands_key(call), None)
        return True

    def commands_for(
        self, language_code: str = "", scope: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Commands the bot set for a scope (default) and language ("" = all languages)."""
        key = (json.dumps(scope or {"type": "default"}, sort_keys=True), language_code)
        return self.commands.get(key, [])

    # ------------------------------------------------------------------ groups and history

    def group(
        self,
        id: int | None = None,
        title: str = "Family",
        *,
        type: Literal["group", "supergroup"] = "supergroup",
        privacy: bool = True,
        admins: Iterable[FakeUser] = (),
    ) -> FakeGroup:
        """Register a group with the bot as a member (see :class:`FakeGroup` for ``privacy``)."""
        if id is None:
            id = -1_001_000_000_000 - len(self.groups) - 1
        if id >= 0:
            raise ValueError("group ids are negative")
        chat = FakeGroup(id, title, type, privacy, frozenset(u.id for u in admins))
        self.groups[id] = chat
        return chat

    def member(self, user: FakeUser, group: FakeGroup) -> FakeMember:
        """``user`` as the author of messages in ``group``: ``send_text(member, ...)``."""
        if user.id not in self.users:
            self.users[user.id] = user
        return FakeMember(
            user.id, user.first_name, user.language_code, user.username, user.last_name, group
        )

    def _bot_receives(self, group: FakeGroup, message: dict[str, Any]) -> bool:
        """Whether Telegram hands this group message to the bot (privacy mode rules)."""
        if not group.privacy:
            return True
        me = str(self.bot_user["username"]).lower()
        text = str(message.get("text") or message.get("caption") or "")
        command = re.match(r"/[A-Za-z0-9_]+(?:@([A-Za-z0-9_]+))?", text)
        if command:
            return command.group(1) is None or command.group(1).lower() == me
        if re.search(rf"@{re.escape(me)}(?![A-Za-z0-9_])", text, re.IGNORECASE):
            return True
        reply = message.get("reply_to_message") or {}
        if (reply.get("from") or {}).get("id") == self.bot_id:
            return True
        return (message.get("via_bot") or {}).get("id") == self.bot_id

    def service_message(self, group: FakeGroup, user: FakeUser) -> dict[str, Any]:
        """A bare message in ``group`` from ``user``, to add a service field to (e.g.
        ``migrate_to_chat_id``) and queue with :meth:`push_update`."""
        if user.id not in self.users:
            self.users[user.id] = user
        return self._new_message(group.id, from_bot=False, sender=user)

    def chat_history(self, chat_id: int) -> list[dict[str, Any]]:
        """Every message of a chat, the users' and the bot's, in order, as they stand now
        (edits applied, deleted ones left out): what the people in the chat see."""
        keys = sorted(k for k in self._messages if k[0] == chat_id and k not in self._deleted)
        return [self._messages[k] for k in keys]
