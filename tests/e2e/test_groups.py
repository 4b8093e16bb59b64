"""Group chats end to end: the real bot (real polling) against the fake Telegram, with the bot
as a member of a group.

What the README promises: in a group the group shares one collection. So photos posted there
join the group's collection (quietly: a busy group is not told "saved" for every picture), a
query in the group is answered from the group's collection only, a member's private chat keeps
its own, and inline mode ("@bot query", typed in any chat) stays the user's own. In a group the
bot answers only what is addressed to it: commands (``/stats`` or ``/stats@thisbot``), texts
that start with its @username or reply to it. With Telegram's privacy mode (the default) that is
all the bot receives anyway; a bot that is an admin (or has privacy mode off) sees every line
and must still stay out of the conversation.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.e2e.botapp import BotApp, running_search_bot
from tests.e2e.fake_telegram import FakeGroup, FakeTelegramServer, FakeUser
from tests.e2e.search_support import Seeded, file_ids, shape_jpeg

Shape = tuple[str, str]
QUIET = {"near_duplicate_threshold": 1.0}  # two test pictures alike is the model's business


@pytest.fixture
async def app(telegram: FakeTelegramServer, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The bot with the trained fixture models: for tests that judge what comes first."""
    async with running_search_bot(telegram, tmp_path / "data", **QUIET) as running:
        yield running


@pytest.fixture
async def basic_app(telegram: FakeTelegramServer, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The bot with any model: for tests about who is answered where, not the ranking."""
    async with running_search_bot(telegram, tmp_path / "data", quality=False, **QUIET) as running:
        yield running


def mention(telegram: FakeTelegramServer) -> str:
    return "@" + str(telegram.bot_user["username"])


def photo_id(message: dict) -> str:  # type: ignore[type-arg]
    return str(message["photo"][-1]["file_id"])


async def seed_group(
    app: BotApp, group: FakeGroup, shapes: Iterable[Shape], *, seed: int = 200
) -> dict[Shape, Seeded]:
    """Put photos into a group's collection straight through the engine (posting them through
    the chat is what the first test checks)."""
    owner = await app.chat_owner_id(group.id)
    return {
        (colour, shape): await app.seed_photo(owner, shape_jpeg(colour, shape, seed=seed + i))
        for i, (colour, shape) in enumerate(shapes)
    }


# --- adding ----------------------------------------------------------------------------------


async def test_photos_posted_in_a_group_join_the_groups_collection_quietly(
    basic_app: BotApp, telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser
) -> None:
    family = telegram.group(privacy=False)  # the bot sees every message (an admin)
    a, b = telegram.member(alice, family), telegram.member(boris, family)
    album = await telegram.send_album(
        a, [("photo", shape_jpeg("blue", "square", seed=1)), ("photo", shape_jpeg("red", "star"))]
    )
    single = telegram.send_photo(b, shape_jpeg("green", "triangle", seed=2))
    # A photo answering a friend's message is conversation: kept, not a query by example.
    answer = telegram.send_photo(b, shape_jpeg("yellow", "circle", seed=3), reply_to=album[0])
    for message in (*album, single, answer):
        await basic_app.handled(message)
    assert basic_app.engine.pipeline is not None
    await basic_app.engine.pipeline.wait_idle()

    assert await basic_app.chat_count(family.id) == 4
    assert await basic_app.count(alice) == 0 and await basic_app.count(boris) == 0

    # Not a word about the four pictures: the first thing the bot says is the /stats answer.
    telegram.send_command(a, "stats")
    stats = await basic_app.answer_in(family.id)
    assert telegram.messages(family.id) == [stats.text]
    assert "4 items" in (stats.text.text or "") and "4 photos" in (stats.text.text or "")
    # Alice's private chat is her own collection, still empty.
    telegram.send_command(alice, "stats")
    private = await basic_app.answer_in(alice.chat_id)
    assert "empty" in (private.text.text or "")

    # /similar as a reply to a member's photo in the group: neighbours from the group's items.
    posted = {photo_id(m) for m in (*album, single, answer)}
    telegram.send_command(b, f"similar{mention(telegram)}", reply_to=album[0])
    similar = await basic_app.answer_in(family.id)
    assert similar.file_ids and set(similar.file_ids) <= posted - {photo_id(album[0])}


# --- searching -------------------------------------------------------------------------------


async def test_a_query_in_a_group_searches_the_groups_collection_only(
    app: BotApp, telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser
) -> None:
    family = telegram.group()  # privacy mode: mentions, replies and commands reach the bot
    a, b = telegram.member(alice, family), telegram.member(boris, family)
    shared = await seed_group(
        app, family, [("blue", "square"), ("red", "star"), ("green", "circle")]
    )
    # Alice keeps a blue square of her own (as good a match) and something else in private.
    mine = await app.seed_shapes(alice, [("blue", "square"), ("yellow", "circle")], seed=300)
    boris_own = await app.seed_shapes(boris, [("purple", "star")], seed=400)
    before = await app.chat_count(family.id)

    query = telegram.send_text(a, f"{mention(telegram)} a blue square")
    found = await app.answer_in(family.id)
    assert found.file_ids[0] == shared[("blue", "square")].file_id
    assert set(found.file_ids) <= file_ids(shared)
    assert found.media[0].reply_to_message_id == query["message_id"]
    assert (found.text.text or "").startswith("Found ")  # in the asker's language

    # A reply to the bot is addressed to it: Boris asks in Russian and is answered so.
    telegram.send_text(b, "красная звезда", reply_to=found.text)
    star = await app.answer_in(family.id)
    assert star.file_ids[0] == shared[("red", "star")].file_id
    assert set(star.file_ids) <= file_ids(shared)
    assert (star.text.text or "").startswith("Найдено")

    # The group shares its searches too: Boris pages Alice's result with its buttons.
    telegram.press_button(boris, found.text, text="Loose")
    loose = await app.answer_in(family.id)
    assert loose.file_ids[0] == shared[("blue", "square")].file_id
    assert set(loose.file_ids) <= file_ids(shared)

    # A photo replying to the bot searches by example in the group's collection, unstored.
    telegram.send_photo(b, shape_jpeg("green", "circle", seed=999), reply_to=star.text)
    example = await app.answer_in(family.id)
    assert example.file_ids[0] == shared[("green", "circle")].file_id
    assert set(example.file_ids) <= file_ids(shared)
    assert await app.chat_count(family.id) == before

    # Private chats keep private collections: neither sees the group's items.
    private = await app.ask(alice, "a blue square")
    assert private.file_ids[0] == mine[("blue", "square")].file_id
    assert set(private.file_ids) <= file_ids(mine)
    other = await app.ask(boris, "красная звезда")
    assert set(other.file_ids) <= file_ids(boris_own)
    # ... and nothing private ever went to the group.
    in_group = {m.file_id for m in telegram.messages(family.id) if m.file_id}
    assert in_group <= file_ids(shared)


async def test_the_bot_keeps_out_of_the_conversation(
    basic_app: BotApp, telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser
) -> None:
    """With every message visible (an admin bot), only what is addressed to it is answered."""
    family = telegram.group(privacy=False)
    a, b = telegram.member(alice, family), telegram.member(boris, family)
    shared = await seed_group(basic_app, family, [("blue", "square"), ("red", "star")])
    me = mention(telegram)
    chatter = [
        telegram.send_text(a, "a blue square"),  # a chat line, not a query
        telegram.send_text(b, f"look, {me} finds our pictures"),  # about the bot, not to it
        telegram.send_text(a, "/stats@another_helper_bot"),  # another bot's command
        telegram.send_text(b, f"{me[:-3]}fan_club_bot a blue square"),  # another bot's name
        telegram.send_text(a, f"{me}_backup_bot a blue square"),  # ours is only its prefix
        telegram.send_text(b, "/unknown"),  # unknown commands: quiet in groups
    ]
    for message in chatter:
        await basic_app.handled(message)
    assert telegram.messages(family.id) == []

    telegram.send_text(a, f"{me.upper()} a blue square")  # usernames are case-insensitive
    found = await basic_app.answer_in(family.id)
    assert found.file_ids and set(found.file_ids) <= file_ids(shared)
    assert telegram.messages(family.id)[: len(found.media) + 1] == [*found.media, found.text]


async def test_commands_in_a_group_with_and_without_the_bots_name(
    basic_app: BotApp, telegram: FakeTelegramServer, alice: FakeUser
) -> None:
    family = telegram.group()  # privacy mode: commands reach the bot
    a = telegram.member(alice, family)
    await seed_group(basic_app, family, [("blue", "square"), ("red", "star")])
    await basic_app.seed_shapes(
        alice, [("green", "circle"), ("yellow", "circle"), ("red", "heart")]
    )
    name = str(telegram.bot_user["username"])
    for command in (f"stats@{name}", f"stats@{name.title()}", "stats"):
        telegram.send_command(a, command)
        stats = await basic_app.answer_in(family.id)
        assert "2 items" in (stats.text.text or ""), command  # the group's, not Alice's 3
    telegram.send_command(a, f"help@{name}")
    help_ = await basic_app.answer_in(family.id)
    assert f"@{name}" in (help_.text.text or "")
    # A photo whose caption names the bot reaches it in privacy mode, and is kept.
    posted = telegram.send_photo(a, shape_jpeg("white", "cross", seed=5), caption=f"@{name}")
    await basic_app.handled(posted)
    assert basic_app.engine.pipeline is not None
    await basic_app.engine.pipeline.wait_idle()
    assert await basic_app.chat_count(family.id) == 3
    assert await basic_app.count(alice) == 3


async def test_a_question_mark_photo_in_a_group_is_a_query_only_when_it_names_the_bot(
    basic_app: BotApp, telegram: FakeTelegramServer, alice: FakeUser
) -> None:
    family = telegram.group(privacy=False)  # the bot sees every photo
    a = telegram.member(alice, family)
    shared = await seed_group(basic_app, family, [("blue", "square"), ("red", "star")])
    me = mention(telegram)
    # "?" alone is for the people in the chat: the photo is kept, nobody is answered.
    asked_people = telegram.send_photo(a, shape_jpeg("green", "circle"), caption="? where was it")
    await basic_app.handled(asked_people)
    assert basic_app.engine.pipeline is not None
    await basic_app.engine.pipeline.wait_idle()
    assert await basic_app.chat_count(family.id) == 3
    assert telegram.messages(family.id) == []
    # Naming the bot makes it a query by example, in either order, and nothing is stored.
    for caption in (f"?{me} in red", f"{me} ? in red"):
        telegram.send_photo(a, shape_jpeg("yellow", "circle", seed=9), caption=caption)
        found = await basic_app.answer_in(family.id)
        kept = file_ids(shared) | {photo_id(asked_people)}
        assert found.file_ids and set(found.file_ids) <= kept, caption
    assert await basic_app.chat_count(family.id) == 3


async def test_a_group_upgraded_to_a_supergroup_keeps_its_collection(
    basic_app: BotApp, telegram: FakeTelegramServer, alice: FakeUser
) -> None:
    old = telegram.group(-4001, type="group")
    shared = await seed_group(basic_app, old, [("blue", "square"), ("red", "star")])
    new = telegram.group(-1_004_001)
    a = telegram.member(alice, new)
    # Telegram tells the old group where it went, then the new one where it came from.
    service = telegram.push_update(
        {"message": {**telegram.service_message(old, alice), "migrate_to_chat_id": new.id}}
    )
    await basic_app.handled(service)
    service = telegram.push_update(
        {"message": {**telegram.service_message(new, alice), "migrate_from_chat_id": old.id}}
    )
    await basic_app.handled(service)
    assert telegram.messages(old.id) == [] and telegram.messages(new.id) == []
    telegram.send_command(a, "stats")
    stats = await basic_app.answer_in(new.id)
    assert "2 items" in (stats.text.text or "")
    telegram.send_text(a, f"{mention(telegram)} a blue square")
    found = await basic_app.answer_in(new.id)
    assert found.file_ids and set(found.file_ids) <= file_ids(shared)


async def test_only_the_groups_admins_can_forget_its_collection(
    basic_app: BotApp, telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser
) -> None:
    family = telegram.group(admins=[alice])
    a, b = telegram.member(alice, family), telegram.member(boris, family)
    await seed_group(basic_app, family, [("blue", "square"), ("red", "star")])
    telegram.send_command(b, "forget")
    refused = await basic_app.answer_in(family.id)
    assert "администраторы" in (refused.text.text or "")  # Boris speaks Russian
    assert not refused.text.buttons()
    telegram.send_command(a, "forget")
    panel = await basic_app.answer_in(family.id)
    assert "cannot be undone" in (panel.text.text or "")
    # Boris presses the admin's button: refused, nothing deleted.
    query = telegram.press_button(boris, panel.text, text="Yes, delete everything")
    answer = await telegram.wait_callback_answer(query)
    assert answer.get("text")
    assert await basic_app.chat_count(family.id) == 2
    query = telegram.press_button(alice, panel.text, text="Yes, delete everything")
    await telegram.wait_callback_answer(query)
    assert await basic_app.chat_count(family.id) == 0


async def test_inline_queries_from_a_group_stay_personal(
    basic_app: BotApp, telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser
) -> None:
    family = telegram.group()
    await seed_group(basic_app, family, [("blue", "square"), ("red", "star")])
    mine = await basic_app.seed_shapes(alice, [("green", "circle"), ("yellow", "circle")])
    for chat_type in ("supergroup", "group"):
        for query in ("", "a blue square"):
            query_id = telegram.inline_query(alice, query, chat_type=chat_type)
            answer = await telegram.wait_inline_answer(query_id)
            offered = {r.get("photo_file_id") for r in answer["results"]}
            assert offered and offered <= file_ids(mine), (chat_type, query)
            assert answer["is_personal"] is True
    # Boris has posted nothing of his own: the group's items are not his to offer.
    query_id = telegram.inline_query(boris, "", chat_type="supergroup")
    answer = await telegram.wait_inline_answer(query_id)
    assert answer["results"] == [] and answer["button"] is not None
