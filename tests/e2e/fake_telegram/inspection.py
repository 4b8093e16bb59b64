"""The test's side of the traffic: what the bot called and sent, waited for by event.

Every wait is on state changes (no sleeps) and fails with the recent traffic attached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .records import ApiCall, SentMessage
from .state import ServerState
from .updates import UpdateQueue


class Inspector:
    """Queries and waits over the calls, the bot's messages, answers and updates."""

    def __init__(self, state: ServerState, updates: UpdateQueue) -> None:
        self._state = state
        self._updates = updates
        self._cursors: dict[int, int] = {}  # chat -> messages next_message(s) returned

    def mark(self) -> int:
        """A position in the call log, for ``wait_call(..., since=mark)``."""
        return len(self._state.calls)

    def calls_of(self, method: str, *, since: int = 0) -> list[ApiCall]:
        """Completed calls of a method (case-insensitive; "*" for all)."""
        return [
            call
            for call in self._state.calls[since:]
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

        def found(_: ServerState) -> ApiCall | None:
            calls = [c for c in self.calls_of(method, since=since) if where is None or where(c)]
            return calls[n - 1] if len(calls) >= n else None

        return await self._state.wait_for(found, timeout=timeout, what=f"call #{n} of {method}")

    def polls_in_flight(self, *, since: int = 0) -> list[ApiCall]:
        """getUpdates requests still waiting for updates (the bot is idle)."""
        return [
            c for c in self._state.calls[since:] if c.method == "getUpdates" and c.status is None
        ]

    async def wait_poll(self, *, since: int = 0, timeout: float = 10.0) -> ApiCall:
        """Wait until a getUpdates request (made after ``since``) is waiting here."""
        found = await self._state.wait_for(
            lambda _: self.polls_in_flight(since=since),
            timeout=timeout,
            what="a waiting getUpdates",
        )
        return found[-1]

    def messages(self, chat_id: int, *, include_deleted: bool = False) -> list[SentMessage]:
        """Messages the bot sent to a chat, in order."""
        return [
            sent
            for sent in self._state.sent
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

        def ready(_: ServerState) -> list[SentMessage] | None:
            sent = self.messages(chat_id, include_deleted=True)
            return sent[start : start + n] if len(sent) >= start + n else None

        batch = await self._state.wait_for(
            ready, timeout=timeout, what=f"{n} message(s) to {chat_id}"
        )
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

        def found(_: ServerState) -> SentMessage | None:
            return next((m for m in self.messages(chat_id) if where(m)), None)

        return await self._state.wait_for(
            found, timeout=timeout, what=f"a matching message to {chat_id}"
        )

    async def wait_edit(
        self, message: SentMessage, *, edits: int = 1, timeout: float = 10.0
    ) -> SentMessage:
        """Wait until a bot message has been edited ``edits`` times in total."""
        await self._state.wait_for(
            lambda _: len(message.history) >= edits,
            timeout=timeout,
            what=f"{edits} edit(s) of message {message.message_id}",
        )
        return message

    async def wait_callback_answer(self, query_id: str, *, timeout: float = 10.0) -> dict[str, Any]:
        return await self._state.wait_for(
            lambda _: self._state.callback_answers.get(query_id),
            timeout=timeout,
            what=f"answerCallbackQuery for {query_id}",
        )

    async def wait_inline_answer(self, query_id: str, *, timeout: float = 10.0) -> dict[str, Any]:
        return await self._state.wait_for(
            lambda _: self._state.inline_answers.get(query_id),
            timeout=timeout,
            what=f"answerInlineQuery for {query_id}",
        )

    async def wait_delivered(
        self, update: int | str | dict[str, Any], *, timeout: float = 10.0
    ) -> None:
        """Wait until a getUpdates answer (or a webhook call) carried this update.

        Takes what a builder returned (a message dict or a query id), an update or its id.
        """
        record = self._updates.record(update)
        await self._state.wait_for(
            lambda _: record.delivered > 0,
            timeout=timeout,
            what=f"delivery of update {record.update_id}",
        )

    async def wait_confirmed(
        self, update: int | str | dict[str, Any], *, timeout: float = 10.0
    ) -> None:
        """Wait until the bot acknowledged this update (a getUpdates offset moved past it)."""
        record = self._updates.record(update)
        await self._state.wait_for(
            lambda _: record.confirmed,
            timeout=timeout,
            what=f"confirmation of update {record.update_id}",
        )

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet acknowledged by the bot."""
        return list(self._state.pending)

    def unanswered_callbacks(self) -> list[str]:
        """Callback queries the bot never answered (the user's client would keep spinning)."""
        return [
            qid for qid in self._state.callback_queries if qid not in self._state.callback_answers
        ]

    def assert_clean(self, allow: Iterable[str] = ()) -> None:
        """Fail on unknown methods and on error answers the bot provoked (bot bugs)."""
        allowed = [*self._state.allowed_errors, *allow]
        problems = [
            f"unknown Bot API method called: {name}" for name in self._state.unknown_methods
        ]
        problems += [
            f"delivered twice: #{a.index} and #{b.index}" for a, b in self._state.duplicates
        ]
        if self._state.flood.enforced:
            problems += [
                f"sent during a 429 wait: #{c.index}" for c in self._state.flood.violations
            ]
        for call in self._state.errors:
            if not any(text in (call.description or "") for text in allowed):
                problems.append(f"{call.method} -> {call.status} {call.description}")
        if problems:
            raise AssertionError("\n".join(problems) + "\n" + self._state.transcript())

    # ------------------------------------------------------------------ fault injection
