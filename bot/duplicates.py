"""/duplicates: the near-duplicate pairs ingest found, a few at a time, each as its two pictures
and a message with the buttons "Delete 1st", "Delete 2nd", "Keep both".

The 1st of a pair is the item saved first, the 2nd the one that looked like it. Callback data
carries only the pair's two ids (``dup:<action>:<copy>:<original>``, well under Telegram's 64
bytes); the engine looks the pair up under the owner pressing the button, so ids of another
collection, a pair decided already or an item deleted meanwhile match nothing and get a polite
answer, never a deletion. "More" carries the last pair shown, the key the next page starts after.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup, ReplyParameters

from bot import keyboards as kb
from bot.i18n import t
from bot.results import send_hits
from core.engine.library import PairChoice
from core.search.results import Hit
from storage.near_duplicates import NearDuplicatePair, PairKey

if TYPE_CHECKING:
    from aiogram import Bot

    from core.engine.library import Library

log = logging.getLogger(__name__)

# Pairs per page: each is an album and a message, so a page stays readable on a phone.
PAIRS_PER_PAGE: Final = 3
CHOICES: Final[dict[str, PairChoice]] = {
    "o": "delete_original",
    "c": "delete_copy",
    "k": "keep_both",
}
MORE: Final = "m"
DONE_TEXTS: Final[dict[PairChoice, str]] = {
    "delete_original": "duplicates-deleted-first",
    "delete_copy": "duplicates-deleted-second",
    "keep_both": "duplicates-kept",
}


class PairCB(CallbackData, prefix="dup"):
    """A button of /duplicates: ``action`` o/c/k (delete the 1st, delete the 2nd, keep both) on
    the pair ``copy_id`` ~ ``original_id``, or ``m``: the pairs after that one."""

    action: str
    copy_id: int
    original_id: int

    @property
    def key(self) -> PairKey:
        return PairKey(self.copy_id, self.original_id)

    @property
    def choice(self) -> PairChoice | None:
        return CHOICES.get(self.action)

    @property
    def valid(self) -> bool:
        return (self.action in CHOICES or self.action == MORE) and min(
            self.copy_id, self.original_id
        ) > 0


def pair_keyboard(key: PairKey, lang: str) -> InlineKeyboardMarkup:
    def data(action: str) -> PairCB:
        return PairCB(action=action, copy_id=key.copy, original_id=key.original)

    return kb.keyboard(
        [
            [
                (t("duplicates-delete-first", lang), data("o")),
                (t("duplicates-delete-second", lang), data("c")),
            ],
            [(t("duplicates-keep", lang), data("k"))],
        ]
    )


def more_keyboard(last: PairKey, lang: str) -> InlineKeyboardMarkup:
    more = PairCB(action=MORE, copy_id=last.copy, original_id=last.original)
    return kb.keyboard([[(t("duplicates-more", lang), more)]])


def percent(score: float) -> int:
    """Similarity as a whole percentage, never 100 for two different files unless it is."""
    return max(0, min(100, int(score * 100)))


class DuplicatePages:
    """Sends pages of an owner's pairs into a chat (one per dispatcher, like the responder)."""

    def __init__(self, bot: Bot, library: Library) -> None:
        self.bot = bot
        self.library = library

    async def show(
        self, chat_id: int, owner_id: int, lang: str, *, after: PairKey | None = None
    ) -> int:
        """The page after ``after`` (the first without it); returns how many pairs it showed."""
        pairs = await self.library.duplicates(owner_id, limit=PAIRS_PER_PAGE + 1, after=after)
        if not pairs:
            key = "duplicates-empty" if after is None else "duplicates-no-more"
            await self.bot.send_message(chat_id, t(key, lang))
            return 0
        page, more = pairs[:PAIRS_PER_PAGE], len(pairs) > PAIRS_PER_PAGE
        if after is None:
            total = await self.library.count_duplicates(owner_id)
            await self.bot.send_message(chat_id, t("duplicates-header", lang, total=total))
        for pair in page:
            await self.send_pair(chat_id, pair, lang)
        if more:
            markup = more_keyboard(page[-1].key, lang)
            await self.bot.send_message(
                chat_id, t("duplicates-more-text", lang), reply_markup=markup
            )
        return len(page)

    async def send_pair(self, chat_id: int, pair: NearDuplicatePair, lang: str) -> None:
        """Both pictures (an album where Telegram allows one), then the question, replying to
        them so it is clear which two it is about."""
        hits = [Hit(m, pair.score, unit_id=0, timestamp=None) for m in (pair.original, pair.copy)]
        delivery = await send_hits(self.bot, chat_id, hits)
        if delivery.skipped:
            log.info("pair %s: %d picture(s) not sendable", pair.key, len(delivery.skipped))
        first = delivery.message_ids[0] if delivery.message_ids else None
        text = t("duplicates-pair", lang, score=percent(pair.score))
        if len(delivery.sent) < len(hits):
            text += t("duplicates-pair-unsendable", lang)
        reply = (
            ReplyParameters(message_id=first, allow_sending_without_reply=True)
            if first is not None
            else None
        )
        await self.bot.send_message(
            chat_id, text, reply_markup=pair_keyboard(pair.key, lang), reply_parameters=reply
        )


def done_text(choice: PairChoice, lang: str) -> str:
    """What the pair's message says once the owner decided."""
    return t(DONE_TEXTS[choice], lang)
