"""The root router, built fresh for every Dispatcher (a Router can belong to only one).

Order matters, first match wins: commands; search (a photo that replies to a message or whose
caption starts with "?" is a query, not an item to store); inline; ingest; and last the fallback
that explains unsupported content. Each feature module exposes ``build_router() -> Router``;
its handlers are plain functions whose dependencies aiogram injects by name (see
:func:`bot.app.create_dispatcher`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from aiogram import Router

from bot.handlers import commands, duplicates, ingest, inline, search
from bot.identity import BotIdentity
from bot.intake import IngestDesk
from bot.reply_targets import ReplyTargets
from bot.search_replies import SearchResponder
from bot.services import BotServices


def build_router() -> Router:
    """The root router with every feature router, in the order above."""
    root = Router(name="root")
    root.include_routers(
        commands.build_router(),
        duplicates.build_router(),
        search.build_router(),
        inline.build_router(),
        ingest.build_router(),
        commands.build_fallback_router(),
    )
    return root


@dataclass(frozen=True)
class HandlerDeps:
    """What handlers and filters get by name from the dispatcher, next to ``services``,
    ``engine`` and ``settings`` (and ``owner``, ``lang`` from the context middleware). One set
    per dispatcher: the responder caches query photos, the desk holds albums in progress."""

    identity: BotIdentity
    responder: SearchResponder
    targets: ReplyTargets
    intake: IngestDesk

    @classmethod
    def for_services(cls, services: BotServices) -> HandlerDeps:
        identity = BotIdentity(services.bot, services.bot_username)
        return cls(
            identity=identity,
            responder=SearchResponder(services.bot, services),
            targets=ReplyTargets(services.engine, identity),
            intake=IngestDesk(services),
        )

    def as_data(self) -> dict[str, Any]:
        """The dispatcher's workflow data (keyword arguments of ``Dispatcher``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
