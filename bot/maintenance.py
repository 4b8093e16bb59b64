"""``python -m bot ocr``: the OCR queue of the bot's collections, from the command line.

``--again`` puts items back into the queue (after installing another tesseract language, or a
better reader): every item of one Telegram user or group (``--owner ID``; a group's id is
negative), or of every Telegram collection. Only the database is opened, no model and no Bot
API, so it runs next to the running bot, whose OCR stage finds the items at its next look
(within a minute) and reads them in the background; a stopped bot reads them when it starts.
Collections of the local CLI are never touched: it reads its own with ``image-finder ocr``.
Without ``--again`` it prints how many items are in each OCR state.
"""

from __future__ import annotations

from pathlib import Path

from bot.config import BOT_OWNER_KINDS
from core.errors import ImageFinderError
from core.settings import Settings
from storage import Database
from storage.db import default_database_path
from storage.records import OwnerKind


class OcrCommandError(ImageFinderError):
    """Nothing to work on: no database yet, or ``--owner`` names a Telegram id the bot has no
    collection for."""

    code = "ocr_command"


async def ocr_command(settings: Settings, *, again: bool, telegram_id: int | None) -> str:
    """Re-queue (``again``) or count the OCR work of one Telegram collection or of all of
    them; returns the line to print. Raises :class:`OcrCommandError`."""
    target = settings.database.url or default_database_path(settings.data.dir)
    if isinstance(target, Path) and not target.is_file():
        raise OcrCommandError(f"no database at {target}: check DATA_DIR")
    db = await Database.open(target)
    try:
        owner_id = await _owner_id(db, telegram_id) if telegram_id is not None else None
        whose = f"Telegram id {telegram_id}" if telegram_id is not None else "every Telegram chat"
        if again:
            queued = await db.ocr.rerun(owner_id, kinds=BOT_OWNER_KINDS)
            return f"OCR will run again over {queued} item(s) of {whose}" + _when(settings)
        counts = await db.ocr.counts(owner_id, kinds=BOT_OWNER_KINDS)
        listed = ", ".join(f"{state} {n}" for state, n in sorted(counts.items())) or "no items"
        return f"OCR of {whose}: {listed}"
    finally:
        await db.close()


async def _owner_id(db: Database, telegram_id: int) -> int:
    """The owner of a user's id, or of a group's (negative) one."""
    kind: OwnerKind = "user" if telegram_id > 0 else "chat"
    owner = await db.owners.find(kind, telegram_id)
    if owner is None:
        raise OcrCommandError(f"the bot has no collection for Telegram id {telegram_id}")
    return owner.id


def _when(settings: Settings) -> str:
    """When the items will be read: by the running bot, unless OCR is switched off."""
    if not settings.ocr.enabled:
        return "; OCR_ENABLED is off, so they are read once it is switched on"
    return "; a running bot reads them within a minute, a stopped one when it starts"
