"""Answering a search: run one page of a session and send it, or say why there is nothing.

Answers: the hits as the owner's own media (:mod:`bot.results`), then one short message with
how many matched and how long it took, and the buttons of :mod:`bot.sessions`. While a query
is worked on, the chat shows "sending photo…". The handlers in :mod:`bot.handlers.search` only
decide what was asked; everything from the query to the last message sent lives here.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiogram import Bot
from aiogram.enums import ChatAction
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InaccessibleMessage, Message, ReplyParameters
from aiogram.utils.chat_action import ChatActionSender

from bot.courtesy import chat_action
from bot.fetch import download_with_retry
from bot.i18n import catalog, t
from bot.results import send_hits
from bot.search_texts import empty_reason, quote, summary_text
from bot.sessions import PhotoCache, results_keyboard
from core.errors import (
    EmptyQueryError,
    FetchError,
    ImageError,
    ItemNotReadyError,
    NotFoundError,
    OnlyExclusionsError,
)
from core.search.query import Query, Strictness
from core.search.results import SearchResult
from storage.records import Owner
from storage.results import SearchSession

if TYPE_CHECKING:
    from bot.services import BotServices

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Asker:
    """Who asked, where, in which language; ``reply_to`` is the query message, if any."""

    chat_id: int
    owner: Owner
    lang: str
    reply_to: int | None = None


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Which page of a session to run: a new session (id 0) starts at the owner's strictness."""

    session: SearchSession
    image: bytes | None = None
    strictness: Strictness | None = None
    offset: int = 0


class SearchResponder:
    """Runs search pages for the handlers and sends what they found (one per dispatcher: it
    holds the cache of recent query photos, so paging does not download them twice)."""

    def __init__(self, bot: Bot, services: BotServices, photos: PhotoCache | None = None) -> None:
        self.bot = bot
        self.services = services
        self.photos = photos if photos is not None else PhotoCache()

    def busy(self, chat_id: int) -> ChatActionSender:
        """``async with``: "sending photo…" in the chat while a query is worked on (its photo
        downloaded, the search run, the hits sent)."""
        interval = self.services.settings.bot.chat_action_interval_s
        return chat_action(self.bot, chat_id, ChatAction.UPLOAD_PHOTO, interval)

    async def say(
        self, chat_id: int, key: str, lang: str, *, reply_to: int | None = None, **kwargs: Any
    ) -> None:
        """One text message, replying to ``reply_to`` while that message is still there."""
        reply = (
            ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
            if reply_to is not None
            else None
        )
        await self.bot.send_message(chat_id, t(key, lang, **kwargs), reply_parameters=reply)

    async def download(self, owner: Owner, file_id: str, size: int | None = None) -> bytes | None:
        """The bytes of a query photo, retried like an ingest download; None once every try
        failed (the caller answers with a precise reply, not a traceback)."""
        try:
            return await download_with_retry(
                self.bot, self.services.settings, owner.id, file_id, size=size
            )
        except FetchError as exc:
            log.info("query photo of owner %s not downloadable: %s", owner.id, exc)
            return None

    async def answer(self, asker: Asker, page: PageRequest) -> None:
        """Run one page and send the answer. A session with id 0 is new: it is stored (so its
        buttons work) once there is something to show."""
        query = await self._query(asker.owner, page)
        result = await self._search(asker, query)
        if result is None:
            return
        if not result.hits:
            await self.say(asker.chat_id, empty_reason(result, page.session), asker.lang,
                           reply_to=asker.reply_to, query=quote(page.session.text))  # fmt: skip
            return
        await self._deliver(asker, page, result)

    async def turn_page(
        self, message: Message | InaccessibleMessage, asker: Asker, page: PageRequest
    ) -> None:
        """A button asked for another page: clear the old buttons, fetch the query photo again
        when the cache lost it, and answer."""
        if isinstance(message, Message) and message.reply_markup is not None:
            # The page moves on: buttons of the old summary would only repeat it.
            try:
                await self.bot.edit_message_reply_markup(
                    chat_id=message.chat.id, message_id=message.message_id, reply_markup=None
                )
            except TelegramBadRequest as exc:
                log.debug("could not clear old result buttons: %s", exc)
        session = page.session
        if session.kind == "photo":
            assert session.file_id is not None
            image = self.photos.get(session.id) or await self.download(asker.owner, session.file_id)
            if image is None:
                await self.say(asker.chat_id, "search-expired", asker.lang)
                return
            page = PageRequest(session, image, page.strictness, page.offset)
        await self.answer(asker, page)

    async def _query(self, owner: Owner, page: PageRequest) -> Query:
        """The engine query for a page, with the owner's page size (and strictness, if new)."""
        strictness = page.strictness
        if strictness is None:
            strictness = await self.services.strictness(owner)
        session = page.session
        return Query.from_text(
            session.text,
            image=page.image,
            media_id=session.media_id if session.unit_id is None else None,
            unit_id=session.unit_id,
            strictness=strictness or "normal",
            offset=page.offset,
            limit=await self.services.page_size(owner),
        )

    async def _search(self, asker: Asker, query: Query) -> SearchResult | None:
        """The result, or None after telling the user why the query cannot run."""
        chat_id, lang, reply_to = asker.chat_id, asker.lang, asker.reply_to
        try:
            return await self.services.engine.queries.search(asker.owner.id, query)
        except OnlyExclusionsError:
            terms = ", ".join(f"-{html.escape(term)}" for term in query.exclude)
            await self.say(chat_id, "search-only-exclusions", lang, reply_to=reply_to, terms=terms)
        except EmptyQueryError:
            await self.say(chat_id, "search-empty-query", lang, reply_to=reply_to)
        except ImageError as exc:
            why_key = f"search-why-{exc.code.replace('_', '-')}"
            why = t(why_key if catalog.has(why_key) else "search-why-image", lang)
            await self.say(chat_id, "search-bad-photo", lang, reply_to=reply_to, why=why)
        except ItemNotReadyError:
            await self.say(chat_id, "search-item-not-ready", lang, reply_to=reply_to)
        except NotFoundError:
            await self.say(chat_id, "search-item-gone", lang, reply_to=reply_to)
        return None

    async def _deliver(self, asker: Asker, page: PageRequest, result: SearchResult) -> None:
        """Store a new session, send the hits and the summary with its buttons."""
        owner, session = asker.owner, page.session
        results = self.services.engine.queries.results(owner.id)
        if session.id == 0:
            session = await results.create_session(
                session.kind,
                text=session.text,
                file_id=session.file_id,
                media_id=session.media_id,
                unit_id=session.unit_id,
            )
        if page.image is not None:
            self.photos.put(session.id, page.image)
        delivery = await send_hits(
            self.bot, asker.chat_id, result.hits, reply_to=asker.reply_to, results=results
        )
        text = summary_text(result, len(delivery.sent), len(delivery.skipped), asker.lang)
        keyboard = results_keyboard(session.id, result, asker.lang)
        await self.bot.send_message(asker.chat_id, text, reply_markup=keyboard)
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
