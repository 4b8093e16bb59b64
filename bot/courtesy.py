"""The small things a native bot does: "sending photo…" while it works, a 👌 on a photo it
saved quietly, the description people read before /start, and a word to the operator when
@BotFather settings keep features from working.

All of it is best effort: a chat action or a reaction that Telegram refuses (reactions off in
the chat, flood control, a network hiccup) is logged at debug level and never reaches the work
it decorates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, cast

from aiogram.enums import ChatAction
from aiogram.exceptions import TelegramAPIError
from aiogram.types import ReactionTypeEmoji
from aiogram.utils.chat_action import ChatActionSender

from bot.i18n import catalog, t
from core.errors import IngestInterruptedError

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.types import User

    from core.ingest.pipeline import Ticket

log = logging.getLogger(__name__)

# One of the emoji Telegram allows as a reaction: "got it, it is in the collection".
SAVED_REACTION = "👌"

# --- chat actions ---------------------------------------------------------------------------


class _QuietBot:
    """The one call :class:`ChatActionSender` makes, with failures swallowed and each call
    bounded by ``timeout``, so leaving the sender never waits out a flood-control pause."""

    def __init__(self, bot: Bot, timeout: float) -> None:
        self._bot = bot
        self._timeout = timeout

    @property
    def id(self) -> int:
        return self._bot.id

    async def send_chat_action(self, **kwargs: Any) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._bot.send_chat_action(**kwargs)
        except Exception as exc:  # a courtesy: never a reason for the work to fail
            log.debug("chat action not sent: %s", exc or type(exc).__name__)
            return False


def chat_action(bot: Bot, chat_id: int, action: ChatAction, interval: float) -> ChatActionSender:
    """``async with chat_action(...)``: ``action`` shown in the chat, repeated every
    ``interval`` seconds (Telegram shows one for 5 s) until the block ends."""
    quiet = cast("Bot", _QuietBot(bot, interval))
    return ChatActionSender(bot=quiet, chat_id=chat_id, action=action, interval=interval)


# --- reactions ------------------------------------------------------------------------------


async def react(bot: Bot, chat_id: int, message_id: int, emoji: str = SAVED_REACTION) -> bool:
    """Put ``emoji`` on a message; False when Telegram refused (e.g. reactions are off)."""
    try:
        await bot.set_message_reaction(
            chat_id, message_id, reaction=[ReactionTypeEmoji(emoji=emoji)]
        )
    except Exception as exc:
        log.debug("no reaction on message %s in chat %s: %s", message_id, chat_id, exc)
        return False
    return True


class IngestGestures:
    """Courtesies that follow a submitted ingest job in the background: "typing…" while a
    video is sampled and embedded, a reaction once an item posted in a group is in."""

    def __init__(self, bot: Bot, interval: float) -> None:
        self.bot = bot
        self.interval = interval
        self._tasks: set[asyncio.Task[None]] = set()

    def busy_while(
        self, chat_id: int, ticket: Ticket, action: ChatAction = ChatAction.TYPING
    ) -> None:
        """Show ``action`` in the chat until the job has ended."""
        self._spawn(self._busy(chat_id, ticket, action))

    def react_when_kept(self, chat_id: int, message_id: int, ticket: Ticket) -> None:
        """Once the job ends with the item in the collection (saved now or already there),
        react to its message: in a group that is the only acknowledgement."""
        self._spawn(self._react(chat_id, message_id, ticket))

    async def _busy(self, chat_id: int, ticket: Ticket, action: ChatAction) -> None:
        async with chat_action(self.bot, chat_id, action, self.interval):
            with contextlib.suppress(Exception):  # the answer collector reports failures
                await ticket.result()

    async def _react(self, chat_id: int, message_id: int, ticket: Ticket) -> None:
        try:
            outcome = await ticket.result()
        except IngestInterruptedError:
            return  # shutting down: the job resumes at the next start
        except Exception:
            log.debug("job %d ended without an outcome", ticket.job_id, exc_info=True)
            return
        if not outcome.failed:
            await react(self.bot, chat_id, message_id)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Shutdown: drop what is still waiting (a job that resumes later is not reacted to)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --- start-up -------------------------------------------------------------------------------


def warn_about_me(me: User) -> list[str]:
    """Log (and return) one warning per @BotFather setting that disables a feature."""
    warnings = []
    if me.supports_inline_queries is False:
        warnings.append(
            "inline mode is off: enable it with @BotFather /setinline, or searching from any "
            f"chat with @{me.username} will not work"
        )
    if me.can_read_all_group_messages is False:
        warnings.append(
            "privacy mode is on: in groups the bot only sees commands, replies to it and "
            "@mentions, so photos posted there are not saved; turn it off with @BotFather "
            "/setprivacy (then re-add the bot to its groups) or make the bot a group admin"
        )
    for line in warnings:
        log.warning(line)
    return warnings


async def publish_profile(bot: Bot, username: str | None) -> int:
    """Set the description and short description in each language where Telegram's differ.

    Read first, set only what changed: both setters are rate limited hard, and a bot that
    restarts often would otherwise hit flood control on every start. A refusal is logged and
    start-up goes on (the texts are a courtesy). Returns how many texts were set.
    """
    changed = 0
    for language_code, lang in catalog.profile_languages():
        description = t("courtesy-description", lang, bot=username or "bot")
        short = t("courtesy-short-description", lang)
        try:
            current = await bot.get_my_description(language_code=language_code)
            if current.description != description:
                await bot.set_my_description(description, language_code=language_code)
                changed += 1
            current_short = await bot.get_my_short_description(language_code=language_code)
            if current_short.short_description != short:
                await bot.set_my_short_description(short, language_code=language_code)
                changed += 1
        except TelegramAPIError as exc:
            log.warning("could not set the bot's description (%s): %s", language_code, exc)
    if changed:
        log.info("bot description updated (%d text(s))", changed)
    return changed


async def introduce(bot: Bot, me: User) -> None:
    """Start-up courtesies: warnings for the operator, descriptions for users."""
    warn_about_me(me)
    await publish_profile(bot, me.username)
