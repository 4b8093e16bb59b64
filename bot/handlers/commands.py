"""Commands: /start (and its ``inline`` payload, sent by the inline mode's button), /help,
/stats, /forget, /settings; chat-member changes; and the fallback that explains content the bot
cannot keep.

Buttons carry no trust: a /forget confirmation only works with the one-time token of
:mod:`bot.forget`, and settings buttons are checked against the allowed values
(:mod:`bot.owner_views`). Anything else gets a polite answer, never an exception.
"""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message

from bot import keyboards as kb
from bot.forget import ForgetCB, forget_token_valid, may_forget, pending_forget
from bot.i18n import LANGS, t
from bot.owner_views import SettingsCB, settings_change, settings_view, stats_text

if TYPE_CHECKING:
    from core.engine.engine import Engine
    from core.settings import Settings
    from storage.records import Owner

log = logging.getLogger(__name__)

# --- /start /help /stats ------------------------------------------------------------------------


async def on_start_inline(message: Message, bot: Bot, lang: str) -> None:
    """The inline mode's "open the bot" button: how to search from any chat."""
    me = await bot.me()
    await message.answer(t("commands-start-inline", lang, bot=html.escape(me.username or "")))


async def on_start(message: Message, lang: str) -> None:
    """No payload, or one we do not know: the welcome."""
    name = message.from_user.first_name if message.from_user else ""
    await message.answer(t("commands-start", lang, name=html.escape(name or "")))


async def on_help(message: Message, bot: Bot, lang: str) -> None:
    me = await bot.me()
    await message.answer(t("commands-help", lang, bot=html.escape(me.username or "bot")))


async def on_stats(
    message: Message, owner: Owner, lang: str, engine: Engine, settings: Settings
) -> None:
    await message.answer(await stats_text(engine, settings, owner, lang))


# --- /forget ------------------------------------------------------------------------------------


async def on_forget(message: Message, bot: Bot, owner: Owner, lang: str, engine: Engine) -> None:
    if not await may_forget(bot, message.chat, message.from_user):
        await message.answer(t("commands-forget-admins-only", lang))
        return
    stats = await engine.owners.stats(owner.id)
    queued = stats.jobs_by_state.get("pending", 0) + stats.jobs_by_state.get("running", 0)
    if stats.media_total == 0 and queued == 0:
        await message.answer(t("commands-forget-empty", lang))
        return
    pending = pending_forget(message.from_user)
    await engine.owners.update_settings(owner.id, {"forget": pending})
    token = pending["token"]
    markup = kb.keyboard(
        [
            [
                (t("commands-forget-yes", lang), ForgetCB(action="yes", token=token)),
                (t("commands-forget-no", lang), ForgetCB(action="no", token=token)),
            ]
        ]
    )
    await message.answer(t("commands-forget-ask", lang, n=stats.media_total), reply_markup=markup)


async def on_forget_button(
    query: CallbackQuery,
    callback_data: ForgetCB,
    bot: Bot,
    owner: Owner,
    lang: str,
    engine: Engine,
) -> None:
    message = kb.accessible(query)
    if message is None:
        await kb.answer(query, t("commands-button-stale", lang))
        return
    owners = engine.owners
    pending = (await owners.settings(owner.id)).get("forget")
    if not forget_token_valid(pending, callback_data, query.from_user):
        await kb.answer(query, t("commands-forget-invalid", lang))
        return
    if callback_data.action == "yes" and not await may_forget(bot, message.chat, query.from_user):
        await kb.answer(query, t("commands-forget-admins-only", lang))
        return
    if callback_data.action == "yes":
        result = await owners.forget(owner.id)
        log.info("owner %s forgot %d item(s)", owner.id, result.media_count)
        await kb.answer(query)
        await kb.edit(message, t("commands-forget-done", lang, n=result.media_count))
    elif callback_data.action == "no":
        await owners.update_settings(owner.id, {"forget": None})
        await kb.answer(query)
        await kb.edit(message, t("commands-forget-cancelled", lang))
    else:
        await kb.answer(query, t("commands-forget-invalid", lang))


# --- /settings ----------------------------------------------------------------------------------


async def on_settings(message: Message, owner: Owner, lang: str, settings: Settings) -> None:
    text, markup = settings_view(settings, owner.settings, lang)
    await message.answer(text, reply_markup=markup)


async def on_settings_button(
    query: CallbackQuery,
    callback_data: SettingsCB,
    owner: Owner,
    lang: str,
    engine: Engine,
    settings: Settings,
) -> None:
    message = kb.accessible(query)
    if message is None:
        await kb.answer(query, t("commands-button-stale", lang))
        return
    change = settings_change(callback_data)
    if change is None:
        await kb.answer(query, t("commands-button-invalid", lang))
        return
    current = await engine.owners.update_settings(owner.id, change)
    lang = current.get("lang", lang) if current.get("lang") in LANGS else lang
    text, markup = settings_view(settings, current, lang)
    await kb.answer(query, t("commands-saved", lang))
    await kb.edit(message, text, markup)


# --- a group became a supergroup: its collection follows the new chat id -------------------------


async def move_group(engine: Engine, old_chat_id: int, new_chat_id: int) -> None:
    moved = await engine.owners.move("chat", old_chat_id, new_chat_id)
    if moved is not None:
        log.info("owner %s moved from chat %s to %s", moved.id, old_chat_id, new_chat_id)


async def on_migrated_to(message: Message, engine: Engine) -> None:
    assert message.migrate_to_chat_id is not None
    await move_group(engine, message.chat.id, message.migrate_to_chat_id)


async def on_migrated_from(message: Message, engine: Engine) -> None:
    assert message.migrate_from_chat_id is not None
    await move_group(engine, message.migrate_from_chat_id, message.chat.id)


# --- the user blocked / unblocked the bot -------------------------------------------------------


async def on_membership(update: ChatMemberUpdated, owner: Owner, engine: Engine) -> None:
    status = update.new_chat_member.status
    blocked = status in ("kicked", "left")
    await engine.owners.update_settings(owner.id, {"blocked": True if blocked else None})
    log.info("owner %s %s the bot", owner.id, "blocked" if blocked else "unblocked")


def build_router() -> Router:
    """Command handlers and button callbacks of this module; a new Router per dispatcher."""
    r = Router(name="commands")
    r.message.register(on_start_inline, CommandStart(deep_link=True, magic=F.args == "inline"))
    r.message.register(on_start, CommandStart())
    r.message.register(on_help, Command("help"))
    r.message.register(on_stats, Command("stats"))
    r.message.register(on_forget, Command("forget"))
    r.callback_query.register(on_forget_button, ForgetCB.filter())
    r.message.register(on_settings, Command("settings"))
    r.callback_query.register(on_settings_button, SettingsCB.filter())
    r.message.register(on_migrated_to, F.migrate_to_chat_id)
    r.message.register(on_migrated_from, F.migrate_from_chat_id)
    r.my_chat_member.register(on_membership, F.chat.type == ChatType.PRIVATE)
    return r


# --- fallback -----------------------------------------------------------------------------------


async def on_sticker(message: Message, lang: str) -> None:
    await message.answer(t("commands-unsupported-sticker", lang))


async def on_audio(message: Message, lang: str) -> None:
    await message.answer(t("commands-unsupported-audio", lang))


async def on_document(message: Message, lang: str) -> None:
    doc = message.document
    name = (doc.file_name or doc.mime_type or "?") if doc else "?"
    await message.answer(t("commands-unsupported-document", lang, name=html.escape(name)))


async def on_unknown_command(message: Message, lang: str) -> None:
    await message.answer(t("commands-unsupported-command", lang))


async def on_text(message: Message, lang: str) -> None:
    await message.answer(t("commands-unsupported-text", lang))


async def on_other(message: Message, lang: str) -> None:
    await message.answer(t("commands-unsupported", lang))


async def on_unknown_button(query: CallbackQuery, lang: str) -> None:
    await kb.answer(query, t("commands-button-invalid", lang))


def build_fallback_router() -> Router:
    """Registered last: whatever no feature handled. Quiet in groups (no spam: its messages are
    for private chats only), helpful in private chats; unknown or tampered buttons get an
    answer so the client stops spinning."""
    r = Router(name="fallback")
    private = Router(name="fallback-private")
    private.message.filter(F.chat.type == ChatType.PRIVATE)
    private.message.register(on_sticker, F.sticker)
    private.message.register(on_audio, F.voice | F.audio)
    private.message.register(on_document, F.document)
    private.message.register(on_unknown_command, F.text.startswith("/"))
    private.message.register(on_text, F.text)
    private.message.register(on_other)
    r.include_router(private)
    r.callback_query.register(on_unknown_button)
    return r
