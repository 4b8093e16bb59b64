"""Inline mode: "@bot query" in any chat offers the user's own photos, videos and GIFs.

The collection searched is always the querying user's own, never a group's: inline queries
carry no chat, and the user is looked up by their Telegram id alone. Answers are cached
results (Telegram's copy, by ``file_id``), marked ``is_personal`` with a short ``cache_time``
so Telegram never serves one user's results to another. An empty query shows the newest items.
Pages are chained with ``next_offset`` (at most 50 results per answer): ``"s<offset>"`` for a
search, ``"r<id>"`` (items older than that id) for the newest items.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aiogram import Router
from aiogram.types import (
    InlineQuery,
    InlineQueryResultCachedDocument,
    InlineQueryResultCachedMpeg4Gif,
    InlineQueryResultCachedPhoto,
    InlineQueryResultCachedVideo,
    InlineQueryResultsButton,
    InlineQueryResultUnion,
)

from bot.i18n import t
from bot.results import format_moment
from core.errors import EmptyQueryError, ImageError, NotFoundError
from core.search.query import Query

if TYPE_CHECKING:
    from bot.services import BotServices
    from core.engine.engine import Engine
    from storage.records import Media, Owner

log = logging.getLogger(__name__)

INLINE_PAGE = 50  # Telegram's maximum per answer
CACHE_TIME_S = 5  # personal results change as the collection grows: keep Telegram's copy short
MAX_OFFSET = 10_000


def inline_result(media: Media, lang: str) -> InlineQueryResultUnion | None:
    """A cached inline result for one item, or None for kinds inline mode cannot show."""
    file_id = media.file_id
    if not file_id:
        return None
    result_id = str(media.id)
    if media.kind == "photo":
        return InlineQueryResultCachedPhoto(id=result_id, photo_file_id=file_id)
    if media.kind == "video":
        duration = format_moment(round(media.duration or 0))
        return InlineQueryResultCachedVideo(
            id=result_id,
            video_file_id=file_id,
            title=t("inline-video", lang, duration=duration),
        )
    if media.kind == "animation":
        return InlineQueryResultCachedMpeg4Gif(id=result_id, mpeg4_file_id=file_id)
    if media.kind == "document":
        title = (media.caption or "").strip()[:64] or t("inline-document", lang)
        return InlineQueryResultCachedDocument(id=result_id, title=title, document_file_id=file_id)
    return None  # video notes have no inline result type


def inline_results(items: Iterable[Media], lang: str) -> list[InlineQueryResultUnion]:
    out: list[InlineQueryResultUnion] = []
    seen: set[int] = set()
    for media in items:
        result = inline_result(media, lang) if media.id not in seen else None
        if result is not None:
            seen.add(media.id)
            out.append(result)
    return out


def parse_offset(offset: str, prefix: str) -> int | None:
    """The number in a ``next_offset`` we issued; 0 for the first page; None when tampered."""
    if not offset:
        return 0
    if not offset.startswith(prefix) or not offset[1:].isdigit():
        return None
    value = int(offset[1:])
    return value if value <= (MAX_OFFSET if prefix == "s" else 2**63 - 1) else None


async def on_inline_query(
    query: InlineQuery,
    lang: str,
    engine: Engine,
    services: BotServices,
    owner: Owner | None = None,
) -> None:
    me = await querying_owner(query, owner, engine)
    text = query.query.strip()
    results: list[InlineQueryResultUnion] = []
    next_offset = ""
    if me is not None:
        if text:
            results, next_offset = await search_page(services, me, text, query.offset, lang)
        else:
            results, next_offset = await newest_page(engine, me, query.offset, lang)
    button = None
    if not results and not query.offset:
        key = "inline-nothing" if text and me is not None else "inline-add-photos"
        button = InlineQueryResultsButton(text=t(key, lang), start_parameter="inline")
    await query.answer(
        results,
        cache_time=CACHE_TIME_S,
        is_personal=True,
        next_offset=next_offset,
        button=button,
    )


async def querying_owner(query: InlineQuery, owner: Owner | None, engine: Engine) -> Owner | None:
    """The querying user's own collection (never a chat's), without creating one."""
    user_id = str(query.from_user.id)
    if owner is not None and owner.kind == "user" and owner.external_id == user_id:
        return owner
    return await engine.owners.find("user", query.from_user.id)


async def search_page(
    services: BotServices, owner: Owner, text: str, offset_text: str, lang: str
) -> tuple[list[InlineQueryResultUnion], str]:
    """One page of a text search, and the ``next_offset`` of the page after it."""
    offset = parse_offset(offset_text, "s")
    if offset is None:
        return [], ""
    limit = min(INLINE_PAGE, services.settings.search.max_limit)
    try:
        result = await services.engine.queries.search(
            owner.id,
            Query.from_text(
                text,
                strictness=await services.strictness(owner),
                offset=offset,
                limit=limit,
            ),
        )
    except (EmptyQueryError, ImageError, NotFoundError):
        return [], ""
    next_offset = f"s{result.next_offset}" if result.next_offset is not None else ""
    return inline_results((h.media for h in result.hits), lang), next_offset


async def newest_page(
    engine: Engine, owner: Owner, offset_text: str, lang: str
) -> tuple[list[InlineQueryResultUnion], str]:
    """One page of the owner's newest items (an empty query), chained by item id."""
    before = parse_offset(offset_text, "r")
    if before is None:
        return [], ""
    items = await engine.library.newest(owner.id, limit=INLINE_PAGE, before_id=before or None)
    next_offset = f"r{items[-1].id}" if len(items) == INLINE_PAGE else ""
    return inline_results(items, lang), next_offset


def build_router() -> Router:
    """The inline-mode router; a new one per dispatcher."""
    r = Router(name="inline")
    r.inline_query.register(on_inline_query)
    return r
