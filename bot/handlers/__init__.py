"""The root router, built fresh for every Dispatcher (a Router can belong to only one).

Order matters, first match wins: commands; search (a photo that replies to a message or whose
caption starts with "?" is a query, not an item to store); inline; ingest; and last the fallback
that explains unsupported content. Each feature module exposes ``router(services) -> Router``.
A feature module that is not installed is skipped with a warning, so the bot still starts.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

from aiogram import Router

if TYPE_CHECKING:
    from bot.services import BotServices

log = logging.getLogger(__name__)

FEATURES: tuple[str, ...] = ("search", "inline", "ingest")


def build_router(services: BotServices) -> Router:
    from bot.handlers import commands

    root = Router(name="root")
    root.include_router(commands.router(services))
    for name in FEATURES:
        module_name = f"{__name__}.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise  # the module exists but one of its imports is missing: a real error
            log.warning("bot feature %r is not available (no module %s)", name, module_name)
            continue
        root.include_router(module.router(services))
    root.include_router(commands.fallback_router(services))
    return root
