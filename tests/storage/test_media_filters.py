"""The filter side of search in storage: which items a date range, kinds and sources allow, in
date order, scoped by owner."""

from __future__ import annotations

import calendar
from datetime import date

import pytest

from storage import Database, NewMedia, NewUnit, OwnerStore
from storage.media_filters import MediaFilter
from tests.storage.conftest import CLIP, Clock, vecs


def ts(y: int, m: int = 1, d: int = 1) -> int:
    return calendar.timegm(date(y, m, d).timetuple())


async def add(store: OwnerStore, uid: str, kind: str = "photo", **kw: object) -> int:
    units = [NewUnit.frame(0.0), NewUnit.frame(1.0)] if kind == "video" else [NewUnit.image()]
    media = NewMedia(kind, uid, file_id=f"f-{uid}", **kw)  # type: ignore[arg-type]
    result = await store.media.commit(media, units, {CLIP: vecs(len(units))})
    return result.media_id


@pytest.fixture
async def items(store: OwnerStore, clock: Clock) -> dict[str, int]:
    clock.now = ts(2025, 5, 1)  # created_at of everything below
    return {
        "taken": await add(store, "taken", taken_at=ts(2023, 6, 1), message_date=ts(2024, 2, 1)),
        "posted": await add(store, "posted", message_date=ts(2024, 3, 15)),
        "stored": await add(store, "stored"),
        "video": await add(store, "video", "video", message_date=ts(2024, 3, 20)),
        "trips": await add(
            store, "trips", message_date=ts(2024, 7, 1), forward_origin="Trips & Co (@trips)"
        ),
        "title": await add(store, "title", message_date=ts(2022, 1, 1), forward_origin="Cats"),
    }


async def test_the_date_is_taken_else_posted_else_stored(
    store: OwnerStore, items: dict[str, int]
) -> None:
    dates = await store.filters.dates(items.values())
    assert dates[items["taken"]] == ts(2023, 6, 1)  # taken_at wins over the message date
    assert dates[items["posted"]] == ts(2024, 3, 15)
    assert dates[items["stored"]] == ts(2025, 5, 1)


async def test_a_date_range_is_half_open(store: OwnerStore, items: dict[str, int]) -> None:
    in_2024 = MediaFilter(ts(2024), ts(2025))
    assert set(await store.filters.media_ids(in_2024)) == {
        items["posted"],
        items["video"],
        items["trips"],
    }
    march = MediaFilter(ts(2024, 3), ts(2024, 3, 20))  # the video's day is the end: excluded
    assert await store.filters.media_ids(march) == [items["posted"]]
    assert await store.filters.media_ids(MediaFilter(date_from=ts(2025))) == [items["stored"]]
    before = MediaFilter(date_to=ts(2023, 6, 1))
    assert await store.filters.media_ids(before) == [items["title"]]
    assert await store.filters.count(in_2024) == 3


async def test_kinds_and_sources(store: OwnerStore, items: dict[str, int]) -> None:
    assert await store.filters.media_ids(MediaFilter(kinds=("video",))) == [items["video"]]
    both = MediaFilter(kinds=("video", "animation"))
    assert await store.filters.media_ids(both) == [items["video"]]
    assert await store.filters.media_ids(MediaFilter(sources=("trips",))) == [items["trips"]]
    assert await store.filters.media_ids(MediaFilter(sources=("@TRIPS",))) == [items["trips"]]
    by_title = MediaFilter(sources=("cats",))
    assert await store.filters.media_ids(by_title) == [items["title"]]
    by_title_with_user = MediaFilter(sources=("trips & co",))
    assert await store.filters.media_ids(by_title_with_user) == [items["trips"]]
    assert await store.filters.media_ids(MediaFilter(sources=("trip",))) == []  # no prefix
    either = MediaFilter(sources=("trips", "cats"))
    assert set(await store.filters.media_ids(either)) == {items["trips"], items["title"]}
    with pytest.raises(ValueError):
        MediaFilter(kinds=("movie",))


async def test_date_order_with_ties_by_id_and_paging(
    store: OwnerStore, items: dict[str, int]
) -> None:
    tie = await add(store, "tie", message_date=ts(2024, 3, 15))  # same date as "posted"
    newest = await store.filters.media_ids(order="newest")
    assert newest == [
        items["stored"],
        items["trips"],
        items["video"],
        tie,
        items["posted"],
        items["taken"],
        items["title"],
    ]
    assert await store.filters.media_ids(order="oldest") == newest[::-1]
    assert await store.filters.media_ids(order="newest", limit=2, offset=2) == newest[2:4]
    assert await store.filters.media_ids(order="newest", offset=5) == newest[5:]


async def test_units_of_items(store: OwnerStore, items: dict[str, int]) -> None:
    units = await store.filters.units_of([items["video"], items["posted"]])
    assert [u.media_id for u in units] == sorted([items["posted"], items["video"], items["video"]])
    assert [u.timestamp for u in units if u.media_id == items["video"]] == [0.0, 1.0]


async def test_another_owners_items_never_pass(
    db: Database, store: OwnerStore, items: dict[str, int]
) -> None:
    other = db.owner((await db.owners.ensure("user", 2002)).id)
    theirs = await add(other, "theirs", message_date=ts(2024, 3, 15), forward_origin="(@trips)")
    assert theirs not in await store.filters.media_ids()
    assert await other.filters.media_ids(MediaFilter(ts(2024), ts(2025))) == [theirs]
    assert await store.filters.dates([theirs]) == {}
    assert await store.filters.units_of([theirs]) == []
    assert await other.filters.count() == 1


async def test_a_cyrillic_source_title_matches_without_case(store: OwnerStore) -> None:
    shop = await add(store, "shop", forward_origin="Магазин Ёлка")
    await add(store, "other", forward_origin="Другой канал")
    assert await store.filters.media_ids(MediaFilter(sources=("магазин ёлка",))) == [shop]
    assert await store.filters.media_ids(MediaFilter(sources=("МАГАЗИН ЁЛКА",))) == [shop]
