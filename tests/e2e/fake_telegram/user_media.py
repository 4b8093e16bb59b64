"""The user's media: photos (in Telegram's several sizes), documents, videos, animations,
round videos and albums, each stored as a file the bot can download.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from typing import Any

from .chats import new_media_group_id
from .files import FileStore, media_fields
from .people import FakeUser
from .protocol import now
from .state import ServerState
from .updates import UpdateQueue
from .user_side import UserSide


class MediaBuilder:
    """What tests call to send the bot media as a user."""

    def __init__(
        self, state: ServerState, files: FileStore, people: UserSide, updates: UpdateQueue
    ) -> None:
        self._state = state
        self._files = files
        self._people = people
        self._updates = updates

    def send_photo(
        self,
        user: FakeUser,
        data: bytes,
        *,
        caption: str | None = None,
        media_group_id: str | None = None,
        forward_origin: dict[str, Any] | FakeUser | None = None,
        reply_to: Any = None,
        width: int | None = None,
        height: int | None = None,
    ) -> dict[str, Any]:
        """The user sends (or forwards) a compressed photo.

        Telegram's smaller sizes are made as real downscaled JPEGs; the largest size is the
        given bytes unchanged, so the bot downloads exactly what the test chose. Bytes Pillow
        cannot read need ``width``/``height`` and yield a single size.
        """
        sizes = self._files.register_photo(data, width=width, height=height)
        content: dict[str, Any] = {"photo": [size.photo_size() for size in sizes]}
        if caption is not None:
            content["caption"] = caption
        return self._people.post(
            user,
            content,
            reply_to=reply_to,
            forward_origin=forward_origin,
            media_group_id=media_group_id,
        )

    def send_document(
        self,
        user: FakeUser,
        data: bytes,
        *,
        file_name: str = "file.bin",
        mime_type: str | None = None,
        caption: str | None = None,
        media_group_id: str | None = None,
        forward_origin: dict[str, Any] | FakeUser | None = None,
        reply_to: Any = None,
        thumbnail: bytes | None = None,
        file_size: int | None = None,
    ) -> dict[str, Any]:
        """The user sends a file as a document (e.g. an uncompressed image or a PDF)."""
        stored = self._files.register_file(
            "document",
            data,
            file_name=file_name,
            mime_type=mime_type or mimetypes.guess_type(file_name)[0],
            thumbnail=thumbnail,
            file_size=file_size,
        )
        content = media_fields(stored)
        if caption is not None:
            content["caption"] = caption
        return self._people.post(
            user,
            content,
            reply_to=reply_to,
            forward_origin=forward_origin,
            media_group_id=media_group_id,
        )

    def send_video(
        self,
        user: FakeUser,
        data: bytes,
        *,
        duration: int = 10,
        width: int = 640,
        height: int = 360,
        thumbnail: bytes | None = None,
        file_size: int | None = None,
        caption: str | None = None,
        media_group_id: str | None = None,
        forward_origin: dict[str, Any] | FakeUser | None = None,
        reply_to: Any = None,
        file_name: str | None = "video.mp4",
        mime_type: str = "video/mp4",
    ) -> dict[str, Any]:
        """The user sends a video; ``file_size`` pretends it is bigger (e.g. over 20 MB)."""
        stored = self._files.register_file(
            "video",
            data,
            duration=duration,
            width=width,
            height=height,
            thumbnail=thumbnail,
            file_size=file_size,
            file_name=file_name,
            mime_type=mime_type,
        )
        content = media_fields(stored)
        if caption is not None:
            content["caption"] = caption
        return self._people.post(
            user,
            content,
            reply_to=reply_to,
            forward_origin=forward_origin,
            media_group_id=media_group_id,
        )

    def send_animation(
        self,
        user: FakeUser,
        data: bytes,
        *,
        duration: int = 3,
        width: int = 320,
        height: int = 240,
        thumbnail: bytes | None = None,
        file_size: int | None = None,
        caption: str | None = None,
        forward_origin: dict[str, Any] | FakeUser | None = None,
        reply_to: Any = None,
        file_name: str = "animation.mp4",
        mime_type: str = "video/mp4",
    ) -> dict[str, Any]:
        """The user sends a GIF/animation (Telegram also fills ``document``, as here)."""
        stored = self._files.register_file(
            "animation",
            data,
            duration=duration,
            width=width,
            height=height,
            thumbnail=thumbnail,
            file_size=file_size,
            file_name=file_name,
            mime_type=mime_type,
        )
        content = media_fields(stored)
        if caption is not None:
            content["caption"] = caption
        return self._people.post(user, content, reply_to=reply_to, forward_origin=forward_origin)

    def send_video_note(
        self,
        user: FakeUser,
        data: bytes,
        *,
        duration: int = 5,
        length: int = 240,
        thumbnail: bytes | None = None,
        file_size: int | None = None,
        forward_origin: dict[str, Any] | FakeUser | None = None,
        reply_to: Any = None,
    ) -> dict[str, Any]:
        """The user sends a round video message."""
        stored = self._files.register_file(
            "video_note",
            data,
            duration=duration,
            length=length,
            thumbnail=thumbnail,
            file_size=file_size,
        )
        return self._people.post(
            user, media_fields(stored), reply_to=reply_to, forward_origin=forward_origin
        )

    async def send_album(
        self,
        user: FakeUser,
        items: Sequence[tuple[str, bytes] | dict[str, Any]],
        *,
        caption: str | None = None,
        forward_origin: dict[str, Any] | FakeUser | None = None,
        batches: Sequence[int] | None = None,
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """The user sends an album: one message per item sharing ``media_group_id``.

        ``items`` are ``(kind, bytes)`` with kind photo/video/document, or dicts of keyword
        arguments for the matching ``send_*`` builder plus ``"kind"``. The caption goes on the
        first item. ``batches=[2, 1]`` pushes two items, waits until a getUpdates answer carried
        them, then pushes the last one: an album split across polling batches, deterministically.
        """
        if not items:
            raise ValueError("an album needs items")
        sizes = list(batches) if batches else [len(items)]
        if sum(sizes) != len(items):
            raise ValueError("batches must add up to the number of items")
        group_id = new_media_group_id()
        date = now()
        messages: list[dict[str, Any]] = []
        pending = iter(enumerate(items))
        for batch_no, size in enumerate(sizes):
            if batch_no:
                await self._state.wait_for(
                    lambda _: all(self._updates.record(m).delivered for m in messages),
                    timeout=timeout,
                    what="delivery of the album's previous batch",
                )
            for _ in range(size):
                index, item = next(pending)
                if isinstance(item, tuple):
                    kind, data = item
                    kwargs: dict[str, Any] = {"data": data}
                else:
                    kwargs = dict(item)
                    kind = kwargs.pop("kind")
                if index == 0 and caption is not None:
                    kwargs.setdefault("caption", caption)
                messages.append(
                    self._album_item(
                        user, kind, kwargs, group_id, date, forward_origin=forward_origin
                    )
                )
        return messages

    def _album_item(
        self,
        user: FakeUser,
        kind: str,
        kwargs: dict[str, Any],
        group_id: str,
        date: int,
        *,
        forward_origin: dict[str, Any] | FakeUser | None,
    ) -> dict[str, Any]:
        """Post one album item (``kwargs`` as for the matching ``send_*`` builder)."""
        data = kwargs.pop("data")
        caption = kwargs.pop("caption", None)
        if kind == "photo":
            sizes = self._files.register_photo(data, **kwargs)
            content: dict[str, Any] = {"photo": [s.photo_size() for s in sizes]}
        elif kind in ("video", "document"):
            if kind == "video":
                kwargs.setdefault("duration", 10)
                kwargs.setdefault("width", 640)
                kwargs.setdefault("height", 360)
                kwargs.setdefault("mime_type", "video/mp4")
            else:
                kwargs.setdefault("file_name", "file.bin")
            content = media_fields(self._files.register_file(kind, data, **kwargs))
        else:
            raise ValueError(f"albums hold photos, videos or documents, not {kind}")
        if caption is not None:
            content["caption"] = caption
        return self._people.post(
            user,
            content,
            forward_origin=forward_origin,
            media_group_id=group_id,
            date=date,
        )
