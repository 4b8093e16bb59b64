"""The HTTP side: an aiohttp app on 127.0.0.1 speaking the Bot API wire format.

Every request becomes an :class:`ApiCall` in ``state.calls``; it then passes the gates, the
flood check and the injected faults, in that order, before its method runs.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from .dispatch import MethodTable, decode_params
from .faults import DeliveryLog, FaultInjector
from .files import FileStore
from .protocol import BLOCKED, MAX_REQUEST_SIZE, ApiError, bad, error_body
from .records import ApiCall, UploadedFile
from .state import ServerState


async def read_request(request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """The request's values (query, JSON or form fields) and its multipart file parts."""
    raw: dict[str, Any] = dict(request.query)
    files: dict[str, UploadedFile] = {}
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise bad("Bad Request: request body must be a JSON object")
            raw.update(body)
        else:
            form = await request.post()
            for name, value in form.items():
                if isinstance(value, web.FileField):
                    files[name] = UploadedFile(
                        name, value.filename, value.content_type, value.file.read()
                    )
                else:
                    raw[name] = value
    return raw, files


class HttpApi:
    """Serves ``/bot<token>/<method>`` and file downloads; answers as Telegram does."""

    def __init__(
        self,
        state: ServerState,
        methods: MethodTable,
        faults: FaultInjector,
        files: FileStore,
    ) -> None:
        self._state = state
        self._methods = methods
        self._faults = faults
        self._files = files
        self._deliveries = DeliveryLog(state)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen on ``state.host``; an ephemeral ``state.port`` is replaced by the real one."""
        app = web.Application(client_max_size=MAX_REQUEST_SIZE)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._files.serve_download)
        # handler_cancellation: a client that hangs up (stop_polling, a killed bot) ends its
        # long poll here too, as on Telegram.
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._state.host, self._state.port)
        await site.start()
        self._state.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._serve_api(request)
        except asyncio.CancelledError:
            # The client hung up (stop_polling, a killed bot): the call never completes.
            for call in reversed(self._state.calls):
                if call.status is None and call.request is request:
                    call.status, call.description = 499, "client disconnected"
                    break
            self._state.notify()
            raise

    async def _serve_api(self, request: web.Request) -> web.StreamResponse:
        state = self._state
        if request.match_info["token"] != state.token:
            return web.json_response(error_body(401, "Unauthorized", None), status=401)
        name = request.match_info["method"]
        method = self._methods.canonical(name)
        call = ApiCall(len(state.calls), method or name, {}, {}, {}, request.content_type)
        call.request = request
        state.calls.append(call)
        refused = await self._parse(request, call)
        if refused is not None:
            return refused
        if method is None:
            state.unknown_methods.append(name)
            call.status, call.description = 404, "Not Found"
            state.notify()
            return web.json_response(error_body(404, "Not Found", None), status=404)
        return await self._execute(request, call, method)

    async def _parse(self, request: web.Request, call: ApiCall) -> web.Response | None:
        """Fill the call from the request; the error answer when it cannot be read."""
        try:
            call.raw, call.files = await read_request(request)
            call.params = decode_params(call.raw)
        except ApiError as exc:
            return self._answer_error(call, exc)
        except web.HTTPRequestEntityTooLarge:
            return self._answer_error(call, ApiError(413, "Request Entity Too Large"))
        except (ValueError, json.JSONDecodeError):
            return self._answer_error(call, bad("Bad Request: can't parse request"))
        return None

    async def _execute(self, request: web.Request, call: ApiCall, method: str) -> web.Response:
        """Gates, flood control, faults, then the method itself."""
        await self._faults.pass_gates(call)
        flood = self._state.flood.check(call)
        if flood is not None:
            return self._answer_error(call, flood)
        fault = self._faults.take(call)
        if fault is not None:
            if fault.drop is None:
                call.injected = True
                return self._answer_error(call, fault.error())
            if fault.drop == "before":
                return self._drop(request, call)
        try:
            result = await self._methods.run(method, call)
        except ApiError as exc:
            return self._answer_error(call, exc)
        call.status, call.result = 200, result
        dropped_after = fault is not None and fault.drop == "after"
        self._deliveries.note(call, answered=not dropped_after)
        if dropped_after:
            return self._drop(request, call)
        self._state.notify()
        return web.json_response({"ok": True, "result": result})

    def _answer_error(self, call: ApiCall, exc: ApiError) -> web.Response:
        call.status, call.description = exc.code, exc.description
        if exc.retry_after is not None:
            self._state.flood.close(call, exc.retry_after)
        if not call.injected and exc.description != BLOCKED:
            self._state.errors.append(call)
        self._state.notify()
        body = error_body(exc.code, exc.description, exc.retry_after)
        return web.json_response(body, status=exc.code)

    def _drop(self, request: web.Request, call: ApiCall) -> web.Response:
        """Close the connection: the bot gets no answer (the call may have taken effect)."""
        call.injected = True
        if call.status is None:
            call.status, call.description = 0, "connection dropped"
        if request.transport is not None:
            request.transport.close()
        self._state.notify()
        return web.Response(status=500)
