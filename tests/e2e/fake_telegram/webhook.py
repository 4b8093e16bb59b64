"""Webhook delivery: setWebhook/deleteWebhook/getWebhookInfo and the task that POSTs updates.

Updates go out one at a time and are confirmed on a 2xx answer, as on Telegram; an answer
that is itself a method call is executed (its result unseen by the bot).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from .dispatch import Handler
from .protocol import as_bool, bad
from .records import ApiCall
from .state import ServerState
from .updates import UpdateQueue

RETRY_WAIT_S = 0.2  # after a failed POST: until the next state change, at most this long


class Webhook:
    """The webhook registration and its delivery task."""

    def __init__(
        self,
        state: ServerState,
        updates: UpdateQueue,
        run_reply: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        self._state = state
        self._updates = updates
        self._run_reply = run_reply
        self._task: asyncio.Task[None] | None = None

    def handlers(self) -> dict[str, Handler]:
        return {
            "setWebhook": self.set_webhook,
            "deleteWebhook": self.delete_webhook,
            "getWebhookInfo": self.get_webhook_info,
        }

    async def set_webhook(self, call: ApiCall) -> bool:
        url = str(call.params.get("url") or "")
        if not url:
            return await self.delete_webhook(call)
        if not url.startswith(("https://", "http://127.", "http://localhost")):
            raise bad("Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        self._updates.allow(call.params.get("allowed_updates"))
        if as_bool(call.params.get("drop_pending_updates", False)):
            self._updates.drop_pending()
        self._state.webhook = {"url": url, "secret_token": call.params.get("secret_token")}
        self._updates.end_polls()  # a waiting getUpdates ends with 409
        if self._task is None:
            self._task = asyncio.create_task(self._deliver())
        self._state.notify()
        return True

    async def delete_webhook(self, call: ApiCall) -> bool:
        if as_bool(call.params.get("drop_pending_updates", False)):
            self._updates.drop_pending()
        self._state.webhook = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        return True

    async def get_webhook_info(self, call: ApiCall) -> dict[str, Any]:
        webhook = self._state.webhook
        return {
            "url": webhook["url"] if webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._state.pending),
        }

    async def stop(self) -> None:
        """Cancel the delivery task and wait until it is gone (server shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _deliver(self) -> None:
        """Deliver pending updates to the webhook one by one, confirming on a 2xx answer."""
        state = self._state
        async with aiohttp.ClientSession() as session:
            while state.webhook is not None and not state.closing:
                event = state.next_change()
                batch = self._updates.deliverable(1)
                if not batch:
                    await event.wait()
                    continue
                update = batch[0]
                self._updates.mark_delivered(update)
                body = await self._post(session, state.webhook, update)
                if body is None:
                    state.notify()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(state.next_change().wait(), RETRY_WAIT_S)
                    continue
                self._updates.confirm(update["update_id"] + 1)
                await self._reply(body)

    async def _post(
        self, session: aiohttp.ClientSession, webhook: dict[str, Any], update: dict[str, Any]
    ) -> bytes | None:
        """POST one update; the answer's body, or None (noted in webhook_errors) on failure."""
        headers = {}
        if webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(webhook["secret_token"])
        try:
            async with session.post(webhook["url"], json=update, headers=headers) as resp:
                body = await resp.read()
                status = resp.status
        except aiohttp.ClientError as exc:
            self._state.webhook_errors.append(f"{update['update_id']}: {exc!r}")
            return None
        if not 200 <= status < 300:
            self._state.webhook_errors.append(f"{update['update_id']}: HTTP {status}")
            return None
        return body

    async def _reply(self, body: bytes) -> None:
        """A webhook may answer with a method call; Telegram executes it (result unseen)."""
        try:
            reply = json.loads(body) if body else None
        except json.JSONDecodeError:
            return
        if not isinstance(reply, dict) or "method" not in reply:
            return
        await self._run_reply(reply)
