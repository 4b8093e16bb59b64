"""The one state object all parts of the fake share: what a bot, and a test, can observe.

The parts (HTTP app, method handlers, user-side builders, inspection helpers) are small classes
that each keep their own bookkeeping private and meet here; every change is announced with
:meth:`ServerState.notify`, so waiting is event-driven and nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

from .flood import FloodControl
from .people import FakeGroup, FakeUser
from .records import ApiCall, SentMessage, StoredFile, UpdateRecord

if TYPE_CHECKING:
    from .faults import Fault, Gate

T = TypeVar("T")


class ServerState:
    """The fake's records: bot identity, people, traffic, files, queries, updates, faults.

    Public on purpose: tests read (and sometimes tweak) them directly on the server, which is
    this object.
    """

    def __init__(
        self,
        token: str,
        *,
        bot_username: str,
        bot_name: str,
        host: str,
        port: int,
        local_dir: Path | None,
        supports_inline_queries: bool,
        can_read_all_group_messages: bool,
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
        self._init_records()
        self.closing = False
        self._changed = asyncio.Event()

    def _init_records(self) -> None:
        """The empty records of a fresh Telegram."""
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
        self.updates: dict[int, UpdateRecord] = {}
        self.pending: list[dict[str, Any]] = []  # updates not yet acknowledged, oldest first
        self.webhook: dict[str, Any] | None = None
        self.webhook_errors: list[str] = []

    # ------------------------------------------------------------------ events and waiting

    def notify(self) -> None:
        """Wake everyone waiting for a state change."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def next_change(self) -> asyncio.Event:
        """The event the next :meth:`notify` sets: take it before looking, then wait on it."""
        return self._changed

    async def wait_for(
        self,
        predicate: Callable[[Self], T],
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
        lines.append(f"pending updates: {[u['update_id'] for u in self.pending]}")
        if self.unknown_methods:
            lines.append(f"unknown methods: {self.unknown_methods}")
        return "\n".join(lines)
