"""Photos sent to the bot: submitted to ingest as the owner's item, then acknowledged once.

The acknowledgement comes from the answer collector after the album's quiet time, in the
background, so tests await the call itself (``telegram.wait_for``) instead of sleeping.
"""

from __future__ import annotations

from aiogram.methods import SendMessage, SetMessageReaction
from aiogram.types import User

from bot.courtesy import SAVED_REACTION
from bot.i18n import t
from tests.bot.handlers.fakes import ScriptedPipeline
from tests.bot.handlers.harness import HandlerApp
from tests.bot.handlers.updates import group_chat


async def test_a_photo_is_stored_and_acknowledged_in_reply(app: HandlerApp, alice: User) -> None:
    update = app.updates.photo(alice, "sunset", caption="Crete, 2023")
    await app.feed(update)

    (request,) = app.pipeline.submitted
    owner = await app.engine.owners.find("user", alice.id)
    assert owner is not None and request.owner_id == owner.id
    assert (request.kind, request.facts.file_id) == ("photo", "sunset-x")  # the largest size
    assert request.facts.caption == "Crete, 2023"
    (ack,) = await app.telegram.wait_for(SendMessage)
    assert (ack.chat_id, ack.text) == (alice.id, t("reports-saved-photo", "en"))
    assert ack.reply_parameters is not None
    assert ack.reply_parameters.message_id == update.message.message_id  # type: ignore[union-attr]
    stats = await app.engine.owners.stats(owner.id)
    assert stats.media_total == 1
    assert app.search.asked == []  # a photo without "?" is kept, not searched


async def test_the_same_photo_again_is_reported_as_already_there(
    app: HandlerApp, boris: User
) -> None:
    await app.feed(app.updates.photo(boris, "sunset"))
    await app.telegram.wait_for(SendMessage)

    await app.feed(app.updates.photo(boris, "sunset"))

    first, second = await app.telegram.wait_for(SendMessage, 2)
    assert first.text == t("reports-saved-photo", "ru")
    assert second.text == t("reports-duplicate", "ru")


async def test_a_photo_that_cannot_be_read_gets_the_reason(app: HandlerApp, alice: User) -> None:
    app.pipeline.outcome = ScriptedPipeline.failing("image_truncated")
    await app.feed(app.updates.photo(alice, "broken"))

    (ack,) = await app.telegram.wait_for(SendMessage)
    reason = t("reports-reason-image-truncated-sentence", "en")
    assert (ack.chat_id, ack.text) == (alice.id, t("reports-failed", "en", reason=reason))
    assert (
        await app.engine.library.find(app.pipeline.submitted[0].owner_id, "uniq-broken-x") is None
    )


async def test_a_photo_posted_in_a_group_is_kept_with_a_reaction_not_a_message(
    app: HandlerApp, alice: User
) -> None:
    chat = group_chat()
    update = app.updates.photo(alice, "party", chat=chat)
    await app.feed(update)

    (reaction,) = await app.telegram.wait_for(SetMessageReaction)
    assert (reaction.chat_id, reaction.message_id) == (chat.id, update.message.message_id)  # type: ignore[union-attr]
    assert [r.emoji for r in reaction.reaction] == [SAVED_REACTION]  # type: ignore[union-attr]
    (request,) = app.pipeline.submitted
    group_owner = await app.engine.owners.find("chat", chat.id)
    assert group_owner is not None and request.owner_id == group_owner.id
    await app.shutdown()  # every pending answer is sent now: there is none for a group
    assert app.telegram.calls(SendMessage) == []
