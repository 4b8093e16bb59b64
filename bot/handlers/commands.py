"""Commands: /start, /help, /stats, /forget, /settings, and the fallback for other content."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot.i18n import tr

if TYPE_CHECKING:
    from bot.services import BotServices

TEXTS = {
    "start": {
        "ru": "Я ищу картинки в ваших фото и видео.",
        "en": "I find pictures in your own photos and videos.",
    },
    "unsupported": {
        "ru": "Такое я не храню: пришлите фото, альбом, видео или картинку файлом.",
        "en": "I cannot keep this: send a photo, an album, a video or an image file.",
    },
}


def router(services: BotServices) -> Router:
    r = Router(name="commands")

    @r.message(CommandStart())
    async def start(message: Message, lang: str) -> None:
        await message.answer(tr(TEXTS, "start", lang))

    @r.message(Command("help"))
    async def help_(message: Message, lang: str) -> None:
        await message.answer(tr(TEXTS, "start", lang))

    return r


def fallback_router(services: BotServices) -> Router:
    r = Router(name="fallback")

    @r.message(F.chat.type == "private")
    async def unsupported(message: Message, lang: str) -> None:
        await message.answer(tr(TEXTS, "unsupported", lang))

    return r
