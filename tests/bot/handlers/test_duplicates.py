"""/duplicates through the dispatcher: the pairs ingest recorded, shown as their two pictures
and a message with buttons; a press deletes one item or keeps both, and a press that does not
name an open pair of the presser's own collection changes nothing; in a group only its admins
may delete."""

from __future__ import annotations

from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    EditMessageText,
    GetChatMember,
    SendMediaGroup,
    SendMessage,
)
from aiogram.types import ChatMemberMember, ChatMemberOwner, InlineKeyboardMarkup, Message, User

from bot.duplicates import PAIRS_PER_PAGE, PairCB
from bot.i18n import t
from storage.near_duplicates import PairKey
from tests.bot.handlers.fakes import stored_photo
from tests.bot.handlers.harness import HandlerApp
from tests.bot.handlers.updates import group_chat


def buttons(markup: InlineKeyboardMarkup | None) -> dict[str, str]:
    assert markup is not None
    return {b.text: b.callback_data or "" for row in markup.inline_keyboard for b in row}


async def pair_of(app: HandlerApp, owner_id: int, first: str, second: str) -> PairKey:
    """Two stored photos, the second recorded as a near-duplicate of the first."""
    original = await stored_photo(app.engine, owner_id, first)
    copy = await stored_photo(app.engine, owner_id, second)
    assert await app.engine.db.owner(owner_id).near_duplicates.record(copy.id, original.id, 0.97)
    return PairKey(copy.id, original.id)


async def show_one_pair(app: HandlerApp, user: User) -> tuple[SendMediaGroup, Message]:
    """/duplicates with one pair stored: the album, and the question message under it."""
    await app.feed(app.updates.text(user, "/duplicates"))
    header, album, question = app.telegram.visible()
    assert isinstance(header, SendMessage) and isinstance(album, SendMediaGroup)
    assert isinstance(question, SendMessage)
    assert header.text == t("duplicates-header", user.language_code or "en", total=1)
    message = app.telegram.result_of(question)
    app.telegram.forget()
    return album, message


async def press(app: HandlerApp, user: User, data: str, message: Message) -> AnswerCallbackQuery:
    await app.feed(app.updates.button(user, data, message))
    answers = app.telegram.calls(AnswerCallbackQuery)
    assert len(answers) == 1
    return answers[0]


async def test_no_pairs_is_said_in_the_users_language(
    app: HandlerApp, alice: User, boris: User
) -> None:
    await app.feed(app.updates.text(alice, "/duplicates"))
    await app.feed(app.updates.text(boris, "/duplicates"))

    assert app.telegram.sent_texts() == [t("duplicates-empty", "en"), t("duplicates-empty", "ru")]


async def test_a_pair_is_both_pictures_and_a_question_with_three_buttons(
    app: HandlerApp, alice: User
) -> None:
    owner = await app.owner("user", alice.id)
    await pair_of(app, owner.id, "sea", "sea-copy")
    await app.feed(app.updates.text(alice, "/duplicates"))

    _, album, question = app.telegram.visible()
    assert isinstance(album, SendMediaGroup) and isinstance(question, SendMessage)
    assert [m.media for m in album.media] == ["file-sea", "file-sea-copy"]  # 1st saved first
    assert question.text == t("duplicates-pair", "en", score=97)
    first_picture = app.telegram.result_of(album)[0]
    assert question.reply_parameters is not None
    assert question.reply_parameters.message_id == first_picture.message_id
    labels = buttons(question.reply_markup)  # type: ignore[arg-type]
    assert set(labels) == {
        t("duplicates-delete-first", "en"),
        t("duplicates-delete-second", "en"),
        t("duplicates-keep", "en"),
    }
    assert all(len(data.encode()) <= 64 for data in labels.values())


async def test_delete_second_deletes_the_copy_and_the_pair(app: HandlerApp, alice: User) -> None:
    owner = await app.owner("user", alice.id)
    key = await pair_of(app, owner.id, "sea", "sea-copy")
    _, question = await show_one_pair(app, alice)
    data = buttons(question.reply_markup)[t("duplicates-delete-second", "en")]

    answer = await press(app, alice, data, question)

    assert answer.text is None
    (edit,) = app.telegram.calls(EditMessageText)
    assert edit.text == t("duplicates-deleted-second", "en") and edit.reply_markup is None
    assert await app.engine.library.item(owner.id, key.copy) is None
    assert await app.engine.library.item(owner.id, key.original) is not None
    assert await app.engine.library.count_duplicates(owner.id) == 0


async def test_delete_first_deletes_the_original(app: HandlerApp, boris: User) -> None:
    owner = await app.owner("user", boris.id)
    key = await pair_of(app, owner.id, "cat", "cat-copy")
    _, question = await show_one_pair(app, boris)

    await press(app, boris, buttons(question.reply_markup)["Удалить 1-ю"], question)

    (edit,) = app.telegram.calls(EditMessageText)
    assert edit.text == t("duplicates-deleted-first", "ru")
    assert await app.engine.library.item(owner.id, key.original) is None
    assert await app.engine.library.item(owner.id, key.copy) is not None


async def test_keep_both_dismisses_the_pair_and_deletes_nothing(
    app: HandlerApp, alice: User
) -> None:
    owner = await app.owner("user", alice.id)
    key = await pair_of(app, owner.id, "sea", "sea-copy")
    _, question = await show_one_pair(app, alice)
    keep = buttons(question.reply_markup)[t("duplicates-keep", "en")]

    await press(app, alice, keep, question)
    (edit,) = app.telegram.calls(EditMessageText)
    assert edit.text == t("duplicates-kept", "en")
    assert await app.engine.library.item(owner.id, key.copy) is not None
    assert await app.engine.library.item(owner.id, key.original) is not None

    app.telegram.forget()
    again = await press(app, alice, keep, question)  # the same button a second time
    assert again.text == t("duplicates-gone", "en")
    await app.feed(app.updates.text(alice, "/duplicates"))
    assert app.telegram.sent_texts() == [t("duplicates-empty", "en")]


async def test_a_button_naming_another_users_pair_deletes_nothing(
    app: HandlerApp, alice: User, boris: User
) -> None:
    alices = await app.owner("user", alice.id)
    key = await pair_of(app, alices.id, "sea", "sea-copy")
    forged = PairCB(action="o", copy_id=key.copy, original_id=key.original).pack()
    somewhere = app.updates.text(boris, "an old message of Boris's chat").message
    assert somewhere is not None

    answer = await press(app, boris, forged, somewhere)

    assert answer.text == t("duplicates-gone", "ru")
    assert app.telegram.calls(EditMessageText) == []
    assert await app.engine.library.item(alices.id, key.original) is not None
    assert await app.engine.library.count_duplicates(alices.id) == 1


async def test_tampered_button_data_is_answered(app: HandlerApp, alice: User) -> None:
    somewhere = app.updates.text(alice, "old").message
    assert somewhere is not None
    for data in ("dup:x:1:2", "dup:o:-1:2", "dup:o:abc"):
        app.telegram.forget()
        answer = await press(app, alice, data, somewhere)
        assert answer.text == t("commands-button-invalid", "en")


async def test_more_shows_the_next_pairs(app: HandlerApp, alice: User) -> None:
    owner = await app.owner("user", alice.id)
    for i in range(PAIRS_PER_PAGE + 1):
        await pair_of(app, owner.id, f"a{i}", f"b{i}")
    await app.feed(app.updates.text(alice, "/duplicates"))
    albums = app.telegram.calls(SendMediaGroup)
    assert len(albums) == PAIRS_PER_PAGE
    assert albums[0].media[1].media == f"file-b{PAIRS_PER_PAGE}"  # newest pair first
    last = app.telegram.calls(SendMessage)[-1]
    assert last.text == t("duplicates-more-text", "en")
    more_message = app.telegram.result_of(last)
    app.telegram.forget()

    more = buttons(last.reply_markup)[t("duplicates-more", "en")]  # type: ignore[arg-type]
    await press(app, alice, more, more_message)

    (album,) = app.telegram.calls(SendMediaGroup)
    assert [m.media for m in album.media] == ["file-a0", "file-b0"]
    (cleared,) = app.telegram.calls(EditMessageReplyMarkup)  # the old "More" button went
    assert (cleared.message_id, cleared.reply_markup) == (more_message.message_id, None)
    assert t("duplicates-more-text", "en") not in app.telegram.sent_texts()


# --- groups: the collection is everyone's, only admins delete -------------------------------


async def show_group_pair(app: HandlerApp, user: User) -> tuple[PairKey, Message]:
    """A pair in the group's collection and its question message, posted in the group."""
    chat = group_chat()
    group = await app.owner("chat", chat.id)
    key = await pair_of(app, group.id, "sea", "sea-copy")
    await app.feed(app.updates.text(user, "/duplicates", chat=chat))
    question = app.telegram.calls(SendMessage)[-1]
    assert question.chat_id == chat.id and question.reply_markup is not None
    message = app.telegram.result_of(question)
    app.telegram.forget()
    return key, message


async def test_in_a_group_a_member_cannot_delete_but_may_keep_both(
    app: HandlerApp, alice: User
) -> None:
    key, question = await show_group_pair(app, alice)
    group = await app.owner("chat", group_chat().id)
    member = ChatMemberMember(status="member", user=alice)
    for label in (t("duplicates-delete-first", "en"), t("duplicates-delete-second", "en")):
        app.telegram.add_result_for(GetChatMember, member)
        answer = await press(app, alice, buttons(question.reply_markup)[label], question)
        (check,) = app.telegram.calls(GetChatMember)  # asked at the press: admins change
        assert (check.chat_id, check.user_id) == (group_chat().id, alice.id)
        assert answer.text == t("duplicates-admins-only", "en") and answer.show_alert
        assert app.telegram.calls(EditMessageText) == []
        app.telegram.forget()
    assert await app.engine.library.item(group.id, key.copy) is not None
    assert await app.engine.library.item(group.id, key.original) is not None

    await press(app, alice, buttons(question.reply_markup)[t("duplicates-keep", "en")], question)
    assert app.telegram.calls(GetChatMember) == []  # keeping deletes nothing: anyone may
    (edit,) = app.telegram.calls(EditMessageText)
    assert edit.text == t("duplicates-kept", "en")
    assert await app.engine.library.count_duplicates(group.id) == 0


async def test_in_a_group_an_admin_deletes_one_of_a_pair(app: HandlerApp, boris: User) -> None:
    key, question = await show_group_pair(app, boris)
    group = await app.owner("chat", group_chat().id)
    app.telegram.add_result_for(
        GetChatMember, ChatMemberOwner(status="creator", user=boris, is_anonymous=False)
    )

    answer = await press(app, boris, buttons(question.reply_markup)["Удалить 2-ю"], question)

    assert answer.text is None
    (edit,) = app.telegram.calls(EditMessageText)
    assert edit.text == t("duplicates-deleted-second", "ru")
    assert await app.engine.library.item(group.id, key.copy) is None
    assert await app.engine.library.item(group.id, key.original) is not None


async def test_in_a_group_telegram_not_answering_who_is_admin_deletes_nothing(
    app: HandlerApp, alice: User
) -> None:
    key, question = await show_group_pair(app, alice)
    group = await app.owner("chat", group_chat().id)
    app.telegram.add_error_for(GetChatMember, 400, "Bad Request: chat not found")

    answer = await press(app, alice, buttons(question.reply_markup)["Delete 1st"], question)

    assert answer.text == t("duplicates-admins-only", "en")
    assert await app.engine.library.item(group.id, key.original) is not None
