"""Search: text queries, photo queries, /similar, /delete, and the buttons under a result page.

What counts as a query (this router runs before ingest, so nothing here is ever stored):

- any plain text message (not a command, not forwarded) in a private chat; in a group a text that
  replies to the bot or starts with its @username, so the bot does not answer every chat line;
- a photo (or an image sent as a file, not forwarded and not in an album) that replies to any
  message, or whose caption starts with "?": a query by example. The caption, minus the "?",
  steers it ("?on a beach"). In a group only a photo addressed to the bot is a query: a reply
  to the bot, or a "?" caption that names it ("?@bot on a beach", "@bot ?on a beach"); any
  other photo posted there belongs in the group's collection;
- "/similar" as a reply to one of the owner's saved items or to a result: its neighbours.
  Text after the command steers it too ("/similar in red").

"/delete" as a reply to a saved item or a result deletes that item from the collection.

The private and the group rules are the filters of two sub-routers (:mod:`bot.query_filters`);
which item a reply means is :mod:`bot.reply_targets`; running and sending a page is
:class:`~bot.search_replies.SearchResponder`. Handlers get those by name from the dispatcher
(``responder``, ``targets``), next to ``owner`` and ``lang`` from the context middleware.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.i18n import t
from bot.query_filters import (
    group_photo_query,
    group_text_query,
    pick_photo_size,
    private_photo_query,
    private_text_query,
)
from bot.reply_targets import ReplyTargets, Target
from bot.search_replies import Asker, PageRequest, SearchResponder
from bot.sessions import ResultsPage
from core.errors import NotFoundError
from storage.results import SearchSession

if TYPE_CHECKING:
    from core.engine.engine import Engine
    from storage.records import Owner

log = logging.getLogger(__name__)


async def on_text(
    message: Message, owner: Owner, lang: str, query_text: str, responder: SearchResponder
) -> None:
    session = SearchSession(0, owner.id, "text", query_text.strip(), None, None, None, 0)
    asker = Asker(message.chat.id, owner, lang, reply_to=message.message_id)
    async with responder.busy(message.chat.id):
        await responder.answer(asker, PageRequest(session))


async def on_photo(
    message: Message, owner: Owner, lang: str, query_caption: str, responder: SearchResponder
) -> None:
    picked = pick_photo_size(message)
    assert picked is not None
    file_id, size = picked
    async with responder.busy(message.chat.id):
        data = await responder.download(owner, file_id, size)
        if data is None:
            await responder.say(message.chat.id, "search-photo-unavailable", lang)
            return
        text = query_caption or None
        session = SearchSession(0, owner.id, "photo", text, file_id, None, None, 0)
        asker = Asker(message.chat.id, owner, lang, reply_to=message.message_id)
        await responder.answer(asker, PageRequest(session, image=data))


async def on_similar(
    message: Message,
    owner: Owner,
    lang: str,
    command: CommandObject,
    responder: SearchResponder,
    targets: ReplyTargets,
) -> None:
    target = await replied_target(message, owner, lang, "similar", responder, targets)
    if target is None:
        return
    text = (command.args or "").strip() or None
    session = SearchSession(0, owner.id, "item", text, None, target.media.id, target.unit_id, 0)
    asker = Asker(message.chat.id, owner, lang, reply_to=message.message_id)
    async with responder.busy(message.chat.id):
        await responder.answer(asker, PageRequest(session))


async def on_delete(
    message: Message,
    owner: Owner,
    lang: str,
    engine: Engine,
    responder: SearchResponder,
    targets: ReplyTargets,
) -> None:
    target = await replied_target(message, owner, lang, "delete", responder, targets)
    if target is None:
        return
    try:
        await engine.library.delete(owner.id, target.media.id)
    except NotFoundError:
        await responder.say(message.chat.id, "search-item-gone", lang)
        return
    log.info("owner %s deleted item %s", owner.id, target.media.id)
    await responder.say(message.chat.id, "search-deleted", lang, reply_to=message.message_id)


async def replied_target(
    message: Message,
    owner: Owner,
    lang: str,
    command: str,
    responder: SearchResponder,
    targets: ReplyTargets,
) -> Target | None:
    """The owner's item the command replies to, or None after telling the user why."""
    reply = message.reply_to_message
    if reply is None:
        await responder.say(message.chat.id, "search-reply-needed", lang, command=command)
        return None
    target = await targets.find(reply, message.chat.id, owner)
    if target is None:
        await responder.say(
            message.chat.id,
            "search-not-yours",
            lang,
            reply_to=message.message_id,
            command=command,
        )
    return target


# --- buttons ------------------------------------------------------------------------------------


async def on_page(
    query: CallbackQuery,
    callback_data: ResultsPage,
    owner: Owner,
    lang: str,
    engine: Engine,
    responder: SearchResponder,
) -> None:
    message = query.message
    strictness = callback_data.strictness
    session = (
        await engine.queries.results(owner.id).session(callback_data.sid)
        if callback_data.valid
        else None
    )
    if session is None or message is None or strictness is None:
        await answer_expired(query, lang)
        return
    await query.answer(t("search-loading", lang))
    page = PageRequest(session, strictness=strictness, offset=callback_data.offset)
    async with responder.busy(message.chat.id):
        await responder.turn_page(message, Asker(message.chat.id, owner, lang), page)


async def on_bad_page(query: CallbackQuery, lang: str) -> None:
    """Callback data with our prefix that does not parse: tampered or from an old version."""
    await answer_expired(query, lang)


async def answer_expired(query: CallbackQuery, lang: str) -> None:
    try:
        await query.answer(t("search-expired", lang), show_alert=False)
    except TelegramBadRequest as exc:  # the query itself is too old to answer
        log.debug("callback answer refused: %s", exc)


def build_router() -> Router:
    """The search router (see the module docstring); a new one per dispatcher."""
    r = Router(name="search")
    r.message.register(on_similar, Command("similar"))
    r.message.register(on_delete, Command("delete"))
    private = Router(name="search-private")
    private.message.filter(F.chat.type == ChatType.PRIVATE)
    private.message.register(on_photo, F.photo | F.document, private_photo_query)
    private.message.register(on_text, F.text, private_text_query)
    groups = Router(name="search-groups")
    groups.message.filter(F.chat.type != ChatType.PRIVATE)
    groups.message.register(on_photo, F.photo | F.document, group_photo_query)
    groups.message.register(on_text, F.text, group_text_query)
    r.include_routers(private, groups)
    r.callback_query.register(on_page, ResultsPage.filter())
    r.callback_query.register(on_bad_page, F.data.startswith("res:"))
    return r
