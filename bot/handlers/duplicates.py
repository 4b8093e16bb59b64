"""/duplicates and its buttons: show the owner's near-duplicate pairs, delete one item of a pair,
keep both, or show the next few (:mod:`bot.duplicates` holds the pages and the callback data).

A button names a pair by ids only; the engine checks it against the owner pressing it, so a
forged or foreign button, or one whose pair was decided already, is answered and does nothing.
In a group the collection is everyone's: only its admins may delete an item of a pair (as only
they may /forget it); anyone may keep both, which deletes nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot import keyboards as kb
from bot.duplicates import DuplicatePages, PairCB, done_text
from bot.forget import may_delete
from bot.i18n import t

if TYPE_CHECKING:
    from core.engine.engine import Engine
    from storage.records import Owner

log = logging.getLogger(__name__)


async def on_duplicates(
    message: Message, bot: Bot, owner: Owner, lang: str, engine: Engine
) -> None:
    await DuplicatePages(bot, engine.library).show(message.chat.id, owner.id, lang)


async def on_pair_button(
    query: CallbackQuery,
    callback_data: PairCB,
    bot: Bot,
    owner: Owner,
    lang: str,
    engine: Engine,
) -> None:
    message = kb.accessible(query)
    if message is None:
        await kb.answer(query, t("commands-button-stale", lang))
        return
    if not callback_data.valid:
        await kb.answer(query, t("commands-button-invalid", lang))
        return
    choice = callback_data.choice
    if choice is None:  # "more": the next page, after the last pair shown
        await kb.answer(query)
        await kb.drop_keyboard(message)
        pages = DuplicatePages(bot, engine.library)
        await pages.show(message.chat.id, owner.id, lang, after=callback_data.key)
        return
    if choice != "keep_both" and not await may_delete(bot, message.chat, query.from_user):
        await kb.answer(query, t("duplicates-admins-only", lang), alert=True)
        return
    pair = await engine.library.resolve_duplicate(owner.id, callback_data.key, choice)
    if pair is None:
        await kb.answer(query, t("duplicates-gone", lang))
        return
    log.info("owner %s resolved pair %s: %s", owner.id, callback_data.key, choice)
    await kb.answer(query)
    await kb.edit(message, done_text(choice, lang))


def build_router() -> Router:
    """/duplicates and its buttons; a new Router per dispatcher."""
    r = Router(name="duplicates")
    r.message.register(on_duplicates, Command("duplicates"))
    r.callback_query.register(on_pair_button, PairCB.filter())
    r.callback_query.register(on_pair_button_unparsed, F.data.startswith("dup:"))
    return r


async def on_pair_button_unparsed(query: CallbackQuery, lang: str) -> None:
    """Our prefix, data that does not parse: tampered, or from another version."""
    await kb.answer(query, t("commands-button-invalid", lang))
