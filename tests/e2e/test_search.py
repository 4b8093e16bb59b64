"""Search end to end: the real bot (fixture models, real polling) against the fake Telegram.

Text queries in both languages, queries by photo, /similar, /delete, pages and relevance buttons,
video hits starting at the matched second, odd inputs, two users kept apart, and a query answered
while a large ingest is held up.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.e2e.botapp import BotApp, photo_request, running_search_bot
from tests.e2e.fake_telegram import DOWNLOAD, FakeTelegramServer, FakeUser
from tests.e2e.search_support import SHAPES, scenes_mp4, shape_jpeg


@pytest.fixture
async def app(telegram: FakeTelegramServer, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The bot with the trained fixture models: for tests that judge what comes first."""
    async with running_search_bot(telegram, tmp_path / "data") as running:
        yield running


@pytest.fixture
async def basic_app(telegram: FakeTelegramServer, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The bot with any model: for tests about the conversation, not the ranking."""
    async with running_search_bot(telegram, tmp_path / "data", quality=False) as running:
        yield running


# --- text queries ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "query"),
    [
        ("alice", "a blue square"),
        ("boris", "синий квадрат"),
        ("alice", "a blue square " * 715),  # 10,010 characters: the tokenizer truncates
    ],
    ids=["en", "ru", "10k-chars"],
)
async def test_text_query_returns_the_blue_square_first(
    app: BotApp, request: pytest.FixtureRequest, who: str, query: str
) -> None:
    user: FakeUser = request.getfixturevalue(who)
    items = await app.seed_shapes(user)
    answer = await app.ask(user, query)
    assert answer.media, answer.text.text
    assert answer.file_ids[0] == items[("blue", "square")].file_id
    # Results are the user's own files, sent by file_id (nothing uploaded).
    assert set(answer.file_ids) <= {s.file_id for s in items.values()}
    assert all(not m.call.files for m in answer.media)
    # The first result replies to the query; the summary carries count, time and buttons.
    assert answer.media[0].reply_to_message_id is not None
    summary = answer.text.text or ""
    assert len(summary) < 200  # the query is never echoed back in full
    if who == "alice":
        assert summary.startswith("Found ") and " ms" in summary
    else:
        assert summary.startswith("Найдено: ") and " мс" in summary
    labels = [b["text"] for b in answer.text.buttons()]
    assert any("Strict" in t or "Строже" in t for t in labels)
    assert any("Loose" in t or "Шире" in t for t in labels)
    assert all(len(b["callback_data"].encode()) <= 64 for b in answer.text.buttons())


async def test_photos_and_videos_share_albums_and_a_single_hit_is_sent_alone(
    basic_app: BotApp, alice: FakeUser
) -> None:
    await basic_app.seed_shapes(alice)
    answer = await basic_app.ask(alice, "a blue square")
    groups = {m.media_group_id for m in answer.media}
    assert len(answer.media) >= 2  # the generated model: every item is a hit
    assert None not in groups and all(m.method == "sendMediaGroup" for m in answer.media)
    # A collection of one photo answers with one sendPhoto, never a one-item album.
    await basic_app.engine.library.clear(await basic_app.owner_id(alice))
    blue = await basic_app.seed_photo(alice, shape_jpeg("blue", "square", seed=7))
    single = await basic_app.ask(alice, "a blue square")
    assert [m.method for m in single.media] == ["sendPhoto"]
    assert single.file_ids == [blue.file_id]
    assert not [b for b in single.text.buttons() if "More" in b["text"]]


async def test_image_documents_come_back_as_documents(app: BotApp, alice: FakeUser) -> None:
    from core.ingest.pipeline import IngestRequest

    await app.seed_shapes(alice, SHAPES[1:4])
    data = shape_jpeg("blue", "square", seed=3)
    stored = app.server._register_file(
        "document", data, file_name="square.jpg", mime_type="image/jpeg"
    )
    outcome = await app.submit(
        IngestRequest.of(
            await app.owner_id(alice),
            "document",
            stored.file_unique_id,
            file_id=stored.file_id,
            size=len(data),
            mime="image/jpeg",
        )
    )
    assert outcome.status == "saved"
    answer = await app.ask(alice, "a blue square")
    first = answer.media[0]
    assert first.kind == "document" and first.file_id == stored.file_id
    assert first.method in ("sendDocument", "sendMediaGroup")
    # Documents never share an album with photos (Telegram refuses that).
    for message in answer.media:
        if message.media_group_id is not None:
            kinds = {m.kind for m in answer.media if m.media_group_id == message.media_group_id}
            assert kinds == {"document"} or "document" not in kinds


# --- queries by photo ------------------------------------------------------------------------


async def test_photo_sent_as_a_reply_is_a_query_and_is_not_stored(
    app: BotApp, alice: FakeUser, telegram: FakeTelegramServer
) -> None:
    items = await app.seed_shapes(alice)
    first = await app.ask(alice, "a circle")
    before = await app.count(alice)
    jobs_before = (await app.engine.db.owner(await app.owner_id(alice)).stats()).jobs_by_state
    app.skip_sent(alice)
    # A different picture of a blue square (another render), replying to the bot's summary.
    telegram.send_photo(alice, shape_jpeg("blue", "square", seed=999), reply_to=first.text)
    answer = await app.answer(alice)
    assert answer.file_ids[0] == items[("blue", "square")].file_id
    assert await app.count(alice) == before
    jobs = (await app.engine.db.owner(await app.owner_id(alice)).stats()).jobs_by_state
    assert jobs == jobs_before  # no ingest job was even created


async def test_photo_with_question_caption_combines_photo_and_text(
    app: BotApp, alice: FakeUser, telegram: FakeTelegramServer
) -> None:
    items = await app.seed_shapes(alice)
    blue = items[("blue", "square")].file_id
    before = await app.count(alice)
    photo = shape_jpeg("orange", "heart", seed=555)  # nothing like it in the collection
    first = await app.ask(alice, "a red star")
    # The photo alone (a reply) finds what looks like it, not the blue square ...
    app.skip_sent(alice)
    telegram.send_photo(alice, photo, reply_to=first.text)
    alone = await app.answer(alice)
    assert not alone.file_ids or alone.file_ids[0] != blue
    # ... the same photo steered by its caption does.
    app.skip_sent(alice)
    telegram.send_photo(alice, photo, caption="? blue")
    steered = await app.answer(alice)
    assert steered.file_ids[0] == blue
    # Exclusions work in a caption as in a text query.
    app.skip_sent(alice)
    telegram.send_photo(alice, shape_jpeg("red", "circle", seed=556), caption="?-red")
    excluded = await app.answer(alice)
    reds = {s.file_id for k, s in items.items() if k[0] == "red"}
    assert not set(excluded.file_ids) & reds
    assert await app.count(alice) == before


async def test_photo_without_reply_or_question_is_still_ingested(
    basic_app: BotApp, alice: FakeUser, boris: FakeUser, telegram: FakeTelegramServer
) -> None:
    """The search router must not swallow ordinary photos (ingest comes after it), nor a
    forwarded photo whose caption, written by someone else, happens to start with "?"."""
    await basic_app.seed_shapes(alice, SHAPES[:2])
    before = await basic_app.count(alice)
    basic_app.skip_sent(alice)
    telegram.send_photo(alice, shape_jpeg("purple", "star", seed=4), caption="holiday")
    await basic_app.answer(alice)  # the ingest acknowledgement
    basic_app.skip_sent(alice)
    telegram.send_photo(
        alice, shape_jpeg("red", "heart", seed=5), caption="?riddle", forward_origin=boris
    )
    await basic_app.answer(alice)
    assert await basic_app.count(alice) == before + 2


async def test_a_file_telegram_no_longer_knows_does_not_hide_the_others(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    telegram.allowed_errors.append("wrong file identifier")
    async with running_search_bot(
        telegram,
        tmp_path / "data",
        search_margin_normal=1.0,
        search_margin_loose=1.5,
        quality=False,  # every item is a hit, the lost one among them
    ) as app:
        items = await app.seed_shapes(alice)
        gone = items[("blue", "square")]
        async with app.engine.db.write() as conn:  # e.g. the bot token changed since
            await conn.execute(
                "UPDATE media SET file_id = ? WHERE id = ?", ("AgAC-gone", gone.media_id)
            )
        answer = await app.ask(alice, "a blue square")
        assert len(answer.media) >= 1 and gone.file_id not in answer.file_ids
        assert set(answer.file_ids) <= {s.file_id for s in items.values()}
        assert "1 item could not be sent" in (answer.text.text or "")


# --- /similar and /delete --------------------------------------------------------------------


async def test_similar_on_a_saved_message_and_on_a_result(
    app: BotApp, alice: FakeUser, telegram: FakeTelegramServer
) -> None:
    items = await app.seed_shapes(alice)
    # Alice sends a photo; the bot saves it from that message.
    app.skip_sent(alice)
    saved = telegram.send_photo(alice, shape_jpeg("blue", "square", seed=321))
    await app.answer(alice)  # "saved"
    saved_uid = saved["photo"][-1]["file_unique_id"]
    store = app.engine.db.owner(await app.owner_id(alice))
    media = await store.media.find(saved_uid)
    assert media is not None and media.message_id == saved["message_id"]

    app.skip_sent(alice)
    telegram.send_command(alice, "similar", reply_to=saved)
    answer = await app.answer(alice)
    assert answer.file_ids[0] == items[("blue", "square")].file_id
    assert saved["photo"][-1]["file_id"] not in answer.file_ids  # never itself

    # /similar as a reply to a result: its neighbours, not itself.
    result = answer.media[0]
    app.skip_sent(alice)
    telegram.send_command(alice, "similar", reply_to=result)
    again = await app.answer(alice)
    assert again.media
    assert result.file_id not in again.file_ids
    assert again.file_ids[0] == saved["photo"][-1]["file_id"]  # the other blue square


async def test_similar_and_delete_need_a_reply_to_an_own_item(
    basic_app: BotApp, alice: FakeUser, telegram: FakeTelegramServer
) -> None:
    await basic_app.seed_shapes(alice, SHAPES[:3])
    for command in ("similar", "delete"):
        basic_app.skip_sent(alice)
        telegram.send_command(alice, command)
        answer = await basic_app.answer(alice)
        assert not answer.media and f"/{command}" in (answer.text.text or "")
    # A reply to a message that holds nothing of the collection.
    basic_app.skip_sent(alice)
    hello = telegram.send_text(alice, "-nothing")  # a query made only of an exclusion
    await basic_app.answer(alice)
    basic_app.skip_sent(alice)
    telegram.send_command(alice, "similar", reply_to=hello)
    answer = await basic_app.answer(alice)
    assert not answer.media and "not in your collection" in (answer.text.text or "")


async def test_delete_as_a_reply_to_a_result(
    app: BotApp, alice: FakeUser, telegram: FakeTelegramServer
) -> None:
    items = await app.seed_shapes(alice)
    answer = await app.ask(alice, "a blue square")
    target = answer.media[0]
    assert target.file_id == items[("blue", "square")].file_id
    before = await app.count(alice)
    app.skip_sent(alice)
    telegram.send_command(alice, "delete", reply_to=target)
    done = await app.answer(alice)
    assert "Deleted" in (done.text.text or "")
    assert await app.count(alice) == before - 1
    again = await app.ask(alice, "a blue square")
    assert target.file_id not in again.file_ids
    # Deleting it again says it is gone, and does not touch anything else.
    app.skip_sent(alice)
    telegram.send_command(alice, "delete", reply_to=target)
    gone = await app.answer(alice)
    assert "not in your collection" in (gone.text.text or "")
    assert await app.count(alice) == before - 1


async def test_replies_and_buttons_work_after_a_restart(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    async with running_search_bot(telegram, data) as app:
        items = await app.seed_shapes(alice, SHAPES[:4])
        answer = await app.ask(alice, "a blue square")
        result = answer.media[0]
        app.skip_sent(alice)
        saved = telegram.send_photo(alice, shape_jpeg("orange", "heart", seed=2))
        await app.answer(alice)
        app.skip_sent(alice)
        telegram.send_photo(alice, shape_jpeg("blue", "square", seed=42), reply_to=answer.text)
        by_photo = await app.answer(alice)
        before = await app.count(alice)
    # A new process: result messages and search sessions come from SQLite, and the query
    # photo is fetched from Telegram again by its file id.
    async with running_search_bot(telegram, data) as app:
        downloads = len(telegram.downloads)
        app.skip_sent(alice)
        telegram.press_button(alice, by_photo.text, text="Loose")
        loose = await app.answer(alice)
        assert loose.file_ids[0] == items[("blue", "square")].file_id
        assert len(telegram.downloads) == downloads + 1
        app.skip_sent(alice)
        telegram.send_command(alice, "delete", reply_to=result)
        assert "Deleted" in ((await app.answer(alice)).text.text or "")
        app.skip_sent(alice)
        telegram.send_command(alice, "delete", reply_to=saved)
        assert "Deleted" in ((await app.answer(alice)).text.text or "")
        assert await app.count(alice) == before - 2


# --- video hits ------------------------------------------------------------------------------


async def test_video_hit_starts_at_the_matched_second(
    app: BotApp, alice: FakeUser, tmp_path: Path
) -> None:
    from tests.fixtures.tooling.shapes import render_shape_photo

    await app.seed_shapes(alice, [("red", "circle"), ("yellow", "circle"), ("green", "triangle")])
    size = (320, 240)
    video = scenes_mp4(
        tmp_path / "scenes.mp4",
        [
            (3.0, render_shape_photo("red", "star", seed=1, size=size)),
            (3.0, render_shape_photo("blue", "square", seed=2, size=size)),
        ],
    )
    seeded = await app.seed_video(alice, video, duration=6, width=size[0], height=size[1])
    answer = await app.ask(alice, "a blue square")
    hit = next(m for m in answer.media if m.file_id == seeded.file_id)
    assert hit is answer.media[0]
    assert hit.kind == "video"
    assert hit.start_timestamp is not None and abs(hit.start_timestamp - 3) <= 1
    sent = hit.params.get("item", hit.params)
    assert str(sent.get("start_timestamp")) == str(hit.start_timestamp)  # whole seconds


# --- pages and relevance buttons -------------------------------------------------------------


async def test_more_pages_through_without_duplicates(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    # Wide margins: every item above the model's floor is relevant, so there are pages.
    async with running_search_bot(
        telegram,
        tmp_path / "data",
        search_margin_normal=1.0,
        search_margin_loose=1.5,
        search_default_limit=2,
        quality=False,
    ) as app:
        items = await app.seed_shapes(alice)
        answer = await app.ask(alice, "a square")
        seen = list(answer.file_ids)
        assert len(seen) == 2
        pages = 1
        while any("More" in b["text"] for b in answer.text.buttons()):
            app.skip_sent(alice)
            query_id = telegram.press_button(alice, answer.text, text="More")
            answer = await app.answer(alice)
            assert (await telegram.wait_callback_answer(query_id)) is not None
            seen.extend(answer.file_ids)
            pages += 1
            assert pages < 10
        assert pages >= 2
        assert len(seen) == len(set(seen))  # no item on two pages
        assert set(seen) <= {s.file_id for s in items.values()}
        # The pressed page lost its buttons: it cannot be paged twice.
        pressed = telegram.messages(alice.chat_id)
        summaries = [m for m in pressed if m.kind == "text" and m.history]
        assert summaries and all(not m.buttons() for m in summaries)


async def test_strict_and_loose_buttons(
    basic_app: BotApp, alice: FakeUser, telegram: FakeTelegramServer
) -> None:
    await basic_app.seed_shapes(alice)
    normal = await basic_app.ask(alice, "a blue square")
    basic_app.skip_sent(alice)
    telegram.press_button(alice, normal.text, text="Strict")
    strict = await basic_app.answer(alice)
    assert len(strict.media) <= len(normal.media)
    assert any(b["text"].startswith("✓") and "Strict" in b["text"] for b in strict.text.buttons())
    basic_app.skip_sent(alice)
    telegram.press_button(alice, strict.text, text="Loose")
    loose = await basic_app.answer(alice)
    assert len(loose.media) >= len(normal.media)
    assert any(b["text"].startswith("✓") and "Loose" in b["text"] for b in loose.text.buttons())
    assert loose.file_ids[0] == strict.file_ids[0] == normal.file_ids[0]
    # Pressing the active toggle goes back to normal.
    basic_app.skip_sent(alice)
    telegram.press_button(alice, loose.text, text="Loose")
    back = await basic_app.answer(alice)
    assert back.file_ids == normal.file_ids
    assert not any(b["text"].startswith("✓") for b in back.text.buttons())


async def test_stale_and_tampered_buttons_get_a_polite_answer(
    basic_app: BotApp, alice: FakeUser, telegram: FakeTelegramServer
) -> None:
    await basic_app.seed_shapes(alice, SHAPES[:4])
    answer = await basic_app.ask(alice, "a blue square")
    count = len(telegram.messages(alice.chat_id))
    for data in ("res:1:n:0", "res:abc:n:0", "res:5:x:0", "res:5:n:-1", "res:", "res:1:n:99999"):
        query_id = telegram.press_button(alice, answer.text, callback_data=data)
        reply = await telegram.wait_callback_answer(query_id)
        assert "expired" in (reply["text"] or "")
    # A button on a message the bot can no longer see still works while the session lives.
    data = answer.text.buttons()[-1]["callback_data"]
    basic_app.skip_sent(alice)
    query_id = telegram.press_stale(alice, alice.chat_id, answer.text.message_id, data)
    await telegram.wait_callback_answer(query_id)
    stale = await basic_app.answer(alice)
    assert stale.file_ids[0] == answer.file_ids[0]
    assert len(telegram.messages(alice.chat_id)) > count
    assert not telegram.unanswered_callbacks()


# --- odd inputs ------------------------------------------------------------------------------


async def test_no_match_suggests_rephrasing(app: BotApp, alice: FakeUser) -> None:
    await app.seed_shapes(alice, [("red", "circle"), ("red", "star")])
    answer = await app.ask(alice, "a blue square")
    assert not answer.media
    assert "Nothing matched" in (answer.text.text or "")
    assert "rephras" in (answer.text.text or "")


async def test_empty_collection_says_how_to_start(basic_app: BotApp, boris: FakeUser) -> None:
    answer = await basic_app.ask(boris, "синий квадрат")
    assert not answer.media
    assert "пусто" in (answer.text.text or "")


@pytest.mark.parametrize(
    "text",
    [
        "a blue square " * 715,  # 10,010 characters: the tokenizer truncates
        "🟦🟥🔵⭐️",
        "🤷",
        "-red -blue",
        "«»",
    ],
    ids=["10k-chars", "emoji", "one-emoji", "only-exclusions", "quotes"],
)
async def test_odd_texts_get_an_answer(basic_app: BotApp, alice: FakeUser, text: str) -> None:
    items = await basic_app.seed_shapes(alice, SHAPES[:4])
    answer = await basic_app.ask(alice, text)
    shown = answer.text.text or ""
    assert 0 < len(shown) <= 4096
    assert set(answer.file_ids) <= {s.file_id for s in items.values()}
    if text.startswith("-"):
        assert "leave out" in shown
    if len(text) > 1000:
        assert answer.file_ids  # truncated by the tokenizer, answered normally


async def test_unreadable_query_photo_is_explained(
    basic_app: BotApp, alice: FakeUser, telegram: FakeTelegramServer
) -> None:
    await basic_app.seed_shapes(alice, SHAPES[:2])
    before = await basic_app.count(alice)
    basic_app.skip_sent(alice)
    telegram.send_photo(alice, b"\xff\xd8\xff\xe0 not really a jpeg", width=90, height=90,
                        caption="?square")  # fmt: skip
    answer = await basic_app.answer(alice)
    assert not answer.media
    assert "Could not read this picture" in (answer.text.text or "")
    assert await basic_app.count(alice) == before


async def test_query_photo_download_is_retried_like_ingest(
    basic_app: BotApp, alice: FakeUser, telegram: FakeTelegramServer
) -> None:
    items = await basic_app.seed_shapes(alice, SHAPES[:2])
    first = await basic_app.ask(alice, "a circle")
    for status in (500, 502):
        basic_app.skip_sent(alice)
        fault = telegram.fail(DOWNLOAD, status)  # the file server hiccups once
        telegram.send_photo(alice, shape_jpeg("blue", "square", seed=77), reply_to=first.text)
        answer = await basic_app.answer(alice)
        assert fault.hits == 1 and answer.file_ids, answer.text.text
        assert set(answer.file_ids) <= {s.file_id for s in items.values()}


async def test_query_photo_that_cannot_be_downloaded_is_explained(
    basic_app: BotApp, alice: FakeUser, telegram: FakeTelegramServer
) -> None:
    await basic_app.seed_shapes(alice, SHAPES[:2])
    if basic_app.engine.ocr is not None:  # its reads of the seeds would hit the fault too
        await basic_app.engine.ocr.drain()
    before = await basic_app.count(alice)
    basic_app.skip_sent(alice)
    fault = telegram.fail(DOWNLOAD, 502, times=None)
    telegram.send_photo(alice, shape_jpeg("blue", "square", seed=78), caption="?square")
    answer = await basic_app.answer(alice)
    assert not answer.media
    assert answer.text.text == "Could not download the photo from Telegram. Please send it again."
    assert fault.hits == basic_app.settings.ingest.max_attempts
    assert await basic_app.count(alice) == before
    telegram.faults.remove(fault)


# --- two users -------------------------------------------------------------------------------


async def test_users_never_reach_each_others_items(
    basic_app: BotApp, alice: FakeUser, boris: FakeUser, telegram: FakeTelegramServer
) -> None:
    alices = await basic_app.seed_shapes(alice, SHAPES[:4])
    boriss = await basic_app.seed_shapes(boris, [("red", "star"), ("yellow", "circle")], seed=700)
    alice_ids = {s.file_id for s in alices.values()}

    # A text query: only Boris's own items, whatever matches better in Alice's collection.
    mine = await basic_app.ask(boris, "синий квадрат")
    assert not set(mine.file_ids) & alice_ids
    assert set(mine.file_ids) <= {s.file_id for s in boriss.values()}

    # /similar replying to a message of Alice's chat (forged reply): nothing of Alice's.
    alice_answer = await basic_app.ask(alice, "a blue square")
    basic_app.skip_sent(boris)
    telegram.send_command(boris, "similar", reply_to=alice_answer.media[0])
    similar = await basic_app.answer(boris)
    assert not set(similar.file_ids) & alice_ids
    basic_app.skip_sent(boris)
    telegram.send_command(boris, "delete", reply_to=alice_answer.media[0])
    await basic_app.answer(boris)
    assert await basic_app.count(alice) == len(alices)

    # Alice's buttons pressed by Boris (a forged callback with her session id).
    basic_app.skip_sent(boris)
    for button in alice_answer.text.buttons():
        query_id = telegram.press_button(boris, alice_answer.text, button["callback_data"])
        reply = await telegram.wait_callback_answer(query_id)
        assert "устарел" in (reply["text"] or "")
    boris_chat = telegram.messages(boris.chat_id)
    assert not {m.file_id for m in boris_chat} & alice_ids

    # Inline mode: Boris sees his own photos only.
    query_id = telegram.inline_query(boris, "blue square")
    inline = await telegram.wait_inline_answer(query_id)
    ids = {r.get("photo_file_id") for r in inline["results"]}
    assert not ids & alice_ids
    query_id = telegram.inline_query(boris, "")
    inline = await telegram.wait_inline_answer(query_id)
    assert {r.get("photo_file_id") for r in inline["results"]} == {
        s.file_id for s in boriss.values()
    }


# --- responsiveness --------------------------------------------------------------------------


async def test_query_is_answered_while_a_large_ingest_is_held(
    basic_app: BotApp, alice: FakeUser, telegram: FakeTelegramServer
) -> None:

    items = await basic_app.seed_shapes(alice, SHAPES[:4])
    owner_id = await basic_app.owner_id(alice)
    # Twenty more photos whose downloads Telegram holds back.
    stored = [
        basic_app.register_photo(shape_jpeg("green", "circle", seed=2000 + i)) for i in range(20)
    ]
    held_ids = {s.file_id for s in stored}
    gate = telegram.hold("getFile", when=lambda c: c.params.get("file_id") in held_ids)
    assert basic_app.engine.pipeline is not None
    tickets = [await basic_app.engine.pipeline.submit(photo_request(owner_id, s)) for s in stored]
    try:
        await gate.arrived()
        answer = await basic_app.ask(alice, "a blue square")
        assert answer.file_ids and set(answer.file_ids) <= {s.file_id for s in items.values()}
        assert not any(t.done() for t in tickets)  # the ingest is still running
    finally:
        gate.release()  # else closing the engine would wait for the held downloads forever
    outcomes = await asyncio.wait_for(asyncio.gather(*(t.result() for t in tickets)), 60)
    assert all(o.status == "saved" for o in outcomes)
    assert await basic_app.count(alice) == len(items) + 20
