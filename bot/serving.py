"""Serving updates until asked to stop: long polling, or a webhook server; and letting the
updates in progress finish before the engine closes under them.

Several front ends may share one PostgreSQL database. Webhook replicas are all active (a load
balancer spreads the updates). Polling replicas cannot all poll (Telegram serves one
``getUpdates`` caller), so they take turns on a lock (:class:`~storage.leadership.Leadership`):
the holder polls, the others log "standby: waiting for the active replica" and take over within
``BOT_STANDBY_RETRY_S`` of its death. A holder that loses the lock (its database connection
failed) stops polling and exits with code 1, so its supervisor starts it again as a standby: a
dispatcher's shutdown closes the answer collectors, so it is not restarted in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.config import BotAppSettings
from bot.health import Heartbeat, PollingHeartbeat, add_healthz, beat_until
from storage.dbapi import Backend
from storage.leadership import Leadership

log = logging.getLogger(__name__)

# How long a stopping bot lets in-flight updates finish (albums waiting for stragglers, ...).
DRAIN_TIMEOUT_S = 15.0


class LeadershipLost(RuntimeError):
    """The active polling replica no longer holds the lock: another may be polling already."""


async def drain_updates(dispatcher: Dispatcher) -> None:
    """Let updates already being handled finish before the engine closes under them."""
    tasks = [t for t in getattr(dispatcher, "_handle_update_tasks", ()) if not t.done()]
    if not tasks:
        return
    log.info("waiting for %d update(s) in progress", len(tasks))
    _done, pending = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT_S)
    if pending:
        log.warning("%d update(s) still running at shutdown", len(pending))


async def poll(
    dp: Dispatcher,
    bot: Bot,
    stop: asyncio.Event,
    ready: Callable[[], Any],
    heartbeat: Heartbeat,
) -> None:
    """Long polling until ``stop``. A webhook left over from webhook mode would make getUpdates
    fail, so it is removed first, keeping the queued updates (never dropped). The heartbeat
    beats when the Bot API answered that and then after every getUpdates that returns."""
    await bot.delete_webhook(drop_pending_updates=False)
    heartbeat.beat()
    if not any(isinstance(m, PollingHeartbeat) for m in bot.session.middleware):
        bot.session.middleware(PollingHeartbeat(heartbeat))
    polling = asyncio.create_task(
        dp.start_polling(
            bot,
            handle_signals=False,
            close_bot_session=False,
            polling_timeout=heartbeat.period,
        )
    )
    ready()
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({polling, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not polling.done():
            with contextlib.suppress(RuntimeError):  # not started yet
                await dp.stop_polling()
        await polling
    finally:
        stopper.cancel()
        if not polling.done():
            polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polling


def replica_lock(backend: Backend, retry_s: float) -> Leadership | None:
    """The polling lock of a shared (PostgreSQL) database; None for SQLite (one process)."""
    return Leadership.of(backend, "polling", retry_s=retry_s)


async def poll_as_replica(
    dp: Dispatcher,
    bot: Bot,
    leadership: Leadership,
    stop: asyncio.Event,
    ready: Callable[[], Any],
    heartbeat: Heartbeat,
) -> None:
    """Polling on a shared database: wait as a standby until this replica holds the lock (the
    heartbeat beats at each try: a standby is healthy), then poll until ``stop``; raises
    :class:`LeadershipLost` when the lock goes first."""
    try:
        if not await leadership.try_acquire():
            log.info("standby: waiting for the active replica")
            heartbeat.beat()
            ready()
            ready = _nothing
            if not await leadership.acquire(stop, on_retry=heartbeat.beat):
                return
        log.info("active: polling")
        until = asyncio.Event()
        watcher = asyncio.create_task(_watch_lock(leadership, stop, until))
        try:
            await poll(dp, bot, until, ready, heartbeat)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if not stop.is_set():
            raise LeadershipLost("lost the polling lock (database connection failed): stopped")
    finally:
        await leadership.release()


async def _watch_lock(leadership: Leadership, stop: asyncio.Event, until: asyncio.Event) -> None:
    try:
        await leadership.lost(stop)
    finally:
        until.set()


def _nothing() -> None:
    return None


async def serve_webhook(
    dp: Dispatcher,
    bot: Bot,
    settings: BotAppSettings,
    stop: asyncio.Event,
    ready: Callable[[], Any],
    heartbeat: Heartbeat,
) -> None:
    """An aiohttp server Telegram posts updates to; each update is handled in the background so
    albums arrive concurrently, as with polling. It also answers ``GET /healthz``, and the
    heartbeat beats on a timer while it runs."""
    secret = settings.bot.webhook_secret.get_secret_value() if settings.bot.webhook_secret else None
    app = web.Application()
    handler = SimpleRequestHandler(
        dispatcher=dp, bot=bot, secret_token=secret, handle_in_background=True
    )
    handler.register(app, path=settings.bot.webhook_path)
    add_healthz(app)
    setup_application(app, dp, bot=bot)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.bot.webhook_host, settings.bot.webhook_port)
        await site.start()
        url = f"{settings.bot.webhook_url}{settings.bot.webhook_path}"
        await bot.set_webhook(
            url,
            secret_token=secret,
            allowed_updates=dp.resolve_used_update_types(),
            drop_pending_updates=False,
        )
        ready()
        await beat_until(heartbeat, stop)
        # Telegram keeps updates queued while the webhook is unreachable; nothing is dropped.
        tasks = [t for t in getattr(handler, "_background_feed_update_tasks", ()) if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT_S)
    finally:
        await runner.cleanup()  # runs the dispatcher's shutdown hooks (drains updates)
