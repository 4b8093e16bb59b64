"""The rules of /forget: who may wipe a collection (and who may delete from a group's by a
button, :func:`may_delete`), and the one-time token its button carries.

Buttons carry no trust: a confirmation only works with the one-time token stored in the owner's
settings when /forget was sent (by the same user, within a few minutes). In a group the
collection is everyone's, so only its admins may forget it, asked at the command and again at
the button (admins can change in between).
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from aiogram import Bot
from aiogram.enums import ChatMemberStatus, ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.filters.callback_data import CallbackData
from aiogram.types import Chat, User

log = logging.getLogger(__name__)

# A /forget confirmation is valid this long after the command.
FORGET_TTL_S = 15 * 60


class ForgetCB(CallbackData, prefix="forget"):
    action: str  # "yes" | "no"
    token: str


def pending_forget(user: User | None) -> dict[str, Any]:
    """A new confirmation to store in the owner's settings: token, issuer, time."""
    issuer = user.id if user else 0
    return {"token": secrets.token_urlsafe(9), "by": issuer, "at": time.time()}


def forget_token_valid(pending: Any, data: ForgetCB, user: User) -> bool:
    """The button matches the latest /forget of this owner, pressed by whoever sent it, in time."""
    if not isinstance(pending, dict):
        return False
    token = pending.get("token")
    at = pending.get("at")
    if not isinstance(token, str) or not secrets.compare_digest(token, data.token):
        return False
    if pending.get("by") not in (0, user.id):
        return False
    return isinstance(at, int | float) and 0 <= time.time() - at <= FORGET_TTL_S


async def may_forget(bot: Bot, chat: Chat, user: User | None) -> bool:
    """Anyone in a private chat (the collection is theirs); in a group, its admins only."""
    return await may_delete(bot, chat, user)


async def may_delete(bot: Bot, chat: Chat, user: User | None) -> bool:
    """Whether ``user`` may delete from the chat's collection by a button (/forget, the
    "Delete" buttons of /duplicates): anyone in a private chat; in a group, whose collection
    is everyone's, its admins only (asked at the press: admins can change)."""
    if chat.type == ChatType.PRIVATE:
        return True
    if user is None:
        return False
    try:
        member = await bot.get_chat_member(chat.id, user.id)
    except TelegramAPIError:
        log.warning("could not check the admins of chat %s", chat.id, exc_info=True)
        return False
    return member.status in (ChatMemberStatus.CREATOR, ChatMemberStatus.ADMINISTRATOR)
