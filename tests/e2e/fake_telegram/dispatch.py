"""Method dispatch: Bot API method names (case-insensitive, as Telegram) to their handlers.

Each part of the fake declares the methods it serves (``handlers()``); the HTTP app and the
webhook's reply path both run calls through here.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from .protocol import JSON_FIELDS, ApiError, bad
from .records import ApiCall
from .state import ServerState

Handler = Callable[[ApiCall], Awaitable[Any]]


def decode_params(raw: dict[str, Any]) -> dict[str, Any]:
    """Request values with the fields aiogram sends as JSON text decoded."""
    params: dict[str, Any] = {}
    for name, value in raw.items():
        if name in JSON_FIELDS and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise bad(f"Bad Request: can't parse {name} JSON object") from exc
        params[name] = value
    return params


class MethodTable:
    """The method table of the fake."""

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._handlers: dict[str, Handler] = {}
        self._canonical: dict[str, str] = {}

    def register(self, handlers: dict[str, Handler]) -> None:
        """Add a part's methods; a method two parts claim would silently lose one, so refuse."""
        clash = sorted(name for name in handlers if name.lower() in self._canonical)
        if clash:
            raise ValueError(f"methods served twice: {clash}")
        self._handlers.update(handlers)
        self._canonical.update({name.lower(): name for name in handlers})

    def canonical(self, name: str) -> str | None:
        """The method's proper name, or None for a method Telegram does not have."""
        return self._canonical.get(name.lower())

    async def run(self, method: str, call: ApiCall) -> Any:
        """The result of a known method; raises ApiError for an error answer."""
        return await self._handlers[method](call)

    async def run_webhook_reply(self, reply: dict[str, Any]) -> None:
        """A webhook may answer with a method call; Telegram executes it (result unseen)."""
        state = self._state
        name = str(reply.pop("method"))
        method = self.canonical(name)
        call = ApiCall(len(state.calls), method or name, {}, reply, {}, "webhook-reply")
        state.calls.append(call)
        if method is None:
            state.unknown_methods.append(name)
            call.status = 404
            return
        try:
            call.params = decode_params(reply)
            call.result, call.status = await self.run(method, call), 200
        except ApiError as exc:
            call.status, call.description = exc.code, exc.description
            state.errors.append(call)
        state.notify()
