"""The update queue: pushed updates, getUpdates long polling, offsets and allowed_updates.

Long polls wait on state changes (no sleeps); a newer getUpdates ends a waiting one with 409,
as on Telegram.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from typing import Any

from .dispatch import Handler
from .protocol import DEFAULT_UPDATE_TYPES, POLL_CONFLICT, UPDATES_LIMIT, ApiError
from .records import ApiCall, UpdateRecord
from .state import ServerState


class UpdateQueue:
    """Updates waiting for the bot, and what polling did with each."""

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
        self._next_update_id = 700_000_001
        self._poll_generation = 0

    def handlers(self) -> dict[str, Handler]:
        return {"getUpdates": self.get_updates}

    def push(self, content: dict[str, Any]) -> dict[str, Any]:
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
        self._state.pending.append(update)
        self._state.updates[update["update_id"]] = UpdateRecord(update)
        self._state.notify()
        return update

    def record(self, what: int | str | dict[str, Any]) -> UpdateRecord:
        """The update behind an update id, an update, a user message or a query id."""
        if isinstance(what, int):
            return self._state.updates[what]
        if isinstance(what, dict) and "update_id" in what:
            return self._state.updates[int(what["update_id"])]
        for record in self._state.updates.values():
            content = record.update[record.type]
            if content is what or (isinstance(what, str) and content.get("id") == what):
                return record
        raise KeyError(f"{what!r} was not pushed as an update")

    def allow(self, allowed: Any) -> None:
        """Apply an ``allowed_updates`` parameter (an empty list restores the default)."""
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else DEFAULT_UPDATE_TYPES

    def drop_pending(self) -> None:
        """``drop_pending_updates``: acknowledge everything queued so far."""
        self.confirm(self._next_update_id)

    def end_polls(self) -> None:
        """End a waiting getUpdates (it answers 409), e.g. when a webhook is set."""
        self._poll_generation += 1

    def mark_delivered(self, update: dict[str, Any]) -> None:
        self._state.updates[update["update_id"]].delivered += 1

    async def get_updates(self, call: ApiCall) -> list[dict[str, Any]]:
        """getUpdates: confirm up to ``offset``, then answer a batch or wait up to ``timeout``."""
        if self._state.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        offset = call.int_param("offset")
        limit = min(max(call.int_param("limit") or UPDATES_LIMIT, 1), UPDATES_LIMIT)
        timeout = max(call.int_param("timeout") or 0, 0)
        self.allow(call.params.get("allowed_updates"))
        if offset is not None:
            self.confirm(offset)

        # A newer getUpdates ends the one still waiting, as on Telegram.
        self._poll_generation += 1
        generation = self._poll_generation
        self._state.notify()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._state.next_change()
            if self._state.closing:
                return []
            if generation != self._poll_generation:
                raise ApiError(409, POLL_CONFLICT)
            batch = self.deliverable(limit)
            remaining = deadline - loop.time()
            if batch or remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
        for update in batch:
            self.mark_delivered(update)
        return copy.deepcopy(batch)

    def confirm(self, offset: int) -> None:
        """Acknowledge updates before ``offset`` (a negative one keeps only the last -offset)."""
        pending = self._state.pending
        if offset < 0:
            keep = pending[offset:]
            gone = pending[: len(pending) - len(keep)]
        else:
            keep = [u for u in pending if u["update_id"] >= offset]
            gone = [u for u in pending if u["update_id"] < offset]
        for update in gone:
            self._state.updates[update["update_id"]].confirmed = True
        pending[:] = keep
        if gone:
            self._state.notify()

    def deliverable(self, limit: int) -> list[dict[str, Any]]:
        """The next pending updates the bot asked for; others are dropped, as on Telegram."""
        batch: list[dict[str, Any]] = []
        for update in list(self._state.pending):
            record = self._state.updates[update["update_id"]]
            if record.type not in self._allowed_updates:
                record.dropped = True
                self._state.pending.remove(update)
                continue
            batch.append(update)
            if len(batch) >= limit:
                break
        return batch
