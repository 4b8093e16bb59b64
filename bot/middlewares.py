"""Middlewares on both sides of the bot.

Incoming (dispatcher): :class:`ContextMiddleware` resolves who an update belongs to and injects
``owner`` and ``lang`` into handlers; it also enforces ALLOWED_USERS. What does not change from
update to update (``services``, ``engine``, ...) is the dispatcher's workflow data instead
(:func:`bot.app.create_dispatcher`).

Outgoing (the Bot's HTTP session): :class:`TelegramTransportMiddleware` keeps to Telegram's
limits (:mod:`bot.limits`), waits out 429 ``retry_after``, retries 5xx and network errors with
exponential backoff (never repeating a send that may have arrived) and notices users who blocked
the bot. Handlers then never deal with flood control themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

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
from aiogram.methods import GetUpdates, SendChatAction, TelegramMethod
from aiogram.types import CallbackQuery, Chat, InlineQuery, Message, TelegramObject, Update, User
from aiohttp import ClientConnectorError, ConnectionTimeoutError

from bot.i18n import pick_lang, t
from bot.ledger import UpdateLedger
from bot.limits import TelegramLimits
from storage.records import Owner

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response
    from aiogram.methods.base import TelegramType

    from bot.services import BotServices

log = logging.getLogger(__name__)

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
        allowed = services.settings.bot.allowed_users
        if allowed and not (
            (user is not None and user.id in allowed) or (chat is not None and chat.id in allowed)
        ):
            await self._refuse(event, chat, user)
            return None
        owners = services.engine.owners
        kind, external_id = key
        owner = await owners.find(kind, external_id)  # type: ignore[arg-type]
        if owner is None:
            owner = await owners.ensure(kind, external_id)  # type: ignore[arg-type]
        if owner.settings.get("blocked") and _is_user_activity(event):
            settings = await owners.update_settings(owner.id, {"blocked": None})
            owner = _with_settings(owner, settings)
        data["owner"] = owner
        data["lang"] = pick_lang(
            owner.settings.get("lang"), user.language_code if user is not None else None
        )
        return await handler(event, data)

    async def _refuse(self, event: TelegramObject, chat: Chat | None, user: User | None) -> None:
        """A friendly refusal where the user is looking (never in a group, where it would spam)."""
        lang = pick_lang(None, user.language_code if user is not None else None)
        text = t("middlewares-not-allowed", lang, uid=user.id if user is not None else "?")
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

# Calls that must not run twice: a repeat is a second message in the chat.
_AT_MOST_ONCE_PREFIXES = ("Send", "Copy", "Forward")
_REPEATABLE = (SendChatAction,)
_MAX_BACKOFF_S = 30.0

BlockedCallback = Callable[[int | str], Awaitable[None]]


def at_most_once(method: TelegramMethod[Any]) -> bool:
    """Whether running the call twice would show the user the same thing twice."""
    if isinstance(method, _REPEATABLE):
        return False
    return type(method).__name__.startswith(_AT_MOST_ONCE_PREFIXES)


def surely_not_sent(exc: TelegramNetworkError) -> bool:
    """Whether a network error happened before the request left: no connection was made
    (refused, DNS, TLS, proxy, connect timeout). Anything later (the server hung up, a read
    timeout, a reset) may come after Telegram did the work, so the outcome is unknown."""
    return isinstance(exc.__cause__, ClientConnectorError | ConnectionTimeoutError)


class TelegramTransportMiddleware(BaseRequestMiddleware):
    """Request middleware on ``bot.session``: keep to Telegram's limits (:mod:`bot.limits`),
    wait out 429, retry 5xx and network errors, report blocked chats. Errors that remain after
    the retries are raised to the caller.

    What is retried: a 429 (Telegram did nothing) and a 5xx answer (the Bot API answered that
    the call failed) always; a network error only when the request surely never left, or when
    the call may safely run twice. A send whose connection broke after it went out is raised,
    not repeated: a lost reply is better than the same answer twice.

    ``on_blocked(chat_id)`` is set once the services exist (the Bot is built first).
    """

    def __init__(
        self,
        *,
        attempts: int = 5,
        backoff_s: float = 0.5,
        limits: TelegramLimits | None = None,
        ledger: UpdateLedger | None = None,
        on_blocked: BlockedCallback | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.limits = limits
        self.ledger = ledger
        self.on_blocked = on_blocked
        self._sleep = sleep

    @property
    def retry_after_max_s(self) -> float:
        return self.limits.config.max_wait_s if self.limits is not None else 0.0

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if isinstance(method, GetUpdates):  # not retried here: polling has its own backoff
            return await self._poll(make_request, bot, method)
        name = type(method).__name__
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._send(make_request, bot, method)
            except TelegramRetryAfter as exc:
                if attempt >= self.attempts or exc.retry_after > self.retry_after_max_s:
                    raise
                # The limits' gate is closed now: the next _send waits it out.
                log.warning("%s: flood control, retrying in %ss", name, exc.retry_after)
            except (TelegramServerError, TelegramNetworkError) as exc:
                if attempt >= self.attempts or not self._may_retry(method, exc):
                    raise
                delay = min(_MAX_BACKOFF_S, self.backoff_s * 2 ** (attempt - 1))
                log.warning("%s failed (%s), retry %d in %.1fs", name, exc, attempt, delay)
                await self._sleep(delay)
            except TelegramForbiddenError:
                await self._report_blocked(getattr(method, "chat_id", None))
                raise

    async def _poll(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: GetUpdates,
    ) -> Response[TelegramType]:
        """getUpdates: its offset confirms what the ledger has settled, never more."""
        if self.ledger is None:
            return await make_request(bot, method)  # type: ignore[arg-type]
        if method.offset is not None:
            await self.ledger.confirmable(method.offset)
        response = await make_request(bot, method)  # type: ignore[arg-type]
        # aiogram's session hands middlewares the method's result (the updates) here, whatever
        # the Response[...] annotation says: hence getattr, and the cast of what it finds
        updates = cast(list[Update], getattr(response, "result", response) or [])
        self.ledger.received(update.update_id for update in updates)
        return response

    async def _send(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if self.limits is None:
            return await make_request(bot, method)
        async with self.limits.slot(method):
            return await make_request(bot, method)

    @staticmethod
    def _may_retry(method: TelegramMethod[Any], exc: Exception) -> bool:
        if isinstance(exc, TelegramServerError) or not at_most_once(method):
            return True
        if isinstance(exc, TelegramNetworkError) and surely_not_sent(exc):
            return True
        name = type(method).__name__
        log.warning("%s: %s after it was sent; not repeated (it may have arrived)", name, exc)
        return False

    async def _report_blocked(self, chat_id: int | str | None) -> None:
        if chat_id is None or self.on_blocked is None:
            return
        try:
            await self.on_blocked(chat_id)
        except Exception:
            log.exception("could not record that chat %s blocked the bot", chat_id)
