"""The bot's file parameters: multipart uploads, reused file_ids, local paths, thumbnails.

Uploads are checked against Telegram's size limits and stored like any other file, so a file
the bot sent can be downloaded or resent by file_id afterwards.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from .files import FileStore
from .images import image_size
from .protocol import (
    PHOTO_UPLOAD_LIMIT,
    TYPE_MISMATCH,
    UPLOAD_LIMIT,
    WRONG_FILE_ID,
    ApiError,
    bad,
)
from .records import ApiCall, StoredFile, UploadedFile
from .state import ServerState


def start_timestamp(value: Any, stored: StoredFile) -> int | None:
    """Seconds from which the video plays (Bot API 8.3).

    Stricter than Telegram on purpose: a value past the video's end is refused, which
    catches a ``timedelta`` (aiogram turns it into a Unix time) or milliseconds.
    """
    if value is None or value == "":
        return None
    try:
        seconds = int(value)
    except (TypeError, ValueError) as exc:
        raise bad("Bad Request: invalid start_timestamp specified") from exc
    if seconds < 0 or (stored.duration and seconds > stored.duration):
        raise bad(
            f"Bad Request: start_timestamp {seconds} is outside the video "
            f"(duration {stored.duration} s)"
        )
    return seconds


class Uploads:
    """Turns a file parameter of a request into a stored file."""

    def __init__(self, state: ServerState, files: FileStore) -> None:
        self._state = state
        self._files = files

    def resolve(
        self,
        call: ApiCall,
        value: Any,
        kind: str,
        *,
        name: str,
        meta: dict[str, Any] | None = None,
    ) -> StoredFile:
        """A file parameter: ``attach://`` part, same-named part, file_id or local path."""
        meta = meta or {}
        upload: UploadedFile | None = None
        if value is None and name in call.files:
            upload = call.files[name]
        elif isinstance(value, str) and value.startswith("attach://"):
            upload = call.files.get(value.removeprefix("attach://"))
            if upload is None:
                raise bad(f'Bad Request: can\'t find attached file "{value}"')
        elif value is None or value == "":
            raise bad(f"Bad Request: there is no {name} in the request")
        if upload is not None:
            return self._store_upload(upload, kind, meta)
        text = str(value)
        if text.startswith("file://"):
            if self._state.local_dir is None:
                raise bad(WRONG_FILE_ID)
            path = Path(text.removeprefix("file://"))
            if not path.is_file():
                raise bad("Bad Request: file not found")
            return self._store_upload(
                UploadedFile(name, path.name, None, path.read_bytes()), kind, meta
            )
        stored = self._state.files.get(text)
        if stored is None:
            raise bad(WRONG_FILE_ID)  # unknown id, or a URL: the fake has no network
        if stored.kind != kind:
            raise bad(TYPE_MISMATCH)
        return stored

    def _store_upload(self, upload: UploadedFile, kind: str, meta: dict[str, Any]) -> StoredFile:
        """Store an uploaded part within Telegram's limits, its metadata from the request."""
        size = len(upload.data)
        if size == 0:
            raise bad("Bad Request: file must be non-empty")
        limit = PHOTO_UPLOAD_LIMIT if kind == "photo" else UPLOAD_LIMIT
        if size > limit:
            raise ApiError(413, "Request Entity Too Large")
        if kind == "photo":
            if image_size(upload.data) is None:
                raise bad("Bad Request: IMAGE_PROCESS_FAILED")
            return self._files.register_photo(upload.data)[-1]

        def number(key: str) -> int | None:
            value = meta.get(key)
            return int(value) if value not in (None, "") else None

        extra: dict[str, Any] = {}
        if kind in ("video", "animation", "video_note", "audio"):
            extra["duration"] = number("duration") or 0
        if kind in ("video", "animation"):
            extra["width"] = number("width") or 0
            extra["height"] = number("height") or 0
        if kind == "video_note":
            extra["length"] = number("length") or 0
        if kind != "video_note":
            extra["file_name"] = upload.filename
            extra["mime_type"] = upload.content_type
            if upload.filename and (
                not upload.content_type or upload.content_type == "application/octet-stream"
            ):
                extra["mime_type"] = mimetypes.guess_type(upload.filename)[0] or (
                    upload.content_type
                )
        thumb = meta.get("_thumbnail")
        return self._files.store(kind, upload.data, thumbnail=thumb, **extra)

    def thumbnail(self, call: ApiCall, value: Any) -> StoredFile | None:
        """An uploaded ``thumbnail`` (never a file_id, as on Telegram); None when absent."""
        if not isinstance(value, str) or not value.startswith("attach://"):
            return None  # thumbnails can only be uploaded, never reused (Bot API)
        upload = call.files.get(value.removeprefix("attach://"))
        if upload is None:
            raise bad(f'Bad Request: can\'t find attached file "{value}"')
        size = image_size(upload.data)
        if size is None:
            raise bad("Bad Request: thumbnail is not a JPEG image")
        return self._files.store("thumbnail", upload.data, width=size[0], height=size[1])

    def cover(self, call: ApiCall, value: Any) -> list[StoredFile] | None:
        """A video's ``cover`` photo, all its sizes."""
        if value is None or value == "":
            return None
        photo = self.resolve(call, value, "photo", name="cover")
        return photo.photo_group or [photo]
