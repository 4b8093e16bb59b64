"""Inline mode end to end: "@bot query" returns the user's own media, personal and paged."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.handlers import inline
from tests.e2e.botapp import BotApp, running_search_bot
from tests.e2e.fake_telegram import FakeTelegramServer, FakeUser
from tests.e2e.search_support import SHAPES, scenes_mp4

WIDE = {"search_margin_normal": 1.0, "search_margin_loose": 1.5}  # every item above the floor


@pytest.fixture
async def app(telegram: FakeTelegramServer, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The bot with the trained fixture models: for tests that judge what comes first."""
    async with running_search_bot(telegram, tmp_path / "data", **WIDE) as running:
        yield running


@pytest.fixture
async def basic_app(telegram: FakeTelegramServer, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The bot with any model: for tests about paging and isolation, not the ranking."""
    async with running_search_bot(telegram, tmp_path / "data", quality=False, **WIDE) as running:
        yield running


async def ask_inline(
    telegram: FakeTelegramServer, user: FakeUser, query: str, offset: str = ""
) -> dict:
    query_id = telegram.inline_query(user, query, offset)
    return await telegram.wait_inline_answer(query_id)


def photo_ids(answer: dict) -> list[str]:
    return [r["photo_file_id"] for r in answer["results"] if r["type"] == "photo"]


async def test_text_query_returns_own_photos_best_first(
    app: BotApp, alice: FakeUser, telegram: FakeTelegramServer
) -> None:
    items = await app.seed_shapes(alice)
    answer = await ask_inline(telegram, alice, "a blue square")
    assert photo_ids(answer)[0] == items[("blue", "square")].file_id
    assert set(photo_ids(answer)) <= {s.file_id for s in items.values()}
    assert answer["is_personal"] is True
    assert answer["cache_time"] is not None and answer["cache_time"] <= 30
    assert all(r["type"] == "photo" and "photo_file_id" in r for r in answer["results"])


async def test_pages_follow_next_offset_without_duplicates(
    basic_app: BotApp,
    alice: FakeUser,
    telegram: FakeTelegramServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(inline, "INLINE_PAGE", 3)
    items = await basic_app.seed_shapes(alice)
    for query in ("a square", ""):
        seen: list[str] = []
        offset = ""
        pages = 0
        while True:
            answer = await ask_inline(telegram, alice, query, offset)
            seen.extend(photo_ids(answer))
            pages += 1
            offset = answer["next_offset"] or ""
            if not offset:
                break
            assert len(offset.encode()) <= 64
            assert pages < 10
        assert pages >= 2, query
        assert len(seen) == len(set(seen)), query
        assert set(seen) <= {s.file_id for s in items.values()}
        if not query:  # the newest items: everything, newest first
            assert seen == [s.file_id for s in reversed(items.values())]


async def test_empty_and_unknown_users_and_tampered_offsets(
    basic_app: BotApp, alice: FakeUser, boris: FakeUser, telegram: FakeTelegramServer
) -> None:
    await basic_app.seed_shapes(alice, SHAPES[:3])
    # Boris has nothing: no results, a button that opens the bot instead.
    answer = await ask_inline(telegram, boris, "")
    assert answer["results"] == [] and answer["is_personal"] is True
    assert answer["button"] and answer["button"]["start_parameter"]
    for offset in ("zzz", "s-1", "r", "s999999999"):
        answer = await ask_inline(telegram, alice, "a square", offset)
        assert answer["results"] == [] and not answer["next_offset"]
    # Only exclusions: nothing to look for, an empty answer rather than an error.
    answer = await ask_inline(telegram, alice, "-red")
    assert answer["results"] == []


async def test_inline_in_a_group_uses_the_users_own_collection(
    basic_app: BotApp, alice: FakeUser, telegram: FakeTelegramServer
) -> None:
    items = await basic_app.seed_shapes(alice, SHAPES[:3])
    query_id = telegram.inline_query(alice, "", chat_type="supergroup")
    answer = await telegram.wait_inline_answer(query_id)
    assert set(photo_ids(answer)) == {s.file_id for s in items.values()}


async def test_videos_and_gifs_are_offered_as_cached_results(
    basic_app: BotApp, alice: FakeUser, telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    from core.ingest.pipeline import IngestRequest
    from tests.fixtures.tooling.shapes import render_shape_photo

    size = (160, 120)
    clip = scenes_mp4(
        tmp_path / "clip.mp4", [(2.0, render_shape_photo("red", "star", seed=1, size=size))]
    )
    video = await basic_app.seed_video(alice, clip, duration=2, width=size[0], height=size[1])
    stored = telegram._register_file(
        "animation", clip, duration=2, width=size[0], height=size[1], mime_type="video/mp4"
    )
    outcome = await basic_app.submit(
        IngestRequest.of(
            await basic_app.owner_id(alice),
            "animation",
            stored.file_unique_id,
            file_id=stored.file_id,
            duration=2.0,
            mime="video/mp4",
        )
    )
    assert outcome.status == "saved"
    answer = await ask_inline(telegram, alice, "")
    by_type = {r["type"]: r for r in answer["results"]}
    assert by_type["video"]["video_file_id"] == video.file_id and by_type["video"]["title"]
    assert by_type["mpeg4_gif"]["mpeg4_file_id"] == stored.file_id
