"""How hits become send calls, and the buttons under a result page."""

from __future__ import annotations

import itertools

import pytest

from bot.results import format_moment, plan_parcels, split_evenly, start_second, video_caption
from bot.sessions import MAX_OFFSET, PhotoCache, ResultsPage, page_data, results_keyboard
from core.search.results import Hit, SearchResult
from storage.records import Media

_ids = itertools.count(1)


def hit(kind: str = "photo", *, ts: float | None = None, duration: float | None = None) -> Hit:
    media_id = next(_ids)
    media = Media(
        id=media_id,
        owner_id=1,
        kind=kind,  # type: ignore[arg-type]
        status="ready",
        file_unique_id=f"u{media_id}",
        file_id=f"f{media_id}",
        size=None,
        width=None,
        height=None,
        duration=duration,
        caption=None,
        forward_origin=None,
        message_id=None,
        message_date=None,
        album_id=None,
        thumbnail_file_id=None,
        created_at=0,
        path=None,
    )
    return Hit(media, 0.5, media_id * 10, ts)


@pytest.mark.parametrize(
    ("n", "sizes"),
    [(0, []), (1, [1]), (2, [2]), (10, [10]), (11, [6, 5]), (13, [7, 6]), (21, [7, 7, 7])],
)
def test_albums_split_evenly(n: int, sizes: list[int]) -> None:
    hits = [hit() for _ in range(n)]
    chunks = split_evenly(hits)
    assert [len(c) for c in chunks] == sizes
    assert [h for c in chunks for h in c] == hits


def test_parcels_keep_kinds_apart_and_the_best_first() -> None:
    doc = hit("document")
    photo1, video, photo2 = hit("photo"), hit("video", ts=3.2, duration=6), hit("photo")
    gif, note, doc2 = hit("animation"), hit("video_note"), hit("document")
    parcels = plan_parcels([doc, photo1, video, gif, photo2, note, doc2])
    assert parcels == [[doc, doc2], [photo1, video, photo2], [gif], [note]]


def test_items_without_a_file_id_are_left_out() -> None:
    local = hit("photo")
    object.__setattr__(local.media, "file_id", None)
    other = hit("photo")
    assert plan_parcels([local, other]) == [[other]]


@pytest.mark.parametrize(
    ("ts", "duration", "expected"),
    [(3.4, 6.0, 3), (3.6, 6.0, 4), (0.2, 6.0, None), (9.7, 9.5, 9), (None, 6.0, None)],
)
def test_start_second_is_whole_seconds_within_the_video(
    ts: float | None, duration: float, expected: int | None
) -> None:
    second = start_second(hit("video", ts=ts, duration=duration))
    assert second == expected
    assert second is None or isinstance(second, int)


def test_photos_have_no_start_and_videos_say_where_they_start() -> None:
    assert start_second(hit("photo", ts=3.0)) is None
    assert video_caption(hit("video", ts=75.0, duration=100)) == "▶ 1:15"
    assert format_moment(3725) == "1:02:05"


def result(**kw: object) -> SearchResult:
    values: dict[str, object] = {"hits": [], "model_id": "m@1", "elapsed_ms": 1.0, "limit": 5}
    values.update(kw)
    return SearchResult(**values)  # type: ignore[arg-type]


def test_keyboard_pages_and_toggles() -> None:
    sid = 2**53 - 1
    kb = results_keyboard(sid, result(has_more=True, offset=5, strictness="strict"), "en")
    buttons = [b for row in kb.inline_keyboard for b in row]
    data = {b.text: b.callback_data for b in buttons}
    assert data["More ▸"] == f"res:{sid}:s:10"
    assert data["✓ Strict"] == f"res:{sid}:n:0"  # the active toggle goes back to normal
    assert data["Loose"] == f"res:{sid}:l:0"
    assert all(len(d.encode()) <= 64 for d in data.values() if d)
    ru = results_keyboard(sid, result(), "ru")
    assert [b.text for row in ru.inline_keyboard for b in row] == ["Строже", "Шире"]


@pytest.mark.parametrize(
    ("data", "valid"),
    [
        ("res:12:n:0", True),
        ("res:12:x:0", False),
        (f"res:12:n:{MAX_OFFSET + 1}", False),
        ("res:0:n:0", False),
        ("res:-3:l:5", False),
    ],
)
def test_page_data_validity(data: str, valid: bool) -> None:
    assert ResultsPage.unpack(data).valid is valid


def test_page_data_round_trip() -> None:
    packed = page_data(77, "loose", 20)
    page = ResultsPage.unpack(packed)
    assert (page.sid, page.strictness, page.offset) == (77, "loose", 20)


def test_photo_cache_is_bounded_and_expires() -> None:
    now = [0.0]
    cache = PhotoCache(max_items=2, ttl_s=10, clock=lambda: now[0])
    cache.put(1, b"a")
    cache.put(2, b"b")
    assert cache.get(1) == b"a"  # 1 is now the most recent
    cache.put(3, b"c")
    assert cache.get(2) is None and cache.get(1) == b"a" and len(cache) == 2
    now[0] = 11.0
    assert cache.get(3) is None
