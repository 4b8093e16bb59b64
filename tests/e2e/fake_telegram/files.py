"""The file store: file ids, the sizes Telegram keeps of photos, getFile and downloads.

Files come from user-side builders and from the bot's uploads; both get ids shaped like
Telegram's, so a bot that mishandles them (e.g. in 64-byte callback data) fails here too.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
from pathlib import Path
from typing import Any

from aiohttp import web

from .dispatch import Handler
from .faults import FaultInjector
from .images import image_size, thumbnail_jpeg
from .protocol import DOWNLOAD, DOWNLOAD_LIMIT, FILE_TOO_BIG, WRONG_GETFILE_ID, bad, error_body
from .records import ApiCall, StoredFile
from .state import ServerState

FILE_ID_PREFIX = {
    "photo": "AgACAgIAAxkBAA",
    "video": "BAACAgIAAxkBAA",
    "document": "BQACAgIAAxkBAA",
    "animation": "CgACAgIAAxkBAA",
    "video_note": "DQACAgIAAxkBAA",
    "audio": "CQACAgIAAxkBAA",
    "thumbnail": "AAMCAgADGQEAA",
}
FILE_DIRS = {
    "photo": ("photos", ".jpg"),
    "video": ("videos", ".mp4"),
    "document": ("documents", ""),
    "animation": ("animations", ".mp4"),
    "video_note": ("video_notes", ".mp4"),
    "audio": ("music", ".mp3"),
    "thumbnail": ("thumbnails", ".jpg"),
}
PHOTO_SIDES = (90, 320, 800, 1280, 2560)  # Telegram's s, m, x, y, w sizes


def media_fields(
    stored: StoredFile,
    *,
    start_timestamp: int | None = None,
    cover: list[StoredFile] | None = None,
) -> dict[str, Any]:
    """The message fields Telegram sets for a file of this kind."""
    if stored.kind == "photo":
        group = stored.photo_group or [stored]
        return {"photo": [size.photo_size() for size in group]}
    obj: dict[str, Any] = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.file_size,
    }
    if stored.kind in ("video", "animation"):
        obj.update(
            width=stored.width or 0, height=stored.height or 0, duration=stored.duration or 0
        )
    if stored.kind == "video_note":
        obj.update(length=stored.length or 0, duration=stored.duration or 0)
    if stored.kind == "audio":
        obj["duration"] = stored.duration or 0
    if stored.file_name and stored.kind != "video_note":
        obj["file_name"] = stored.file_name
    if stored.mime_type and stored.kind != "video_note":
        obj["mime_type"] = stored.mime_type
    if stored.thumbnail is not None:
        obj["thumbnail"] = stored.thumbnail.photo_size()
    if start_timestamp is not None:
        obj["start_timestamp"] = start_timestamp
    if cover:
        obj["cover"] = [size.photo_size() for size in cover]
    fields = {stored.kind: obj}
    if stored.kind == "animation":
        # "For backward compatibility, when this field is set, the document field will
        # also be set" (Bot API, Message.animation).
        fields["document"] = {
            k: v for k, v in obj.items() if k not in ("width", "height", "duration")
        }
    return fields


class FileStore:
    """Files known to the fake, by file_id and by download path."""

    def __init__(self, state: ServerState, faults: FaultInjector) -> None:
        self._state = state
        self._faults = faults
        self._files_by_path: dict[str, StoredFile] = {}
        self._file_counter = itertools.count(1)

    def handlers(self) -> dict[str, Handler]:
        return {"getFile": self.get_file}

    def _new_file_ids(self, kind: str, data: bytes) -> tuple[str, str]:
        # Real file_ids are ~80 characters: keep that, so a bot that stuffs them into
        # 64-byte callback_data fails here as it would on Telegram.
        number = next(self._file_counter)
        blob = number.to_bytes(4, "big") + secrets.token_bytes(54)
        file_id = FILE_ID_PREFIX[kind] + base64.urlsafe_b64encode(blob).decode().rstrip("=")
        digest = hashlib.sha256(kind.encode() + b"\0" + data).digest()[:12]
        unique = "AQAD" + base64.urlsafe_b64encode(digest).decode().rstrip("=")
        return file_id, unique

    def store(self, kind: str, data: bytes, **meta: Any) -> StoredFile:
        """Keep ``data`` as a new file of ``kind``; ``meta`` fills its media object."""
        file_id, unique = self._new_file_ids(kind, data)
        folder, ext = FILE_DIRS[kind]
        if kind == "document" and meta.get("file_name"):
            ext = Path(str(meta["file_name"])).suffix
        number = len(self._state.files) + 1
        file_size = meta.pop("file_size", None) or len(data)
        stored = StoredFile(
            file_id=file_id,
            file_unique_id=unique,
            kind=kind,
            data=data,
            file_size=int(file_size),
            file_path=f"{folder}/file_{number}{ext}",
            **meta,
        )
        self._state.files[file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def register_photo(
        self, data: bytes, *, width: int | None = None, height: int | None = None
    ) -> list[StoredFile]:
        """Store a photo as Telegram does: several sizes, each its own file, largest last."""
        size = image_size(data)
        if size is None:
            if width is None or height is None:
                raise ValueError("photo bytes are not an image; give width and height")
            size = (width, height)
        w, h = size
        group: list[StoredFile] = []
        for side in PHOTO_SIDES:
            if max(w, h) <= side:
                break
            small = thumbnail_jpeg(data, side)
            if small is None:
                break
            sw, sh = image_size(small) or (side, side)
            group.append(self.store("photo", small, width=sw, height=sh, mime_type="image/jpeg"))
        group.append(self.store("photo", data, width=w, height=h, mime_type="image/jpeg"))
        for item in group:
            item.photo_group = group
        return group

    def register_file(
        self,
        kind: str,
        data: bytes,
        *,
        thumbnail: bytes | None = None,
        file_size: int | None = None,
        **meta: Any,
    ) -> StoredFile:
        """Store a non-photo file, with its thumbnail as a file of its own."""
        thumb = None
        if thumbnail is not None:
            tw, th = image_size(thumbnail) or (320, 180)
            thumb = self.store("thumbnail", thumbnail, width=tw, height=th)
        return self.store(kind, data, thumbnail=thumb, file_size=file_size, **meta)

    def set_file_size(self, file_id: str, size: int) -> None:
        """Pretend a stored file is ``size`` bytes (e.g. over the 20 MB getFile limit)."""
        stored = self._state.files[file_id]
        stored.file_size = size

    async def get_file(self, call: ApiCall) -> dict[str, Any]:
        """getFile: the download path (the 20 MB limit applies unless in local mode)."""
        state = self._state
        file_id = str(call.params.get("file_id") or "")
        stored = state.files.get(file_id)
        if stored is None:
            raise bad(WRONG_GETFILE_ID)
        file_path = stored.file_path
        if state.local_dir is not None:
            local = state.local_dir / state.token / stored.file_path
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(stored.data)
            file_path = str(local)
        elif stored.file_size > DOWNLOAD_LIMIT:
            raise bad(FILE_TOO_BIG)
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "file_path": file_path,
        }

    async def serve_download(self, request: web.Request) -> web.StreamResponse:
        """GET /file/bot<token>/<path>: the file's bytes, or the fault injected for downloads."""
        state = self._state
        if request.match_info["token"] != state.token:
            return web.Response(status=401, text="Unauthorized")
        stored = self._files_by_path.get(request.match_info["path"])
        if stored is None:
            return web.json_response(error_body(404, "Not Found", None), status=404)
        call = ApiCall(len(state.calls), DOWNLOAD, {"file_id": stored.file_id}, {}, {}, "")
        fault = self._faults.take(call)
        if fault is not None:  # fail(DOWNLOAD, 502): the file server answers an error
            state.failed_downloads.append(stored.file_id)
            state.notify()
            return web.Response(status=fault.status, text=fault.description)
        state.downloads.append(stored.file_id)
        state.notify()
        return web.Response(body=stored.data, content_type="application/octet-stream")
