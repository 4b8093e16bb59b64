"""Message text as Telegram checks it: HTML entity parsing, length limits, keyboards.

Shared by every method that sends or edits text, captions or inline keyboards.
"""

from __future__ import annotations

import html
import re
from typing import Any

from .protocol import CALLBACK_DATA_LIMIT, CAPTION_LIMIT, TEXT_LIMIT, bad, utf16_len

INLINE_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)

_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "blockquote",
        "code",
        "del",
        "em",
        "i",
        "ins",
        "pre",
        "s",
        "span",
        "strike",
        "strong",
        "tg-emoji",
        "tg-spoiler",
        "tg-time",
        "u",
    }
)
_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*)?>")
_ENTITY_RE = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")


def html_visible_text(text: str) -> str:
    """The text a user sees for ``parse_mode=HTML``; raises like Telegram on broken markup.

    Catches the classic bug of user input (``a < b``) interpolated into HTML unescaped.
    """
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            offset = len(text[:i].encode())
            match = _TAG_RE.match(text, i)
            if match is None:
                name = re.match(r"</?([^\s<>]*)", text[i:])
                tag = name.group(1) if name else ""
                raise bad(
                    f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}" '
                    f"at byte offset {offset}"
                )
            closing, name = match.group(1) == "/", match.group(2).lower()
            if name not in _HTML_TAGS:
                raise bad(
                    f'Bad Request: can\'t parse entities: Unsupported start tag "{name}" '
                    f"at byte offset {offset}"
                )
            if closing:
                if not stack:
                    raise bad(
                        f"Bad Request: can't parse entities: Unexpected end tag at byte offset "
                        f"{offset}"
                    )
                if stack[-1] != name:
                    raise bad(
                        "Bad Request: can't parse entities: Unmatched end tag at byte offset "
                        f'{offset}, expected "</{stack[-1]}>", found "</{name}>"'
                    )
                stack.pop()
            else:
                stack.append(name)
            i = match.end()
            continue
        if ch == "&":
            entity = _ENTITY_RE.match(text, i)
            if entity is not None:
                out.append(html.unescape(entity.group()))
                i = entity.end()
                continue
        out.append(ch)
        i += 1
    if stack:
        raise bad(
            "Bad Request: can't parse entities: Can't find end tag corresponding to start tag "
            f'"{stack[-1]}"'
        )
    return "".join(out)


def visible_text(text: str, parse_mode: str | None) -> str:
    """Text after entity parsing (HTML is parsed and checked; Markdown modes are kept as is)."""
    if parse_mode and parse_mode.lower() == "html":
        return html_visible_text(text)
    return text


def check_text(text: Any, parse_mode: Any) -> str:
    """The visible text of a message; refused when empty or over Telegram's limit."""
    if text is None or str(text) == "":
        raise bad("Bad Request: message text is empty")
    shown = visible_text(str(text), parse_mode)
    if not shown.strip():
        raise bad("Bad Request: text must be non-empty")
    if utf16_len(shown) > TEXT_LIMIT:
        raise bad("Bad Request: message is too long")
    return shown


def check_caption(caption: Any, parse_mode: Any) -> str | None:
    """The visible caption (None when there is none); refused when over Telegram's limit."""
    if caption is None or caption == "":
        return None
    shown = visible_text(str(caption), parse_mode)
    if utf16_len(shown) > CAPTION_LIMIT:
        raise bad("Bad Request: message caption is too long")
    return shown or None


def check_markup(markup: Any) -> dict[str, Any] | None:
    """Validate a ``reply_markup`` value; return it when it is an inline keyboard."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad("Bad Request: can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        from aiogram.types import InlineKeyboardMarkup

        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad("Bad Request: can't parse inline keyboard button: rows must be arrays")
        for button in (b for row in rows for b in row):
            if not isinstance(button, dict) or not button.get("text"):
                raise bad("Bad Request: can't parse inline keyboard button: Text is empty")
            actions = [a for a in INLINE_BUTTON_ACTIONS if a in button]
            if len(actions) != 1:
                raise bad(
                    "Bad Request: can't parse inline keyboard button: exactly one of the "
                    f"optional fields must be used, got {actions}"
                )
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
                raise bad("Bad Request: BUTTON_DATA_INVALID")
        try:
            InlineKeyboardMarkup.model_validate(markup)
        except Exception as exc:
            raise bad("Bad Request: can't parse reply keyboard markup JSON object") from exc
        return markup
    if not any(k in markup for k in ("keyboard", "remove_keyboard", "force_reply")):
        raise bad("Bad Request: can't parse reply keyboard markup JSON object")
    return None
