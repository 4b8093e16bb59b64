"""The bot's health signal, for container and service managers.

A running bot keeps a heartbeat, ``DATA_DIR/health``: in polling mode it is refreshed after each
getUpdates that returns (a long poll returns at least every polling timeout, updates or not), in
webhook mode every polling timeout while the web server runs, which also answers
``GET /healthz``. ``python -m bot health`` reads it: exit 0 when the heartbeat is fresh (and the
webhook answers), 1 with one line saying why not.

The heartbeat carries how old it may get, derived from the running bot's polling timeout, so the
check needs no settings but DATA_DIR. Only the standard library is imported here: the check runs
every few seconds, and importing aiogram takes seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from aiohttp import web

    from bot.config import BotAppSettings

log = logging.getLogger(__name__)

HEARTBEAT_FILE = "health"
HEALTHZ_PATH = "/healthz"
# A busy bot gets many getUpdates answers a second; the file is rewritten at most this often.
MIN_WRITE_INTERVAL_S = 1.0
PROBE_TIMEOUT_S = 5.0
EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 1

Mode = Literal["polling", "webhook"]


def stale_after_s(polling_timeout: float) -> float:
    """How old a heartbeat may get: a healthy poll returns within one polling timeout; three
    leave room for a slow round-trip and a retry after one failed call."""
    return 3.0 * polling_timeout


def heartbeat_path(data_dir: Path) -> Path:
    return data_dir / HEARTBEAT_FILE


def healthz_url(settings: BotAppSettings) -> str:
    """Where the webhook server answers on this machine (a wildcard address means loopback)."""
    host = settings.bot.webhook_host.strip("[]")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.bot.webhook_port}{HEALTHZ_PATH}"


class Heartbeat:
    """Writes the heartbeat file: JSON with the mode, the time of the last sign of life (Unix
    seconds), how old it may get and, in webhook mode, the URL to probe. Written atomically, so
    a check never reads half a file. ``period`` is the longest a healthy bot goes between beats
    (its polling timeout)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        mode: Mode,
        period: int,
        url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = heartbeat_path(data_dir)
        self.mode = mode
        self.period = period
        self.stale_after = stale_after_s(period)
        self.url = url
        self._clock = clock
        self._last = float("-inf")
        self._failing = False

    @classmethod
    def for_settings(cls, settings: BotAppSettings) -> Heartbeat:
        """The heartbeat of a bot run with these settings (polling, or webhook when WEBHOOK_URL
        is set)."""
        period = settings.bot.polling_timeout_s  # also the webhook heartbeat's period
        if settings.bot.webhook_url:
            url = healthz_url(settings)
            return cls(settings.data.dir, mode="webhook", period=period, url=url)
        return cls(settings.data.dir, mode="polling", period=period)

    def beat(self) -> None:
        """Record a sign of life now (skipped when the last one is under a second old)."""
        now = self._clock()
        if now - self._last < MIN_WRITE_INTERVAL_S:
            return
        record: dict[str, Any] = {
            "mode": self.mode,
            "at": now,
            "stale_after_s": self.stale_after,
            "pid": os.getpid(),
        }
        if self.url is not None:
            record["url"] = self.url
        tmp = self.path.with_name(f"{self.path.name}.tmp")
        try:
            tmp.write_text(json.dumps(record), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            if not self._failing:  # once, not every second: the check reports it anyway
                log.warning("cannot write the heartbeat %s: %s", self.path, exc)
            self._failing = True
            return
        self._last = now
        self._failing = False

    def clear(self) -> None:
        """No heartbeat: the bot is starting or has stopped (a stale one would say "hung")."""
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


class PollingHeartbeat:
    """A request middleware on the bot's session: every getUpdates that returns without an
    error beats the heartbeat. Other calls pass through untouched."""

    def __init__(self, heartbeat: Heartbeat) -> None:
        self.heartbeat = heartbeat

    async def __call__(
        self,
        make_request: Callable[[Any, Any], Awaitable[Any]],
        bot: Any,
        method: Any,
    ) -> Any:
        response = await make_request(bot, method)
        if getattr(method, "__api_method__", None) == "getUpdates":
            self.heartbeat.beat()
        return response


async def beat_until(heartbeat: Heartbeat, stop: asyncio.Event) -> None:
    """The webhook's heartbeat: a beat every period until ``stop`` is set. Telegram may post
    nothing for hours, so the beats come from a timer, not from updates."""
    while not stop.is_set():
        heartbeat.beat()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), heartbeat.period)


def add_healthz(app: web.Application) -> None:
    """``GET /healthz`` on the webhook server: answered while it accepts requests."""
    from aiohttp import web

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app.router.add_get(HEALTHZ_PATH, healthz)


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    reason: str


def read_heartbeat(path: Path) -> dict[str, Any] | Verdict:
    """The heartbeat record, or the unhealthy verdict of a missing or unreadable one."""
    try:
        record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        float(record["at"]), float(record["stale_after_s"])  # both must be numbers
    except FileNotFoundError:
        return Verdict(False, f"no heartbeat at {path}: the bot is not running or still starting")
    except (OSError, ValueError, TypeError, KeyError) as exc:
        return Verdict(False, f"unreadable heartbeat at {path}: {exc}")
    return record


def probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when ``url`` answers 200, else what went wrong. Proxies are bypassed: the server
    is on this machine."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "reason", None) or exc)
    return None if status == 200 else f"HTTP {status}"


def check(
    data_dir: Path,
    *,
    now: float | None = None,
    probe_url: Callable[[str], str | None] = probe,
) -> Verdict:
    """Is the bot polling or serving its webhook? Judged from its heartbeat (and the webhook's
    answer to ``GET /healthz``)."""
    record = read_heartbeat(heartbeat_path(data_dir))
    if isinstance(record, Verdict):
        return record
    mode = record.get("mode", "polling")
    age = max(0.0, (time.time() if now is None else now) - float(record["at"]))
    bound = float(record["stale_after_s"])
    sign = "getUpdates" if mode == "polling" else "heartbeat"
    if age > bound:
        return Verdict(False, f"stale heartbeat: last {sign} {age:.0f}s ago (bound {bound:g}s)")
    url = record.get("url")
    if mode == "webhook" and url:
        problem = probe_url(str(url))
        if problem is not None:
            return Verdict(False, f"webhook server at {url} is not answering: {problem}")
    return Verdict(True, f"healthy: {mode}, last {sign} {age:.0f}s ago")


def main(settings: BotAppSettings) -> int:
    """``python -m bot health``: one line, exit 0 (healthy) or 1 (not)."""
    verdict = check(settings.data.dir)
    if verdict.healthy:
        print(verdict.reason, flush=True)
        return EXIT_HEALTHY
    print(f"unhealthy: {verdict.reason}", file=sys.stderr, flush=True)
    return EXIT_UNHEALTHY
