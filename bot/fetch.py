"""Bytes of a Telegram file for the ingest pipeline: ``getFile``, then the download.

The pipeline only knows the :data:`core.ingest.pipeline.Fetch` contract and its typed errors, so
this is where Telegram's answers are translated:

* "file is too big" (or a size over the 20 MB Bot API limit known in advance) ->
  :class:`~core.errors.FileTooLargeError`; the pipeline then indexes a video's thumbnail;
* "wrong file identifier" / "temporarily unavailable" and a 404 download ->
  :class:`~core.errors.FileGoneError` only when getFile itself says so, a retryable
  :class:`~core.errors.FetchError` otherwise (a download link can expire; the next try asks
  getFile for a fresh one);
* network errors, 5xx, 429 -> retryable :class:`~core.errors.FetchError` (the pipeline backs
  off and tries again).

With a local Bot API server in ``--local`` mode (``TELEGRAM_API_LOCAL``) getFile returns an
absolute path on this machine: the path is handed to the decoder as is, no copy in memory and no
size limit.
"""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramNotFound,
)

from bot.config import BotAppSettings
from core.errors import FetchError, FileGoneError, FileTooLargeError
from core.ingest.fetch import Fetch, fetch_with_retry
from core.ingest.request import IngestRequest

if TYPE_CHECKING:
    from aiogram import Bot

log = logging.getLogger(__name__)

# Bot API: "bots can download files of up to 20MB in size" (a local server has no limit).
DOWNLOAD_LIMIT = 20 * 1024 * 1024
DOWNLOAD_TIMEOUT_S = 120  # aiogram's default of 30 s is short for 20 MB on a slow link
_GONE = ("wrong file", "file is temporarily unavailable", "invalid file_id", "file_id_invalid")


def is_local_mode(bot: Bot, settings: BotAppSettings) -> bool:
    """True when files come from a local Bot API server's disk (no 20 MB limit)."""
    return bool(settings.bot.telegram_api_local or getattr(bot.session.api, "is_local", False))


def make_fetch(bot: Bot, settings: BotAppSettings) -> Fetch:
    """The pipeline's fetch callback for files the bot received from Telegram."""
    local = is_local_mode(bot, settings)

    async def fetch(request: IngestRequest, thumbnail: bool) -> bytes | Path:
        facts = request.facts
        file_id = facts.thumbnail_file_id if thumbnail else facts.file_id
        if not file_id:
            what = "thumbnail" if thumbnail else "file id"
            raise FileGoneError(f"item {request.file_unique_id} has no {what}")
        if not thumbnail and not local and (facts.size or 0) > DOWNLOAD_LIMIT:
            raise FileTooLargeError(
                f"{facts.size} bytes is over the Bot API download limit of 20 MB"
            )
        try:
            file = await bot.get_file(file_id)
        except TelegramEntityTooLarge as exc:
            raise FileTooLargeError(exc.message) from exc
        except TelegramBadRequest as exc:
            text = exc.message.lower()
            if "too big" in text or "too large" in text:
                raise FileTooLargeError(exc.message) from exc
            if any(marker in text for marker in _GONE):
                raise FileGoneError(exc.message) from exc
            raise FetchError(f"getFile: {exc.message}", retryable=False) from exc
        except TelegramNotFound as exc:
            raise FileGoneError(exc.message) from exc
        except TelegramAPIError as exc:  # network, 5xx, 429, ...: try again later
            raise FetchError(f"getFile: {type(exc).__name__}: {exc.message}") from exc
        if not file.file_path:
            raise FetchError("getFile returned no file_path (not downloadable yet)")
        if local:
            path = Path(bot.session.api.wrap_local_file.to_local(file.file_path))
            if not path.is_absolute():
                raise FetchError(
                    f"local Bot API mode returned a relative path {file.file_path!r}; is "
                    "the server running with --local?",
                    retryable=False,
                )
            if not await asyncio.to_thread(path.is_file):
                raise FetchError(f"{path} is not readable here (check the volume mapping)")
            return path
        if not thumbnail and (file.file_size or 0) > DOWNLOAD_LIMIT:
            raise FileTooLargeError(f"{file.file_size} bytes is over the 20 MB download limit")
        buffer = io.BytesIO()
        try:
            await bot.download_file(file.file_path, buffer, timeout=DOWNLOAD_TIMEOUT_S)
        except aiohttp.ClientResponseError as exc:
            # 404: the link expired or the path is stale; the next try calls getFile again.
            raise FetchError(f"download: HTTP {exc.status}") from exc
        except (aiohttp.ClientError, TimeoutError, TelegramAPIError) as exc:
            raise FetchError(f"download: {type(exc).__name__}: {exc}") from exc
        return buffer.getvalue()

    return fetch


async def download_with_retry(
    bot: Bot, settings: BotAppSettings, owner_id: int, file_id: str, *, size: int | None = None
) -> bytes:
    """The bytes of a file the user sent as a query, fetched and retried exactly as an ingest
    download is (``INGEST_MAX_ATTEMPTS``, ``INGEST_RETRY_BACKOFF_S``), so a 5xx from Telegram's
    file server costs a short wait instead of a failed search. Raises the last
    :class:`~core.errors.FetchError`."""
    request = IngestRequest.of(owner_id, "photo", file_id, file_id=file_id, size=size)
    data = await fetch_with_retry(
        make_fetch(bot, settings),
        request,
        False,
        attempts=settings.ingest.max_attempts,
        backoff_s=settings.ingest.retry_backoff_s,
    )
    if isinstance(data, Path):  # a local Bot API server: the file is on this machine
        try:
            return await asyncio.to_thread(data.read_bytes)
        except OSError as exc:
            raise FetchError(f"{data}: {exc}") from exc
    return data
