"""Search sessions behind the buttons under a result page ("More", strict, loose).

Callback data holds only ``res:<session id>:<strictness>:<offset>`` (under Telegram's 64 bytes):
"show this page of this search with this strictness". The query lives in SQLite
(:class:`~storage.results.ResultStore`), so buttons keep working after a restart, and every
lookup is scoped to the owner pressing the button: a tampered id, a forwarded button or another
user's session simply matches nothing and gets a polite "expired" answer.

A photo query keeps the Telegram file id of the user's photo (not the photo: it is not part of
the collection) and fetches it again for the next page; the bytes of recent photo queries stay in
a small in-memory cache so paging right away does not download twice.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import t
from core.search.query import Strictness
from core.search.results import SearchResult

# Largest offset a button may ask for: more than anyone pages through, small enough to be cheap.
MAX_OFFSET = 10_000
MODES: dict[str, Strictness] = {"s": "strict", "n": "normal", "l": "loose"}
MODE_OF: dict[str, str] = {v: k for k, v in MODES.items()}


class ResultsPage(CallbackData, prefix="res"):
    """A page of a search session: ``mode`` is s/n/l (strict, normal, loose)."""

    sid: int
    mode: str
    offset: int

    @property
    def strictness(self) -> Strictness | None:
        return MODES.get(self.mode)

    @property
    def valid(self) -> bool:
        return self.strictness is not None and 0 <= self.offset <= MAX_OFFSET and self.sid > 0


def page_data(session_id: int, strictness: str, offset: int) -> str:
    return ResultsPage(sid=session_id, mode=MODE_OF[strictness], offset=offset).pack()


def results_keyboard(session_id: int, result: SearchResult, lang: str) -> InlineKeyboardMarkup:
    """ "More" when there is a next page; Strict / Loose toggles (pressing the active one goes
    back to normal), each starting again from the first page."""
    current = result.strictness
    rows: list[list[InlineKeyboardButton]] = []
    if result.has_more and result.next_offset is not None:
        rows.append(
            [
                InlineKeyboardButton(
                    text=t("sessions-more", lang),
                    callback_data=page_data(session_id, current, result.next_offset),
                )
            ]
        )
    toggles = []
    for mode in ("strict", "loose"):
        label = t(f"sessions-{mode}", lang)
        target = "normal" if current == mode else mode
        if current == mode:
            label = t("sessions-active", lang, label=label)
        toggles.append(
            InlineKeyboardButton(text=label, callback_data=page_data(session_id, target, 0))
        )
    rows.append(toggles)
    return InlineKeyboardMarkup(inline_keyboard=rows)


class PhotoCache:
    """The bytes of recent photo queries by session id: a bounded LRU with a time limit."""

    def __init__(
        self,
        max_items: int = 32,
        ttl_s: float = 600.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_items = max_items
        self.ttl_s = ttl_s
        self._clock = clock
        self._items: OrderedDict[int, tuple[float, bytes]] = OrderedDict()

    def put(self, session_id: int, data: bytes) -> None:
        self._items[session_id] = (self._clock(), data)
        self._items.move_to_end(session_id)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def get(self, session_id: int) -> bytes | None:
        entry = self._items.get(session_id)
        if entry is None:
            return None
        at, data = entry
        if self._clock() - at > self.ttl_s:
            del self._items[session_id]
            return None
        self._items.move_to_end(session_id)
        return data

    def __len__(self) -> int:
        return len(self._items)
