"""What a message says about its media for the text index and date filters: an image
document's file name, and a forward's original date as the time the picture was taken."""

from __future__ import annotations

from datetime import UTC, datetime

from aiogram.types import Chat, Document, Message, MessageOriginChannel, PhotoSize

from bot.message_facts import media_of

SENT = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
POSTED = datetime(2024, 3, 5, 8, 30, tzinfo=UTC)
CHAT = Chat(id=7, type="private", first_name="A")


def message(**content: object) -> Message:
    return Message(message_id=1, date=SENT, chat=CHAT, **content)  # type: ignore[arg-type]


def photo() -> list[PhotoSize]:
    return [PhotoSize(file_id="p", file_unique_id="up", width=640, height=480)]


def test_an_image_documents_file_name_is_kept() -> None:
    doc = Document(
        file_id="d", file_unique_id="ud", file_name=" Счёт март.PNG ", mime_type="image/png"
    )
    facts = media_of(message(document=doc))
    assert facts is not None and facts.file_name == "Счёт март.PNG"


def test_a_photo_has_no_file_name_and_a_document_without_one_neither() -> None:
    facts = media_of(message(photo=photo()))
    assert facts is not None and facts.file_name is None
    doc = Document(file_id="d", file_unique_id="ud", file_name="  ", mime_type="image/png")
    facts = media_of(message(document=doc))
    assert facts is not None and facts.file_name is None


def test_a_forward_was_taken_when_it_was_first_posted() -> None:
    channel = Chat(id=-100, type="channel", title="Trips", username="trips")
    origin = MessageOriginChannel(type="channel", date=POSTED, chat=channel, message_id=9)
    facts = media_of(message(photo=photo(), forward_origin=origin))
    assert facts is not None
    assert facts.taken_at == int(POSTED.timestamp()) == facts.message_date
    assert facts.forward_origin == "Trips (@trips)"


def test_the_users_own_photo_has_no_taken_at() -> None:
    facts = media_of(message(photo=photo()))
    assert facts is not None
    assert facts.taken_at is None and facts.message_date == int(SENT.timestamp())
