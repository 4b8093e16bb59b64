"""Answers to the user's queries: answerCallbackQuery and answerInlineQuery.

Inline results are validated with aiogram's own models, and cached results must name a stored
file of the right kind, so results Telegram would refuse fail here too.
"""

from __future__ import annotations

from typing import Any

from .dispatch import Handler
from .protocol import (
    CALLBACK_ANSWER_LIMIT,
    INLINE_OFFSET_LIMIT,
    INLINE_RESULTS_LIMIT,
    QUERY_TOO_OLD,
    TYPE_MISMATCH,
    WRONG_FILE_ID,
    as_bool,
    bad,
    utf16_len,
)
from .records import ApiCall
from .state import ServerState
from .text import check_caption, check_markup


class Answers:
    """The bot's answers to callback and inline queries, once per query."""

    def __init__(self, state: ServerState) -> None:
        self._state = state

    def handlers(self) -> dict[str, Handler]:
        return {
            "answerCallbackQuery": self.answer_callback_query,
            "answerInlineQuery": self.answer_inline_query,
        }

    async def answer_callback_query(self, call: ApiCall) -> bool:
        query_id = str(call.params.get("callback_query_id") or "")
        if query_id not in self._state.callback_queries or query_id in self._state.callback_answers:
            raise bad(QUERY_TOO_OLD)
        text = call.params.get("text")
        if text is not None and utf16_len(str(text)) > CALLBACK_ANSWER_LIMIT:
            raise bad("Bad Request: MESSAGE_TOO_LONG")
        self._state.callback_answers[query_id] = {
            "text": text,
            "show_alert": as_bool(call.params.get("show_alert", False)),
            "url": call.params.get("url"),
            "cache_time": call.int_param("cache_time"),
        }
        return True

    async def answer_inline_query(self, call: ApiCall) -> bool:
        from aiogram.types import inline_query_result_union as results_module

        query_id = str(call.params.get("inline_query_id") or "")
        if query_id not in self._state.inline_queries or query_id in self._state.inline_answers:
            raise bad(QUERY_TOO_OLD)
        results = call.params.get("results")
        if not isinstance(results, list):
            raise bad("Bad Request: can't parse results JSON object")
        if len(results) > INLINE_RESULTS_LIMIT:
            raise bad("Bad Request: RESULTS_TOO_MUCH")
        next_offset = call.params.get("next_offset")
        if next_offset is not None and len(str(next_offset).encode()) > INLINE_OFFSET_LIMIT:
            raise bad("Bad Request: NEXT_OFFSET_INVALID")
        seen: set[str] = set()
        for result in results:
            if not isinstance(result, dict):
                raise bad("Bad Request: can't parse InlineQueryResult JSON object")
            result_id = str(result.get("id", ""))
            if not 1 <= len(result_id.encode()) <= 64:
                raise bad("Bad Request: RESULT_ID_INVALID")
            if result_id in seen:
                raise bad("Bad Request: RESULT_ID_DUPLICATE")
            seen.add(result_id)
            self._check_inline_result(result, results_module)
        self._state.inline_answers[query_id] = {
            "results": results,
            "next_offset": next_offset,
            "is_personal": as_bool(call.params.get("is_personal", False)),
            "cache_time": call.int_param("cache_time"),
            "button": call.params.get("button"),
        }
        return True

    def _check_inline_result(self, result: dict[str, Any], module: Any) -> None:
        """Refuse a result Telegram would: unknown file, wrong kind, or an invalid object."""
        kind = str(result.get("type"))
        cached_field = {
            "photo": "photo_file_id",
            "video": "video_file_id",
            "document": "document_file_id",
            "gif": "gif_file_id",
            "mpeg4_gif": "mpeg4_file_id",
        }.get(kind)
        if cached_field and cached_field in result:
            stored = self._state.files.get(str(result[cached_field]))
            if stored is None:
                raise bad(WRONG_FILE_ID)
            expected = {"gif": "animation", "mpeg4_gif": "animation"}.get(kind, kind)
            if stored.kind != expected:
                raise bad(TYPE_MISMATCH)
        candidates = [
            cls
            for cls in getattr(module.InlineQueryResultUnion, "__args__", ())
            if cls.model_fields["type"].default == kind
        ]
        if cached_field:
            cached = cached_field in result
            candidates = [
                c for c in candidates if c.__name__.startswith("InlineQueryResultCached") == cached
            ]
        if not candidates:
            raise bad(f'Bad Request: unsupported inline query result type "{kind}"')
        markup = result.get("reply_markup")
        if markup is not None:
            check_markup(markup)
        caption = result.get("caption")
        if caption is not None:
            check_caption(caption, result.get("parse_mode"))
        try:
            candidates[0].model_validate(result)
        except Exception as exc:
            raise bad(f"Bad Request: can't parse InlineQueryResult: {exc}") from exc
