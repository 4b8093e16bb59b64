"""Text queries and the buttons under a result page, through the dispatcher.

The search itself is scripted (:class:`~tests.bot.handlers.fakes.ScriptedSearch`); what is
checked is what the handlers ask it and what they send back: the hits as the owner's own files,
the summary with its buttons, the "nothing found" reply, and silence in a group.
"""

from __future__ import annotations

from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
)
from aiogram.types import InlineKeyboardMarkup, Message, User

from bot.i18n import t
from bot.sessions import ResultsPage
from core.errors import ItemNotReadyError, NotFoundError
from tests.bot.handlers.fakes import found, stored_photo
from tests.bot.handlers.harness import HandlerApp
from tests.bot.handlers.updates import group_chat
from tests.bot.mocked_bot import BOT_USERNAME


def buttons(markup: InlineKeyboardMarkup | None) -> dict[str, str]:
    """Button label -> callback data."""
    assert markup is not None
    return {b.text: b.callback_data or "" for row in markup.inline_keyboard for b in row}


async def test_a_text_query_is_answered_with_the_owners_files_and_a_summary(
    app: HandlerApp, alice: User
) -> None:
    owner = await app.owner("user", alice.id)
    cat = await stored_photo(app.engine, owner.id, "cat")
    dog = await stored_photo(app.engine, owner.id, "dog")
    app.search.answer(found([cat, dog]))

    update = app.updates.text(alice, "animals -birds")
    await app.feed(update)

    ((asked_owner, query),) = app.search.asked
    assert (asked_owner, query.text, query.exclude, query.offset) == (
        owner.id,
        "animals",
        ("birds",),
        0,
    )
    album, summary = app.telegram.visible()
    assert isinstance(album, SendMediaGroup) and isinstance(summary, SendMessage)
    assert album.chat_id == summary.chat_id == alice.id
    assert [m.media for m in album.media] == ["file-cat", "file-dog"]
    assert album.reply_parameters is not None
    assert album.reply_parameters.message_id == update.message.message_id  # type: ignore[union-attr]
    assert summary.text == t("search-summary", "en", total="2", ms=12)
    labels = buttons(summary.reply_markup)  # type: ignore[arg-type]
    assert set(labels) == {t("sessions-strict", "en"), t("sessions-loose", "en")}
    # The buttons point at a stored session of this owner, and the album is on record, so a
    # reply to it means the item it shows.
    page = ResultsPage.unpack(labels[t("sessions-strict", "en")])
    results = app.engine.queries.results(owner.id)
    session = await results.session(page.sid)
    assert session is not None and session.text == "animals -birds"
    first_message = app.telegram.result_of(album)[0]
    recorded = await results.result(alice.id, first_message.message_id)
    assert recorded is not None and recorded.media_id == cat.id


async def test_nothing_found_is_said_in_reply_quoting_the_query(
    app: HandlerApp, boris: User
) -> None:
    update = app.updates.text(boris, "фиолетовый <слон>")
    await app.feed(update)

    (sent,) = app.telegram.visible()
    assert isinstance(sent, SendMessage)
    assert sent.chat_id == boris.id
    assert sent.text == t("search-no-match", "ru", query="фиолетовый &lt;слон&gt;")
    assert sent.reply_parameters is not None
    assert sent.reply_parameters.message_id == update.message.message_id  # type: ignore[union-attr]


async def test_group_chatter_not_addressed_to_the_bot_is_ignored(
    app: HandlerApp, alice: User
) -> None:
    await app.feed(app.updates.text(alice, "lunch at noon?", chat=group_chat()))

    assert app.search.asked == []
    assert app.telegram.visible() == []


async def test_a_group_message_naming_the_bot_is_a_query(app: HandlerApp, alice: User) -> None:
    chat = group_chat()
    await app.feed(app.updates.text(alice, f"@{BOT_USERNAME} red car", chat=chat))

    ((owner_id, query),) = app.search.asked
    group_owner = await app.engine.owners.find("chat", chat.id)
    assert group_owner is not None and owner_id == group_owner.id  # the group's collection
    assert query.text == "red car"
    (sent,) = app.telegram.visible()
    assert isinstance(sent, SendMessage)
    assert (sent.chat_id, sent.text) == (chat.id, t("search-no-match", "en", query="red car"))


async def test_more_turns_the_page_and_clears_the_old_buttons(app: HandlerApp, alice: User) -> None:
    owner = await app.owner("user", alice.id)
    await app.engine.owners.update_settings(owner.id, {"page_size": 5})
    photos = [await stored_photo(app.engine, owner.id, f"p{i}") for i in range(6)]
    app.search.answer(found(photos[:5], limit=5, total=6))
    await app.feed(app.updates.text(alice, "beach"))
    summary_call = app.telegram.calls(SendMessage)[-1]
    summary: Message = app.telegram.result_of(summary_call)
    more = buttons(summary.reply_markup)[t("sessions-more", "en")]
    app.telegram.forget()
    app.search.answer(found(photos[5:], offset=5, limit=5, total=6))

    await app.feed(app.updates.button(alice, more, summary))

    (_, query) = app.search.asked[-1]
    assert (query.text, query.offset, query.limit) == ("beach", 5, 5)
    answer, cleared, photo, last = app.telegram.visible()
    assert isinstance(answer, AnswerCallbackQuery)
    assert answer.text == t("search-loading", "en")
    assert isinstance(cleared, EditMessageReplyMarkup)
    assert (cleared.message_id, cleared.reply_markup) == (summary.message_id, None)
    assert isinstance(photo, SendPhoto) and photo.photo == "file-p5"
    assert isinstance(last, SendMessage)
    assert last.text == t("search-summary", "en", total="6", ms=12) + t(
        "search-range", "en", first=6, last=6
    )


async def test_a_button_of_an_unknown_search_says_it_expired(app: HandlerApp, alice: User) -> None:
    message = app.updates.text(alice, "old results").message
    assert message is not None
    await app.feed(app.updates.button(alice, "res:424242:n:10", message))

    (answer,) = app.telegram.visible()
    assert isinstance(answer, AnswerCallbackQuery)
    assert answer.text == t("search-expired", "en")
    assert app.search.asked == []


async def test_an_item_still_being_re_embedded_is_told_apart_from_one_gone_by_type(
    app: HandlerApp, alice: User
) -> None:
    app.search.answer(ItemNotReadyError("no vector for the loaded models yet"))
    await app.feed(app.updates.text(alice, "a cat"))
    app.search.answer(NotFoundError("item 7 not found"))
    await app.feed(app.updates.text(alice, "a dog"))

    not_ready, gone = (m for m in app.telegram.visible() if isinstance(m, SendMessage))
    assert not_ready.text == t("search-item-not-ready", "en")
    assert gone.text == t("search-item-gone", "en")
