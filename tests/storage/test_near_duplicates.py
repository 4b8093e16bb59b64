"""Near-duplicate pairs: recorded per owner, paged newest first, dismissed, and gone with
either of their items."""

from __future__ import annotations

from storage import Database, OwnerStore
from storage.near_duplicates import PairKey
from tests.storage.conftest import Clock, add_photo


async def three_photos(store: OwnerStore) -> list[int]:
    return [(await add_photo(store, f"p{i}", seed=i)).media_id for i in range(3)]


async def test_a_recorded_pair_is_listed_with_both_items(store: OwnerStore, clock: Clock) -> None:
    a, b, _ = await three_photos(store)
    assert await store.near_duplicates.record(b, a, 0.97)

    (pair,) = await store.near_duplicates.page(limit=5)
    assert (pair.original.id, pair.copy.id) == (a, b)
    assert pair.original.file_id == "file-p0" and pair.copy.file_id == "file-p1"
    assert abs(pair.score - 0.97) < 1e-9
    assert pair.created_at == int(clock.now)
    assert pair.key == PairKey(b, a)
    assert await store.near_duplicates.get(PairKey(b, a)) == pair
    assert await store.near_duplicates.count() == 1


async def test_recording_twice_or_an_item_with_itself_stores_nothing(store: OwnerStore) -> None:
    a, b, _ = await three_photos(store)
    assert await store.near_duplicates.record(b, a, 0.97)
    assert not await store.near_duplicates.record(b, a, 0.99)
    assert not await store.near_duplicates.record(a, a, 1.0)
    assert not await store.near_duplicates.record(b, 999_999, 0.99)  # no such item
    assert await store.near_duplicates.count() == 1


async def test_another_owner_can_neither_see_nor_record_nor_dismiss(
    db: Database, store: OwnerStore
) -> None:
    a, b, _ = await three_photos(store)
    await store.near_duplicates.record(b, a, 0.97)
    stranger = db.owner((await db.owners.ensure("user", 2002)).id)

    assert await stranger.near_duplicates.page(limit=5) == []
    assert await stranger.near_duplicates.get(PairKey(b, a)) is None
    assert not await stranger.near_duplicates.dismiss(PairKey(b, a))
    assert not await stranger.near_duplicates.record(b, a, 0.97)  # not the stranger's items
    assert await store.near_duplicates.count() == 1


async def test_pages_go_newest_first_and_continue_after_a_key(store: OwnerStore) -> None:
    a, b, c = await three_photos(store)
    await store.near_duplicates.record(b, a, 0.96)
    await store.near_duplicates.record(c, a, 0.98)
    await store.near_duplicates.record(c, b, 0.95)

    first = await store.near_duplicates.page(limit=2)
    assert [p.key for p in first] == [PairKey(c, b), PairKey(c, a)]
    rest = await store.near_duplicates.page(limit=2, after=first[-1].key)
    assert [p.key for p in rest] == [PairKey(b, a)]
    assert await store.near_duplicates.page(limit=2, after=rest[-1].key) == []


async def test_a_dismissed_pair_is_not_listed_again(store: OwnerStore) -> None:
    a, b, _ = await three_photos(store)
    await store.near_duplicates.record(b, a, 0.97)

    assert await store.near_duplicates.dismiss(PairKey(b, a))
    assert not await store.near_duplicates.dismiss(PairKey(b, a))
    assert await store.near_duplicates.page(limit=5) == []
    assert await store.near_duplicates.get(PairKey(b, a)) is None
    assert await store.near_duplicates.count() == 0
    assert not await store.near_duplicates.record(b, a, 0.97)  # the decision stays


async def test_a_pair_goes_with_either_item(store: OwnerStore) -> None:
    a, b, c = await three_photos(store)
    await store.near_duplicates.record(b, a, 0.97)
    await store.near_duplicates.record(c, b, 0.97)

    await store.media.delete(b)  # the copy of one pair, the original of the other
    assert await store.near_duplicates.page(limit=5) == []

    await store.near_duplicates.record(c, a, 0.97)
    await store.media.delete_all()
    assert await store.near_duplicates.count() == 0
