"""Hybrid search: the text index fused with the pictures, quoted phrases, filters, date order,
listings of filters alone, stable pages, honest "nothing matched", and owners kept apart.

Unit tests use the fake embedders of ``test_search`` (vectors built from named axes, so every
cosine is known) over a real database (SQLite and PostgreSQL), text index and FAISS indexes;
the last tests use the trained fixture models.
"""

from __future__ import annotations

import calendar
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.errors import EmptyQueryError, OnlyExclusionsError
from core.index.manager import IndexManager
from core.models.embedder import AsyncEmbedder
from core.models.routing import TextRouter
from core.search.query import Query
from core.search.results import SearchResult
from core.search.service import SearchService
from storage import Database, NewMedia, NewUnit
from tests.conftest import DatabaseTarget
from tests.core.test_search import (
    EN,
    FIXTURES,
    RU,
    TEXTS,
    FakeEmbedder,
    axis,
    fake_config,
    make_settings,
    mix,
    scored,
)
from tests.fixtures.tooling.shapes import PHOTO_SET

HYBRID_TEXTS = {
    **TEXTS,
    "invoice": axis("x2"),
    "invoice march": axis("x2"),
    "invoice march payment": axis("x2"),
    "cat blanket": axis("cat"),
    "receipt": axis("x2"),
    "cat sofa": mix("cat", "sofa"),
    "кот на диване": mix("cat", "sofa"),
    "cat food": axis("cat"),
    "blanket": axis("x2"),
    "a blanket": axis("x2"),
    "drawing": axis("x2"),
}


def ts(y: int, m: int = 1, d: int = 1) -> int:
    return calendar.timegm(date(y, m, d).timetuple())


@dataclass
class Hybrid:
    db: Database
    index: IndexManager
    service: SearchService
    en: FakeEmbedder
    owner: int
    other: int

    async def add(
        self,
        uid: str,
        vector: np.ndarray | list[np.ndarray],
        *,
        kind: str = "photo",
        owner: int | None = None,
        ocr: str | None = None,
        **facts: Any,
    ) -> int:
        """Commit an item (a video when ``vector`` is a list of frame vectors) the way ingest
        does, with optional recognised text; returns its media id."""
        owner = self.owner if owner is None else owner
        arr = np.atleast_2d(np.asarray(vector, dtype=np.float32))
        units = [NewUnit.frame(float(t)) for t in range(len(arr))] if kind != "photo" else None
        media = NewMedia(kind, uid, file_id=f"f-{uid}", **facts)  # type: ignore[arg-type]
        store = self.db.owner(owner)
        result = await store.media.commit(media, units or [NewUnit.image()], {EN: arr, RU: arr})
        for m in (EN, RU):
            await self.index.add(owner, m, np.array(result.unit_ids), arr, result.versions[m])
        if ocr is not None:
            assert await store.texts.put(result.media_id, "ocr", ocr)
        return result.media_id

    async def search(self, text: str, **kw: Any) -> SearchResult:
        query = Query.from_text(text, today=date(2025, 6, 1), **kw)
        return await self.service.search(self.owner, query)


async def make_hybrid(
    tmp_path: Path, database: str | Path, **settings: object
) -> AsyncIterator[Hybrid]:
    """A search service over ``database`` (a file or a PostgreSQL URL), indexes in tmp_path."""
    db = await Database.open(database)
    index = IndexManager(db.vectors, tmp_path / "indexes")
    en_cfg, ru_cfg = fake_config("en-fake", ("en",)), fake_config("ru-fake", ("ru",))
    en = FakeEmbedder(en_cfg, HYBRID_TEXTS, {})
    ru = FakeEmbedder(ru_cfg, HYBRID_TEXTS, {})
    embedder = AsyncEmbedder([en, ru])
    configs = {EN: en_cfg, RU: ru_cfg}
    search_settings = make_settings(**settings).search
    service = SearchService(
        db, embedder, index, TextRouter(configs.values()), configs, search_settings
    )
    owner = (await db.owners.ensure("user", 1)).id
    other = (await db.owners.ensure("user", 2)).id
    try:
        yield Hybrid(db, index, service, en, owner, other)
    finally:
        embedder.close()
        await db.close()


@pytest.fixture
async def env(tmp_path: Path, database_target: DatabaseTarget) -> AsyncIterator[Hybrid]:
    async for e in make_hybrid(tmp_path, database_target("hybrid.db")):
        yield e


def uids(result: SearchResult) -> list[str]:
    return [h.media.file_unique_id for h in result.hits]


def texts_asked(env: Hybrid) -> list[str]:
    return [t for kind, args in env.en.calls if kind == "text" for t in args]  # type: ignore[misc]


# --- text and pictures together -----------------------------------------------------------------


async def test_an_item_only_its_text_describes_is_found_by_the_text(env: Hybrid) -> None:
    await env.add("cat", axis("cat"))
    await env.add("receipt", axis("sea"), ocr="Payment received.\nInvoice for March, total 12")
    result = await env.search("invoice")
    assert uids(result) == ["receipt"]
    (hit,) = result.hits
    assert hit.matched == "text" and hit.snippet is not None and hit.snippet.source == "ocr"
    start, end = hit.snippet.spans[0]
    assert hit.snippet.text[start:end] == "Invoice"
    assert hit.score == pytest.approx(0.0, abs=1e-3)  # its picture is unlike the query


async def test_the_pictures_lead_and_a_text_match_joins_them(env: Hybrid) -> None:
    await env.add("c90", scored(0.9))
    await env.add("c85", scored(0.85))
    await env.add("captioned", axis("x3"), caption="my cat")
    both = await env.add("both", scored(0.88), caption="cat on the sofa")
    result = await env.search("cat")
    # both sides first; a text holding every word next, ahead of what only the pictures suggest
    assert uids(result) == ["both", "captioned", "c90", "c85"]
    matched = {h.media.file_unique_id: h.matched for h in result.hits}
    assert matched == {"both": "both", "c90": "picture", "captioned": "text", "c85": "picture"}
    assert result.hits[0].media.id == both and result.hits[0].snippet is not None
    assert result.hits[2].snippet is None
    assert result.total == 4 and result.total_exact


async def test_words_the_text_does_not_hold_leave_the_picture_ranking_alone(env: Hybrid) -> None:
    await env.add("sofa-cat", mix("cat", "sofa"))
    await env.add("cat", mix(cat=1.0, sofa=0.5))
    await env.add("note", axis("x3"), ocr="мой пёс спит на полу")
    result = await env.search("кот на диване")
    assert uids(result) == ["sofa-cat", "cat"]
    assert all(h.matched == "picture" for h in result.hits)


async def test_a_text_holding_half_the_words_follows_the_best_picture(env: Hybrid) -> None:
    await env.add("sofa-cat", mix("cat", "sofa"))
    await env.add("cat", mix(cat=1.0, sofa=0.5))
    await env.add("note", axis("x3"), ocr="мой кот спит")  # "кот" but not "диване"
    result = await env.search("кот на диване")
    assert uids(result)[0] == "sofa-cat" and result.hits[0].matched == "picture"
    assert [u for u in uids(result) if u != "note"] == ["sofa-cat", "cat"]
    note = next(h for h in result.hits if h.media.file_unique_id == "note")
    assert note.matched == "text" and note.snippet is not None
    assert [note.snippet.text[a:b] for a, b in note.snippet.spans] == ["кот"]


async def test_a_text_holding_every_word_beats_what_only_the_pictures_suggest(
    env: Hybrid,
) -> None:
    for i in range(4):
        await env.add(f"v{i}", scored(0.95 - 0.01 * i, toward="x2"))  # "invoice" by picture
    await env.add("receipt", axis("sea"), ocr="Invoice for March, total 12")
    await env.add("half", axis("sea"), ocr="March came")
    result = await env.search("invoice march", strictness="loose")
    assert uids(result)[:2] == ["receipt", "v0"]
    assert result.hits[0].matched == "text"
    assert uids(result).index("half") > 1  # holds half the words: interleaves, not ahead


async def test_a_word_misread_in_the_picture_still_finds_it(
    tmp_path: Path, database_target: DatabaseTarget
) -> None:
    found = {}
    for share in (0.5, 1.0):
        async for env in make_hybrid(
            tmp_path / str(share), database_target(f"{share}.db"), search_text_min_share=share
        ):
            for i in range(8):  # many items the pictures suggest, none with text
                await env.add(f"v{i}", scored(0.95 - 0.005 * i, toward="x2"))
            await env.add("misread", axis("sea"), ocr="Invoice for Merch 2024")
            await env.add("two-of-three", axis("sea"), ocr="lnvoice: March payment")
            page = await env.search("invoice march", limit=5, strictness="loose")
            found[share] = uids(page)
            three = await env.search("invoice march payment", limit=5, strictness="loose")
            if share == 0.5:
                assert uids(three)[0] == "two-of-three"  # most of the words: it leads
                assert page.hits[uids(page).index("misread")].matched == "text"
            quoted = await env.search('"invoice march"')
            assert quoted.hits == [] and quoted.reason == "no_match"  # phrases stay strict
    assert "misread" in found[0.5] and "two-of-three" in found[0.5]
    assert "misread" not in found[1.0] and "two-of-three" not in found[1.0]


async def test_the_floor_still_guards_what_only_the_pictures_suggest(env: Hybrid) -> None:
    await env.add("weak", scored(0.25))  # below the floor: not relevant by its picture
    await env.add("receipt", axis("sea"), ocr="invoice 42")
    result = await env.search("cat")
    assert result.hits == [] and result.reason == "no_match"
    assert result.best_score == pytest.approx(0.25, abs=2e-3)
    text = await env.search("invoice")
    assert uids(text) == ["receipt"] and text.reason is None


async def test_a_quoted_query_searches_only_the_text(env: Hybrid) -> None:
    await env.add("cat-picture", axis("cat"))
    await env.add("exact", axis("sea"), ocr="the cat food is here")
    await env.add("apart", axis("sea"), ocr="food for the cat")
    result = await env.search('"cat food"')
    assert uids(result) == ["exact"]
    assert result.hits[0].matched == "text" and result.model_id == EN
    assert '"cat food"' not in texts_asked(env) and "cat food" not in texts_asked(env)
    marks = [result.hits[0].snippet.text[s:e] for s, e in result.hits[0].snippet.spans]  # type: ignore[union-attr]
    assert marks == ["cat", "food"]
    nothing = await env.search('"dog food"')
    assert nothing.hits == [] and nothing.reason == "no_match"


async def test_a_phrase_with_words_restricts_what_the_words_find(env: Hybrid) -> None:
    await env.add("cat", axis("cat"))
    await env.add("cat-with-text", scored(0.8), caption="Trip to Rome")
    result = await env.search('cat "trip to rome"')
    assert uids(result) == ["cat-with-text"]


async def test_exclusions_also_drop_items_whose_text_holds_the_word(env: Hybrid) -> None:
    await env.add("c90", scored(0.9))
    await env.add("c88", scored(0.88), caption="cat under a blanket")
    await env.add("captioned", axis("x3"), caption="cat with a blanket")
    result = await env.search("cat -blanket", strictness="loose")
    assert uids(result) == ["c90"]
    phrase = await env.search('cat -"a blanket"', strictness="loose")
    assert uids(phrase) == ["c90"]
    with pytest.raises(OnlyExclusionsError):
        await env.search("-blanket")
    with pytest.raises(EmptyQueryError):
        await env.search("  ")


# --- filters ------------------------------------------------------------------------------------


async def add_dated(env: Hybrid) -> dict[str, int]:
    return {
        "cat-2023": await env.add("cat-2023", scored(0.9), message_date=ts(2023, 5, 1)),
        "cat-2024-03": await env.add("cat-2024-03", scored(0.89), message_date=ts(2024, 3, 10)),
        "cat-2024-taken": await env.add(
            "cat-2024-taken", scored(0.88), taken_at=ts(2024, 8, 1), message_date=ts(2025, 1, 1)
        ),
        "cat-video-2024": await env.add(
            "cat-video-2024",
            [scored(0.86), scored(0.5)],
            kind="video",
            message_date=ts(2024, 11, 1),
            duration=2.0,
        ),
        "trips-cat": await env.add(
            "trips-cat", scored(0.87), message_date=ts(2022, 1, 1), forward_origin="Trips (@trips)"
        ),
        "dog-2024": await env.add("dog-2024", axis("dog"), message_date=ts(2024, 6, 1)),
        "text-2024": await env.add(
            "text-2024", axis("x3"), message_date=ts(2024, 9, 1), caption="cat drawing"
        ),
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cat 2024", ["cat-2024-03", "cat-2024-taken", "cat-video-2024", "text-2024"]),
        ("cat in 2023", ["cat-2023"]),
        ("cat march 2024", ["cat-2024-03"]),
        ("cat в августе 2024", ["cat-2024-taken"]),  # the capture date, not the post's
        ("cat after:2024-06-01", ["cat-2024-taken", "cat-video-2024", "text-2024"]),
        ("cat before:2023", ["trips-cat"]),
        ("cat video", ["cat-video-2024"]),
        ("cat видео 2023", []),
        ("cat from:@trips", ["trips-cat"]),
        ("cat от:@TRIPS 2022", ["trips-cat"]),
    ],
)
async def test_filters_narrow_both_rankings(
    tmp_path: Path, database_target: DatabaseTarget, text: str, expected: list[str]
) -> None:
    for direct_max in (0, 1000):  # walking the index, and scoring the allowed items directly
        async for env in make_hybrid(
            tmp_path / str(direct_max),
            database_target(f"{direct_max}.db"),
            search_direct_max=direct_max,
        ):
            await add_dated(env)
            result = await env.search(text, strictness="loose")
            assert sorted(uids(result)) == sorted(expected), (direct_max, uids(result))
            assert result.filters is not None
            if not expected:
                assert result.reason == "no_match"


async def test_direct_scoring_ranks_like_the_index(
    tmp_path: Path, database_target: DatabaseTarget
) -> None:
    ranked = []
    for direct_max in (0, 1000):
        async for env in make_hybrid(
            tmp_path / str(direct_max),
            database_target(f"{direct_max}.db"),
            search_direct_max=direct_max,
        ):
            await add_dated(env)
            result = await env.search("cat 2024", strictness="loose")
            ranked.append(
                [(h.media.file_unique_id, h.unit_id, round(h.score, 3)) for h in result.hits]
            )
    assert ranked[0] == ranked[1]


async def test_sort_orders_the_relevant_items_by_date(env: Hybrid) -> None:
    await add_dated(env)
    newest = await env.search("cat сначала новые", strictness="loose")
    assert uids(newest) == [
        "cat-video-2024",
        "text-2024",
        "cat-2024-taken",
        "cat-2024-03",
        "cat-2023",
        "trips-cat",
    ]
    oldest = await env.search("cat oldest", strictness="loose")
    assert uids(oldest) == uids(newest)[::-1]
    assert oldest.filters is not None and oldest.filters.sort == "oldest"


async def test_filters_alone_list_the_items_by_date(env: Hybrid) -> None:
    await add_dated(env)
    videos = await env.search("видео 2024 сначала новые")
    assert uids(videos) == ["cat-video-2024"] and videos.hits[0].timestamp == 0.0
    year = await env.search("2024")
    by_date = ["cat-video-2024", "text-2024", "cat-2024-taken", "dog-2024", "cat-2024-03"]
    assert uids(year) == by_date
    assert year.total == 5 and year.total_exact and year.model_id == EN
    oldest = await env.search("2024 oldest first")
    assert uids(oldest) == uids(year)[::-1]
    without = await env.search("2024 -dog -drawing")  # by picture, and by text
    assert uids(without) == ["cat-video-2024", "cat-2024-taken", "cat-2024-03"]
    assert not any(h.matched != "picture" or h.snippet for h in year.hits)
    nothing = await env.search("документ")
    assert nothing.hits == [] and nothing.reason == "no_match"
    impossible = await env.search("after:2024 before:2023")
    assert impossible.hits == [] and impossible.reason == "no_match"


async def test_a_filter_on_an_empty_collection_is_empty(env: Hybrid) -> None:
    result = await env.search("видео 2024")
    assert result.hits == [] and result.reason == "empty"
    text = await env.search('"cat"')
    assert text.reason == "empty"


# --- pages --------------------------------------------------------------------------------------


async def page_through(env: Hybrid, text: str, limit: int, **kw: Any) -> list[str]:
    seen: list[str] = []
    offset = 0
    while True:
        page = await env.search(text, offset=offset, limit=limit, **kw)
        assert len(page.hits) == limit or not page.has_more
        seen += uids(page)
        if page.next_offset is None:
            return seen
        offset = page.next_offset


@pytest.mark.parametrize(
    "text",
    ["cat", "cat blanket", "cat newest", "cat 2024", "cat -blanket", "2024", "2024 -dog", '"cat"'],
)
async def test_pages_have_no_duplicates_or_gaps(
    tmp_path: Path, database_target: DatabaseTarget, text: str
) -> None:
    settings = {"search_margin_loose": 1.5, "search_text_limit": 12, "search_fusion_depth": 12}
    async for env in make_hybrid(tmp_path, database_target("pages.db"), **settings):
        rng = np.random.default_rng(3)
        for i in range(60):
            year = 2023 + i % 3
            kw: dict[str, Any] = {"message_date": ts(year, 1 + i % 12, 1 + i % 28)}
            if i % 3 == 0:
                kw["caption"] = "a cat" if i % 2 else "cat with a blanket"
            if i % 7 == 0:
                kw["message_date"] = ts(2024, 5, 5)  # ties in date
            vec = scored(float(rng.uniform(0.35, 0.95))) if i % 5 else axis("x3")
            await env.add(f"i{i:02d}", vec if i % 11 else scored(0.6), **kw)
        full = await env.search(text, strictness="loose", limit=50)
        rest = await env.search(text, strictness="loose", offset=50, limit=50)
        everything = uids(full) + uids(rest)
        assert len(everything) == len(set(everything)) and everything
        for limit in (7, 10):
            assert await page_through(env, text, limit, strictness="loose") == everything


# --- owners -------------------------------------------------------------------------------------


async def test_another_owners_text_and_items_are_never_found(env: Hybrid) -> None:
    await env.add(
        "theirs", axis("cat"), owner=env.other, caption="invoice cat", message_date=ts(2024)
    )
    await env.add("theirs-video", [axis("cat")], kind="video", owner=env.other)
    await env.add("mine", axis("sea"), message_date=ts(2024, 2))
    assert (await env.search("invoice")).reason == "no_match"
    assert (await env.search('"invoice cat"')).reason == "no_match"
    assert uids(await env.search("2024")) == ["mine"]
    assert (await env.search("video")).reason == "no_match"
    theirs = await env.service.search(env.other, Query.from_text("invoice"))
    assert uids(theirs) == ["theirs"]


# --- the fixture models -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture_embedders() -> list[Any]:
    bundles = ("clip-fixture", "ruclip-fixture")
    if not all((FIXTURES / b / "config.json").is_file() for b in bundles):
        pytest.skip(f"fixture bundles not found in {FIXTURES}")
    from core.models.bundle import load_bundle
    from core.models.embedder import OnnxEmbedder

    return [OnnxEmbedder(load_bundle(FIXTURES / name), threads=1) for name in bundles]


@dataclass
class Shapes:
    service: SearchService
    db: Database
    owner: int
    ids: dict[str, int]


@pytest.fixture
async def shapes(
    tmp_path: Path, database_target: DatabaseTarget, fixture_embedders: list[Any]
) -> AsyncIterator[Shapes]:
    """The dozen shape photos, two of them carrying text (a receipt, a note)."""
    from tests.fixtures.tooling.shapes import render_shape_photo

    db = await Database.open(database_target("q.db"))
    index = IndexManager(db.vectors, tmp_path / "indexes")
    configs = {e.model_id: e.config for e in fixture_embedders}
    embedder = AsyncEmbedder(fixture_embedders)
    service = SearchService(
        db, embedder, index, TextRouter(configs.values()), configs, make_settings().search
    )
    owner = (await db.owners.ensure("user", 1)).id
    store = db.owner(owner)
    photos = []
    for seed, obj in enumerate(PHOTO_SET):
        buf = io.BytesIO()
        render_shape_photo(*obj, seed=100 + seed).save(buf, "PNG")
        photos.append(buf.getvalue())
    vectors = {m: await embedder.encode_images(photos, model_id=m) for m in configs}
    ids: dict[str, int] = {}
    for i, obj in enumerate(PHOTO_SET):
        name = "-".join(obj)
        result = await store.media.commit(
            NewMedia("photo", name, file_id=f"f{i}", message_date=ts(2024, 1 + i % 12)),
            [NewUnit.image()],
            {m: v[i : i + 1] for m, v in vectors.items()},
        )
        for m, v in vectors.items():
            await index.add(owner, m, np.array(result.unit_ids), v[i : i + 1], result.versions[m])
        ids[name] = result.media_id
    receipt, note = [n for n in ids if "blue" not in n][:2]  # nothing like "blue"
    await store.texts.put(ids[receipt], "ocr", "КВИТАНЦИЯ об оплате за март, сумма 1200 руб.")
    await store.texts.put(ids[note], "ocr", "Invoice March 2024: payment due")
    try:
        yield Shapes(service, db, owner, {**ids, "receipt": ids[receipt], "note": ids[note]})
    finally:
        embedder.close()
        await db.close()


@pytest.mark.parametrize(("text", "item"), [("квитанции", "receipt"), ("invoice", "note")])
async def test_fixture_models_find_a_picture_by_its_text(
    shapes: Shapes, text: str, item: str
) -> None:
    result = await shapes.service.search(shapes.owner, Query.from_text(text))
    assert result.hits and result.hits[0].media.id == shapes.ids[item], result
    assert result.hits[0].matched in ("text", "both") and result.hits[0].snippet is not None


@pytest.mark.parametrize("text", ["a blue square", "синий квадрат"])
async def test_fixture_models_still_rank_pictures_by_the_picture(shapes: Shapes, text: str) -> None:
    result = await shapes.service.search(shapes.owner, Query.from_text(text))
    assert result.hits[0].media.file_unique_id == "blue-square"
    assert result.hits[0].matched == "picture"


@pytest.mark.parametrize(
    ("text", "caption"),
    [("a blue square", "the square in the yard"), ("синий квадрат", "квадрат малевича")],
)
async def test_fixture_models_rank_by_the_picture_when_a_text_holds_one_word(
    shapes: Shapes, text: str, caption: str
) -> None:
    store = shapes.db.owner(shapes.owner)
    await store.texts.put(shapes.ids["orange-heart"], "caption", caption)
    result = await shapes.service.search(shapes.owner, Query.from_text(text))
    assert result.hits[0].media.file_unique_id == "blue-square"
    assert result.hits[0].matched == "picture"
    by_name = {h.media.file_unique_id: h for h in result.hits}
    assert by_name["orange-heart"].matched in ("text", "both")  # found, but not first


async def test_fixture_models_put_a_text_with_every_word_first(shapes: Shapes) -> None:
    result = await shapes.service.search(shapes.owner, Query.from_text("payment invoice due"))
    assert result.hits[0].media.id == shapes.ids["note"]
    assert result.hits[0].matched in ("text", "both")
    misread = await shapes.service.search(shapes.owner, Query.from_text("квитанции оплота"))
    assert misread.hits[0].media.id == shapes.ids["receipt"]  # "оплате" typed wrong


async def test_fixture_models_with_a_filter_and_a_quoted_phrase(shapes: Shapes) -> None:
    january = await shapes.service.search(
        shapes.owner, Query.from_text("a blue square january 2024")
    )
    assert [h.media.file_unique_id for h in january.hits] in ([], ["blue-square"])
    assert all(h.media.message_date == ts(2024, 1) for h in january.hits)
    quoted = await shapes.service.search(shapes.owner, Query.from_text('"march 2024"'))
    assert [h.media.id for h in quoted.hits] == [shapes.ids["note"]]
