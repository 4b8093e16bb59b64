"""What /stats and /settings show: the collection's numbers, and the settings with their buttons.

Texts and keyboards only, built from the engine's answers; the handlers in
:mod:`bot.handlers.commands` send them. Settings buttons carry no trust: a pressed button is
turned into a change only when its values are among the allowed ones.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup

from bot import keyboards as kb
from bot.i18n import LANGS, t
from bot.services import DEFAULT_STRICTNESS, PAGE_SIZES, STRICTNESS
from core.settings import Settings

if TYPE_CHECKING:
    from core.engine.engine import Engine
    from storage.records import Owner

# Media kinds in the order /stats lists them (each counted by its commands-kind-<kind> text).
KINDS: tuple[str, ...] = ("photo", "video", "animation", "video_note", "document")


class SettingsCB(CallbackData, prefix="set"):
    key: str  # "page" | "strict" | "lang"
    value: str


def models_line(engine: Engine) -> str:
    return ", ".join(
        f"{html.escape(model_id)} ({'/'.join(cfg.languages)})"
        for model_id, cfg in engine.configs.items()
    )


def human_bytes(n: float, lang: str) -> str:
    """``n`` bytes in B/KB/MB/GB: whole bytes, one decimal above (the unit names are
    translated, the number is not: "1.5", never "1,5")."""
    for unit in ("b", "kb", "mb"):
        if n < 1024:
            value = f"{n:.0f}" if unit == "b" else f"{n:.1f}"
            return t("commands-size", lang, value=value, unit=unit)
        n /= 1024
    return t("commands-size", lang, value=f"{n:.1f}", unit="gb")


async def stats_text(engine: Engine, settings: Settings, owner: Owner, lang: str) -> str:
    """The /stats answer: items by kind, index size per model, the queue, the models."""
    stats = await engine.owners.stats(owner.id)
    models = models_line(engine)
    queued = stats.jobs_by_state.get("pending", 0) + stats.jobs_by_state.get("running", 0)
    if stats.media_total == 0 and queued == 0:
        return t("commands-stats-empty", lang, models=models)
    kinds = " · ".join(
        t(f"commands-kind-{kind.replace('_', '-')}", lang, n=stats.media_by_kind[kind])
        for kind in KINDS
        if stats.media_by_kind.get(kind)
    )
    bytes_per = 2 if settings.index.exact_kind == "fp16" else 4
    index_bytes = 0
    per_model = []
    for model_id, n in sorted(stats.vectors_by_model.items()):
        cfg = engine.configs.get(model_id)
        if cfg is not None:
            index_bytes += n * cfg.embed_dim * bytes_per
        per_model.append(f"{html.escape(model_id)} {n}")
    index = (", ".join(per_model) or "0") + f" (≈ {human_bytes(index_bytes, lang)})"
    queue = t("commands-stats-queue", lang, n=queued) if queued else ""
    failed = stats.jobs_by_state.get("failed", 0)
    if failed:
        queue += t("commands-stats-failed", lang, n=failed)
    return t(
        "commands-stats",
        lang,
        total=stats.media_total,
        kinds=kinds or "—",
        thumbs=stats.thumbnail_only,
        units=stats.units,
        index=index,
        queue=queue,
        models=models,
    )


def settings_change(data: SettingsCB) -> dict[str, Any] | None:
    """The owner-settings change a settings button asks for, or None if the data is invalid."""
    if data.key == "page" and data.value.isdigit() and int(data.value) in PAGE_SIZES:
        return {"page_size": int(data.value)}
    if data.key == "strict" and data.value in STRICTNESS:
        return {"strictness": data.value}
    if data.key == "lang" and data.value in LANGS:
        return {"lang": data.value}
    return None


def settings_view(
    defaults: Settings, settings: dict[str, Any], lang: str
) -> tuple[str, InlineKeyboardMarkup]:
    """The /settings text and buttons for the owner's ``settings`` (the current choice marked)."""
    page = settings.get("page_size")
    if page not in PAGE_SIZES:
        page = defaults.search.default_limit
    strictness = settings.get("strictness")
    if strictness not in STRICTNESS:
        strictness = DEFAULT_STRICTNESS
    text = t(
        "commands-settings",
        lang,
        page=page,
        strictness=t(f"commands-strictness-{strictness}", lang),
        language=t("language-name", lang),
    )
    markup = kb.keyboard(
        [
            [
                (kb.mark(str(n), n == page), SettingsCB(key="page", value=str(n)))
                for n in PAGE_SIZES
            ],
            [
                (
                    kb.mark(t(f"commands-strictness-{s}", lang), s == strictness),
                    SettingsCB(key="strict", value=s),
                )
                for s in STRICTNESS
            ],
            [
                (
                    kb.mark(t("language-name", code), code == lang),
                    SettingsCB(key="lang", value=code),
                )
                for code in LANGS
            ],
        ]
    )
    return text, markup
