"""Which of the owner's items a reply points at ("/similar" or "/delete" as a reply).

Resolved only within the owner's collection: a result message the bot recorded in this chat,
else the owner's item saved from that message, else the owner's item with the same Telegram
file (``file_unique_id``; a result is sent by file id, so it carries the original's). Nothing
else is looked at, so a reply to someone else's message can only ever find the owner's own copy
of that file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiogram.types import Message

from bot.identity import BotIdentity
from storage.records import Media, Owner

if TYPE_CHECKING:
    from core.engine.engine import Engine


@dataclass(frozen=True, slots=True)
class Target:
    """The owner's item a reply points at; ``unit_id`` when a result named the moment."""

    media: Media
    unit_id: int | None = None


def unique_ids(message: Message) -> list[str]:
    """Telegram's ``file_unique_id``s of the media in a message, the main one first."""
    if message.photo:
        return [p.file_unique_id for p in reversed(message.photo)]
    for obj in (
        message.video,
        message.animation,
        message.video_note,
        message.document,
    ):
        if obj is not None:
            return [obj.file_unique_id]
    return []


class ReplyTargets:
    """Finds the owner's item behind a replied-to message (see the module docstring)."""

    def __init__(self, engine: Engine, identity: BotIdentity) -> None:
        self.engine = engine
        self.identity = identity

    async def find(self, reply: Message, chat_id: int, owner: Owner) -> Target | None:
        """A recorded result, a saved message, the same file; None for anything else."""
        if reply.chat.id != chat_id:
            return None  # a reply always points into the same chat; anything else is forged
        if await self.identity.wrote(reply):
            target = await self._recorded_result(reply, chat_id, owner)
        else:
            target = await self._saved_message(reply, owner)
        return target or await self._same_file(reply, owner)

    async def _recorded_result(self, reply: Message, chat_id: int, owner: Owner) -> Target | None:
        recorded = await self.engine.queries.results(owner.id).result(chat_id, reply.message_id)
        if recorded is None:
            return None
        media = await self.engine.library.item(owner.id, recorded.media_id)
        return Target(media, recorded.unit_id) if media is not None else None

    async def _saved_message(self, reply: Message, owner: Owner) -> Target | None:
        media = await self.engine.queries.results(owner.id).media_by_message(reply.message_id)
        return Target(media) if media is not None else None

    async def _same_file(self, reply: Message, owner: Owner) -> Target | None:
        for unique_id in unique_ids(reply):
            media = await self.engine.library.find(owner.id, unique_id)
            if media is not None:
                return Target(media)
        return None
