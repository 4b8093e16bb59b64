"""The bot's user texts, in Project Fluent files read by ``fluent.runtime``.

Every text lives in ``bot/locales/<lang>.ftl``, one file per language, so translators edit text
files instead of Python and plurals follow each language's CLDR rules (``{ $n -> [one] ...
*[other] ... }``). The languages offered are the files present: adding a language is adding a
file. English is the fallback for a whole language and for any message a file lacks.

Messages are sent with HTML parse mode: markup in the files is kept as written and values are
inserted as given, so callers ``html.escape`` user text first. Bidi isolation marks are off and
integers print without grouping, exactly as ``str.format`` printed them (1234, not 1,234).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fluent.runtime import FluentBundle, FluentResource
from fluent.runtime.types import FluentType, fluent_number
from fluent.syntax.ast import Junk

log = logging.getLogger(__name__)

Lang = str  # a language tag that has a locale file: "en", "ru", ...

LOCALES_DIR = Path(__file__).with_name("locales")
DEFAULT_LANG: Lang = "en"


def fluent_value(value: object) -> Any:
    """A variable as Fluent should see it: numbers stay numbers (plural selectors need them) but
    print ungrouped; anything else is inserted as its ``str``, like ``str.format`` did."""
    if isinstance(value, str | FluentType):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return fluent_number(value, useGrouping=False)
    return str(value)  # floats too: exactly what Python printed, not Babel's rounding


def load_bundle(path: Path) -> FluentBundle:
    """The bundle of one ``<lang>.ftl``; a syntax error is a bug, reported at start-up rather
    than as a silently missing message later."""
    resource = FluentResource(path.read_text(encoding="utf-8"))
    junk = [entry for entry in resource.body if isinstance(entry, Junk)]
    if junk:
        raise ValueError(f"{path}: cannot parse {(junk[0].content or '').strip()[:80]!r}")
    bundle = FluentBundle([path.stem], use_isolating=False)
    bundle.add_resource(resource)
    return bundle


class Catalog:
    """The texts of every offered language, with the fallback chain of :meth:`pick` and
    :meth:`t`."""

    def __init__(self, bundles: Mapping[Lang, FluentBundle], default: Lang = DEFAULT_LANG) -> None:
        if default not in bundles:
            raise ValueError(f"no texts for the default language {default!r}")
        self.default = default
        self._bundles = dict(bundles)
        self._by_lower = {lang.lower(): lang for lang in bundles}

    @classmethod
    def load(cls, directory: Path = LOCALES_DIR, default: Lang = DEFAULT_LANG) -> Catalog:
        """One bundle per ``*.ftl`` file in ``directory``, named by the file's stem."""
        return cls({p.stem: load_bundle(p) for p in sorted(directory.glob("*.ftl"))}, default)

    @property
    def languages(self) -> tuple[Lang, ...]:
        """The offered languages in menu order: alphabetical, the fallback language last (so
        /settings keeps listing Russian before English)."""
        others = sorted(lang for lang in self._bundles if lang != self.default)
        return (*others, self.default)

    def profile_languages(self) -> list[tuple[str | None, Lang]]:
        """(Telegram ``language_code``, language) pairs for the command menu and descriptions:
        Telegram's default (None) and each offered language under its base code."""
        pairs: list[tuple[str | None, Lang]] = [(None, self.default), (self.default, self.default)]
        seen = {self.default}
        for lang in self.languages:
            code = lang.split("-")[0].lower()
            if code not in seen:
                seen.add(code)
                pairs.append((code, lang))
        return pairs

    def normalize(self, value: object) -> Lang | None:
        """The offered language for a stored setting or a Telegram ``language_code``: the full
        tag ("pt-BR"), else its base language ("ru-RU" -> "ru"); None when neither is offered."""
        if not isinstance(value, str) or not value.strip():
            return None
        tag = value.strip().lower().replace("_", "-")
        return self._by_lower.get(tag) or self._by_lower.get(tag.split("-")[0])

    def pick(self, setting: object = None, language_code: str | None = None) -> Lang:
        """The user's chosen language, else the Telegram client's, else the default."""
        return self.normalize(setting) or self.normalize(language_code) or self.default

    def has(self, key: str, lang: Lang | None = None) -> bool:
        """Whether ``key`` exists in ``lang`` (or, without one, in the default language)."""
        bundle = self._bundles.get(lang or self.default)
        return bundle is not None and bundle.has_message(key)

    def t(self, key: str, lang: Lang, /, **variables: object) -> str:
        """The text ``key`` in ``lang`` (in the default language when that file lacks it).

        A missing key or variable is a bug, but users should still get an answer: it is logged
        and the key (or the text with the gap) is returned instead of raising inside a handler.
        """
        for code in dict.fromkeys((lang, self.default)):
            bundle = self._bundles.get(code)
            if bundle is None or not bundle.has_message(key):
                continue
            pattern = bundle.get_message(key).value
            if pattern is None:
                continue
            args = {name: fluent_value(value) for name, value in variables.items()}
            text, errors = bundle.format_pattern(pattern, args)
            if errors:
                log.error("cannot format text %r (%s): %s", key, code, errors)
            return str(text)
        log.error("missing text %r", key)
        return key


catalog = Catalog.load()
LANGS: tuple[Lang, ...] = catalog.languages


def t(key: str, lang: Lang, /, **variables: object) -> str:
    """The text ``key`` of the bot's catalogue in ``lang``: see :meth:`Catalog.t`."""
    return catalog.t(key, lang, **variables)


def normalize_lang(value: object) -> Lang | None:
    """See :meth:`Catalog.normalize`."""
    return catalog.normalize(value)


def pick_lang(setting: object = None, language_code: str | None = None) -> Lang:
    """See :meth:`Catalog.pick`."""
    return catalog.pick(setting, language_code)
