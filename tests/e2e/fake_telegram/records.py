"""What the fake records: uploads, stored files, API calls, the bot's messages, updates."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class UploadedFile:
    """One multipart file part of a request."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class StoredFile:
    """A file known to the fake: bytes, ids and the metadata its media object needs.

    ``file_size`` may exceed ``len(data)`` to simulate big files without allocating them.
    """

    file_id: str
    file_unique_id: str
    kind: str
    data: bytes
    file_size: int
    file_path: str
    mime_type: str | None = None
    file_name: str | None = None
    width: int | None = None
    height: int | None = None
    duration: int | None = None
    length: int | None = None
    thumbnail: StoredFile | None = None
    photo_group: list[StoredFile] | None = None  # all sizes of one photo, largest last

    def photo_size(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": self.width or 0,
            "height": self.height or 0,
            "file_size": self.file_size,
        }


@dataclass(eq=False)
class ApiCall:
    """One request the bot made, as received, with the fake's answer."""

    index: int
    method: str
    params: dict[str, Any]  # JSON fields decoded; other values as sent (strings for forms)
    raw: dict[str, Any]
    files: dict[str, UploadedFile]
    content_type: str
    status: int | None = None  # None while being handled; 499 if the client hung up
    result: Any = None
    description: str | None = None
    injected: bool = False  # answered by an injected fault
    request: Any = field(default=None, repr=False, compare=False)
    at: float = field(default_factory=time.monotonic)  # when it arrived (the loop's clock)

    @property
    def ok(self) -> bool:
        return self.status == 200

    def int_param(self, name: str) -> int | None:
        value = self.params.get(name)
        if value is None or value == "":
            return None
        return int(value)

    @property
    def chat_id(self) -> int | None:
        try:
            return self.int_param("chat_id")
        except (TypeError, ValueError):
            return None


@dataclass(eq=False)
class SentMessage:
    """A message the bot sent; ``message`` is its current state (edits are applied in place)."""

    method: str
    call: ApiCall
    message: dict[str, Any]
    params: dict[str, Any]  # the request's params; for album items also the item under "item"
    raw_text: str | None = None  # text or caption as sent, before entity parsing
    parse_mode: str | None = None
    start_timestamp: int | None = None
    deleted: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier states, oldest first
    edit_methods: list[str] = field(default_factory=list)

    @property
    def chat_id(self) -> int:
        return int(self.message["chat"]["id"])

    @property
    def message_id(self) -> int:
        return int(self.message["message_id"])

    @property
    def text(self) -> str | None:
        return self.message.get("text")

    @property
    def caption(self) -> str | None:
        return self.message.get("caption")

    @property
    def kind(self) -> str:
        """Content kind, checked in aiogram's ``Message.content_type`` order."""
        for kind in ("text", "animation", "document", "photo", "video", "video_note", "audio"):
            if kind in self.message:
                return kind
        return "unknown"

    @property
    def media(self) -> dict[str, Any] | None:
        """The media object (for photos, the largest size)."""
        kind = self.kind
        if kind == "photo":
            return self.message["photo"][-1]
        if kind in ("text", "unknown"):
            return None
        return self.message[kind]

    @property
    def file_id(self) -> str | None:
        media = self.media
        return media["file_id"] if media else None

    @property
    def file_unique_id(self) -> str | None:
        media = self.media
        return media["file_unique_id"] if media else None

    @property
    def media_group_id(self) -> str | None:
        return self.message.get("media_group_id")

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        """The keyboard: inline ones as stored on the message, reply keyboards from the request."""
        requested = self.params.get("reply_markup")
        if isinstance(requested, dict) and "inline_keyboard" not in requested:
            return requested
        return self.message.get("reply_markup")

    @property
    def reply_to_message_id(self) -> int | None:
        reply = self.message.get("reply_to_message")
        return int(reply["message_id"]) if reply else None

    def buttons(self) -> list[dict[str, Any]]:
        """Inline buttons of the current keyboard, row by row flattened."""
        markup = self.message.get("reply_markup") or {}
        return [button for row in markup.get("inline_keyboard", []) for button in row]

    def button(self, text: str) -> dict[str, Any]:
        """The inline button whose text equals ``text`` (or, failing that, contains it)."""
        buttons = self.buttons()
        for button in buttons:
            if button.get("text") == text:
                return button
        for button in buttons:
            if text.lower() in str(button.get("text", "")).lower():
                return button
        labels = [button.get("text") for button in buttons]
        raise AssertionError(f"no button {text!r} on message {self.message_id}: {labels}")


@dataclass(eq=False)
class UpdateRecord:
    """A pushed update and what polling did with it."""

    update: dict[str, Any]
    delivered: int = 0  # how many getUpdates answers carried it
    confirmed: bool = False  # a later getUpdates offset acknowledged it
    dropped: bool = False  # its type was not in allowed_updates

    @property
    def update_id(self) -> int:
        return int(self.update["update_id"])

    @property
    def type(self) -> str:
        return next(key for key in self.update if key != "update_id")
