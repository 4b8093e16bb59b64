"""Middlewares on both sides of the bot.

Incoming (dispatcher): :class:`ContextMiddleware` resolves who an update belongs to and injects
``services``, ``engine``, ``owner`` and ``lang`` into handlers; it also enforces ALLOWED_USERS.

Outgoing (the Bot's HTTP session): :class:`TelegramTransportMiddleware` keeps a per-chat send
pace, waits out 429 ``retry_after``, retries 5xx and network errors with exponential backoff and
notices users who blocked the bot. Handlers then never deal with flood control themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiogram import BaseMiddleware
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import (
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import (
    GetUpdates,
    SendChatAction,
    SendMediaGroup,
    TelegramMethod,
)
from aiogram.types import CallbackQuery, Chat, InlineQuery, Message, TelegramObject, Update, User

from bot.i18n import pick_lang, tr
from storage.records import Owner

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response
    from aiogram.methods.base import TelegramType

    from bot.services import BotServices

log = logging.getLogger(__name__)

TEXTS = {
    "not_allowed": {
        "ru": "Это частный бот: у вас нет доступа. Попросите владельца добавить ваш id {uid} "
        "в ALLOWED_USERS или запустите свою копию.",
        "en": "This is a private bot and you are not on its list. Ask its owner to add your id "
        "{uid} to ALLOWED_USERS, or run your own copy.",
    },
}

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


# --- incoming -----------------------------------------------------------------------------------


def owner_key(chat: Chat | None, user: User | None) -> tuple[str, int] | None:
    """Whose collection an update touches: the chat for groups and channels (members share
    one), else the user (private chats, inline queries)."""
    if chat is not None and chat.type != "private":
        return "chat", chat.id
    if user is not None:
        return "user", user.id
    if chat is not None:
        return "user", chat.id
    return None


class ContextMiddleware(BaseMiddleware):
    """Outer middleware on ``dp.update``; runs after aiogram's own context middleware, which
    provides ``event_chat`` and ``event_from_user``."""

    def __init__(self, services: BotServices) -> None:
        self.services = services

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        chat: Chat | None = data.get("event_chat")
        user: User | None = data.get("event_from_user")
        key = owner_key(chat, user)
        if key is None:  # e.g. a poll update: nobody's collection
            return None
        services = self.services
        allowed = services.settings.allowed_users
        if allowed and not (
            (user is not None and user.id in allowed) or (chat is not None and chat.id in allowed)
        ):
            await self._refuse(event, chat, user)
            return None
        db = services.engine.db
        kind, external_id = key
        owner = await db.find_owner(kind, external_id)  # type: ignore[arg-type]
        if owner is None:
            owner = await db.ensure_owner(kind, external_id)  # type: ignore[arg-type]
        if owner.settings.get("blocked") and _is_user_activity(event):
            settings = await db.owner(owner.id).update_settings({"blocked": None})
            owner = _with_settings(owner, settings)
        data["services"] = services
        data["engine"] = services.engine
        data["owner"] = owner
        data["lang"] = pick_lang(
            owner.settings.get("lang"), user.language_code if user is not None else None
        )
        return await handler(event, data)

    async def _refuse(self, event: TelegramObject, chat: Chat | None, user: User | None) -> None:
        """A friendly refusal where the user is looking (never in a group, where it would spam)."""
        lang = pick_lang(None, user.language_code if user is not None else None)
        text = tr(TEXTS, "not_allowed", lang, uid=user.id if user is not None else "?")
        log.info("refused update from user %s chat %s", user and user.id, chat and chat.id)
        bot = self.services.bot
        with contextlib.suppress(Exception):
            update = event if isinstance(event, Update) else None
            inner = update.event if update is not None else event
            if isinstance(inner, Message) and inner.chat.type == "private":
                await bot.send_message(inner.chat.id, text)
            elif isinstance(inner, CallbackQuery):
                await bot.answer_callback_query(inner.id, text[:200], show_alert=True)
            elif isinstance(inner, InlineQuery):
                await bot.answer_inline_query(inner.id, [], cache_time=60, is_personal=True)


def _is_user_activity(event: TelegramObject) -> bool:
    """Anything but a chat-member change means the user talks to the bot again."""
    if isinstance(event, Update):
        return event.my_chat_member is None
    return True


def _with_settings(owner: Owner, settings: dict[str, Any]) -> Owner:
    return Owner(owner.id, owner.kind, owner.external_id, settings, owner.created_at)


# --- outgoing -----------------------------------------------------------------------------------

# Methods that put something into a chat and so count against Telegram's per-chat limit.
_PACED_PREFIXES = ("Send", "Edit", "Copy", "Forward")
_UNPACED = (SendChatAction,)
# Calls whose failure right now is better than a late answer (the client has moved on).
_NO_RETRY = (GetUpdates,)
_MAX_BACKOFF_S = 30.0

BlockedCallback = Callable[[int | str], Awaitable[None]]


class ChatPacer:
    """A token bucket per chat: ``burst`` messages at once, then one every ``interval``
    seconds. Callers for the same chat queue in arrival order; other chats are not held up.
    A media group costs one token per item (Telegram counts every message of an album)."""

    def __init__(
        self,
        interval: float,
        burst: int = 20,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        max_chats: int = 10_000,
    ) -> None:
        self.interval = float(interval)
        self.burst = max(1, int(burst))
        self._clock = clock
        self._sleep = sleep
        self._max_chats = max_chats
        self._buckets: dict[int | str, tuple[float, float]] = {}  # chat -> (tokens, at)
        self._locks: dict[int | str, asyncio.Lock] = {}

    async def acquire(self, chat_id: int | str, cost: int = 1) -> float:
        """Wait for ``cost`` tokens of ``chat_id``; returns the seconds waited."""
        if self.interval <= 0:
            return 0.0
        cost = max(1, min(int(cost), self.burst))
        lock = self._locks.get(chat_id)
        if lock is None:
            self._prune()
            lock = self._locks[chat_id] = asyncio.Lock()
        async with lock:
            now = self._clock()
            tokens, at = self._buckets.get(chat_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) / self.interval)
            waited = 0.0
            if tokens < cost:
                waited = (cost - tokens) * self.interval
                await self._sleep(waited)
                tokens = float(cost)
                now = max(self._clock(), now + waited)
            self._buckets[chat_id] = (tokens - cost, now)
            return waited

    def _prune(self) -> None:
        """Forget idle chats (full buckets, nobody waiting) so memory stays bounded."""
        if len(self._locks) < self._max_chats:
            return
        now = self._clock()
        for chat_id in list(self._locks):
            lock = self._locks[chat_id]
            tokens, at = self._buckets.get(chat_id, (float(self.burst), now))
            if not lock.locked() and tokens + (now - at) / self.interval >= self.burst:
                del self._locks[chat_id]
                self._buckets.pop(chat_id, None)


def message_cost(method: TelegramMethod[Any]) -> int:
    """How many messages a call puts into the chat (0 = not paced)."""
    if isinstance(method, _UNPACED):
        return 0
    if not type(method).__name__.startswith(_PACED_PREFIXES):
        return 0
    if isinstance(method, SendMediaGroup):
        return len(method.media)
    return 1


class TelegramTransportMiddleware(BaseRequestMiddleware):
    """Request middleware on ``bot.session``: pace, wait out 429, retry 5xx/network errors,
    report blocked chats. Errors that remain after the retries are raised to the caller.

    ``on_blocked(chat_id)`` is set once the services exist (the Bot is built first).
    """

    def __init__(
        self,
        *,
        attempts: int = 5,
        backoff_s: float = 0.5,
        retry_after_max_s: float = 300.0,
        pacer: ChatPacer | None = None,
        on_blocked: BlockedCallback | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.retry_after_max_s = retry_after_max_s
        self.pacer = pacer
        self.on_blocked = on_blocked
        self._sleep = sleep

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if isinstance(method, _NO_RETRY):  # polling has its own backoff
            return await make_request(bot, method)
        chat_id = getattr(method, "chat_id", None)
        cost = message_cost(method) if chat_id is not None else 0
        name = type(method).__name__
        attempt = 0
        while True:
            attempt += 1
            if cost and self.pacer is not None:
                await self.pacer.acquire(chat_id, cost)  # type: ignore[arg-type]
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if attempt >= self.attempts or exc.retry_after > self.retry_after_max_s:
                    raise
                log.warning("%s: flood control, retrying in %ss", name, exc.retry_after)
                await self._sleep(float(exc.retry_after))
            except (TelegramServerError, TelegramNetworkError) as exc:
                if attempt >= self.attempts:
                    raise
                delay = min(_MAX_BACKOFF_S, self.backoff_s * 2 ** (attempt - 1))
                log.warning("%s failed (%s), retry %d in %.1fs", name, exc, attempt, delay)
                await self._sleep(delay)
            except TelegramForbiddenError:
                if chat_id is not None and self.on_blocked is not None:
                    try:
                        await self.on_blocked(chat_id)
                    except Exception:
                        log.exception("could not record that chat %s blocked the bot", chat_id)
                raise
