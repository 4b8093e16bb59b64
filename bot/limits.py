"""Telegram's flood limits in one place.

Telegram allows about one message a second in a private chat (short bursts pass), about 20 a
minute in a group, supergroup or channel, and about 30 a second for the whole bot; every item of
an album counts. A 429 answer names how long to wait, and until then the chat (or, for a call
without a chat, the whole bot) is closed: sending anything else there only earns more 429s.

:class:`TelegramLimits` holds one leaky bucket (``aiolimiter.AsyncLimiter``, whose
``acquire(amount)`` takes an album's cost at once) per chat and one for the bot, plus the
"closed until" gates those 429s set. ``slot()`` is what the transport wraps each call in: it
waits for the gates and the buckets, and keeps one call per chat in flight, so a 429 closes the
gate before the next call for that chat looks at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import SendChatAction, SendMediaGroup, TelegramMethod
from aiolimiter import AsyncLimiter

if TYPE_CHECKING:
    from bot.config import BotSettings

ChatId = int | str
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]

# Methods that put something into a chat and so count against Telegram's limits.
_COUNTED_PREFIXES = ("Send", "Edit", "Copy", "Forward")
_NOT_COUNTED = (SendChatAction,)
_BOT = "bot"  # the gate key of the whole bot


def message_cost(method: TelegramMethod[Any]) -> int:
    """How many messages a call puts into its chat (0 = it does not count)."""
    if isinstance(method, _NOT_COUNTED):
        return 0
    if not type(method).__name__.startswith(_COUNTED_PREFIXES):
        return 0
    if isinstance(method, SendMediaGroup):
        return len(method.media)
    return 1


def is_group(chat_id: ChatId) -> bool:
    """Groups, supergroups and channels have negative ids; ``@name`` is a public one."""
    return isinstance(chat_id, str) or chat_id < 0


@dataclass(frozen=True)
class Rate:
    """``limit`` messages per ``period_s`` seconds, all of them at once at most; 0 = no limit."""

    limit: float
    period_s: float

    @property
    def on(self) -> bool:
        return self.limit > 0 and self.period_s > 0

    def limiter(self) -> AsyncLimiter:
        return AsyncLimiter(self.limit, self.period_s)


@dataclass(frozen=True)
class LimitsConfig:
    private: Rate
    group: Rate
    bot: Rate
    max_wait_s: float = 300.0  # a chat closed for longer fails its calls instead of waiting

    @classmethod
    def from_settings(cls, settings: BotSettings) -> LimitsConfig:
        """The private pace is "one every N seconds, bursts of B": a bucket of B that drains
        one message every N seconds."""
        pace, burst = settings.send_pace_per_chat_s, settings.send_burst_per_chat
        return cls(
            private=Rate(burst if pace > 0 else 0, burst * pace),
            group=Rate(settings.send_group_limit, settings.send_group_period_s),
            bot=Rate(settings.send_bot_limit, settings.send_bot_period_s),
            max_wait_s=settings.telegram_retry_after_max_s,
        )


class TelegramLimits:
    """Per-chat and whole-bot limiters and 429 gates, with memory bounded by ``max_chats``
    (idle chats, whose bucket is empty and gate open, are forgotten: they start afresh)."""

    def __init__(
        self,
        config: LimitsConfig,
        *,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
        max_chats: int = 10_000,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or (lambda: asyncio.get_running_loop().time())
        self.sleep = sleep
        self.max_chats = max_chats
        self._bot = config.bot.limiter() if config.bot.on else None
        self._bot_lock = asyncio.Lock()
        self._limiters: dict[ChatId, AsyncLimiter] = {}
        self._locks: dict[ChatId, asyncio.Lock] = {}
        self._closed: dict[ChatId | str, float] = {}  # chat (or _BOT) -> deadline
        self._prune_at = max_chats

    # --- 429 gates ------------------------------------------------------------------------

    def close(self, chat_id: ChatId | None, seconds: float) -> None:
        """Telegram said "retry after ``seconds``": nothing goes to the chat until then (a
        call without a chat closes the whole bot)."""
        key = _BOT if chat_id is None else chat_id
        deadline = self.clock() + max(0.0, seconds)
        self._closed[key] = max(deadline, self._closed.get(key, 0.0))

    def closed_for(self, chat_id: ChatId | None) -> float:
        """Seconds until ``chat_id`` (and the bot) may be sent to again; 0 when open."""
        now = self.clock()
        deadline = self._closed.get(_BOT, 0.0)
        if chat_id is not None:
            deadline = max(deadline, self._closed.get(chat_id, 0.0))
        return max(0.0, deadline - now)

    async def wait_open(self, method: TelegramMethod[Any], chat_id: ChatId | None) -> None:
        """Sleep until the gates are open; raise :class:`TelegramRetryAfter` at once when that
        is longer than the caller would wait for a 429 anyway."""
        while (delay := self.closed_for(chat_id)) > 0:
            if delay > self.config.max_wait_s:
                raise TelegramRetryAfter(
                    method=method,
                    message=f"Too Many Requests: chat closed for {delay:.0f}s",
                    # rounded first: deadline - now of float clocks is 600.0000001, not 601
                    retry_after=math.ceil(round(delay, 6)),
                )
            await self.sleep(delay)

    # --- the call slot --------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def slot(self, method: TelegramMethod[Any]) -> AsyncIterator[None]:
        """Wrap one call: wait for the gates and buckets, then send; a 429 inside closes the
        gate before anyone else for the chat can look at it."""
        chat_id: ChatId | None = getattr(method, "chat_id", None)
        cost = message_cost(method) if chat_id is not None else 0
        lock = self._lock(chat_id) if chat_id is not None else None
        async with lock if lock is not None else contextlib.nullcontext():
            await self.wait_open(method, chat_id)
            if cost:
                await self._take(chat_id, cost)  # type: ignore[arg-type]
                await self.wait_open(method, chat_id)  # a 429 may have come meanwhile
            try:
                yield
            except TelegramRetryAfter as exc:
                self.close(chat_id, float(exc.retry_after))
                raise

    async def _take(self, chat_id: ChatId, cost: int) -> None:
        """The chat's bucket first, so a chat waiting for its own limit holds nobody up."""
        rate = self.config.group if is_group(chat_id) else self.config.private
        if rate.on:
            await _acquire(self._limiter(chat_id, rate), cost)
        if self._bot is not None:
            async with self._bot_lock:  # first come, first served (aiolimiter favours small)
                await _acquire(self._bot, cost)

    def _limiter(self, chat_id: ChatId, rate: Rate) -> AsyncLimiter:
        limiter = self._limiters.get(chat_id)
        if limiter is None:
            limiter = self._limiters[chat_id] = rate.limiter()
        return limiter

    def _lock(self, chat_id: ChatId) -> asyncio.Lock:
        lock = self._locks.get(chat_id)
        if lock is None:
            self._prune()
            lock = self._locks[chat_id] = asyncio.Lock()
        return lock

    def _prune(self) -> None:
        """Forget idle chats once there are many; a busy bot raises the bar instead of
        scanning on every new chat."""
        if len(self._locks) < self._prune_at:
            return
        now = self.clock()
        self._closed = {k: t for k, t in self._closed.items() if t > now}
        for chat_id in list(self._locks):
            limiter = self._limiters.get(chat_id)
            idle = limiter is None or limiter.has_capacity(limiter.max_rate)
            if idle and not self._locks[chat_id].locked() and chat_id not in self._closed:
                del self._locks[chat_id]
                self._limiters.pop(chat_id, None)
        self._prune_at = max(self.max_chats, 2 * len(self._locks))

    @property
    def chats(self) -> int:
        """How many chats are remembered (for tests of the memory bound)."""
        return len(self._locks)


async def _acquire(limiter: AsyncLimiter, cost: int) -> None:
    """Take ``cost`` from a bucket, in bucket-sized pieces when it is larger than the bucket
    (an album of 10 in a chat allowed bursts of 3 goes out once 10 fit the pace)."""
    capacity = max(1, math.floor(limiter.max_rate))
    while cost > 0:
        piece = min(cost, capacity)
        await limiter.acquire(piece)
        cost -= piece
