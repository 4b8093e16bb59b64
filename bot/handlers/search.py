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

Which item a reply means is resolved only within the owner's collection: a result message the
bot recorded in this chat, else the owner's item saved from that message, else the owner's item
with the same Telegram file (``file_unique_id``; a result is sent by file id, so it carries the
original's). Nothing else is looked at, so a reply to someone else's message can only ever find
the owner's own copy of that file.

Answers: the hits as the owner's own media (:mod:`bot.results`), then one short message with
how many matched and how long it took, and the buttons of :mod:`bot.sessions`. While a query is
worked on, the chat shows "sending photo…".
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiogram import Bot, F, Router
from aiogram.enums import ChatAction, ChatType
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InaccessibleMessage, Message, ReplyParameters
from aiogram.utils.chat_action import ChatActionSender

from bot.courtesy import chat_action
from bot.fetch import download_with_retry
from bot.i18n import plural, tr
from bot.results import send_hits
from bot.sessions import PhotoCache, ResultsPage, results_keyboard
from core.errors import (
    EmptyQueryError,
    FetchError,
    ImageError,
    NotFoundError,
    OnlyExclusionsError,
)
from core.search.service import Query, SearchResult, Strictness
from storage.results import ResultStore, SearchSession

if TYPE_CHECKING:
    from bot.services import BotServices
    from core.engine.engine import Engine
    from storage.records import Media, Owner

log = logging.getLogger(__name__)

# A query photo is fetched at the smallest Telegram size at least this wide (the models look at
# 224-336 px): less to download and decode than the original.
QUERY_PHOTO_MIN_SIDE = 320
# How much of the query to quote back in a "nothing found" answer.
QUOTE_CHARS = 80

TEXTS = {
    "summary": {
        "ru": "Найдено: <b>{total}</b> за {ms} мс",
        "en": "Found <b>{total}</b> in {ms} ms",
    },
    "range": {"ru": " · показаны {first}–{last}", "en": " · showing {first}–{last}"},
    "excluded": {"ru": "\nБез: {terms}", "en": "\nLeaving out: {terms}"},
    "skipped": {
        "ru": "\n{n} {items} не отправить: Telegram больше не знает эти файлы (перешлите их "
        "заново).",
        "en": "\n{n} {items} could not be sent: Telegram no longer knows those files (forward "
        "them again).",
    },
    "skipped_items": {"ru": "элемент|элемента|элементов", "en": "item|items|items"},
    "no_match": {
        "ru": "По запросу «{query}» ничего не нашлось. Попробуйте сказать иначе: опишите, что "
        "на картинке (предметы, цвета, место), короче или другими словами.",
        "en": "Nothing matched “{query}”. Try rephrasing: describe what is in the picture "
        "(objects, colours, the place), shorter or in other words.",
    },
    "no_match_photo": {
        "ru": "Ничего похожего не нашлось. Попробуйте другое фото или опишите картинку словами.",
        "en": "Nothing similar found. Try another photo, or describe the picture in words.",
    },
    "empty": {
        "ru": "В вашей коллекции пока пусто: перешлите мне фото, альбомы или видео, и я найду "
        "их по описанию.",
        "en": "Your collection is empty so far: forward me photos, albums or videos and I will "
        "find them by description.",
    },
    "similar_alone": {
        "ru": "Кроме этого элемента, искать пока не среди чего: добавьте ещё фото.",
        "en": "There is nothing else to compare it with yet: add more photos.",
    },
    "past_end": {
        "ru": "Больше результатов нет.",
        "en": "No more results.",
    },
    "only_exclusions": {
        "ru": "В запросе только то, что исключить ({terms}). Напишите, что искать, например: "
        "«кот на диване -собака».",
        "en": "The query only says what to leave out ({terms}). Say what to look for too, e.g. "
        "“cat on a sofa -dog”.",
    },
    "empty_query": {
        "ru": "Напишите словами, что на картинке, например: «закат над морем».",
        "en": "Describe the picture in words, e.g. “sunset over the sea”.",
    },
    "bad_photo": {
        "ru": "Не получилось прочитать эту картинку: {why}. Пришлите другую.",
        "en": "Could not read this picture: {why}. Try another one.",
    },
    "image_empty": {"ru": "файл пустой", "en": "the file is empty"},
    "image_unsupported": {
        "ru": "это не картинка в знакомом мне формате",
        "en": "it is not a picture format I can read",
    },
    "image_truncated": {
        "ru": "файл повреждён или обрезан",
        "en": "the file is damaged or cut short",
    },
    "image_too_large": {"ru": "картинка слишком большая", "en": "the picture is too large"},
    "image": {"ru": "формат не подошёл", "en": "the format did not work"},
    "photo_unavailable": {
        "ru": "Не получилось скачать фото из Telegram. Пришлите его ещё раз.",
        "en": "Could not download the photo from Telegram. Please send it again.",
    },
    "reply_needed": {
        "ru": "Отправьте /{command} ответом на одно из ваших сохранённых фото или на результат "
        "поиска.",
        "en": "Send /{command} as a reply to one of your saved photos or to a search result.",
    },
    "not_yours": {
        "ru": "Этого нет в вашей коллекции. Ответьте /{command} на одно из ваших сохранённых "
        "фото или на результат поиска.",
        "en": "That is not in your collection. Reply /{command} to one of your saved photos or "
        "to a search result.",
    },
    "item_gone": {
        "ru": "Этого элемента уже нет в вашей коллекции.",
        "en": "That item is no longer in your collection.",
    },
    "item_not_ready": {
        "ru": "Этот элемент ещё обрабатывается. Попробуйте через минуту.",
        "en": "That item is still being processed. Try again in a minute.",
    },
    "deleted": {
        "ru": "Удалено из коллекции: больше не будет находиться. Само сообщение в чате "
        "осталось — его можно удалить вручную.",
        "en": "Deleted from your collection: it will not be found again. The message itself "
        "stays in the chat; delete it by hand if you like.",
    },
    "expired": {
        "ru": "Этот поиск устарел. Отправьте запрос ещё раз.",
        "en": "This search has expired. Please send it again.",
    },
    "loading": {"ru": "Ищу…", "en": "Searching…"},
}


def strip_mention(text: str, username: str | None) -> str | None:
    """``text`` without a leading "@username" of this bot (any case), or None when it does not
    start with it. "@ourname_backup_bot" is another bot, not a mention of "@ourname"."""
    if not username:
        return None
    mention = f"@{username}"
    if not text.lower().startswith(mention.lower()):
        return None
    rest = text[len(mention) :]
    return None if re.match(r"\w", rest, re.ASCII) else rest


@dataclass(frozen=True, slots=True)
class Target:
    """The owner's item a reply points at; ``unit_id`` when a result named the moment."""

    media: Media
    unit_id: int | None = None


def quote(text: str | None) -> str:
    """A short, escaped echo of what the user typed."""
    text = " ".join((text or "").split())
    if len(text) > QUOTE_CHARS:
        text = text[: QUOTE_CHARS - 1].rstrip() + "…"
    return html.escape(text)


def summary_text(result: SearchResult, shown: int, skipped: int, lang: str) -> str:
    total = f"{result.total}" if result.total_exact else f"{result.total}+"
    text = tr(TEXTS, "summary", lang, total=total, ms=max(1, round(result.elapsed_ms)))
    if result.offset > 0 or result.has_more:
        first = result.offset + 1
        text += tr(TEXTS, "range", lang, first=first, last=result.offset + shown + skipped)
    if result.excluded:
        terms = ", ".join(html.escape(t) for t in result.excluded)
        text += tr(TEXTS, "excluded", lang, terms=terms)
    if skipped:
        one, few, many = tr(TEXTS, "skipped_items", lang).split("|")
        text += tr(TEXTS, "skipped", lang, n=skipped, items=plural(skipped, lang, one, few, many))
    return text


def pick_photo_size(message: Message) -> tuple[str, int | None] | None:
    """(file id, size) of the query picture: the smallest photo size that is wide enough, or
    an image document; None when the message holds no picture."""
    if message.photo:
        sizes = sorted(message.photo, key=lambda p: p.width * p.height)
        for size in sizes:
            if min(size.width, size.height) >= QUERY_PHOTO_MIN_SIDE:
                return size.file_id, size.file_size
        return sizes[-1].file_id, sizes[-1].file_size
    doc = message.document
    if doc is not None and (doc.mime_type or "").startswith("image/"):
        return doc.file_id, doc.file_size
    return None


def unique_ids(message: Message) -> list[str]:
    """Telegram's ``file_unique_id``s of the media in a message, the main one first."""
    if message.photo:
        return [p.file_unique_id for p in reversed(message.photo)]
    for obj in (
        message.video,
        message.animation,
        message.video_note,
        message.document,
    ):
        if obj is not None:
            return [obj.file_unique_id]
    return []


class SearchFlow:
    """The search handlers of one dispatcher (state: the photo-query cache)."""

    def __init__(self, services: BotServices) -> None:
        self.services = services
        self.photos = PhotoCache()
        self._bot_id: int | None = None
        self._bot_username: str | None = services.bot_username

    # --- filters --------------------------------------------------------------------------------

    async def bot_identity(self, bot: Bot) -> tuple[int, str | None]:
        if self._bot_id is None:
            me = await bot.me()
            self._bot_id = me.id
            self._bot_username = self._bot_username or me.username
        return self._bot_id, self._bot_username

    async def replies_to_bot(self, message: Message, bot: Bot) -> bool:
        reply = message.reply_to_message
        if reply is None or reply.from_user is None:
            return False
        bot_id, _ = await self.bot_identity(bot)
        return reply.from_user.id == bot_id

    async def is_text_query(self, message: Message, bot: Bot) -> bool | dict[str, Any]:
        text = message.text or ""
        if not text.strip() or text.startswith("/"):
            return False
        if message.via_bot is not None or message.forward_origin is not None:
            return False  # a forwarded text is not something the user asks
        if message.chat.type == ChatType.PRIVATE:
            return {"query_text": text}
        if await self.replies_to_bot(message, bot):
            return {"query_text": text}
        _, username = await self.bot_identity(bot)
        rest = strip_mention(text, username)
        return False if rest is None else {"query_text": rest}

    async def is_photo_query(self, message: Message, bot: Bot) -> bool | dict[str, Any]:
        if message.media_group_id is not None or pick_photo_size(message) is None:
            return False
        if message.via_bot is not None or message.forward_origin is not None:
            return False  # a forward is something to keep; its caption is someone else's
        caption = (message.caption or "").strip()
        if message.chat.type == ChatType.PRIVATE:
            if caption.startswith("?") or message.reply_to_message is not None:
                return {"query_caption": caption.removeprefix("?").strip()}
            return False
        # In a group: a reply to the bot, or "?" with its name ("?@bot on a beach", "@bot ?on a
        # beach"); a "?" alone may be meant for people, "@bot" alone lets a photo in to be kept.
        _, username = await self.bot_identity(bot)
        asked = caption.startswith("?")
        rest = caption.removeprefix("?").lstrip()
        named = strip_mention(rest, username)
        if named is not None:
            rest = named.lstrip()
            if not asked and rest.startswith("?"):
                asked, rest = True, rest[1:].lstrip()
        if (named is not None and asked) or await self.replies_to_bot(message, bot):
            return {"query_caption": rest.strip()}
        return False

    # --- message handlers -----------------------------------------------------------------------

    def busy(self, bot: Bot, chat_id: int) -> ChatActionSender:
        """``async with``: "sending photo…" in the chat while a query is worked on (its photo
        downloaded, the search run, the hits sent)."""
        interval = self.services.settings.chat_action_interval_s
        return chat_action(bot, chat_id, ChatAction.UPLOAD_PHOTO, interval)

    async def on_text(
        self, message: Message, bot: Bot, owner: Owner, lang: str, query_text: str
    ) -> None:
        session = SearchSession(0, owner.id, "text", query_text.strip(), None, None, None, 0)
        async with self.busy(bot, message.chat.id):
            await self.answer(
                bot, message.chat.id, owner, lang, session, reply_to=message.message_id
            )

    async def on_photo(
        self, message: Message, bot: Bot, owner: Owner, lang: str, query_caption: str
    ) -> None:
        picked = pick_photo_size(message)
        assert picked is not None
        file_id, size = picked
        async with self.busy(bot, message.chat.id):
            data = await self.download(bot, owner, file_id, size)
            if data is None:
                await self.say(bot, message.chat.id, "photo_unavailable", lang)
                return
            text = query_caption or None
            session = SearchSession(0, owner.id, "photo", text, file_id, None, None, 0)
            await self.answer(
                bot, message.chat.id, owner, lang, session, image=data, reply_to=message.message_id
            )

    async def on_similar(
        self, message: Message, bot: Bot, owner: Owner, lang: str, command: CommandObject
    ) -> None:
        target = await self.resolve_reply(message, bot, owner, lang, "similar")
        if target is None:
            return
        text = (command.args or "").strip() or None
        session = SearchSession(0, owner.id, "item", text, None, target.media.id, target.unit_id, 0)
        async with self.busy(bot, message.chat.id):
            await self.answer(
                bot, message.chat.id, owner, lang, session, reply_to=message.message_id
            )

    async def on_delete(self, message: Message, bot: Bot, owner: Owner, lang: str) -> None:
        target = await self.resolve_reply(message, bot, owner, lang, "delete")
        if target is None:
            return
        try:
            await self.engine.search.collection.delete_media(owner.id, target.media.id)
        except NotFoundError:
            await self.say(bot, message.chat.id, "item_gone", lang)
            return
        log.info("owner %s deleted item %s", owner.id, target.media.id)
        await self.say(bot, message.chat.id, "deleted", lang, reply_to=message.message_id)

    # --- buttons --------------------------------------------------------------------------------

    async def on_page(
        self,
        query: CallbackQuery,
        callback_data: ResultsPage,
        bot: Bot,
        owner: Owner,
        lang: str,
    ) -> None:
        message = query.message
        strictness = callback_data.strictness
        session = (
            await ResultStore(self.engine.db, owner.id).session(callback_data.sid)
            if callback_data.valid
            else None
        )
        if session is None or message is None or strictness is None:
            await self.expired(query, lang)
            return
        await query.answer(tr(TEXTS, "loading", lang))
        async with self.busy(bot, message.chat.id):
            await self.next_page(bot, message, owner, lang, session, strictness, callback_data)

    async def next_page(
        self,
        bot: Bot,
        message: Message | InaccessibleMessage,
        owner: Owner,
        lang: str,
        session: SearchSession,
        strictness: Strictness,
        callback_data: ResultsPage,
    ) -> None:
        if isinstance(message, Message) and message.reply_markup is not None:
            # The page moves on: buttons of the old summary would only repeat it.
            try:
                await bot.edit_message_reply_markup(
                    chat_id=message.chat.id, message_id=message.message_id, reply_markup=None
                )
            except TelegramBadRequest as exc:
                log.debug("could not clear old result buttons: %s", exc)
        image: bytes | None = None
        if session.kind == "photo":
            assert session.file_id is not None
            image = self.photos.get(session.id) or await self.download(bot, owner, session.file_id)
            if image is None:
                await self.say(bot, message.chat.id, "expired", lang)
                return
        await self.answer(
            bot,
            message.chat.id,
            owner,
            lang,
            session,
            image=image,
            strictness=strictness,
            offset=callback_data.offset,
        )

    async def on_bad_page(self, query: CallbackQuery, lang: str) -> None:
        """Callback data with our prefix that does not parse: tampered or from an old version."""
        await self.expired(query, lang)

    async def expired(self, query: CallbackQuery, lang: str) -> None:
        try:
            await query.answer(tr(TEXTS, "expired", lang), show_alert=False)
        except TelegramBadRequest as exc:  # the query itself is too old to answer
            log.debug("callback answer refused: %s", exc)

    # --- the search itself ----------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        return self.services.engine

    async def answer(
        self,
        bot: Bot,
        chat_id: int,
        owner: Owner,
        lang: str,
        session: SearchSession,
        *,
        image: bytes | None = None,
        strictness: Strictness | None = None,
        offset: int = 0,
        reply_to: int | None = None,
    ) -> None:
        """Run ``session`` for one page and send the answer. A session with id 0 is new: it is
        stored (so its buttons work) once there is something to show."""
        if strictness is None:
            strictness = await self.services.strictness(owner)
        limit = await self.services.page_size(owner)
        query = Query.from_text(
            session.text,
            image=image,
            media_id=session.media_id if session.unit_id is None else None,
            unit_id=session.unit_id,
            strictness=strictness or "normal",
            offset=offset,
            limit=limit,
        )
        try:
            result = await self.engine.search.search(owner.id, query)
        except OnlyExclusionsError:
            terms = ", ".join(f"-{html.escape(t)}" for t in query.exclude)
            await self.say(bot, chat_id, "only_exclusions", lang, reply_to=reply_to, terms=terms)
            return
        except EmptyQueryError:
            await self.say(bot, chat_id, "empty_query", lang, reply_to=reply_to)
            return
        except ImageError as exc:
            why = tr(TEXTS, exc.code if exc.code in TEXTS else "image", lang)
            await self.say(bot, chat_id, "bad_photo", lang, reply_to=reply_to, why=why)
            return
        except NotFoundError as exc:
            key = "item_not_ready" if "re-embedded" in str(exc) else "item_gone"
            await self.say(bot, chat_id, key, lang, reply_to=reply_to)
            return
        if not result.hits:
            await self.say(bot, chat_id, self.empty_reason(result, session), lang,
                           reply_to=reply_to, query=quote(session.text))  # fmt: skip
            return
        if session.id == 0:
            session = await ResultStore(self.engine.db, owner.id).create_session(
                session.kind,
                text=session.text,
                file_id=session.file_id,
                media_id=session.media_id,
                unit_id=session.unit_id,
            )
        if image is not None:
            self.photos.put(session.id, image)
        results = ResultStore(self.engine.db, owner.id)
        delivery = await send_hits(bot, chat_id, result.hits, reply_to=reply_to, results=results)
        text = summary_text(result, len(delivery.sent), len(delivery.skipped), lang)
        await bot.send_message(
            chat_id, text, reply_markup=results_keyboard(session.id, result, lang)
        )
        log.info(
            "owner %s %s query: %d of %d hits in %.0f ms (%s, page %d)",
            owner.id,
            session.kind,
            len(delivery.sent),
            result.total,
            result.elapsed_ms,
            result.strictness,
            result.offset // max(1, result.limit) + 1,
        )

    @staticmethod
    def empty_reason(result: SearchResult, session: SearchSession) -> str:
        if result.reason == "past_end":
            return "past_end"
        if result.reason == "empty":
            return "similar_alone" if session.kind == "item" else "empty"
        if session.kind == "text" or (session.kind != "item" and session.text):
            return "no_match"
        return "no_match_photo"

    # --- helpers --------------------------------------------------------------------------------

    async def download(
        self, bot: Bot, owner: Owner, file_id: str, size: int | None = None
    ) -> bytes | None:
        """The bytes of a query photo, retried like an ingest download; None once every try
        failed (the caller answers with a precise reply, not a traceback)."""
        try:
            return await download_with_retry(
                bot, self.services.settings, owner.id, file_id, size=size
            )
        except FetchError as exc:
            log.info("query photo of owner %s not downloadable: %s", owner.id, exc)
            return None

    async def say(
        self,
        bot: Bot,
        chat_id: int,
        key: str,
        lang: str,
        *,
        reply_to: int | None = None,
        **kwargs: Any,
    ) -> None:
        reply = (
            ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
            if reply_to is not None
            else None
        )
        await bot.send_message(chat_id, tr(TEXTS, key, lang, **kwargs), reply_parameters=reply)

    async def resolve_reply(
        self, message: Message, bot: Bot, owner: Owner, lang: str, command: str
    ) -> Target | None:
        """The owner's item the command replies to, or None after telling the user why."""
        reply = message.reply_to_message
        if reply is None:
            await self.say(bot, message.chat.id, "reply_needed", lang, command=command)
            return None
        target = await self.find_target(reply, message.chat.id, bot, owner)
        if target is None:
            await self.say(
                bot,
                message.chat.id,
                "not_yours",
                lang,
                reply_to=message.message_id,
                command=command,
            )
        return target

    async def find_target(
        self, reply: Message, chat_id: int, bot: Bot, owner: Owner
    ) -> Target | None:
        """See the module docstring: a recorded result, a saved message, the same file."""
        if reply.chat.id != chat_id:
            return None  # a reply always points into the same chat; anything else is forged
        results = ResultStore(self.engine.db, owner.id)
        store = self.engine.db.owner(owner.id)
        bot_id, _ = await self.bot_identity(bot)
        from_bot = reply.from_user is not None and reply.from_user.id == bot_id
        if from_bot:
            recorded = await results.result(chat_id, reply.message_id)
            if recorded is not None:
                media = await store.get_media(recorded.media_id)
                if media is not None:
                    return Target(media, recorded.unit_id)
        else:
            media = await results.media_by_message(reply.message_id)
            if media is not None:
                return Target(media)
        for unique_id in unique_ids(reply):
            media = await store.find_media(unique_id)
            if media is not None:
                return Target(media)
        return None


def router(services: BotServices) -> Router:
    """The search router (see the module docstring); one per dispatcher."""
    flow = SearchFlow(services)
    r = Router(name="search")
    r.message.register(flow.on_similar, Command("similar"))
    r.message.register(flow.on_delete, Command("delete"))
    r.message.register(flow.on_photo, F.photo | F.document, flow.is_photo_query)
    r.message.register(flow.on_text, F.text, flow.is_text_query)
    r.callback_query.register(flow.on_page, ResultsPage.filter())
    r.callback_query.register(flow.on_bad_page, F.data.startswith("res:"))
    return r
