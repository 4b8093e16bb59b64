"""Telegram's flood control: per-chat and per-bot message rates, and the waits a 429 imposes."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from .protocol import ApiError
from .records import ApiCall


def message_cost(call: ApiCall) -> int:
    """How many messages a call puts into a chat, as Telegram's flood control counts them."""
    method = call.method.lower()
    if method == "sendchataction" or not method.startswith(("send", "edit", "copy", "forward")):
        return 0
    media = call.params.get("media")
    if method == "sendmediagroup" and isinstance(media, list):
        return len(media)
    return 1


@dataclass(frozen=True)
class FloodRule:
    """At most ``limit`` messages per ``period_s``, all at once at most (a leaky bucket: the
    bursts-then-429 Telegram shows). ``slack`` absorbs the bot's and our clocks reading the
    same send a few milliseconds apart."""

    limit: float
    period_s: float
    slack: float = 1.0


GROUP_RULE = FloodRule(20, 60.0)  # Telegram: about 20 messages a minute in a group
BOT_RULE = FloodRule(30, 1.0)  # and about 30 a second for the whole bot


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
        group: FloodRule | None = GROUP_RULE,
        bot: FloodRule | None = BOT_RULE,
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
