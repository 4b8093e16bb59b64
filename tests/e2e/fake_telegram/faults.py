"""Fault injection: error answers, dropped connections, held requests, and the duplicates
a bot sends when it retries a call whose answer it never got.

Faults apply before a method runs (after the flood check), per method name or ``"*"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .flood import BOT_RULE, GROUP_RULE, FloodControl, FloodRule
from .people import FakeUser
from .protocol import BLOCKED, DOWNLOAD, NOT_MODIFIED, ApiError
from .records import ApiCall
from .state import ServerState


def method_matches(pattern: str, method: str) -> bool:
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
        if not self.active or not method_matches(self.method, call.method):
            return False
        return self.when is None or bool(self.when(call))

    def error(self) -> ApiError:
        """The error answer this fault gives."""
        return ApiError(self.status, self.description, retry_after=self.retry_after)


class Gate:
    """Holds matching requests until released: a slow Telegram, made deterministic."""

    def __init__(
        self,
        state: ServerState,
        method: str,
        when: Callable[[ApiCall], bool] | None,
        times: int | None,
    ) -> None:
        self._state = state
        self.method = method
        self.when = when
        self.times = times
        self.held: list[ApiCall] = []
        self._released = asyncio.Event()

    def takes(self, call: ApiCall) -> bool:
        if self.times is not None and len(self.held) >= self.times:
            return False
        if not method_matches(self.method, call.method):
            return False
        return self.when is None or bool(self.when(call))

    async def hold(self, call: ApiCall) -> None:
        self.held.append(call)
        self._state.notify()
        await self._released.wait()

    async def arrived(self, n: int = 1, *, timeout: float = 10.0) -> ApiCall:
        """Wait until ``n`` requests are being held; returns the n-th."""
        await self._state.wait_for(
            lambda _: len(self.held) >= n, timeout=timeout, what=f"{n} held {self.method}"
        )
        return self.held[n - 1]

    def release(self) -> None:
        """Let held (and later matching) requests through."""
        self._released.set()
        with contextlib.suppress(ValueError):
            self._state.gates.remove(self)


class FaultInjector:
    """What tests call to make Telegram misbehave; consulted by the HTTP app on every call."""

    def __init__(self, state: ServerState) -> None:
        self._state = state

    def take(self, call: ApiCall) -> Fault | None:
        """The first active fault matching ``call``, counted as hit."""
        fault = next((f for f in self._state.faults if f.matches(call)), None)
        if fault is not None:
            fault.hits += 1
        return fault

    async def pass_gates(self, call: ApiCall) -> None:
        """Wait at every gate that holds ``call``."""
        for gate in list(self._state.gates):
            if gate.takes(call):
                await gate.hold(call)

    def release_all(self) -> None:
        for gate in list(self._state.gates):
            gate.release()

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
        self._state.faults.append(fault)
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
        self._state.faults.append(fault)
        return fault

    def enforce_flood_limits(
        self,
        *,
        private: FloodRule | None = None,
        group: FloodRule | None = GROUP_RULE,
        bot: FloodRule | None = BOT_RULE,
    ) -> FloodControl:
        """Answer calls over Telegram's limits with a real 429 (per private chat, per group or
        channel, for the whole bot; an album counts each item), and calls to a chat a 429
        closed too. Off by default: tests that do not pace their bot stay fast."""
        self._state.flood.enforce(private=private, group=group, bot=bot)
        return self._state.flood

    def hold(
        self,
        method: str,
        *,
        when: Callable[[ApiCall], bool] | None = None,
        times: int | None = None,
    ) -> Gate:
        """Hold matching requests (before they take effect) until ``gate.release()``."""
        gate = Gate(self._state, method, when, times)
        self._state.gates.append(gate)
        return gate

    def block(self, user: FakeUser | int) -> None:
        """The user blocks the bot: every send or edit to their chat answers 403."""
        self._state.blocked.add(user if isinstance(user, int) else user.id)

    def unblock(self, user: FakeUser | int) -> None:
        self._state.blocked.discard(user if isinstance(user, int) else user.id)


def at_most_once(call: ApiCall) -> bool:
    """A call that, done twice, shows the user the same thing twice."""
    method = call.method.lower()
    return method != "sendchataction" and method.startswith(("send", "copy", "forward"))


def fingerprint(call: ApiCall) -> str:
    """What a call delivers, independent of its upload's random ``attach://`` names."""
    params = {k: re.sub(r"attach://[\w-]+", "attach://", str(v)) for k, v in call.raw.items()}
    uploads = sorted(hashlib.sha256(f.data).hexdigest() for f in call.files.values())
    return json.dumps([call.method, sorted(params.items()), uploads])


class DeliveryLog:
    """Sends whose answer the bot never got: doing one again is a duplicate for the user."""

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._unanswered: dict[str, ApiCall] = {}  # sends done whose answer was dropped

    def note(self, call: ApiCall, *, answered: bool) -> None:
        """Remember sends the bot never heard back about; a repeat of one is a duplicate."""
        if not at_most_once(call):
            return
        key = fingerprint(call)
        first = self._unanswered.pop(key, None)
        if first is not None:
            self._state.duplicates.append((first, call))
        if not answered:
            self._unanswered[key] = call
