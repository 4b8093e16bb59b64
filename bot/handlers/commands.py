"""Commands: /start (and its ``inline`` payload, sent by the inline mode's button), /help,
/stats, /forget, /settings; chat-member changes; and the fallback that explains content the bot
cannot keep.

Buttons carry no trust: a /forget confirmation only works with the one-time token stored in the
owner's settings when /forget was sent (by the same user, within a few minutes), and settings
buttons are checked against the allowed values. Anything else gets a polite answer, never an
exception.
"""

from __future__ import annotations

import html
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from aiogram import F, Router
from aiogram.enums import ChatMemberStatus, ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandStart
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    CallbackQuery,
    Chat,
    ChatMemberUpdated,
    InlineKeyboardMarkup,
    Message,
    User,
)

from bot import keyboards as kb
from bot.i18n import LANGS, plural, tr
from bot.services import DEFAULT_STRICTNESS, PAGE_SIZES, STRICTNESS

if TYPE_CHECKING:
    from bot.services import BotServices
    from core.engine.engine import Engine
    from storage.records import Owner

log = logging.getLogger(__name__)

# A /forget confirmation is valid this long after the command.
FORGET_TTL_S = 15 * 60

TEXTS = {
    "start": {
        "ru": "Привет, {name}! Я нахожу картинки в ваших собственных фото и видео.\n\n"
        "• Перешлите или отправьте мне фото, альбомы и видео — я их запомню.\n"
        "• Потом напишите, что ищете, например <i>кот на диване</i>, или ответьте фотографией "
        "на любое сообщение, чтобы найти похожие.\n"
        "/help — подробности.",
        "en": "Hi {name}! I find pictures in your own photos and videos.\n\n"
        "• Forward or send me photos, albums and videos: I will remember them.\n"
        "• Then type what you are looking for, e.g. <i>cat on a sofa</i>, or reply to any "
        "message with a photo to find similar ones.\n"
        "/help — all the details.",
    },
    "start_inline": {
        "ru": "<b>Поиск из любого чата</b>\n\n"
        "В любом чате напишите <code>@{bot}</code> и пару слов, например <code>@{bot} кот на "
        "диване</code>. Над клавиатурой появятся подходящие фото из вашей коллекции — нажмите "
        "на одно, чтобы отправить его в этот чат.\n\n"
        "Ищу только в вашей коллекции, и список результатов видите только вы. Чтобы добавить "
        "картинки, отправьте или перешлите их мне сюда.",
        "en": "<b>Search from any chat</b>\n\n"
        "In any chat, type <code>@{bot}</code> and a few words, e.g. <code>@{bot} cat on a "
        "sofa</code>. Matching photos from your collection appear above the keyboard: tap one "
        "to send it to that chat.\n\n"
        "Only your own collection is searched, and only you see the list of results. To add "
        "pictures, send or forward them to me here.",
    },
    "help": {
        "ru": "<b>Как пользоваться</b>\n\n"
        "<b>Добавить.</b> Перешлите или отправьте фото, альбом, видео, GIF, кружок или картинку "
        "файлом. Повтор я узнаю («уже в коллекции»). Видео индексируется по кадрам; у файлов "
        "больше 20 МБ — только по обложке (полный размер — со своим сервером Bot API, см. "
        "README).\n\n"
        "<b>Искать.</b> Просто напишите запрос по-русски или по-английски: <i>свадьба в "
        "шатре</i>, <i>red car at night</i>. Слово с минусом исключает: <i>собака -пляж</i>.\n"
        "• Фото в ответ на любое сообщение — поиск похожих (это фото не сохраняется).\n"
        "• Фото с подписью, начинающейся с «?», — поиск по фото и тексту вместе: "
        "<i>?такой же, но зимой</i>.\n"
        "• /similar в ответ на свой элемент или результат — похожие на него.\n"
        "• /delete в ответ на элемент или результат — удалить его.\n"
        "• Кнопки под результатами: «Ещё», строже / мягче.\n\n"
        "<b>В любом чате:</b> напишите <code>@{bot} запрос</code> — появятся ваши фото.\n\n"
        "<b>Команды:</b> /stats — что в коллекции; /settings — результатов на странице, "
        "строгость, язык; /forget — удалить всё.\n\n"
        "<b>Приватность.</b> Видите свои элементы только вы (в группе — общая коллекция "
        "группы). Я храню идентификаторы файлов Telegram и векторы для поиска, а не сами файлы. "
        "/forget удаляет всё безвозвратно.",
        "en": "<b>How to use me</b>\n\n"
        "<b>Add.</b> Forward or send a photo, an album, a video, a GIF, a video note or an image "
        'as a file. I recognise repeats ("already in your collection"). Videos are indexed '
        "frame by frame; files over 20 MB only by their thumbnail (full size needs your own Bot "
        "API server, see the README).\n\n"
        "<b>Search.</b> Just type what you want, in English or Russian: <i>wedding in a "
        "tent</i>, <i>red car at night</i>. A word with a minus excludes it: <i>dog "
        "-beach</i>.\n"
        "• A photo sent as a reply to any message searches by example (that photo is not "
        "stored).\n"
        '• A photo whose caption starts with "?" searches by photo and text together: '
        "<i>?like this but in winter</i>.\n"
        "• /similar as a reply to one of your items or results finds its neighbours.\n"
        "• /delete as a reply to an item or a result deletes it.\n"
        "• Buttons under results: More, stricter / looser.\n\n"
        "<b>In any chat:</b> type <code>@{bot} query</code> to pick one of your photos.\n\n"
        "<b>Commands:</b> /stats — what is in your collection; /settings — results per page, "
        "strictness, language; /forget — delete everything.\n\n"
        "<b>Privacy.</b> Only you can see your items (in a group, the group shares one "
        "collection). I keep Telegram file ids and search vectors, not the files themselves. "
        "/forget deletes everything for good.",
    },
    "stats_empty": {
        "ru": "Коллекция пуста. Перешлите мне фото или видео, чтобы начать.\n\nМодели: {models}",
        "en": "Your collection is empty. Forward me some photos or videos to start.\n\n"
        "Models: {models}",
    },
    "stats": {
        "ru": "<b>Ваша коллекция</b>: {total}\n{kinds}\n"
        "Только по обложке (файл больше лимита): {thumbs}\n"
        "Картинок и кадров видео в поиске: {units}\n"
        "Индекс: {index}\n"
        "{queue}Модели: {models}",
        "en": "<b>Your collection</b>: {total}\n{kinds}\n"
        "Indexed from a thumbnail only (file over the limit): {thumbs}\n"
        "Searchable pictures and video frames: {units}\n"
        "Index: {index}\n"
        "{queue}Models: {models}",
    },
    "stats_queue": {
        "ru": "Ещё обрабатывается: {n}\n",
        "en": "Still being processed: {n}\n",
    },
    "stats_failed": {
        "ru": "Не удалось прочитать: {n}\n",
        "en": "Could not be read: {n}\n",
    },
    "forget_empty": {
        "ru": "Ваша коллекция и так пуста.",
        "en": "Your collection is already empty.",
    },
    "forget_ask": {
        "ru": "Удалить всю коллекцию ({n}) и настройки? Это нельзя отменить.",
        "en": "Delete your whole collection ({n}) and settings? This cannot be undone.",
    },
    "forget_admins_only": {
        "ru": "Удалить коллекцию группы могут только её администраторы.",
        "en": "Only the group's admins can delete the group's collection.",
    },
    "forget_yes": {"ru": "Да, удалить всё", "en": "Yes, delete everything"},
    "forget_no": {"ru": "Отмена", "en": "Cancel"},
    "forget_done": {
        "ru": "Готово: удалено {n}. Коллекция пуста.",
        "en": "Done: {n} deleted. Your collection is empty.",
    },
    "forget_cancelled": {
        "ru": "Отменено, ничего не удалено.",
        "en": "Cancelled, nothing was deleted.",
    },
    "forget_invalid": {
        "ru": "Эта кнопка больше не действует. Отправьте /forget ещё раз.",
        "en": "This button is no longer valid. Send /forget again.",
    },
    "settings": {
        "ru": "<b>Настройки</b>\n"
        "Результатов на странице: {page}\n"
        "Строгость: {strictness}. Строже — только самые близкие совпадения, мягче — больше.\n"
        "Язык: {language}",
        "en": "<b>Settings</b>\n"
        "Results per page: {page}\n"
        "Strictness: {strictness}. Stricter shows only the closest matches, looser shows "
        "more.\n"
        "Language: {language}",
    },
    "strict": {"ru": "строго", "en": "strict"},
    "normal": {"ru": "обычно", "en": "normal"},
    "loose": {"ru": "мягко", "en": "loose"},
    "saved": {"ru": "Сохранено", "en": "Saved"},
    "button_invalid": {
        "ru": "Эта кнопка больше не действует.",
        "en": "This button is no longer valid.",
    },
    "button_stale": {
        "ru": "Это сообщение устарело. Отправьте команду ещё раз.",
        "en": "This message is too old. Send the command again.",
    },
    "unsupported_sticker": {
        "ru": "Стикеры я не храню. Чтобы добавить картинку, отправьте её как фото.",
        "en": "I do not keep stickers. To add a picture, send it as a photo.",
    },
    "unsupported_audio": {
        "ru": "Я ищу по картинкам, а голосовые и аудио не содержат изображений. Пришлите фото "
        "или видео.",
        "en": "I search pictures, and voice messages or audio have none. Send photos or videos.",
    },
    "unsupported_document": {
        "ru": "Этот файл не картинка и не видео ({name}). Я храню фото, видео и изображения "
        "файлом (JPEG, PNG, WebP, GIF...).",
        "en": "This file is not a picture or a video ({name}). I keep photos, videos and image "
        "files (JPEG, PNG, WebP, GIF...).",
    },
    "unsupported_command": {
        "ru": "Не знаю такой команды. Список — в /help.",
        "en": "I do not know that command. See /help.",
    },
    "unsupported_text": {
        "ru": "Поиск сейчас недоступен. Попробуйте позже.",
        "en": "Search is not available right now. Please try later.",
    },
    "unsupported": {
        "ru": "Такое я не храню. Пришлите фото, альбом, видео или картинку файлом — а потом "
        "ищите текстом. Подробнее: /help.",
        "en": "I cannot keep this. Send a photo, an album, a video or an image file, then search "
        "with words. More in /help.",
    },
}

KINDS = (
    ("photo", {"ru": ("фото", "фото", "фото"), "en": ("photo", "photos", "photos")}),
    ("video", {"ru": ("видео", "видео", "видео"), "en": ("video", "videos", "videos")}),
    ("animation", {"ru": ("GIF", "GIF", "GIF"), "en": ("GIF", "GIFs", "GIFs")}),
    (
        "video_note",
        {"ru": ("кружок", "кружка", "кружков"), "en": ("video note", "video notes", "video notes")},
    ),
    (
        "document",
        {
            "ru": ("картинка файлом", "картинки файлом", "картинок файлом"),
            "en": ("image file", "image files", "image files"),
        },
    ),
)
ITEMS = {"ru": ("элемент", "элемента", "элементов"), "en": ("item", "items", "items")}
LANGUAGE_NAMES = {"ru": "Русский", "en": "English"}


class ForgetCB(CallbackData, prefix="forget"):
    action: str  # "yes" | "no"
    token: str


class SettingsCB(CallbackData, prefix="set"):
    key: str  # "page" | "strict" | "lang"
    value: str


def count(n: int, lang: str, forms: dict[str, tuple[str, str, str]]) -> str:
    return f"{n} {plural(n, lang, *forms[lang])}"


def models_line(engine: Engine) -> str:
    return ", ".join(
        f"{html.escape(model_id)} ({'/'.join(cfg.languages)})"
        for model_id, cfg in engine.configs.items()
    )


def human_bytes(n: float, lang: str) -> str:
    units = ("Б", "КБ", "МБ", "ГБ") if lang == "ru" else ("B", "KB", "MB", "GB")
    for unit in units[:-1]:
        if n < 1024:
            return f"{n:.0f} {unit}" if unit in ("B", "Б") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} {units[-1]}"


# --- /start /help /stats ------------------------------------------------------------------------


def router(services: BotServices) -> Router:
    """Command handlers and button callbacks of this module."""
    r = Router(name="commands")

    @r.message(CommandStart(deep_link=True, magic=F.args == "inline"))
    async def start_inline(message: Message, lang: str) -> None:
        """The inline mode's "open the bot" button: how to search from any chat."""
        me = await services.bot.me()
        await message.answer(tr(TEXTS, "start_inline", lang, bot=html.escape(me.username or "")))

    @r.message(CommandStart())  # no payload, or one we do not know: the welcome
    async def start(message: Message, lang: str) -> None:
        name = message.from_user.first_name if message.from_user else ""
        await message.answer(tr(TEXTS, "start", lang, name=html.escape(name or "")))

    @r.message(Command("help"))
    async def help_(message: Message, lang: str) -> None:
        me = await services.bot.me()
        await message.answer(tr(TEXTS, "help", lang, bot=html.escape(me.username or "bot")))

    @r.message(Command("stats"))
    async def stats(message: Message, owner: Owner, lang: str, engine: Engine) -> None:
        await message.answer(await stats_text(services, owner, lang))

    # --- /forget --------------------------------------------------------------------------------

    async def may_forget(chat: Chat, user: User | None) -> bool:
        """Anyone in a private chat; in a group, its admins only (it is everyone's collection).
        Asked at the command and again at the button: admins can change in between."""
        if chat.type == ChatType.PRIVATE:
            return True
        if user is None:
            return False
        try:
            member = await services.bot.get_chat_member(chat.id, user.id)
        except TelegramAPIError:
            log.warning("could not check the admins of chat %s", chat.id, exc_info=True)
            return False
        return member.status in (ChatMemberStatus.CREATOR, ChatMemberStatus.ADMINISTRATOR)

    @r.message(Command("forget"))
    async def forget(message: Message, owner: Owner, lang: str) -> None:
        if not await may_forget(message.chat, message.from_user):
            await message.answer(tr(TEXTS, "forget_admins_only", lang))
            return
        store = services.store(owner)
        stats = await store.stats()
        queued = stats.jobs_by_state.get("pending", 0) + stats.jobs_by_state.get("running", 0)
        if stats.media_total == 0 and queued == 0:
            await message.answer(tr(TEXTS, "forget_empty", lang))
            return
        token = secrets.token_urlsafe(9)
        issuer = message.from_user.id if message.from_user else 0
        await store.update_settings({"forget": {"token": token, "by": issuer, "at": time.time()}})
        markup = kb.keyboard(
            [
                [
                    (tr(TEXTS, "forget_yes", lang), ForgetCB(action="yes", token=token)),
                    (tr(TEXTS, "forget_no", lang), ForgetCB(action="no", token=token)),
                ]
            ]
        )
        n = count(stats.media_total, lang, ITEMS)
        await message.answer(tr(TEXTS, "forget_ask", lang, n=n), reply_markup=markup)

    @r.callback_query(ForgetCB.filter())
    async def forget_button(
        query: CallbackQuery, callback_data: ForgetCB, owner: Owner, lang: str
    ) -> None:
        message = kb.accessible(query)
        if message is None:
            await kb.answer(query, tr(TEXTS, "button_stale", lang))
            return
        store = services.store(owner)
        pending = (await store.settings()).get("forget")
        if not _forget_token_valid(pending, callback_data, query.from_user):
            await kb.answer(query, tr(TEXTS, "forget_invalid", lang))
            return
        if callback_data.action == "yes" and not await may_forget(message.chat, query.from_user):
            await kb.answer(query, tr(TEXTS, "forget_admins_only", lang))
            return
        if callback_data.action == "yes":
            result = await services.engine.search.collection.forget_owner(owner.id)
            log.info("owner %s forgot %d item(s)", owner.id, result.media_count)
            n = count(result.media_count, lang, ITEMS)
            await kb.answer(query)
            await kb.edit(message, tr(TEXTS, "forget_done", lang, n=n))
        elif callback_data.action == "no":
            await store.update_settings({"forget": None})
            await kb.answer(query)
            await kb.edit(message, tr(TEXTS, "forget_cancelled", lang))
        else:
            await kb.answer(query, tr(TEXTS, "forget_invalid", lang))

    # --- /settings ------------------------------------------------------------------------------

    @r.message(Command("settings"))
    async def settings(message: Message, owner: Owner, lang: str) -> None:
        text, markup = settings_view(services, owner.settings, lang)
        await message.answer(text, reply_markup=markup)

    @r.callback_query(SettingsCB.filter())
    async def settings_button(
        query: CallbackQuery, callback_data: SettingsCB, owner: Owner, lang: str
    ) -> None:
        message = kb.accessible(query)
        if message is None:
            await kb.answer(query, tr(TEXTS, "button_stale", lang))
            return
        change = _settings_change(callback_data)
        if change is None:
            await kb.answer(query, tr(TEXTS, "button_invalid", lang))
            return
        current = await services.store(owner).update_settings(change)
        lang = current.get("lang", lang) if current.get("lang") in LANGS else lang
        text, markup = settings_view(services, current, lang)
        await kb.answer(query, tr(TEXTS, "saved", lang))
        await kb.edit(message, text, markup)

    # --- a group became a supergroup: its collection follows the new chat id ---------------------

    async def move_group(old_chat_id: int, new_chat_id: int) -> None:
        moved = await services.engine.db.move_owner("chat", old_chat_id, new_chat_id)
        if moved is not None:
            log.info("owner %s moved from chat %s to %s", moved.id, old_chat_id, new_chat_id)

    @r.message(F.migrate_to_chat_id)
    async def migrated_to(message: Message) -> None:
        assert message.migrate_to_chat_id is not None
        await move_group(message.chat.id, message.migrate_to_chat_id)

    @r.message(F.migrate_from_chat_id)
    async def migrated_from(message: Message) -> None:
        assert message.migrate_from_chat_id is not None
        await move_group(message.migrate_from_chat_id, message.chat.id)

    # --- the user blocked / unblocked the bot ---------------------------------------------------

    @r.my_chat_member(F.chat.type == "private")
    async def membership(update: ChatMemberUpdated, owner: Owner) -> None:
        status = update.new_chat_member.status
        blocked = status in ("kicked", "left")
        await services.store(owner).update_settings({"blocked": True if blocked else None})
        log.info("owner %s %s the bot", owner.id, "blocked" if blocked else "unblocked")

    return r


async def stats_text(services: BotServices, owner: Owner, lang: str) -> str:
    engine = services.engine
    stats = await services.store(owner).stats()
    models = models_line(engine)
    queued = stats.jobs_by_state.get("pending", 0) + stats.jobs_by_state.get("running", 0)
    if stats.media_total == 0 and queued == 0:
        return tr(TEXTS, "stats_empty", lang, models=models)
    kinds = " · ".join(
        count(stats.media_by_kind[kind], lang, forms)
        for kind, forms in KINDS
        if stats.media_by_kind.get(kind)
    )
    bytes_per = 2 if services.settings.index_exact_kind == "fp16" else 4
    index_bytes = 0
    per_model = []
    for model_id, n in sorted(stats.vectors_by_model.items()):
        cfg = engine.configs.get(model_id)
        if cfg is not None:
            index_bytes += n * cfg.embed_dim * bytes_per
        per_model.append(f"{html.escape(model_id)} {n}")
    index = (", ".join(per_model) or "0") + f" (≈ {human_bytes(index_bytes, lang)})"
    queue = tr(TEXTS, "stats_queue", lang, n=queued) if queued else ""
    failed = stats.jobs_by_state.get("failed", 0)
    if failed:
        queue += tr(TEXTS, "stats_failed", lang, n=failed)
    return tr(
        TEXTS,
        "stats",
        lang,
        total=count(stats.media_total, lang, ITEMS),
        kinds=kinds or "—",
        thumbs=stats.thumbnail_only,
        units=stats.units,
        index=index,
        queue=queue,
        models=models,
    )


def _forget_token_valid(pending: Any, data: ForgetCB, user: User) -> bool:
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


def _settings_change(data: SettingsCB) -> dict[str, Any] | None:
    """The owner-settings change a settings button asks for, or None if the data is invalid."""
    if data.key == "page" and data.value.isdigit() and int(data.value) in PAGE_SIZES:
        return {"page_size": int(data.value)}
    if data.key == "strict" and data.value in STRICTNESS:
        return {"strictness": data.value}
    if data.key == "lang" and data.value in LANGS:
        return {"lang": data.value}
    return None


def settings_view(
    services: BotServices, settings: dict[str, Any], lang: str
) -> tuple[str, InlineKeyboardMarkup]:
    page = settings.get("page_size")
    if page not in PAGE_SIZES:
        page = services.settings.search_default_limit
    strictness = settings.get("strictness")
    if strictness not in STRICTNESS:
        strictness = DEFAULT_STRICTNESS
    text = tr(
        TEXTS,
        "settings",
        lang,
        page=page,
        strictness=tr(TEXTS, strictness, lang),
        language=LANGUAGE_NAMES[lang],
    )
    markup = kb.keyboard(
        [
            [
                (kb.mark(str(n), n == page), SettingsCB(key="page", value=str(n)))
                for n in PAGE_SIZES
            ],
            [
                (kb.mark(tr(TEXTS, s, lang), s == strictness), SettingsCB(key="strict", value=s))
                for s in STRICTNESS
            ],
            [
                (kb.mark(LANGUAGE_NAMES[code], code == lang), SettingsCB(key="lang", value=code))
                for code in LANGS
            ],
        ]
    )
    return text, markup


# --- fallback -----------------------------------------------------------------------------------


def fallback_router(services: BotServices) -> Router:
    """Registered last: whatever no feature handled. Quiet in groups (no spam), helpful in
    private chats; unknown or tampered buttons get an answer so the client stops spinning."""
    r = Router(name="fallback")
    private = F.chat.type == "private"

    @r.message(private, F.sticker)
    async def sticker(message: Message, lang: str) -> None:
        await message.answer(tr(TEXTS, "unsupported_sticker", lang))

    @r.message(private, F.voice | F.audio)
    async def audio(message: Message, lang: str) -> None:
        await message.answer(tr(TEXTS, "unsupported_audio", lang))

    @r.message(private, F.document)
    async def document(message: Message, lang: str) -> None:
        doc = message.document
        name = (doc.file_name or doc.mime_type or "?") if doc else "?"
        await message.answer(tr(TEXTS, "unsupported_document", lang, name=html.escape(name)))

    @r.message(private, F.text.startswith("/"))
    async def unknown_command(message: Message, lang: str) -> None:
        await message.answer(tr(TEXTS, "unsupported_command", lang))

    @r.message(private, F.text)
    async def text(message: Message, lang: str) -> None:
        await message.answer(tr(TEXTS, "unsupported_text", lang))

    @r.message(private)
    async def other(message: Message, lang: str) -> None:
        await message.answer(tr(TEXTS, "unsupported", lang))

    @r.callback_query()
    async def unknown_button(query: CallbackQuery, lang: str) -> None:
        await kb.answer(query, tr(TEXTS, "button_invalid", lang))

    return r
