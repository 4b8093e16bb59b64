"""Building and running the bot: factories for the Bot and the Dispatcher, and :func:`run`.

Tests build the same objects as production through :func:`create_bot` and
:func:`create_dispatcher`, pointed at another Bot API server by ``TELEGRAM_API_BASE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
from collections.abc import Callable
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import BotCommand, BotCommandScopeDefault, ErrorEvent, User

from bot.config import StartupError, check_token
from bot.courtesy import introduce
from bot.handlers import build_router
from bot.health import Heartbeat, PollingHeartbeat, add_healthz, beat_until
from bot.i18n import catalog, pick_lang, t
from bot.ledger import SettleMiddleware, UpdateLedger
from bot.limits import LimitsConfig, TelegramLimits
from bot.middlewares import ContextMiddleware, TelegramTransportMiddleware
from bot.services import BotServices
from core.errors import FileGoneError
from core.ingest.pipeline import Fetch, IngestOutcome, IngestRequest, OutcomeCallback
from core.settings import Settings
from storage.housekeeping import Housekeeper, Retention

log = logging.getLogger(__name__)

# How long a stopping bot lets in-flight updates finish (albums waiting for stragglers, ...).
DRAIN_TIMEOUT_S = 15.0

# The command menu (setMyCommands per language); descriptions are app-command-<name> texts.
COMMAND_NAMES = ("start", "help", "stats", "similar", "delete", "settings", "forget")


def create_bot(settings: Settings, *, session: AiohttpSession | None = None) -> Bot:
    """A Bot for ``BOT_TOKEN`` on Telegram or on ``TELEGRAM_API_BASE``, with HTML parse mode,
    flood control and retries (see :class:`~bot.middlewares.TelegramTransportMiddleware`)."""
    token = check_token(settings)
    if session is None:
        if settings.telegram_api_base:
            api = TelegramAPIServer.from_base(
                settings.telegram_api_base, is_local=settings.telegram_api_local
            )
            session = AiohttpSession(api=api)
        else:
            session = AiohttpSession()
    session.middleware(
        TelegramTransportMiddleware(
            attempts=settings.telegram_retry_attempts,
            backoff_s=settings.telegram_retry_backoff_s,
            limits=TelegramLimits(LimitsConfig.from_settings(settings)),
            ledger=UpdateLedger(),
        )
    )
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


def transport_of(bot: Bot) -> TelegramTransportMiddleware | None:
    for middleware in bot.session.middleware:
        if isinstance(middleware, TelegramTransportMiddleware):
            return middleware
    return None


def create_dispatcher(settings: Settings, services: BotServices) -> Dispatcher:
    """A Dispatcher with the context middleware, the root router and an error handler."""
    dp = Dispatcher(services=services, engine=services.engine, settings=settings)
    transport = transport_of(services.bot)
    if transport is not None and transport.ledger is not None:  # outermost: sees every update
        dp.update.outer_middleware(SettleMiddleware(transport.ledger))
    dp.update.outer_middleware(ContextMiddleware(services))
    dp.include_router(build_router(services))
    dp.errors.register(_on_error)
    dp.shutdown.register(_drain_updates)
    schedule_housekeeping(dp, make_housekeeper(services))
    if transport is not None and transport.on_blocked is None:
        transport.on_blocked = lambda chat_id: mark_blocked(services, chat_id)
    return dp


def make_housekeeper(services: BotServices) -> Housekeeper:
    """The purge of old jobs, results and sessions, as the settings say."""
    settings = services.settings
    return services.engine.housekeeper(
        Retention.for_jobs(days=settings.jobs_retention_days),
        interval_s=settings.housekeeping_interval_s,
        chunk=settings.housekeeping_chunk_rows,
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


# Telegram answers that mean "nothing to do", not a bug: the user blocked the bot, a button of
# a deleted message, an edit identical to the current text, a callback answered too late.
_BENIGN_BAD_REQUESTS = (
    "message is not modified",
    "query is too old",
    "message to edit not found",
    "message to delete not found",
    "message can't be edited",
)


async def _on_error(event: ErrorEvent, **data: Any) -> bool:
    """Benign Telegram errors are logged and dropped. Anything else gets a polite answer to the
    user and is then left unhandled, so aiogram logs it with its traceback."""
    exc = event.exception
    if isinstance(exc, TelegramForbiddenError):
        log.info("update %s: %s", event.update.update_id, exc.message)
        return True
    if isinstance(exc, TelegramBadRequest | TelegramNotFound) and any(
        s in exc.message.lower() for s in _BENIGN_BAD_REQUESTS
    ):
        log.info("update %s: %s", event.update.update_id, exc.message)
        return True
    if isinstance(exc, TelegramNetworkError | TelegramServerError | TelegramRetryAfter):
        # Telegram itself failed after the transport's retries (or a send's outcome is unknown
        # and it must not be repeated): one more message to it would fail or duplicate.
        log.warning("update %s: Telegram failed: %s", event.update.update_id, exc)
        return True
    user: User | None = data.get("event_from_user")
    lang = data.get("lang") or pick_lang(None, user.language_code if user else None)
    update = event.update
    with contextlib.suppress(Exception):
        if update.message is not None and update.message.chat.type == "private":
            await update.message.answer(t("app-error", lang))
        elif update.callback_query is not None:
            await update.callback_query.answer(t("app-error-short", lang))
    from aiogram.dispatcher.event.bases import SkipHandler

    raise SkipHandler  # unhandled: aiogram logs the original exception


async def _drain_updates(dispatcher: Dispatcher) -> None:
    """Let updates already being handled finish before the engine closes under them."""
    tasks = [t for t in getattr(dispatcher, "_handle_update_tasks", ()) if not t.done()]
    if not tasks:
        return
    log.info("waiting for %d update(s) in progress", len(tasks))
    _done, pending = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT_S)
    if pending:
        log.warning("%d update(s) still running at shutdown", len(pending))


async def set_commands(bot: Bot) -> None:
    """The command menu: English by default, and one per offered language."""
    for language_code, lang in catalog.profile_languages():
        commands = [
            BotCommand(command=c, description=t(f"app-command-{c}", lang)) for c in COMMAND_NAMES
        ]
        await bot.set_my_commands(
            commands, scope=BotCommandScopeDefault(), language_code=language_code
        )


def make_fetch(bot: Bot, settings: Settings) -> Fetch:
    """The file fetcher for ingest; a placeholder that fails cleanly if the real one is absent."""
    try:
        from bot.fetch import make_fetch as real_make_fetch
    except ModuleNotFoundError as exc:
        if exc.name != "bot.fetch":
            raise
        log.warning("bot.fetch is not available: items cannot be downloaded")

        async def unavailable(request: IngestRequest, thumbnail: bool) -> bytes:
            raise FileGoneError("downloading from Telegram is not available in this build")

        return unavailable
    return real_make_fetch(bot, settings)


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


def make_outcome_listener(services: BotServices) -> OutcomeCallback | None:
    try:
        from bot.notify import make_outcome_listener as real
    except ModuleNotFoundError as exc:
        if exc.name != "bot.notify":
            raise
        log.warning("bot.notify is not available: resumed jobs finish silently")
        return None
    return real(services)


async def run(
    settings: Settings,
    *,
    ready: Callable[[str], Any] = print,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the bot until SIGTERM/SIGINT (or ``stop`` is set): polling, or a webhook server when
    WEBHOOK_URL is set.

    Start-up: check the token with getMe, open the engine (models, storage, ingest resumes
    unfinished jobs), set the command menu and the descriptions (warning about inline mode off
    or privacy mode on), then print one "ready" line.
    """
    from core.engine.engine import Engine

    bot = create_bot(settings)
    heartbeat = Heartbeat.for_settings(settings)
    heartbeat.clear()  # a previous run's would look like a hung bot while this one starts
    stop = stop if stop is not None else asyncio.Event()
    main = asyncio.current_task()
    started = False

    def on_signal(signum: int) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()
        if not started and main is not None:
            main.cancel()  # still starting up: unwind through the finally blocks below

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal, sig)
    listener = LateOutcomeListener()
    engine = None
    reporter: Any = None
    try:
        me = await _get_me(bot, settings)
        engine = await Engine.open(settings, fetch=make_fetch(bot, settings), on_outcome=listener)
        services = BotServices(settings, engine, bot, bot_username=me.username)
        reporter = make_outcome_listener(services)
        listener.bind(reporter)
        dp = create_dispatcher(settings, services)
        await set_commands(bot)
        await introduce(bot, me)  # descriptions; warnings about @BotFather settings
        started = True
        if stop.is_set():
            return
        models = ", ".join(engine.configs) or "none"
        line = _ready(me, models)
        if settings.webhook_url:
            await _serve_webhook(dp, bot, settings, stop, lambda: ready(line), heartbeat)
        else:
            await _poll(dp, bot, stop, lambda: ready(line), heartbeat)
    finally:
        heartbeat.clear()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        try:
            if engine is not None:
                await engine.close()  # in-flight jobs finish and still reach the reporter
            close = getattr(reporter, "close", None)
            if close is not None:
                await close()  # send the pending "finished after a restart" summaries
        finally:
            listener.bind(None)
            await bot.session.close()
        if started:
            log.info("bot stopped")


def _ready(me: User, models: str) -> str:
    return f"bot @{me.username} ready (models: {models})"


async def _get_me(bot: Bot, settings: Settings) -> User:
    from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

    try:
        return await bot.me()
    except TelegramUnauthorizedError:
        raise StartupError("BOT_TOKEN was rejected by Telegram (401 Unauthorized)") from None
    except TelegramNetworkError as exc:
        where = settings.telegram_api_base or "api.telegram.org"
        raise StartupError(f"cannot reach the Bot API at {where}: {exc.message}") from None


async def _poll(
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


async def _serve_webhook(
    dp: Dispatcher,
    bot: Bot,
    settings: Settings,
    stop: asyncio.Event,
    ready: Callable[[], Any],
    heartbeat: Heartbeat,
) -> None:
    """An aiohttp server Telegram posts updates to; each update is handled in the background so
    albums arrive concurrently, as with polling. It also answers ``GET /healthz``, and the
    heartbeat beats on a timer while it runs."""
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
    from aiohttp import web

    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    app = web.Application()
    handler = SimpleRequestHandler(
        dispatcher=dp, bot=bot, secret_token=secret, handle_in_background=True
    )
    handler.register(app, path=settings.webhook_path)
    add_healthz(app)
    setup_application(app, dp, bot=bot)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.webhook_host, settings.webhook_port)
        await site.start()
        url = f"{settings.webhook_url}{settings.webhook_path}"
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
