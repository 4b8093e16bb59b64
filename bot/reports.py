"""What the user is told about the items they sent: one item, an album, or work finished after a
restart. Texts only, no Telegram calls, so every wording is easy to test and to translate.

Every item ends as an :class:`ItemResult`: from the pipeline's
:class:`~core.ingest.pipeline.IngestOutcome`, or refused before it reached the pipeline (quota, a
file we cannot use at all). Failures carry the error ``code`` of :mod:`core.errors`, mapped here to
a short phrase (album lists) and a full sentence (a single item).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from bot.i18n import plural, tr
from core.ingest.pipeline import VIDEO_KINDS, IngestOutcome

Status = Literal["saved", "duplicate", "failed"]

# The local Bot API server is the operator's switch; users are told it exists and where.
LOCAL_SERVER_HINT = {
    "ru": "Владелец бота может снять этот предел, запустив локальный сервер Bot API "
    "(<code>TELEGRAM_API_BASE</code>, см. README).",
    "en": "Whoever runs this bot can lift that limit with a local Bot API server "
    "(<code>TELEGRAM_API_BASE</code>, see the README).",
}

TEXTS: dict[str, dict[str, str]] = {
    # --- one item ---
    "saved_photo": {"ru": "✅ Сохранено.", "en": "✅ Saved."},
    "saved_video": {
        "ru": "✅ Видео сохранено: {frames} {frames_word} для поиска.",
        "en": "✅ Video saved: {frames} {frames_word} to search by.",
    },
    "saved_animation": {
        "ru": "✅ GIF сохранён: {frames} {frames_word} для поиска.",
        "en": "✅ GIF saved: {frames} {frames_word} to search by.",
    },
    "saved_video_note": {
        "ru": "✅ Видеосообщение сохранено: {frames} {frames_word} для поиска.",
        "en": "✅ Video message saved: {frames} {frames_word} to search by.",
    },
    "saved_thumbnail": {
        "ru": "✅ Сохранена только обложка: файл больше 20 МБ, а больше бот скачать из "
        "Telegram не может. " + LOCAL_SERVER_HINT["ru"],
        "en": "✅ Saved the cover only: the file is over 20 MB, the most a bot can download "
        "from Telegram. " + LOCAL_SERVER_HINT["en"],
    },
    "near_duplicate": {
        "ru": "Похоже на то, что у вас уже есть, — сохранил на всякий случай. Если дубль не "
        "нужен, ответьте на него командой /delete.",
        "en": "It looks like one you already have, so I kept both. If you don't need the copy, "
        "reply to it with /delete.",
    },
    "duplicate": {
        "ru": "Это уже есть в вашей коллекции.",
        "en": "This is already in your collection.",
    },
    "failed": {"ru": "❌ Не сохранено: {reason}", "en": "❌ Not saved: {reason}"},
    "video_progress": {
        "ru": "⏳ Обрабатываю видео… {percent}%",
        "en": "⏳ Processing the video… {percent}%",
    },
    "video_started": {"ru": "⏳ Обрабатываю видео…", "en": "⏳ Processing the video…"},
    # --- albums and summaries ---
    "album_progress": {
        "ru": "⏳ Сохраняю альбом: {done} из {total}…",
        "en": "⏳ Saving the album: {done} of {total}…",
    },
    "album_saved_all": {
        "ru": "✅ Альбом сохранён: {total} {items_word}.",
        "en": "✅ Album saved: {total} {items_word}.",
    },
    "album_saved_some": {
        "ru": "Из альбома сохранено {saved} из {total}.",
        "en": "Saved {saved} of {total} from the album.",
    },
    "album_all_duplicates": {
        "ru": "Всё из этого альбома ({total}) уже есть в вашей коллекции.",
        "en": "Everything in this album ({total}) is already in your collection.",
    },
    "batch_progress": {
        "ru": "⏳ Сохраняю: {done} из {total}…",
        "en": "⏳ Saving: {done} of {total}…",
    },
    "batch_saved_all": {
        "ru": "✅ Сохранено: {total} {items_word}.",
        "en": "✅ Saved {total} {items_word}.",
    },
    "batch_saved_some": {
        "ru": "Сохранено {saved} из {total}.",
        "en": "Saved {saved} of {total}.",
    },
    "batch_all_duplicates": {
        "ru": "Всё это ({total}) уже есть в вашей коллекции.",
        "en": "All {total} are already in your collection.",
    },
    "resumed_header": {
        "ru": "После перезапуска я закончил сохранять то, что вы присылали ранее: {saved} из "
        "{total}.",
        "en": "After a restart I finished saving what you sent earlier: {saved} of {total}.",
    },
    "line_saved": {"ru": "• сохранено: {n}", "en": "• saved: {n}"},
    "line_duplicate": {
        "ru": "• уже были в коллекции: {n}",
        "en": "• already in your collection: {n}",
    },
    "line_near": {
        "ru": "• похожи на то, что у вас уже есть (сохранены): {n}",
        "en": "• look like ones you already have (kept anyway): {n}",
    },
    "line_thumbnail": {
        "ru": "• больше 20 МБ, сохранена только обложка: {n}",
        "en": "• over 20 MB, only the cover saved: {n}",
    },
    "line_failed": {"ru": "• не сохранено ({reason}): {n}", "en": "• not saved ({reason}): {n}"},
    # --- documents we cannot use ---
    "not_media_document": {
        "ru": "Файл «{name}» — не картинка и не видео, такое я не храню. Присылайте фото, "
        "видео, GIF или картинки файлами — их можно будет найти по описанию.",
        "en": "“{name}” is neither a picture nor a video, so I can't keep it. Send photos, "
        "videos, GIFs or image files, and you can find them later by describing them.",
    },
}

# Error code -> (short phrase for lists, full sentence for one item).
REASONS: dict[str, dict[str, tuple[str, str]]] = {
    "image_truncated": {
        "ru": ("файл повреждён", "картинка повреждена или обрезана. Пришлите оригинал ещё раз."),
        "en": ("damaged file", "the picture is damaged or cut off. Try sending it again."),
    },
    "image_unsupported": {
        "ru": ("формат не читается", "не могу прочитать это как картинку: формат не поддержан."),
        "en": ("unreadable format", "I can't read this as a picture: the format isn't supported."),
    },
    "image_empty": {
        "ru": ("пустой файл", "файл пустой."),
        "en": ("empty file", "the file is empty."),
    },
    "image_too_large": {
        "ru": ("слишком много пикселей", "картинка слишком большая (слишком много пикселей)."),
        "en": ("too many pixels", "the picture is too big (more pixels than I accept)."),
    },
    "image_too_complex": {
        "ru": (
            "файл слишком сложный",
            "эту картинку слишком долго раскодировать: в файле тысячи лишних частей — "
            "похоже, он повреждён. Пришлите её в обычном формате (JPEG или PNG).",
        ),
        "en": (
            "file too complex",
            "this picture would take too long to decode: the file has thousands of needless "
            "parts, so it is probably damaged. Send it as an ordinary JPEG or PNG.",
        ),
    },
    "video_too_large": {
        "ru": (
            "слишком большие кадры",
            "кадры этого видео или GIF слишком большие (слишком много пикселей).",
        ),
        "en": (
            "frames too large",
            "the frames of this video or GIF are too big (more pixels than I accept).",
        ),
    },
    "video_too_complex": {
        "ru": (
            "GIF слишком сложный",
            "эту анимацию слишком долго раскодировать: файл устроен необычно или повреждён. "
            "Пришлите её как видео (MP4).",
        ),
        "en": (
            "GIF too complex",
            "this animation would take too long to decode: the file is unusual or damaged. "
            "Send it as a video (MP4).",
        ),
    },
    "video_unreadable": {
        "ru": (
            "видео не читается",
            "не могу прочитать это видео: формат неизвестен или файл повреждён.",
        ),
        "en": ("unreadable video", "I couldn't read this video: unknown format or damaged file."),
    },
    "video_empty": {
        "ru": ("в видео нет кадров", "в этом видео нет кадров, которые я мог бы прочитать."),
        "en": ("no frames", "this video has no frames I could read."),
    },
    "file_too_large": {
        "ru": (
            "больше 20 МБ",
            "файл больше 20 МБ, а больше бот скачать из Telegram не может. "
            + LOCAL_SERVER_HINT["ru"],
        ),
        "en": (
            "over 20 MB",
            "the file is over 20 MB, the most a bot can download from "
            "Telegram. " + LOCAL_SERVER_HINT["en"],
        ),
    },
    "thumbnail_unreadable": {
        "ru": (
            "обложка не читается",
            "файл больше 20 МБ, а его обложку прочитать не удалось. " + LOCAL_SERVER_HINT["ru"],
        ),
        "en": (
            "unreadable cover",
            "the file is over 20 MB and its cover could not be read. " + LOCAL_SERVER_HINT["en"],
        ),
    },
    "file_gone": {
        "ru": ("файл недоступен", "Telegram больше не отдаёт этот файл. Пришлите его ещё раз."),
        "en": ("file unavailable", "Telegram no longer serves this file. Please send it again."),
    },
    "fetch": {
        "ru": ("не скачалось", "не удалось скачать файл из Telegram. Попробуйте позже."),
        "en": ("download failed", "I couldn't download it from Telegram. Please try later."),
    },
    "quota": {
        "ru": ("коллекция заполнена", "коллекция заполнена."),
        "en": ("collection full", "your collection is full."),
    },
    "not_media": {
        "ru": ("не картинка и не видео", "это не картинка и не видео."),
        "en": ("not a picture or video", "this is neither a picture nor a video."),
    },
}
DEFAULT_REASON = {
    "ru": ("ошибка", "что-то пошло не так с моей стороны. Попробуйте ещё раз."),
    "en": ("error", "something went wrong on my side. Please try again."),
}

FRAME_WORDS = {"ru": ("кадр", "кадра", "кадров"), "en": ("moment", "moments", "moments")}
ITEM_WORDS = {"ru": ("элемент", "элемента", "элементов"), "en": ("item", "items", "items")}


def _plural(n: int, lang: str, words: dict[str, tuple[str, str, str]]) -> str:
    return plural(n, lang, *words.get(lang, words["en"]))


def reason_text(code: str | None, lang: str, *, short: bool) -> str:
    """The user-facing phrase for an error code (codes are "image_truncated", "fetch", ...)."""
    variants = REASONS.get(code or "", DEFAULT_REASON)
    pair = variants.get(lang) or variants["en"]
    return pair[0] if short else pair[1]


@dataclass(frozen=True, slots=True)
class ItemResult:
    """How one item ended, as the user hears it."""

    status: Status
    kind: str = "photo"
    frames: int = 0
    near_duplicate: bool = False
    thumbnail_only: bool = False
    reason: str | None = None  # error code when failed
    media_id: int | None = None
    note: str | None = None  # the whole answer when this item is answered alone
    owner_id: int | None = None
    still: bool = False  # sent as a video, but its file was a still picture: kept as a photo

    @classmethod
    def from_outcome(cls, outcome: IngestOutcome) -> ItemResult:
        return cls(
            outcome.status,
            kind=outcome.request.kind,
            still=outcome.stored_as_picture,
            frames=len(outcome.unit_ids),
            near_duplicate=outcome.near_duplicate_of is not None,
            thumbnail_only=outcome.thumbnail_only,
            reason=outcome.reason,
            media_id=outcome.media_id,
            owner_id=outcome.request.owner_id,
        )

    @classmethod
    def refused(cls, reason: str, kind: str = "photo", *, note: str | None = None) -> ItemResult:
        """An item that never reached the pipeline; ``note`` replaces the generic answer."""
        return cls("failed", kind=kind, reason=reason, note=note)

    @property
    def is_video(self) -> bool:
        return self.kind in VIDEO_KINDS


def item_text(result: ItemResult, lang: str, *, is_video: bool | None = None) -> str:
    """The reply to one item (not part of an album). ``is_video`` says the message was sampled
    as a video; what was actually kept (:attr:`ItemResult.still`) decides the wording."""
    if result.note is not None:
        return result.note
    video = not result.still and (result.is_video if is_video is None else is_video)
    if result.status == "duplicate":
        return tr(TEXTS, "duplicate", lang)
    if result.status == "failed":
        return tr(TEXTS, "failed", lang, reason=reason_text(result.reason, lang, short=False))
    if result.thumbnail_only:
        text = tr(TEXTS, "saved_thumbnail", lang)
    elif video:
        key = {"animation": "saved_animation", "video_note": "saved_video_note"}.get(
            result.kind, "saved_video"
        )
        text = tr(
            TEXTS,
            key,
            lang,
            frames=result.frames,
            frames_word=_plural(result.frames, lang, FRAME_WORDS),
        )
    else:
        text = tr(TEXTS, "saved_photo", lang)
    if result.near_duplicate:
        text += "\n" + tr(TEXTS, "near_duplicate", lang)
    return text


def detail_lines(results: Iterable[ItemResult], lang: str, *, with_saved: bool) -> list[str]:
    """Bullet lines counting each way items ended (failures grouped by reason)."""
    items = list(results)
    saved = [r for r in items if r.status == "saved"]
    lines: list[str] = []
    if with_saved and saved:
        lines.append(tr(TEXTS, "line_saved", lang, n=len(saved)))
    duplicates = sum(r.status == "duplicate" for r in items)
    if duplicates:
        lines.append(tr(TEXTS, "line_duplicate", lang, n=duplicates))
    near = sum(r.near_duplicate for r in saved)
    if near:
        lines.append(tr(TEXTS, "line_near", lang, n=near))
    thumbs = sum(r.thumbnail_only for r in saved)
    if thumbs:
        lines.append(tr(TEXTS, "line_thumbnail", lang, n=thumbs))
    failures = Counter(
        reason_text(r.reason, lang, short=True) for r in items if r.status == "failed"
    )
    for reason, n in failures.items():
        lines.append(tr(TEXTS, "line_failed", lang, reason=reason, n=n))
    return lines


def _footnotes(results: list[ItemResult], lang: str) -> list[str]:
    notes = []
    if any(r.status == "saved" and r.near_duplicate for r in results):
        notes.append(tr(TEXTS, "near_duplicate", lang))
    too_large = any(
        (r.status == "saved" and r.thumbnail_only)
        or (r.status == "failed" and r.reason == "file_too_large")
        for r in results
    )
    if too_large:
        notes.append(LOCAL_SERVER_HINT.get(lang, LOCAL_SERVER_HINT["en"]))
    return notes


def _compose(head: str, results: list[ItemResult], lang: str) -> str:
    lines = [head, *detail_lines(results, lang, with_saved=False)]
    notes = _footnotes(results, lang)
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def album_text(results: list[ItemResult], total: int, lang: str, *, burst: bool = False) -> str:
    """The answer to an album (or, with ``burst``, to several items sent one by one): progress
    while items are pending, then the summary."""
    prefix = "batch" if burst else "album"
    done = len(results)
    if done < total:
        return tr(TEXTS, f"{prefix}_progress", lang, done=done, total=total)
    saved = sum(r.status == "saved" for r in results)
    if total and all(r.status == "duplicate" for r in results):
        return tr(TEXTS, f"{prefix}_all_duplicates", lang, total=total)
    if saved == total:
        words = _plural(total, lang, ITEM_WORDS)
        head = tr(TEXTS, f"{prefix}_saved_all", lang, total=total, items_word=words)
    else:
        head = tr(TEXTS, f"{prefix}_saved_some", lang, saved=saved, total=total)
    return _compose(head, results, lang)


def resumed_text(results: list[ItemResult], lang: str) -> str:
    """Work finished after a restart, for items whose acknowledgement the old process owed."""
    total = len(results)
    saved = sum(r.status == "saved" for r in results)
    head = tr(TEXTS, "resumed_header", lang, saved=saved, total=total)
    return _compose(head, results, lang)
