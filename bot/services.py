"""What every handler shares: settings, the engine, the Bot, and small helpers on top of them.

One :class:`BotServices` is built per running bot and injected into handlers by the dispatcher
(``services``), next to ``engine``, ``owner`` and ``lang`` (see :mod:`bot.middlewares`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from bot.config import BotAppSettings
from bot.i18n import t
from storage.records import Owner

if TYPE_CHECKING:
    from aiogram import Bot

    from core.engine.engine import Engine
    from core.search.query import Strictness

log = logging.getLogger(__name__)

# Owner settings keys and their defaults (stored with OwnerProfile.update_settings).
PAGE_SIZES: tuple[int, ...] = (5, 10, 20)
STRICTNESS: tuple[str, ...] = ("strict", "normal", "loose")
DEFAULT_STRICTNESS = "normal"


@dataclass
class BotServices:
    """The running bot's shared state.

    ``live_jobs`` holds ingest job ids whose outcome a handler is waiting for right now, so the
    outcome listener for jobs resumed after a restart does not report them a second time.
    """

    settings: BotAppSettings
    engine: Engine
    bot: Bot
    live_jobs: set[int] = field(default_factory=set)
    bot_username: str | None = None

    async def page_size(self, owner: Owner) -> int:
        """Results per page: the owner's choice, else ``SEARCH_DEFAULT_LIMIT``."""
        value = (await self.engine.owners.settings(owner.id)).get("page_size")
        if isinstance(value, int) and value in PAGE_SIZES:
            return value
        return self.settings.search.default_limit

    async def strictness(self, owner: Owner) -> Strictness:
        """Relevance strictness: "strict" | "normal" | "loose" (owner setting, else normal)."""
        value = (await self.engine.owners.settings(owner.id)).get("strictness")
        return cast("Strictness", value if value in STRICTNESS else DEFAULT_STRICTNESS)


async def check_quota(
    services: BotServices,
    owner: Owner,
    *,
    lang: str = "en",
    items: int = 1,
    video_seconds: float = 0.0,
) -> str | None:
    """A refusal text in ``lang`` when adding ``items`` (of which ``video_seconds`` of video)
    would exceed the owner's quota, else None. Items waiting in the ingest queue count as
    stored, so a flood of forwards cannot overshoot the limit."""
    settings = services.settings
    limit = settings.bot.quota_items_per_user
    if limit:
        stats = await services.engine.owners.stats(owner.id)
        queued = stats.jobs_by_state.get("pending", 0) + stats.jobs_by_state.get("running", 0)
        if stats.media_total + queued + items > limit:
            return t("quota-items", lang, limit=limit)
    video_limit = settings.bot.quota_video_seconds
    if video_limit and video_seconds > 0:
        used = await services.engine.owners.video_seconds(owner.id)
        if used + video_seconds > video_limit:
            return t("quota-video", lang, limit=max(1, round(video_limit / 60)))
    return None
