"""A round-robin HTTP reverse proxy on 127.0.0.1 in front of webhook replicas, as a load
balancer would stand in front of several ``python -m bot`` processes in webhook mode.

A replica whose connection is refused (its process died) is skipped and the request goes to the
next one, as a load balancer's health check would take it out of rotation. A request that
reached a replica but got no answer (it died while answering) is NOT sent again: the proxy
answers 502 and Telegram delivers the update again later, so nothing is handled twice by the
proxy's doing.

    async with RoundRobinProxy([url_a, url_b]) as proxy:
        webhook_url = proxy.url
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

# Headers that belong to one hop, never forwarded (RFC 9110 section 7.6.1), plus the ones the
# client session computes itself.
HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


@dataclass(frozen=True)
class Routed:
    """One request the proxy passed on: which replica took it (its index, None: 502), and the
    Telegram update it carried (None for anything else)."""

    path: str
    replica: int | None
    status: int
    update_id: int | None = None


class RoundRobinProxy:
    """Forwards every request to the next replica in turn, skipping refused connections."""

    def __init__(self, replicas: Sequence[str], *, host: str = "127.0.0.1", port: int = 0) -> None:
        if not replicas:
            raise ValueError("a proxy needs at least one replica")
        self.replicas = [r.rstrip("/") for r in replicas]
        self.host = host
        self.port = port
        self.routed: list[Routed] = []
        self.refused: list[int] = []  # replica indexes, one per refused connection
        self._next = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> RoundRobinProxy:
        # No pooled connections: a replica killed between two requests must show as refused,
        # not as a reset of a kept-alive socket.
        connector = aiohttp.TCPConnector(force_close=True)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=30), auto_decompress=False
        )
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None and getattr(server, "sockets", None)
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> RoundRobinProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def served_by(self, replica: int) -> list[Routed]:
        """The requests replica ``replica`` answered."""
        return [r for r in self.routed if r.replica == replica]

    def replica_of(self, update_id: int) -> int | None:
        """Which replica answered the (last) delivery of an update; None if none did."""
        taken = [r.replica for r in self.routed if r.update_id == update_id and r.status < 300]
        return taken[-1] if taken else None

    def _turns(self) -> list[int]:
        """Replica indexes in the order to try for one request, starting at the next in turn."""
        start = self._next
        self._next = (self._next + 1) % len(self.replicas)
        n = len(self.replicas)
        return [(start + i) % n for i in range(n)]

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        for index in self._turns():
            target = self.replicas[index] + request.rel_url.path_qs
            try:
                async with self._session.request(
                    request.method, target, data=body, headers=headers, allow_redirects=False
                ) as upstream:
                    payload = await upstream.read()
                    out = {
                        k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS
                    }
                    self.routed.append(
                        Routed(request.path, index, upstream.status, update_id_of(body))
                    )
                    return web.Response(status=upstream.status, body=payload, headers=out)
            except aiohttp.ClientConnectorError:
                self.refused.append(index)  # down: out of rotation for this request
                continue
            except aiohttp.ClientError:
                break  # it took the request and died: never hand it to a second replica
        self.routed.append(Routed(request.path, None, 502, update_id_of(body)))
        return web.Response(status=502, text="no replica answered\n")


def update_id_of(body: bytes) -> int | None:
    """The ``update_id`` of a webhook delivery's JSON body, if it is one."""
    try:
        data: Any = json.loads(body) if body else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    value = data.get("update_id") if isinstance(data, dict) else None
    return value if isinstance(value, int) else None
