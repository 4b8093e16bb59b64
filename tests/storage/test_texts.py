"""The text index of an owner: put, search (AND, phrases, bm25), isolation, rows going with
their items, indexing at commit, and the backfill of items stored before the index existed."""

from __future__ import annotations

import random
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiosqlite
import psycopg
import pytest

from storage import (
    MIGRATIONS_DIR,
    Database,
    LocalFile,
    NewMedia,
    NewUnit,
    OwnerStore,
    migrate,
    owner_media,
    text_backfill,
)
from storage.dialect import to_postgres
from storage.pg_migrations import migrate_postgres
from storage.text_terms import TEXT_SOURCES
from tests.postgres_support import fresh_schema
from tests.storage.conftest import CLIP, add_photo, vecs


async def ids(store: OwnerStore, *words: str, **kw: object) -> list[int]:
    return [m.media_id for m in await store.texts.search(list(words), **kw)]  # type: ignore[arg-type]


async def text_rows(db: Database) -> tuple[int, int]:
    """(raw text rows, index rows) across every owner."""
    async with db.read() as conn:
        raw = (await conn.execute_fetchall("SELECT count(*) FROM media_texts"))[0][0]
        fts = (await conn.execute_fetchall("SELECT count(*) FROM media_text_index"))[0][0]
    return raw, fts


async def test_put_replace_remove(store: OwnerStore) -> None:
    mid = (await add_photo(store, "a")).media_id
    assert await store.texts.put(mid, "ocr", "Квитанции за электричество") is True
    assert await ids(store, "квитанция") == [mid]
    assert await store.texts.of_media([mid]) == {mid: {"ocr": "Квитанции за электричество"}}
    assert await store.texts.count() == 1
    await store.texts.put(mid, "ocr", "Invoices for March")
    assert await ids(store, "квитанция") == []
    assert await ids(store, "invoice", "march") == [mid]
    await store.texts.put(mid, "caption", "кот на окне")
    assert await ids(store, "invoice") == [mid] and await ids(store, "коты") == [mid]
    await store.texts.put(mid, "ocr", "   \n")  # blank removes, like None
    assert await ids(store, "invoice") == []
    assert await store.texts.of_media([mid]) == {mid: {"caption": "кот на окне"}}
    await store.texts.put(mid, "caption", None)
    assert await store.texts.of_media([mid]) == {} and await store.texts.count() == 0
    assert await ids(store, "кот") == []


async def test_put_for_a_missing_or_foreign_item_writes_nothing(db: Database) -> None:
    a = db.owner((await db.owners.ensure("user", 1)).id)
    b = db.owner((await db.owners.ensure("user", 2)).id)
    mid = (await add_photo(a, "x")).media_id
    assert await b.texts.put(mid, "ocr", "чужой текст") is False
    assert await a.texts.put(999_999, "ocr", "нет такого") is False
    assert await text_rows(db) == (0, 0)
    with pytest.raises(ValueError, match="unknown text source"):
        await a.texts.put(mid, "title", "x")  # type: ignore[arg-type]


async def test_search_is_an_and_of_words_and_phrases(store: OwnerStore) -> None:
    red_car = (await add_photo(store, "a", caption="Красная машина у дома")).media_id
    car_red = (await add_photo(store, "b", caption="машина красного цвета, дом")).media_id
    blue = (await add_photo(store, "c", caption="синяя машина")).media_id
    assert set(await ids(store, "машины")) == {red_car, car_red, blue}
    assert set(await ids(store, "красный", "машину")) == {red_car, car_red}
    assert set(await ids(store, "красный", "машину", "дом")) == {red_car, car_red}
    found = await store.texts.search([], ["красной машиной"])
    assert [m.media_id for m in found] == [red_car]  # a phrase: consecutive stems
    both = await store.texts.search(["дом"], ["красной машиной"])
    assert [(m.media_id, m.sources) for m in both] == [(red_car, ("caption",))]
    assert await store.texts.search(["синий"], ["красной машиной"]) == []
    assert await ids(store, "машина", "самолет") == []  # AND: one missing word, no hit
    assert await ids(store, "маш") == []  # no implied prefix


async def test_min_share_also_finds_items_missing_some_words(store: OwnerStore) -> None:
    # "оплата" misread in the first picture: it keeps two of the three words
    misread = (await add_photo(store, "a", caption="квитанция 0плата март")).media_id
    full = (await add_photo(store, "b", caption="квитанция оплата март")).media_id
    one = (await add_photo(store, "c", caption="квитанция за газ")).media_id
    await add_photo(store, "d", caption="собака")
    words = ["квитанции", "оплата", "март"]
    assert await ids(store, *words) == [full]  # the default stays an AND
    found = await store.texts.search(words, min_share=0.6)
    assert [(m.media_id, m.coverage) for m in found] == [
        (full, 1.0),
        (misread, pytest.approx(2 / 3)),
    ]
    anyone = await store.texts.search(words, min_share=0.1)
    assert [m.media_id for m in anyone] == [full, misread, one]
    assert anyone[2].coverage == pytest.approx(1 / 3)
    # how many words an item holds decides before bm25 does: a short text with one word
    # does not pass a long one with two
    filler = " ".join(f"слово{i}" for i in range(40))
    long_ = (await add_photo(store, "e", caption=f"оплата {filler} март")).media_id
    short = (await add_photo(store, "f", caption="март")).media_id
    order = [m.media_id for m in await store.texts.search(["оплата", "март"], min_share=0.1)]
    assert order.index(long_) < order.index(short)
    assert await ids(store, "квитанция", "газ", "дом", min_share=1.0) == []  # 1: every word
    # phrases are never loosened
    phrased = await store.texts.search(["март", "газ"], ["за газ"], min_share=0.1)
    assert [m.media_id for m in phrased] == [one]
    assert await ids(store, "газ", min_share=0.1) == await ids(store, "газ") == [one]


async def test_results_are_best_first_by_bm25(store: OwnerStore) -> None:
    filler = " ".join(f"слово{i}" for i in range(40))
    long_ = (await add_photo(store, "long", caption=f"кот {filler}")).media_id
    short = (await add_photo(store, "short", caption="кот и коты")).media_id
    await add_photo(store, "none", caption="собака")
    found = await store.texts.search(["кот"])
    assert [m.media_id for m in found] == [short, long_]
    assert found[0].rank > found[1].rank
    assert [m.media_id for m in await store.texts.search(["кот"], limit=1)] == [short]
    assert await store.texts.search(["кот"], limit=0) == []


async def test_sources_say_where_the_words_are(store: OwnerStore) -> None:
    mid = (
        await add_photo(store, "a", caption="отчет", file_name="invoice_2024.pdf",
                        forward_origin="Bank News")
    ).media_id  # fmt: skip
    await store.texts.put(mid, "ocr", "invoice total 2024")
    (match,) = await store.texts.search(["invoices", "2024"])
    assert match.media_id == mid
    assert set(match.sources) == {"file_name", "ocr"}
    (match,) = await store.texts.search(["bank"])
    assert match.sources == ("origin",)


@pytest.mark.parametrize(
    "hostile",
    [
        '"', '""', '"кот', 'кот"', "(", ")", "(кот", "*", "кот*", "^кот", "NEAR(кот окно)",
        "NEAR", "кот AND", "OR", "NOT", "caption:кот", "{caption}: кот", "owner : 1",
        "-кот", "+", ":", "'; DROP TABLE media; --", "\x00", "кот\x00окно",
    ],
)  # fmt: skip
async def test_user_text_is_never_fts_syntax(store: OwnerStore, hostile: str) -> None:
    cat = (await add_photo(store, "a", caption="кот окно")).media_id
    await add_photo(store, "b", caption="котлета")
    found = await ids(store, hostile)  # never raises
    inner = [w for w in hostile.replace("\x00", " ").split() if w]
    assert found in ([], [cat])
    assert await ids(store, "кот") == [cat]  # the table survived
    # Only words that really are in the caption can find it; syntax words are just words.
    expect_hit = hostile in ('"кот', 'кот"', "(кот", "кот*", "^кот", "-кот", "кот\x00окно")
    assert (found == [cat]) is expect_hit, (hostile, inner)


async def test_a_search_with_nothing_to_look_for_finds_nothing(store: OwnerStore) -> None:
    await add_photo(store, "a", caption="кот")
    assert await store.texts.search([]) == []
    assert await store.texts.search(["", "  ", "!!!"], ["…"]) == []


async def test_media_ids_restrict_the_answer(store: OwnerStore) -> None:
    a, b, c = [(await add_photo(store, u, caption=f"закат {u}")).media_id for u in "abc"]
    assert set(await ids(store, "закаты")) == {a, b, c}
    assert set(await ids(store, "закаты", media_ids=[a, c, 999_999])) == {a, c}
    assert await ids(store, "закаты", media_ids=[]) == []


async def test_owners_never_see_each_others_texts(db: Database) -> None:
    one = db.owner((await db.owners.ensure("user", 1)).id)
    two = db.owner((await db.owners.ensure("user", 2)).id)
    mine = (await add_photo(one, "same", caption="паспорт и билеты")).media_id
    theirs = (await add_photo(two, "same", caption="паспорт и билеты")).media_id
    await two.texts.put(theirs, "ocr", "секретный паспорт")
    assert await ids(one, "паспорта") == [mine]
    assert await ids(two, "паспорта") == [theirs]
    assert await ids(one, "секретный") == []
    assert await ids(one, "паспорт", media_ids=[theirs]) == []
    assert await one.texts.of_media([mine, theirs]) == {mine: {"caption": "паспорт и билеты"}}
    # The owner's own id is not a word of their texts.
    for store in (one, two):
        assert await ids(store, str(store.owner_id)) == []
        assert await ids(store, str(one.owner_id), str(two.owner_id)) == []
    assert await one.texts.count() == 1


async def test_text_rows_go_with_their_items(db: Database, store: OwnerStore) -> None:
    a, b, c, d = [(await add_photo(store, u, caption=f"мост {u}")).media_id for u in "abcd"]
    await store.texts.put(a, "ocr", "мост через реку")
    assert await text_rows(db) == (5, 4)
    await store.media.delete(a)
    assert await text_rows(db) == (3, 3)
    await store.media.delete_many([b, c])
    assert await text_rows(db) == (1, 1)
    assert await ids(store, "мост") == [d]
    await store.media.delete_all()
    assert await text_rows(db) == (0, 0)
    e = (await add_photo(store, "e", caption="мост")).media_id
    assert await ids(store, "мост") == [e]
    await store.profile.delete()
    assert await text_rows(db) == (0, 0)


async def test_a_local_item_that_loses_its_last_path_loses_its_text(
    db: Database, store: OwnerStore
) -> None:
    local = LocalFile("/photos/IMG_0042.jpg", 10, 1, "1" * 64)
    await store.media.commit(
        NewMedia("photo", local.file_unique_id, local=local, file_name="IMG_0042.jpg"),
        [NewUnit.image()], {CLIP: vecs(1)},
    )  # fmt: skip
    assert len(await ids(store, "0042")) == 1
    await store.local_files.remove([local.path])
    assert await text_rows(db) == (0, 0)


async def test_commit_indexes_caption_file_name_and_origin(store: OwnerStore) -> None:
    result = await add_photo(
        store, "doc", caption="Квитанции за март", file_name="electricity_bill.jpg",
        forward_origin="Мосэнергосбыт", taken_at=1_700_000_000,
    )  # fmt: skip
    mid = result.media_id
    assert await ids(store, "квитанция") == [mid]
    assert await ids(store, "electricity", "bills") == [mid]
    assert await ids(store, "мосэнергосбыт") == [mid]
    assert await store.texts.of_media([mid]) == {
        mid: {
            "caption": "Квитанции за март",
            "file_name": "electricity_bill.jpg",
            "origin": "Мосэнергосбыт",
        }
    }
    # A duplicate commit changes nothing, its different caption included.
    again = await add_photo(store, "doc", caption="совсем другое")
    assert again.duplicate and await ids(store, "другое") == []


async def test_text_is_written_in_the_commit_transaction(
    db: Database, store: OwnerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def boom(*args: object, **kw: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(owner_media, "put_local_row", boom)  # the step after the texts
    local = LocalFile("a.jpg", 10, 1, "0" * 64)
    with pytest.raises(RuntimeError, match="disk full"):
        await store.media.commit(
            NewMedia("photo", local.file_unique_id, local=local, caption="кот"),
            [NewUnit.image()], {CLIP: vecs(1)},
        )  # fmt: skip
    assert await text_rows(db) == (0, 0)
    assert await ids(store, "кот") == []


# --- the same answers on both backends ----------------------------------------------------------

_VOCABULARY = [
    *("кот", "кота", "коты", "котлета", "машина", "машину", "красная", "красной", "дом"),
    *("дома", "квитанция", "оплата", "март", "за", "cat", "cats", "invoice", "invoices"),
    *("march", "payment", "café", "cafe", "Müller", "muller", "e-mail", "email", "2024", "0042"),
]


async def _random_collection(store: OwnerStore, rng: random.Random, n: int) -> None:
    """``n`` items with texts in random sources; item 0's caption ends with a word and its
    OCR starts with the next one, which is no phrase."""
    for i in range(n):
        texts = {s: " ".join(rng.choices(_VOCABULARY, k=rng.randint(1, 8))) for s in TEXT_SOURCES}
        if i == 0:
            texts = {"caption": "дом красная", "ocr": "машина дома"}
        chosen = {s: t for s, t in texts.items() if i == 0 or rng.random() < 0.5}
        mid = (await add_photo(store, f"r{i}", caption=chosen.get("caption"))).media_id
        for source in ("file_name", "origin", "ocr"):
            if source in chosen:
                await store.texts.put(mid, source, chosen[source])


def _random_queries(rng: random.Random, n: int) -> list[dict[str, Any]]:
    queries: list[dict[str, Any]] = [{"words": [], "phrases": ["красная машина"]}]
    for _ in range(n):
        query: dict[str, Any] = {"words": rng.sample(_VOCABULARY, rng.randint(1, 3))}
        if rng.random() < 0.3:
            start = rng.randrange(len(_VOCABULARY) - 1)
            query["phrases"] = [" ".join(_VOCABULARY[start : start + 2])]
        query["min_share"] = rng.choice([1.0, 0.6, 0.1])
        if rng.random() < 0.2:
            query["media_ids"] = rng.sample(range(1, 61), 20)
        queries.append(query)
    return queries


async def test_both_backends_find_the_same_items(tmp_path: Path) -> None:
    """The same texts and searches give the same items, coverage and sources on SQLite and on
    PostgreSQL (the order within equal coverage may differ: bm25 is not ts_rank)."""
    answers: list[list[set[tuple[int, float, tuple[str, ...]]]]] = []
    with fresh_schema() as url:
        for target in (tmp_path / "same.db", url):
            db = await Database.open(target)
            try:
                stores = [db.owner((await db.owners.ensure("user", u)).id) for u in (1, 2)]
                for owner in stores:
                    await _random_collection(owner, random.Random(7), 60)
                found = []
                for query in _random_queries(random.Random(11), 150):
                    matches = await stores[0].texts.search(**query, limit=1000)
                    coverage = [m.coverage for m in matches]
                    assert coverage == sorted(coverage, reverse=True)
                    found.append({(m.media_id, m.coverage, m.sources) for m in matches})
                answers.append(found)
            finally:
                await db.close()
    sqlite_answers, pg_answers = answers
    assert sum(map(len, sqlite_answers)) > 300  # the searches do find things
    assert 1 not in {m for m, *_ in sqlite_answers[0]}  # across sources is no phrase
    assert sqlite_answers == pg_answers


# --- backfill of items stored before migration 0005 ---------------------------------------------


def _migrations_up_to_0004(dst: Path, source: Path = MIGRATIONS_DIR) -> Path:
    dst.mkdir()
    for f in source.glob("000[1-4]_*.sql"):
        shutil.copy(f, dst / f.name)
    return dst


_OWNERS = "INSERT INTO owners (id, kind, external_id, created_at) VALUES (?, 'user', ?, 0)"
_MEDIA = (
    "INSERT INTO media (owner_id, kind, file_unique_id, caption, forward_origin, created_at) "
    "VALUES (?, 'photo', ?, ?, ?, 0)"
)


def _old_rows(n: int) -> list[tuple[int, str, str, str | None]]:
    """``n`` captioned photos of owner 1 (every third also with a forward origin) and one of
    owner 2 without any text."""
    rows = [
        (1, f"u{i}", f"Фотографии котов номер {i}", "Канал Новости" if i % 3 == 0 else None)
        for i in range(n)
    ]
    return [*rows, (2, "other", "  ", None)]


async def _old_collection(backend: str, tmp_path: Path, n: int, schemas: ExitStack) -> str | Path:
    """A database at migration 0004 with two owners and the items of :func:`_old_rows` (on
    PostgreSQL a schema that ``schemas`` drops)."""
    if backend == "postgresql":
        url = schemas.enter_context(fresh_schema())
        migrations = _migrations_up_to_0004(tmp_path / "m", MIGRATIONS_DIR / "postgresql")
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await migrate_postgres(conn, migrations)
        with psycopg.connect(url) as pg, pg.cursor() as cur:
            cur.executemany(to_postgres(_OWNERS), [(1, "a"), (2, "b")])
            cur.executemany(to_postgres(_MEDIA), _old_rows(n))
        return url
    path = tmp_path / "old.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await migrate(conn, _migrations_up_to_0004(tmp_path / "m"))
    con = sqlite3.connect(path)
    con.executemany(_OWNERS, [(1, "a"), (2, "b")])
    con.executemany(_MEDIA, _old_rows(n))
    con.commit()
    con.close()
    return path


def _count(target: str | Path, table: str) -> int:
    """Rows of ``table``, read outside the storage layer (after a failed open)."""
    if isinstance(target, str):
        with psycopg.connect(target) as pg:
            return int(pg.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    con = sqlite3.connect(target)
    try:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        con.close()


@pytest.fixture
def schemas() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


async def test_upgrade_indexes_items_stored_before_the_text_index(
    backend: str, tmp_path: Path, schemas: ExitStack
) -> None:
    target = await _old_collection(backend, tmp_path, 7, schemas)
    db = await Database.open(target)
    try:
        store = db.owner(1)
        assert len(await ids(store, "кот")) == 7
        assert len(await ids(store, "фотография", "5")) == 1
        assert len(await ids(store, "новостей", "кот")) == 3  # origins: items 0, 3, 6
        assert await store.texts.count() == 7
        assert await db.owner(2).texts.count() == 0  # a blank caption is no text
        async with db.read() as conn:
            backlog = await conn.execute_fetchall("SELECT count(*) FROM media_text_backlog")
        assert list(backlog) == [(0,)]
        assert await text_backfill.backfill_text_index(db.connections) == 0  # runs once
    finally:
        await db.close()


async def test_an_interrupted_backfill_resumes(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, schemas: ExitStack
) -> None:
    target = await _old_collection(backend, tmp_path, 5, schemas)
    original = text_backfill._index_rows
    calls = 0

    def second_batch_fails(texts: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("power cut")
        return original(texts)

    with monkeypatch.context() as patch:
        patch.setattr(text_backfill, "BATCH", 2)
        patch.setattr(text_backfill, "_index_rows", second_batch_fails)
        with pytest.raises(RuntimeError, match="power cut"):
            await Database.open(target)
    assert _count(target, "media_text_backlog") == 3
    assert _count(target, "media_text_index") == 2
    db = await Database.open(target)
    try:
        assert sorted(await ids(db.owner(1), "коты")) == [1, 2, 3, 4, 5]
        assert await text_rows(db) == (5 + 2, 5)  # captions, two origins; one index row each
    finally:
        await db.close()
