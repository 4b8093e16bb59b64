"""Pick which loaded model answers a text query.

Every loaded model embeds every image, so any model *can* answer; routing only picks the one
whose text tower understands the query best:

1. one model loaded: it answers everything;
2. a multilingual model (``languages == ["*"]``) is loaded: it answers everything (the first
   one, in the order given, if there are several);
3. otherwise the query's script decides: when Cyrillic letters outnumber all other letters the
   query goes to a model that lists ``ru`` (or, failing that, another Cyrillic-script language);
   anything else goes to a model that lists ``en``. Only letters count: digits, punctuation,
   emoji and spaces are ignored, so "кот 2024 :)" is Cyrillic and "iPhone фото" (6 Latin
   letters against 4 Cyrillic) is Latin. A tie, or a query with no letters, is not a Cyrillic
   majority and goes to the English model;
4. when the preferred language has no model, the default model answers: the first model that
   lists ``en``, else the first model given.

An owner may have only some of the loaded models active (during a model change the old model
keeps answering until the switch): :class:`ActiveModelRouter` routes among those.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from core.models.config import BundleConfig

# ISO 639-1 codes of languages written in Cyrillic, tried after "ru" for Cyrillic queries.
CYRILLIC_LANGUAGES = ("ru", "uk", "be", "bg", "sr", "mk", "kk", "ky", "mn", "tg", "tt", "ba")

_CYRILLIC_RANGES = (
    (0x0400, 0x052F),  # Cyrillic + Cyrillic Supplement
    (0x1C80, 0x1C8F),  # Cyrillic Extended-C
    (0x2DE0, 0x2DFF),  # Cyrillic Extended-A
    (0xA640, 0xA69F),  # Cyrillic Extended-B
)


def is_cyrillic(ch: str) -> bool:
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _CYRILLIC_RANGES)


def mostly_cyrillic(text: str) -> bool:
    """True when Cyrillic letters strictly outnumber all other letters of ``text``."""
    cyrillic = other = 0
    for ch in text:
        if ch.isalpha():
            if is_cyrillic(ch):
                cyrillic += 1
            else:
                other += 1
    return cyrillic > other


class TextRouter:
    """Routes a query to one of the given bundle configs (see the module docstring)."""

    def __init__(self, configs: Iterable[BundleConfig]) -> None:
        self.configs: tuple[BundleConfig, ...] = tuple(configs)
        if not self.configs:
            raise ValueError("no models loaded: at least one bundle is needed to route queries")
        self.multilingual: BundleConfig | None = next(
            (c for c in self.configs if c.multilingual), None
        )
        self.default: BundleConfig = self._first_with(("en",)) or self.configs[0]
        self.cyrillic: BundleConfig = self._first_with(CYRILLIC_LANGUAGES) or self.default

    def _first_with(self, languages: tuple[str, ...]) -> BundleConfig | None:
        for lang in languages:  # language order first: "ru" beats "uk"
            for cfg in self.configs:
                if lang in cfg.languages:
                    return cfg
        return None

    def route(self, text: str) -> BundleConfig:
        """The config of the model that should embed ``text``."""
        if self.multilingual is not None:
            return self.multilingual
        if len(self.configs) == 1:
            return self.configs[0]
        return self.cyrillic if mostly_cyrillic(text) else self.default

    def route_id(self, text: str) -> str:
        """``model_id`` of the model that should embed ``text``."""
        return self.route(text).model_id


class ActiveModelRouter:
    """Routes a text among the models active for an owner, a subset of the loaded ones.

    The router over every loaded model decides when its pick is active; otherwise a router
    over just the active models does (built once per distinct set, so routing stays a lookup).
    """

    def __init__(self, router: TextRouter, configs: Mapping[str, BundleConfig]) -> None:
        self._router = router
        self._configs = dict(configs)
        self._routers: dict[tuple[str, ...], TextRouter] = {}

    def route_id(self, text: str, active: Sequence[str]) -> str:
        """``model_id`` of the model among ``active`` that should embed ``text``."""
        routed = self._router.route_id(text)
        if routed in active:
            return routed
        key = tuple(active)
        router = self._routers.get(key)
        if router is None:
            router = self._routers[key] = TextRouter(self._configs[m] for m in key)
        return router.route_id(text)
