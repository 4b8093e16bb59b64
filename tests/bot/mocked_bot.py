"""A Bot API session without a network, for handler tests (in the spirit of aiogram's own
``tests/mocked_bot.py``).

:class:`MockedSession` records every call the bot makes and answers it from a per-method queue
(:meth:`MockedSession.add_result_for`, :meth:`MockedSession.add_error_for`) or, when nothing is
queued, with a plausible default: ``True`` for calls that return a bool, the sent
:class:`~aiogram.types.Message` for sends and edits, the bot's own user for ``getMe``. Answers go
through aiogram's own response parsing (:meth:`BaseSession.check_response`), so a queued error
raises the very exception Telegram's answer would (``TelegramBadRequest``, ``TelegramRetryAfter``).

Queues are per method, not one global stack: a handler makes several calls (``getMe``, a chat
action, the answer) and a test that scripts only one of them should not care about the others.
A call that has neither a queued nor a default answer (``getChatMember``, ``getFile``) fails the
test with a message that says what to queue.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict, deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.base import BaseSession
from aiogram.enums import ParseMode
from aiogram.methods import (
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    SendChatAction,
    SendMediaGroup,
    SendMessage,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import TelegramObject, User

if TYPE_CHECKING:
    from aiogram.types import InlineKeyboardMarkup

M = TypeVar("M", bound=TelegramMethod[Any])

TOKEN = "42:TEST-TOKEN"
BOT_ID = 42
BOT_USERNAME = "finder_test_bot"
FIRST_MESSAGE_ID = 5000
EDITS = (EditMessageText, EditMessageReplyMarkup, EditMessageCaption)


@dataclass(frozen=True, slots=True)
class Scripted:
    """One queued answer: ``result`` (a TelegramObject, a list of them, or a plain value), or
    an error Telegram would send (``status`` >= 400 with ``description``)."""

    result: Any = None
    status: int = 200
    description: str | None = None
    retry_after: int | None = None

    def payload(self) -> dict[str, Any]:
        """The JSON body the Bot API would answer with."""
        if self.status >= 400:
            body: dict[str, Any] = {
                "ok": False,
                "error_code": self.status,
                "description": self.description,
            }
            if self.retry_after is not None:
                body["parameters"] = {"retry_after": self.retry_after}
            return body
        return {"ok": True, "result": to_json(self.result)}


def to_json(value: Any) -> Any:
    """A result as it travels in the Bot API's JSON ("from", not "from_user"; no nulls)."""
    if isinstance(value, TelegramObject):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True, warnings=False)
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def bot_user(bot_id: int = BOT_ID, username: str = BOT_USERNAME) -> User:
    """The bot's own account, as ``getMe`` reports it."""
    return User(
        id=bot_id,
        is_bot=True,
        first_name="Finder",
        username=username,
        can_join_groups=True,
        can_read_all_group_messages=True,
        supports_inline_queries=True,
    )


class MockedSession(BaseSession):
    """Records calls (:attr:`requests`, in order) and answers them without a network."""

    def __init__(self, me: User | None = None) -> None:
        super().__init__()
        self.me = me or bot_user()
        self.requests: list[TelegramMethod[Any]] = []
        self.results: list[Any] = []  # what each call returned, parallel to requests
        self.files: dict[str, bytes] = {}  # download URL path suffix -> bytes (stream_content)
        self.closed = False
        self._queued: dict[type[TelegramMethod[Any]], deque[Scripted]] = defaultdict(deque)
        self._message_ids = itertools.count(FIRST_MESSAGE_ID)
        self._arrived: asyncio.Condition | None = None

    # --- scripting ------------------------------------------------------------------------------

    def add_result_for(self, method: type[TelegramMethod[Any]], result: Any) -> None:
        """Answer the next call of ``method`` with ``result`` (then the defaults again)."""
        self._queued[method].append(Scripted(result))

    def add_error_for(
        self,
        method: type[TelegramMethod[Any]],
        status: int,
        description: str,
        *,
        retry_after: int | None = None,
    ) -> None:
        """Fail the next call of ``method`` as Telegram would (400 "Bad Request: ...", 403, 429
        with ``retry_after``)."""
        self._queued[method].append(Scripted(None, status, description, retry_after))

    # --- what the bot did -----------------------------------------------------------------------

    def calls(self, method: type[M]) -> list[M]:
        """Every recorded call of ``method``, oldest first."""
        return [cast("M", r) for r in self.requests if isinstance(r, method)]

    def result_of(self, call: TelegramMethod[Any]) -> Any:
        """What a recorded call returned to the bot (a Message for a send), or the error."""
        for request, result in zip(self.requests, self.results, strict=False):
            if request is call:
                return result
        raise AssertionError(f"{call!r} was not answered (yet)")

    def sent_texts(self, chat_id: int | None = None) -> list[str]:
        """The texts of every sendMessage (to ``chat_id`` when given), oldest first."""
        return [m.text for m in self.calls(SendMessage) if chat_id is None or m.chat_id == chat_id]

    def visible(self) -> list[TelegramMethod[Any]]:
        """The calls a user could see: everything but getMe and chat actions ("typing…" is
        sent on a timer, so whether it made it out before the answer is a race)."""
        return [r for r in self.requests if not isinstance(r, GetMe | SendChatAction)]

    async def wait_for(self, method: type[M], count: int = 1, *, timeout: float = 2.0) -> list[M]:
        """Wait until ``count`` calls of ``method`` were made (answers sent in the background,
        such as an ingest acknowledgement); returns them. Fails after ``timeout`` seconds."""
        condition = self._condition()
        async with condition:
            await asyncio.wait_for(
                condition.wait_for(lambda: len(self.calls(method)) >= count), timeout
            )
        return self.calls(method)

    def forget(self) -> None:
        """Drop the recorded calls (set-up chatter before the part a test checks)."""
        self.requests.clear()
        self.results.clear()

    # --- BaseSession ----------------------------------------------------------------------------

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        try:
            result: Any = self._answer(bot, method)
        except Exception as exc:
            result = exc
        self.requests.append(method)
        self.results.append(result)
        condition = self._condition()
        async with condition:
            condition.notify_all()
        if isinstance(result, Exception):
            raise result
        return cast("TelegramType", result)

    def _answer(self, bot: Bot, method: TelegramMethod[TelegramType]) -> TelegramType:
        """The queued answer, else the default, parsed as aiogram parses Telegram's JSON."""
        queue = self._queued.get(type(method))
        scripted = queue.popleft() if queue else Scripted(self.default_result(bot, method))
        body = json.dumps(scripted.payload())
        return self.check_response(bot, method, scripted.status, body).result  # type: ignore[return-value]

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        """The bytes registered in :attr:`files` for the end of ``url`` (a file path)."""
        for suffix, data in self.files.items():
            if url.endswith(suffix):
                yield data
                return
        raise AssertionError(f"no file registered for {url!r}: put its bytes in session.files")

    async def close(self) -> None:
        self.closed = True

    # --- defaults -------------------------------------------------------------------------------

    def default_result(self, bot: Bot, method: TelegramMethod[Any]) -> Any:
        """What Telegram answers a call that succeeded, when the test queued nothing."""
        if isinstance(method, GetMe):
            return self.me
        if isinstance(method, SendMediaGroup):
            return [self.message_for(method.chat_id) for _ in method.media]
        if isinstance(method, EDITS):
            if method.chat_id is None or method.message_id is None:
                return True  # an inline message: Telegram answers True
            markup = method.reply_markup
            text = getattr(method, "text", None)
            return self.message_for(method.chat_id, text, markup, message_id=method.message_id)
        returning = method.__returning__
        if returning is bool:
            return True
        chat_id = getattr(method, "chat_id", None)
        if chat_id is not None and type(method).__name__.startswith(("Send", "Copy", "Forward")):
            text = getattr(method, "text", None)
            return self.message_for(chat_id, text, getattr(method, "reply_markup", None))
        name = type(method).__name__
        raise AssertionError(f"{name} has no default answer: queue one with add_result_for")

    def message_for(
        self,
        chat_id: int | str,
        text: str | None = None,
        markup: InlineKeyboardMarkup | Any = None,
        *,
        message_id: int | None = None,
    ) -> dict[str, Any]:
        """A message the bot sent to ``chat_id`` (a fresh id unless ``message_id``)."""
        chat = int(chat_id)
        message: dict[str, Any] = {
            "message_id": message_id if message_id is not None else next(self._message_ids),
            "date": int(datetime.now(UTC).timestamp()),
            "chat": {"id": chat, "type": "private" if chat > 0 else "supergroup"},
            "from": to_json(self.me),
        }
        if chat < 0:
            message["chat"]["title"] = "Group"
        if text is not None:
            message["text"] = text
        if markup is not None and isinstance(markup, TelegramObject):
            message["reply_markup"] = to_json(markup)
        return message

    def _condition(self) -> asyncio.Condition:
        """Created on first use, inside the test's event loop."""
        if self._arrived is None:
            self._arrived = asyncio.Condition()
        return self._arrived


class MockedBot(Bot):
    """A Bot on a :class:`MockedSession`, with HTML parse mode like the real one. Handler tests
    that need the production transport build theirs with ``bot.app.create_bot(settings,
    session=MockedSession())`` instead; both record through :attr:`session`."""

    if TYPE_CHECKING:
        session: MockedSession

    def __init__(self, session: MockedSession | None = None, token: str = TOKEN) -> None:
        super().__init__(
            token,
            session=session or MockedSession(),
            default=DefaultBotProperties(parse_mode=ParseMode.HTML),
        )
