"""Building and running the bot: the factories for the Bot, the Dispatcher and the whole wired
bot (:func:`open_bot_app`), and :func:`run`.

Production (``python -m bot``) and the end-to-end tests build the same objects through
:func:`open_bot_app`, pointed at another Bot API server by ``TELEGRAM_API_BASE``; handler tests
on a mocked Bot API use :func:`create_bot` and :func:`create_dispatcher`, the pieces it is
made of.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError
from aiogram.types import BotCommand, BotCommandScopeDefault, User

from bot.config import BOT_OWNER_KINDS, BotAppSettings, StartupError, check_token
from bot.courtesy import introduce
from bot.error_handler import on_error
from bot.fetch import make_fetch
from bot.handlers import HandlerDeps, build_router
from bot.health import Heartbeat
from bot.i18n import catalog, t
from bot.ledger import SettleMiddleware, UpdateLedger
from bot.limits import LimitsConfig, TelegramLimits
from bot.middlewares import ContextMiddleware, TelegramTransportMiddleware
from bot.notify import ResumedReporter
from bot.services import BotServices
from bot.serving import (
    LeadershipLost,
    drain_updates,
    poll,
    poll_as_replica,
    replica_lock,
    serve_webhook,
)
from core.engine.engine import Engine
from core.ingest.pipeline import Fetch, IngestOutcome, OutcomeCallback
from storage.housekeeping import Housekeeper, Retention

log = logging.getLogger(__name__)

# The command menu (setMyCommands per language); descriptions are app-command-<name> texts.
COMMAND_NAMES = ("start", "help", "stats", "similar", "delete", "duplicates", "settings", "forget")


def create_bot(settings: BotAppSettings, *, session: AiohttpSession | None = None) -> Bot:
    """A Bot for ``BOT_TOKEN`` on Telegram or on ``TELEGRAM_API_BASE``, with HTML parse mode,
    flood control and retries (see :class:`~bot.middlewares.TelegramTransportMiddleware`)."""
    token = check_token(settings.bot)
    if session is None:
        if settings.bot.telegram_api_base:
            api = TelegramAPIServer.from_base(
                settings.bot.telegram_api_base, is_local=settings.bot.telegram_api_local
            )
            session = AiohttpSession(api=api)
        else:
            session = AiohttpSession()
    session.middleware(
        TelegramTransportMiddleware(
            attempts=settings.bot.telegram_retry_attempts,
            backoff_s=settings.bot.telegram_retry_backoff_s,
            limits=TelegramLimits(LimitsConfig.from_settings(settings.bot)),
            ledger=UpdateLedger(),
        )
    )
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


def transport_of(bot: Bot) -> TelegramTransportMiddleware | None:
    for middleware in bot.session.middleware:
        if isinstance(middleware, TelegramTransportMiddleware):
            return middleware
    return None


def create_dispatcher(settings: BotAppSettings, services: BotServices) -> Dispatcher:
    """A Dispatcher with every middleware, the root router, the handlers' dependencies (as
    workflow data: aiogram injects them by name), the error handler and the shutdown hooks."""
    deps = HandlerDeps.for_services(services)
    dp = Dispatcher(services=services, engine=services.engine, settings=settings, **deps.as_data())
    transport = transport_of(services.bot)
    if transport is not None and transport.ledger is not None:  # outermost: sees every update
        dp.update.outer_middleware(SettleMiddleware(transport.ledger))
    dp.update.outer_middleware(ContextMiddleware(services))
    dp.include_router(build_router())
    dp.errors.register(on_error)
    dp.shutdown.register(drain_updates)
    schedule_housekeeping(dp, make_housekeeper(services))
    dp.shutdown.register(deps.intake.close)  # after the drain: albums in progress get answered
    if transport is not None and transport.on_blocked is None:
        transport.on_blocked = lambda chat_id: mark_blocked(services, chat_id)
    return dp


def make_housekeeper(services: BotServices) -> Housekeeper:
    """The purge of old jobs, results and sessions, as the settings say."""
    settings = services.settings
    return services.engine.housekeeper(
        Retention.for_jobs(days=settings.housekeeping.jobs_retention_days),
        interval_s=settings.housekeeping.interval_s,
        chunk=settings.housekeeping.chunk_rows,
    )


def schedule_housekeeping(dp: Dispatcher, housekeeper: Housekeeper) -> None:
    """Run the housekeeper while the dispatcher runs (polling or webhook): its first pass at
    start-up, cancelled at shutdown, after updates drained and before the engine closes."""
    dp["housekeeper"] = housekeeper
    dp.startup.register(housekeeper.start)
    dp.shutdown.register(housekeeper.stop)


async def mark_blocked(services: BotServices, chat_id: int | str) -> None:
    """Remember that a chat blocked the bot (owner setting ``blocked``); cleared by the
    context middleware as soon as the user writes again."""
    chat = int(chat_id)
    owners = services.engine.owners
    owner = await owners.find("user" if chat > 0 else "chat", chat)
    if owner is not None and not owner.settings.get("blocked"):
        await owners.update_settings(owner.id, {"blocked": True})
    log.info("chat %s blocked the bot", chat)


async def set_commands(bot: Bot) -> None:
    """The command menu: English by default, and one per offered language."""
    for language_code, lang in catalog.profile_languages():
        commands = [
            BotCommand(command=c, description=t(f"app-command-{c}", lang)) for c in COMMAND_NAMES
        ]
        await bot.set_my_commands(
            commands, scope=BotCommandScopeDefault(), language_code=language_code
        )


class LateOutcomeListener:
    """The ingest pipeline starts (and may resume jobs) before the services exist; outcomes
    wait here until :meth:`bind` supplies the real listener, so none is lost."""

    def __init__(self) -> None:
        self._listener: OutcomeCallback | None = None
        self._bound = asyncio.Event()

    def bind(self, listener: OutcomeCallback | None) -> None:
        self._listener = listener
        self._bound.set()

    async def __call__(self, outcome: IngestOutcome) -> None:
        await self._bound.wait()
        if self._listener is None:
            return
        result = self._listener(outcome)
        if inspect.isawaitable(result):
            await result


@dataclass
class BotApp:
    """A wired bot, not yet serving: what :func:`open_bot_app` yields."""

    settings: BotAppSettings
    bot: Bot
    me: User
    engine: Engine
    services: BotServices
    dispatcher: Dispatcher
    reporter: ResumedReporter


@contextlib.asynccontextmanager
async def open_bot_app(
    settings: BotAppSettings, *, fetch: Fetch | None = None, session: AiohttpSession | None = None
) -> AsyncIterator[BotApp]:
    """The bot as ``python -m bot`` wires it: check the token with getMe, open the engine (models,
    storage, ingest resumes unfinished jobs; the OCR stage reads Telegram owners' items only)
    with the outcome listener that reports resumed work (:mod:`bot.notify`), build the services
    and the dispatcher. On exit the engine closes (in-
    flight jobs finish and still reach the reporter), pending summaries are sent and the HTTP
    session closes. ``fetch`` replaces the download from Telegram (tests)."""
    bot = create_bot(settings, session=session)
    listener = LateOutcomeListener()
    try:
        me = await get_me(bot, settings)
        engine = await Engine.open(
            settings,
            fetch=fetch or make_fetch(bot, settings),
            on_outcome=listener,
            ocr_owner_kinds=BOT_OWNER_KINDS,
            front_end=True,
        )
        services = BotServices(settings, engine, bot, bot_username=me.username)
        reporter = ResumedReporter(services)
        listener.bind(reporter)
        try:
            dispatcher = create_dispatcher(settings, services)
            yield BotApp(settings, bot, me, engine, services, dispatcher, reporter)
        finally:
            await engine.close()
            await reporter.close()  # send the pending "finished after a restart" summaries
    finally:
        listener.bind(None)
        await bot.session.close()


async def get_me(bot: Bot, settings: BotAppSettings) -> User:
    """The bot's own user; a rejected token or an unreachable Bot API is a start-up error."""
    try:
        return await bot.me()
    except TelegramUnauthorizedError:
        raise StartupError("BOT_TOKEN was rejected by Telegram (401 Unauthorized)") from None
    except TelegramNetworkError as exc:
        where = settings.bot.telegram_api_base or "api.telegram.org"
        raise StartupError(f"cannot reach the Bot API at {where}: {exc.message}") from None


class StopSignals:
    """SIGTERM/SIGINT set ``stop``; while the bot is still starting they also cancel the main
    task, so start-up unwinds through its ``finally`` blocks instead of finishing first."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.started = False
        self._main = asyncio.current_task()
        self._loop = asyncio.get_running_loop()

    def on_signal(self, signum: int) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        self.stop.set()
        if not self.started and self._main is not None:
            self._main.cancel()

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self._loop.add_signal_handler(sig, self.on_signal, sig)

    def remove(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self._loop.remove_signal_handler(sig)


async def run(
    settings: BotAppSettings,
    *,
    ready: Callable[[str], Any] = print,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the bot until SIGTERM/SIGINT (or ``stop`` is set): polling, or a webhook server when
    WEBHOOK_URL is set.

    Start-up: :func:`open_bot_app`, then the command menu and the descriptions (warning about
    inline mode off or privacy mode on), then one "ready" line.
    """
    heartbeat = Heartbeat.for_settings(settings)
    heartbeat.clear()  # a previous run's would look like a hung bot while this one starts
    signals = StopSignals(stop if stop is not None else asyncio.Event())
    signals.install()
    try:
        async with open_bot_app(settings) as app:
            try:
                await set_commands(app.bot)
                await introduce(app.bot, app.me)  # descriptions; warnings about @BotFather
                signals.started = True
                if not signals.stop.is_set():
                    await serve(app, signals.stop, lambda: ready(ready_line(app)), heartbeat)
            finally:
                heartbeat.clear()
                signals.remove()
    except LeadershipLost as exc:
        log.error("%s", exc)
        raise SystemExit(1) from None  # its supervisor starts it again, as a standby
    finally:
        heartbeat.clear()
        signals.remove()
        if signals.started:
            log.info("bot stopped")


async def serve(
    app: BotApp, stop: asyncio.Event, ready: Callable[[], Any], heartbeat: Heartbeat
) -> None:
    """Serve updates until ``stop``: a webhook server when WEBHOOK_URL is set, else polling (on
    a shared database only while this replica holds the polling lock, see bot.serving)."""
    lock = replica_lock(app.engine.db.connections, app.settings.bot.standby_retry_s)
    if app.settings.bot.webhook_url:
        await serve_webhook(app.dispatcher, app.bot, app.settings, stop, ready, heartbeat)
    elif lock is not None:
        await poll_as_replica(app.dispatcher, app.bot, lock, stop, ready, heartbeat)
    else:
        await poll(app.dispatcher, app.bot, stop, ready, heartbeat)


def ready_line(app: BotApp) -> str:
    models = ", ".join(app.engine.configs) or "none"
    return f"bot @{app.me.username} ready (models: {models})"
