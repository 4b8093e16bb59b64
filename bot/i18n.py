"""Russian and English texts without a translation framework.

Each handler module keeps its own ``TEXTS = {"key": {"ru": "...", "en": "..."}}`` next to the
code that sends them, so texts change together with behaviour; :func:`tr` picks the language and
fills ``str.format`` placeholders. Values passed in are inserted as given: escape user text with
``html.escape`` first (messages use HTML parse mode).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

log = logging.getLogger(__name__)

Lang = Literal["ru", "en"]
LANGS: tuple[Lang, ...] = ("ru", "en")
DEFAULT_LANG: Lang = "en"

Texts = Mapping[str, Mapping[str, str]]


def normalize_lang(value: object) -> Lang | None:
    """``"ru"``/``"en"`` for a stored setting or a Telegram ``language_code`` (``"ru-RU"``,
    ``"uk"`` -> None), else None."""
    if not isinstance(value, str) or not value:
        return None
    code = value.strip().lower().replace("_", "-").split("-")[0]
    return code if code in LANGS else None  # type: ignore[return-value]


def pick_lang(setting: object = None, language_code: str | None = None) -> Lang:
    """The user's chosen language, else Russian for a Russian Telegram client, else English."""
    chosen = normalize_lang(setting)
    if chosen is not None:
        return chosen
    if language_code and language_code.lower().startswith("ru"):
        return "ru"
    return DEFAULT_LANG


def tr(texts: Texts, key: str, lang: str, /, **kwargs: Any) -> str:
    """The text ``key`` in ``lang`` (English when that translation is missing), formatted.

    A missing key or placeholder is a bug, but users should still get an answer: it is logged
    and the raw template (or the key) is returned instead of raising inside a handler.
    """
    variants = texts.get(key)
    if variants is None:
        log.error("missing text %r", key)
        return key
    template = variants.get(lang) or variants.get(DEFAULT_LANG) or next(iter(variants.values()))
    if not kwargs:
        return template
    try:
        return template.format(**kwargs)
    except (KeyError, IndexError, ValueError):
        log.exception("cannot format text %r (%s)", key, lang)
        return template


def plural(n: int, lang: str, one: str, few: str, many: str) -> str:
    """The word form for ``n``: Russian has three (1 фото, 2 фото, 5 фото; 1 видео ...),
    English uses ``one`` for 1 and ``many`` otherwise."""
    if lang == "ru":
        n10, n100 = abs(n) % 10, abs(n) % 100
        if n10 == 1 and n100 != 11:
            return one
        if 2 <= n10 <= 4 and not 12 <= n100 <= 14:
            return few
        return many
    return one if abs(n) == 1 else many
