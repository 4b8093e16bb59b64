"""Commands: /start (and its ``inline`` payload, sent by the inline mode's button), /help,
/stats, /forget, /settings; chat-member changes; and the fallback that explains content the bot
cannot keep.

Buttons carry no trust: a /forget confirmation only works with the one-time token stored in the
owner's settings when /forget was sent (by the same user, within a few minutes), and settings
buttons are checked against the allowed values. Anything else gets a polite answer, never an
exception.
"""

from __future__ import annotations

import html
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from aiogram import F, Router
from aiogram.enums import ChatMemberStatus, ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandStart
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    CallbackQuery,
    Chat,
    ChatMemberUpdated,
    InlineKeyboardMarkup,
    Message,
    User,
)

from bot import keyboards as kb
from bot.i18n import LANGS, t
from bot.services import DEFAULT_STRICTNESS, PAGE_SIZES, STRICTNESS

if TYPE_CHECKING:
    from bot.services import BotServices
    from core.engine.engine import Engine
    from storage.records import Owner

log = logging.getLogger(__name__)

# A /forget confirmation is valid this long after the command.
FORGET_TTL_S = 15 * 60

# Media kinds in the order /stats lists them (each counted by its commands-kind-<kind> text).
KINDS: tuple[str, ...] = ("photo", "video", "animation", "video_note", "document")


class ForgetCB(CallbackData, prefix="forget"):
    action: str  # "yes" | "no"
    token: str


class SettingsCB(CallbackData, prefix="set"):
    key: str  # "page" | "strict" | "lang"
    value: str


def models_line(engine: Engine) -> str:
    return ", ".join(
        f"{html.escape(model_id)} ({'/'.join(cfg.languages)})"
        for model_id, cfg in engine.configs.items()
    )


def human_bytes(n: float, lang: str) -> str:
    """``n`` bytes in B/KB/MB/GB: whole bytes, one decimal above (the unit names are
    translated, the number is not: "1.5", never "1,5")."""
    for unit in ("b", "kb", "mb"):
        if n < 1024:
            value = f"{n:.0f}" if unit == "b" else f"{n:.1f}"
            return t("commands-size", lang, value=value, unit=unit)
        n /= 1024
    return t("commands-size", lang, value=f"{n:.1f}", unit="gb")


# --- /start /help /stats ------------------------------------------------------------------------


def router(services: BotServices) -> Router:
    """Command handlers and button callbacks of this module."""
    r = Router(name="commands")

    @r.message(CommandStart(deep_link=True, magic=F.args == "inline"))
    async def start_inline(message: Message, lang: str) -> None:
        """The inline mode's "open the bot" button: how to search from any chat."""
        me = await services.bot.me()
        await message.answer(t("commands-start-inline", lang, bot=html.escape(me.username or "")))

    @r.message(CommandStart())  # no payload, or one we do not know: the welcome
    async def start(message: Message, lang: str) -> None:
        name = message.from_user.first_name if message.from_user else ""
        await message.answer(t("commands-start", lang, name=html.escape(name or "")))

    @r.message(Command("help"))
    async def help_(message: Message, lang: str) -> None:
        me = await services.bot.me()
        await message.answer(t("commands-help", lang, bot=html.escape(me.username or "bot")))

    @r.message(Command("stats"))
    async def stats(message: Message, owner: Owner, lang: str, engine: Engine) -> None:
        await message.answer(await stats_text(services, owner, lang))

    # --- /forget --------------------------------------------------------------------------------

    async def may_forget(chat: Chat, user: User | None) -> bool:
        """Anyone in a private chat; in a group, its admins only (it is everyone's collection).
        Asked at the command and again at the button: admins can change in between."""
        if chat.type == ChatType.PRIVATE:
            return True
        if user is None:
            return False
        try:
            member = await services.bot.get_chat_member(chat.id, user.id)
        except TelegramAPIError:
            log.warning("could not check the admins of chat %s", chat.id, exc_info=True)
            return False
        return member.status in (ChatMemberStatus.CREATOR, ChatMemberStatus.ADMINISTRATOR)

    @r.message(Command("forget"))
    async def forget(message: Message, owner: Owner, lang: str) -> None:
        if not await may_forget(message.chat, message.from_user):
            await message.answer(t("commands-forget-admins-only", lang))
            return
        owners = services.engine.owners
        stats = await owners.stats(owner.id)
        queued = stats.jobs_by_state.get("pending", 0) + stats.jobs_by_state.get("running", 0)
        if stats.media_total == 0 and queued == 0:
            await message.answer(t("commands-forget-empty", lang))
            return
        token = secrets.token_urlsafe(9)
        issuer = message.from_user.id if message.from_user else 0
        pending = {"token": token, "by": issuer, "at": time.time()}
        await owners.update_settings(owner.id, {"forget": pending})
        markup = kb.keyboard(
            [
                [
                    (t("commands-forget-yes", lang), ForgetCB(action="yes", token=token)),
                    (t("commands-forget-no", lang), ForgetCB(action="no", token=token)),
                ]
            ]
        )
        ask = t("commands-forget-ask", lang, n=stats.media_total)
        await message.answer(ask, reply_markup=markup)

    @r.callback_query(ForgetCB.filter())
    async def forget_button(
        query: CallbackQuery, callback_data: ForgetCB, owner: Owner, lang: str
    ) -> None:
        message = kb.accessible(query)
        if message is None:
            await kb.answer(query, t("commands-button-stale", lang))
            return
        owners = services.engine.owners
        pending = (await owners.settings(owner.id)).get("forget")
        if not _forget_token_valid(pending, callback_data, query.from_user):
            await kb.answer(query, t("commands-forget-invalid", lang))
            return
        if callback_data.action == "yes" and not await may_forget(message.chat, query.from_user):
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

    # --- /settings ------------------------------------------------------------------------------

    @r.message(Command("settings"))
    async def settings(message: Message, owner: Owner, lang: str) -> None:
        text, markup = settings_view(services, owner.settings, lang)
        await message.answer(text, reply_markup=markup)

    @r.callback_query(SettingsCB.filter())
    async def settings_button(
        query: CallbackQuery, callback_data: SettingsCB, owner: Owner, lang: str
    ) -> None:
        message = kb.accessible(query)
        if message is None:
            await kb.answer(query, t("commands-button-stale", lang))
            return
        change = _settings_change(callback_data)
        if change is None:
            await kb.answer(query, t("commands-button-invalid", lang))
            return
        current = await services.engine.owners.update_settings(owner.id, change)
        lang = current.get("lang", lang) if current.get("lang") in LANGS else lang
        text, markup = settings_view(services, current, lang)
        await kb.answer(query, t("commands-saved", lang))
        await kb.edit(message, text, markup)

    # --- a group became a supergroup: its collection follows the new chat id ---------------------

    async def move_group(old_chat_id: int, new_chat_id: int) -> None:
        moved = await services.engine.owners.move("chat", old_chat_id, new_chat_id)
        if moved is not None:
            log.info("owner %s moved from chat %s to %s", moved.id, old_chat_id, new_chat_id)

    @r.message(F.migrate_to_chat_id)
    async def migrated_to(message: Message) -> None:
        assert message.migrate_to_chat_id is not None
        await move_group(message.chat.id, message.migrate_to_chat_id)

    @r.message(F.migrate_from_chat_id)
    async def migrated_from(message: Message) -> None:
        assert message.migrate_from_chat_id is not None
        await move_group(message.migrate_from_chat_id, message.chat.id)

    # --- the user blocked / unblocked the bot ---------------------------------------------------

    @r.my_chat_member(F.chat.type == "private")
    async def membership(update: ChatMemberUpdated, owner: Owner) -> None:
        status = update.new_chat_member.status
        blocked = status in ("kicked", "left")
        blocked_setting = {"blocked": True if blocked else None}
        await services.engine.owners.update_settings(owner.id, blocked_setting)
        log.info("owner %s %s the bot", owner.id, "blocked" if blocked else "unblocked")

    return r


async def stats_text(services: BotServices, owner: Owner, lang: str) -> str:
    engine = services.engine
    stats = await services.engine.owners.stats(owner.id)
    models = models_line(engine)
    queued = stats.jobs_by_state.get("pending", 0) + stats.jobs_by_state.get("running", 0)
    if stats.media_total == 0 and queued == 0:
        return t("commands-stats-empty", lang, models=models)
    kinds = " · ".join(
        t(f"commands-kind-{kind.replace('_', '-')}", lang, n=stats.media_by_kind[kind])
        for kind in KINDS
        if stats.media_by_kind.get(kind)
    )
    bytes_per = 2 if services.settings.index_exact_kind == "fp16" else 4
    index_bytes = 0
    per_model = []
    for model_id, n in sorted(stats.vectors_by_model.items()):
        cfg = engine.configs.get(model_id)
        if cfg is not None:
            index_bytes += n * cfg.embed_dim * bytes_per
        per_model.append(f"{html.escape(model_id)} {n}")
    index = (", ".join(per_model) or "0") + f" (≈ {human_bytes(index_bytes, lang)})"
    queue = t("commands-stats-queue", lang, n=queued) if queued else ""
    failed = stats.jobs_by_state.get("failed", 0)
    if failed:
        queue += t("commands-stats-failed", lang, n=failed)
    return t(
        "commands-stats",
        lang,
        total=stats.media_total,
        kinds=kinds or "—",
        thumbs=stats.thumbnail_only,
        units=stats.units,
        index=index,
        queue=queue,
        models=models,
    )


def _forget_token_valid(pending: Any, data: ForgetCB, user: User) -> bool:
    """The button matches the latest /forget of this owner, pressed by whoever sent it, in time."""
    if not isinstance(pending, dict):
        return False
    token = pending.get("token")
    at = pending.get("at")
    if not isinstance(token, str) or not secrets.compare_digest(token, data.token):
        return False
    if pending.get("by") not in (0, user.id):
        return False
    return isinstance(at, int | float) and 0 <= time.time() - at <= FORGET_TTL_S


def _settings_change(data: SettingsCB) -> dict[str, Any] | None:
    """The owner-settings change a settings button asks for, or None if the data is invalid."""
    if data.key == "page" and data.value.isdigit() and int(data.value) in PAGE_SIZES:
        return {"page_size": int(data.value)}
    if data.key == "strict" and data.value in STRICTNESS:
        return {"strictness": data.value}
    if data.key == "lang" and data.value in LANGS:
        return {"lang": data.value}
    return None


def settings_view(
    services: BotServices, settings: dict[str, Any], lang: str
) -> tuple[str, InlineKeyboardMarkup]:
    page = settings.get("page_size")
    if page not in PAGE_SIZES:
        page = services.settings.search_default_limit
    strictness = settings.get("strictness")
    if strictness not in STRICTNESS:
        strictness = DEFAULT_STRICTNESS
    text = t(
        "commands-settings",
        lang,
        page=page,
        strictness=t(f"commands-strictness-{strictness}", lang),
        language=t("language-name", lang),
    )
    markup = kb.keyboard(
        [
            [
                (kb.mark(str(n), n == page), SettingsCB(key="page", value=str(n)))
                for n in PAGE_SIZES
            ],
            [
                (
                    kb.mark(t(f"commands-strictness-{s}", lang), s == strictness),
                    SettingsCB(key="strict", value=s),
                )
                for s in STRICTNESS
            ],
            [
                (
                    kb.mark(t("language-name", code), code == lang),
                    SettingsCB(key="lang", value=code),
                )
                for code in LANGS
            ],
        ]
    )
    return text, markup


# --- fallback -----------------------------------------------------------------------------------


def fallback_router(services: BotServices) -> Router:
    """Registered last: whatever no feature handled. Quiet in groups (no spam), helpful in
    private chats; unknown or tampered buttons get an answer so the client stops spinning."""
    r = Router(name="fallback")
    private = F.chat.type == "private"

    @r.message(private, F.sticker)
    async def sticker(message: Message, lang: str) -> None:
        await message.answer(t("commands-unsupported-sticker", lang))

    @r.message(private, F.voice | F.audio)
    async def audio(message: Message, lang: str) -> None:
        await message.answer(t("commands-unsupported-audio", lang))

    @r.message(private, F.document)
    async def document(message: Message, lang: str) -> None:
        doc = message.document
        name = (doc.file_name or doc.mime_type or "?") if doc else "?"
        await message.answer(t("commands-unsupported-document", lang, name=html.escape(name)))

    @r.message(private, F.text.startswith("/"))
    async def unknown_command(message: Message, lang: str) -> None:
        await message.answer(t("commands-unsupported-command", lang))

    @r.message(private, F.text)
    async def text(message: Message, lang: str) -> None:
        await message.answer(t("commands-unsupported-text", lang))

    @r.message(private)
    async def other(message: Message, lang: str) -> None:
        await message.answer(t("commands-unsupported", lang))

    @r.callback_query()
    async def unknown_button(query: CallbackQuery, lang: str) -> None:
        await kb.answer(query, t("commands-button-invalid", lang))

    return r
