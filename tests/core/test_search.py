"""Search service: query parsing, model choice, frame collapse, relevance cut, pagination,
exclusions, search by an existing item, deletion; and search quality with the fixture models.

Unit tests use fake embedders whose vectors are built from named axes, so every score is known;
the items live in a real SQLite database and real FAISS indexes.
"""

from __future__ import annotations

import io
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.errors import EmptyQueryError, NotFoundError, OnlyExclusionsError
from core.index.manager import IndexManager
from core.models.config import BundleConfig, ImageConfig, TextConfig
from core.models.embedder import AsyncEmbedder
from core.models.routing import TextRouter
from core.search.collection import CollectionService
from core.search.query import Query, parse_query
from core.search.relevance import relevance_cut
from core.search.results import SearchResult
from core.search.service import SearchService
from core.settings import Settings
from storage import Database, NewMedia, NewUnit, OwnerStore
from storage.records import Unit
from tests.conftest import DatabaseTarget
from tests.fixtures.tooling.shapes import PHOTO_SET

DIM = 16
EN = "en-fake@1"
RU = "ru-fake@1"
FLOOR = 0.3
MARGINS = {"strict": 0.03, "normal": 0.06, "loose": 0.12}

AXES = {
    name: i
    for i, name in enumerate(
        ["cat", "dog", "red", "blue", "circle", "square", "sofa", "sea", "x1", "x2", "x3"]
    )
}


def axis(name: str) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[AXES[name]] = 1.0
    return v


def mix(*names: str, **weights: float) -> np.ndarray:
    """Normalised sum of named axes (``mix("red", "circle")``, ``mix(cat=0.8, sea=0.6)``)."""
    v = sum((axis(n) for n in names), np.zeros(DIM, dtype=np.float32))
    for name, w in weights.items():
        v = v + w * axis(name)
    return (v / np.linalg.norm(v)).astype(np.float32)


def scored(score: float, toward: str = "cat", away: str = "x1") -> np.ndarray:
    """A unit vector whose cosine to ``axis(toward)`` is exactly ``score``."""
    return (score * axis(toward) + math.sqrt(1 - score * score) * axis(away)).astype(np.float32)


# --- fakes --------------------------------------------------------------------------------------


def fake_config(name: str, languages: tuple[str, ...]) -> BundleConfig:
    return BundleConfig(
        name=name,
        version="1",
        embed_dim=DIM,
        languages=languages,
        image=ImageConfig(size=8),
        text=TextConfig(context_length=16, tokenizer="clip"),
        relevance_floor=FLOOR,
    )


class FakeEmbedder:
    """Texts and image bytes map to fixed vectors; every call is recorded."""

    def __init__(
        self, config: BundleConfig, texts: Mapping[str, np.ndarray], images: Mapping[bytes, Any]
    ) -> None:
        self._config = config
        self.texts = texts
        self.images = images
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    @property
    def config(self) -> BundleConfig:
        return self._config

    @property
    def model_id(self) -> str:
        return self._config.model_id

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(("text", tuple(texts)))
        return np.stack([self.texts[t] for t in texts]).astype(np.float32)

    def encode_images(self, sources: Sequence[object]) -> np.ndarray:
        self.calls.append(("image", tuple(sources)))
        return np.stack([self.images[s] for s in sources]).astype(np.float32)  # type: ignore[index]

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        raise AssertionError("search never encodes raw pixels")


TEXTS = {
    "cat": axis("cat"),
    "кот": axis("cat"),
    "dog": axis("dog"),
    "circle": axis("circle"),
    "a circle": axis("circle"),
    "red": axis("red"),
    "красный": axis("red"),
    "blue": axis("blue"),
    "square": axis("square"),
    "sofa": axis("sofa"),
    "sea": axis("sea"),
    "x3": axis("x3"),
}
IMAGES = {b"photo:sea": axis("sea"), b"photo:cat": axis("cat")}


@dataclass
class Env:
    db: Database
    index: IndexManager
    service: SearchService
    en: FakeEmbedder
    ru: FakeEmbedder
    owner: int
    other: int
    collection: CollectionService

    @property
    def store(self) -> OwnerStore:
        return self.db.owner(self.owner)

    async def add(
        self,
        uid: str,
        vectors: np.ndarray | list[np.ndarray],
        *,
        times: list[float] | None = None,
        owner: int | None = None,
        models: tuple[str, ...] = (EN, RU),
    ) -> tuple[int, tuple[int, ...]]:
        """Commit a photo (one vector) or a video (one vector per frame at ``times``) and add
        it to the indexes the way ingest does; returns (media id, unit ids)."""
        owner = self.owner if owner is None else owner
        arr = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if times is None:
            media = NewMedia("photo", uid, file_id=f"f-{uid}")
            units = [NewUnit.image()]
        else:
            media = NewMedia("video", uid, file_id=f"f-{uid}", duration=max(times) + 1)
            units = [NewUnit.frame(t) for t in times]
        result = await self.db.owner(owner).media.commit(media, units, {m: arr for m in models})
        for m in models:
            await self.index.add(owner, m, np.array(result.unit_ids), arr, result.versions[m])
        return result.media_id, result.unit_ids


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "search_margin_strict": MARGINS["strict"],
        "search_margin_normal": MARGINS["normal"],
        "search_margin_loose": MARGINS["loose"],
        "search_default_limit": 10,
        "search_max_limit": 50,
        "search_text_weight": 0.5,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def make_env(
    database_target: DatabaseTarget, tmp_path: Path, **settings: object
) -> AsyncIterator[Env]:
    db = await Database.open(database_target("search.db"))
    index = IndexManager(db.vectors, tmp_path / "indexes")
    en_cfg, ru_cfg = fake_config("en-fake", ("en",)), fake_config("ru-fake", ("ru",))
    en = FakeEmbedder(en_cfg, TEXTS, IMAGES)
    ru = FakeEmbedder(ru_cfg, TEXTS, IMAGES)
    embedder = AsyncEmbedder([en, ru])
    configs = {EN: en_cfg, RU: ru_cfg}
    service = SearchService(
        db, embedder, index, TextRouter(configs.values()), configs, make_settings(**settings).search
    )
    owner = (await db.owners.ensure("user", 1)).id
    other = (await db.owners.ensure("user", 2)).id
    try:
        yield Env(db, index, service, en, ru, owner, other, CollectionService(db, index))
    finally:
        embedder.close()
        await db.close()


@pytest.fixture
async def env(database_target: DatabaseTarget, tmp_path: Path) -> AsyncIterator[Env]:
    async for e in make_env(database_target, tmp_path):
        yield e


def uids(result: SearchResult) -> list[str]:
    return [h.media.file_unique_id for h in result.hits]


# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "positive", "excluded"),
    [
        ("cat on a sofa -dog", "cat on a sofa", ("dog",)),
        ('cat -"red blanket" -dog', "cat", ("red blanket", "dog")),
        ("кот -«рыжий кот» -собака", "кот", ("рыжий кот", "собака")),
        ("кот -“рыжий кот”", "кот", ("рыжий кот",)),
        ("e-mail screenshot", "e-mail screenshot", ()),  # a hyphen inside a word is text
        ("-5 degrees outside", "-5 degrees outside", ()),  # a negative number is text
        ("cat - dog", "cat dog", ()),  # a lone dash is punctuation, not an exclusion
        ("cat -dog, -Dog -DOG", "cat", ("dog",)),  # trailing comma gone, case-insensitive dedupe
        ('cat -"unclosed phrase', "cat", ("unclosed phrase",)),
        ('cat -""', "cat", ()),
        ("  cat\n\tsofa  ", "cat sofa", ()),
        ("-red -blue", "", ("red", "blue")),
    ],
)
def test_parse_query(text: str, positive: str, excluded: tuple[str, ...]) -> None:
    assert parse_query(text) == (positive, excluded)


def test_query_validation() -> None:
    assert Query.from_text("cat -dog", limit=5).exclude == ("dog",)
    assert Query.from_text("cat -dog", exclude=["Dog", "sofa"]).exclude == ("dog", "sofa")
    with pytest.raises(ValueError):
        Query(text="cat", strictness="very")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Query(text="cat", offset=-1)
    with pytest.raises(ValueError):
        Query(text="cat", limit=0)
    with pytest.raises(ValueError):
        Query(image=b"x", unit_id=1)


async def test_a_query_of_only_exclusions_is_a_typed_error(env: Env) -> None:
    await env.add("cat", axis("cat"))
    with pytest.raises(OnlyExclusionsError) as info:
        await env.service.search_text(env.owner, "-red -blue")
    assert isinstance(info.value, EmptyQueryError)
    with pytest.raises(EmptyQueryError):
        await env.service.search_text(env.owner, "   ")
    with pytest.raises(EmptyQueryError):
        await env.service.search(env.owner, Query())


# --- relevance and collapse ---------------------------------------------------------------------


async def test_video_frames_collapse_to_the_best_frame_and_its_timestamp(env: Env) -> None:
    await env.add("video", [scored(0.5), scored(0.9), scored(0.7)], times=[0.0, 5.0, 12.5])
    _, (photo_unit,) = await env.add("photo", scored(0.88))
    result = await env.service.search_text(env.owner, "cat", strictness="loose")
    assert uids(result) == ["video", "photo"]
    video, photo = result.hits
    assert video.timestamp == 5.0 and video.score == pytest.approx(0.9, abs=2e-3)
    frame_units = await env.store.units.of_media(video.media.id)
    assert video.unit_id == frame_units[1].id
    assert photo.timestamp is None and photo.unit_id == photo_unit
    assert result.model_id == EN and result.elapsed_ms > 0
    assert result.reason is None and result.total == 2 and result.total_exact


@pytest.mark.parametrize(
    ("strictness", "expected"),
    [
        ("strict", ["s90", "s88"]),
        ("normal", ["s90", "s88", "s85"]),
        ("loose", ["s90", "s88", "s85", "s80"]),
    ],
)
async def test_margin_below_the_best_hit_depends_on_strictness(
    env: Env, strictness: str, expected: list[str]
) -> None:
    for s in (0.90, 0.88, 0.85, 0.80, 0.70):
        await env.add(f"s{round(s * 100)}", scored(s))
    result = await env.service.search_text(env.owner, "cat", strictness=strictness)  # type: ignore[arg-type]
    assert uids(result) == expected
    assert result.total == len(expected) and result.total_exact and not result.has_more


async def test_the_models_floor_cuts_even_within_the_margin(env: Env) -> None:
    for s in (0.34, 0.31, 0.29, 0.25):
        await env.add(f"s{round(s * 100)}", scored(s))
    result = await env.service.search_text(env.owner, "cat", strictness="loose")
    assert uids(result) == ["s34", "s31"]  # 0.29 and 0.25 are within 0.12 but below 0.3


async def test_nothing_relevant_says_so_instead_of_returning_noise(env: Env) -> None:
    for s in (0.25, 0.2, 0.1):
        await env.add(f"s{round(s * 100)}", scored(s))
    result = await env.service.search_text(env.owner, "cat", strictness="loose")
    assert result.hits == [] and result.reason == "no_match"
    assert result.best_score == pytest.approx(0.25, abs=2e-3)
    assert result.total == 0 and not result.has_more


async def test_an_empty_collection_is_not_a_failed_match(env: Env) -> None:
    result = await env.service.search_text(env.owner, "cat")
    assert result.hits == [] and result.reason == "empty" and result.best_score is None


async def test_another_owners_items_are_never_found(env: Env) -> None:
    await env.add("theirs", axis("cat"), owner=env.other)
    await env.add("mine", scored(0.8))
    result = await env.service.search_text(env.owner, "cat", strictness="loose")
    assert uids(result) == ["mine"]


# --- pagination ---------------------------------------------------------------------------------


async def test_pages_have_no_duplicates_or_gaps_and_ties_keep_a_stable_order(
    database_target: DatabaseTarget, tmp_path: Path
) -> None:
    async for env in make_env(database_target, tmp_path, search_margin_loose=1.5):
        rng = np.random.default_rng(7)
        expected: dict[str, float] = {}
        for i in range(36):  # photos with distinct scores
            s = float(rng.uniform(0.35, 0.95))
            await env.add(f"p{i}", scored(s, away="x1" if i % 2 else "x2"))
            expected[f"p{i}"] = s
        for i in range(8):  # identical vectors: exact ties, ordered by media id
            await env.add(f"tie{i}", scored(0.6))
            expected[f"tie{i}"] = 0.6
        for v in range(3):  # long videos whose many frames crowd the first fetch
            times = [float(t) for t in range(60)]
            frames = [scored(0.97 - 0.001 * t - 0.01 * v, away="x3") for t in range(60)]
            await env.add(f"v{v}", frames, times=times)
            expected[f"v{v}"] = 0.97 - 0.01 * v

        full = await env.service.search_text(env.owner, "cat", strictness="loose", limit=50)
        assert full.total_exact and full.total == len(expected) and not full.has_more
        assert set(uids(full)) == set(expected)
        assert uids(full)[:3] == ["v0", "v1", "v2"]
        assert all(h.timestamp == 0.0 for h in full.hits[:3])
        keys = [(-h.score, h.media.id) for h in full.hits]
        assert keys == sorted(keys)
        ties = [h for h in full.hits if h.media.file_unique_id.startswith("tie")]
        assert [h.media.file_unique_id for h in ties] == [f"tie{i}" for i in range(8)]

        paged: list[str] = []
        offset = 0
        while True:
            page = await env.service.search_text(
                env.owner, "cat", strictness="loose", offset=offset, limit=7
            )
            assert len(page.hits) == 7 or not page.has_more
            paged += uids(page)
            if page.next_offset is None:
                break
            offset = page.next_offset
        assert paged == uids(full)

        beyond = await env.service.search_text(
            env.owner, "cat", strictness="loose", offset=len(expected), limit=7
        )
        assert beyond.hits == [] and beyond.reason == "past_end"


async def test_ties_across_the_fetch_boundary_never_shift_between_pages(env: Env) -> None:
    calls = 0
    search = env.index.search

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return await search(*args, **kwargs)

    env.index.search = counting  # type: ignore[method-assign]
    media = [(await env.add(f"t{i:02d}", scored(0.7)))[0] for i in range(40)]
    pages = []
    for offset in range(0, 40, 5):
        page = await env.service.search_text(env.owner, "cat", offset=offset, limit=5)
        pages += [h.media.id for h in page.hits]
    assert pages == media  # all tied: media id order, each item exactly once
    assert calls > 8  # the first fetch (32 of 40 tied units) was not trusted: it grew


async def test_similar_to_an_item_without_vectors_for_the_loaded_models(env: Env) -> None:
    media_id, _ = await env.add("old", axis("cat"), models=("retired-model@1",))
    with pytest.raises(NotFoundError):
        await env.service.search_similar(env.owner, media_id=media_id)


async def test_limits_default_and_clamp(database_target: DatabaseTarget, tmp_path: Path) -> None:
    limits = {"search_default_limit": 3, "search_max_limit": 5}
    async for env in make_env(database_target, tmp_path, **limits):
        for i in range(8):
            await env.add(f"p{i}", scored(0.9 - 0.001 * i))
        first = await env.service.search_text(env.owner, "cat")
        assert len(first.hits) == 3 and first.has_more and first.limit == 3
        big = await env.service.search_text(env.owner, "cat", limit=100)
        assert len(big.hits) == 5 and big.limit == 5


# --- model choice -------------------------------------------------------------------------------


async def test_text_is_routed_by_language_and_falls_back_to_an_active_model(env: Env) -> None:
    await env.add("cat", axis("cat"))
    assert (await env.service.search_text(env.owner, "cat")).model_id == EN
    ru = await env.service.search_text(env.owner, "кот")
    assert ru.model_id == RU and uids(ru) == ["cat"]
    assert ("text", ("кот",)) in env.ru.calls

    # During a model change only the English model is active for this owner.
    await env.store.models.set_active({"main": EN})
    fallback = await env.service.search_text(env.owner, "кот")
    assert fallback.model_id == EN and uids(fallback) == ["cat"]
    assert await env.service.active_models(env.owner) == [EN]
    assert await env.service.active_models(env.other) == [EN, RU]  # nothing recorded: all


async def test_image_query_uses_the_primary_model(env: Env) -> None:
    await env.add("sea", axis("sea"))
    await env.add("cat", axis("cat"))
    result = await env.service.search_image(env.owner, b"photo:sea")
    assert result.model_id == EN and uids(result) == ["sea"]
    await env.store.models.set_active({"main": RU})
    assert (await env.service.search_image(env.owner, b"photo:sea")).model_id == RU


async def test_text_and_image_are_combined_in_the_texts_model(env: Env) -> None:
    await env.add("cat-at-sea", mix("cat", "sea"))
    await env.add("cat", axis("cat"))
    await env.add("sea", axis("sea"))
    result = await env.service.search_image(env.owner, b"photo:sea", text="кот")
    assert result.model_id == RU
    assert uids(result)[0] == "cat-at-sea" and result.hits[0].score == pytest.approx(1, abs=2e-3)
    # Both the text and the photo went through the Russian model, nothing through English.
    assert [c[0] for c in env.ru.calls] == ["text", "image"] and env.en.calls == []


@pytest.mark.parametrize(("weight", "first"), [(1.0, "cat"), (0.0, "sea")])
async def test_the_text_weight_moves_the_combination(
    database_target: DatabaseTarget, tmp_path: Path, weight: float, first: str
) -> None:
    """All text finds the cat, all photo finds the sea."""
    async for env in make_env(database_target, tmp_path, search_text_weight=weight):
        await env.add("cat-at-sea", mix("cat", "sea"))
        await env.add("cat", axis("cat"))
        await env.add("sea", axis("sea"))
        result = await env.service.search_image(env.owner, b"photo:sea", text="cat")
        assert uids(result)[0] == first


# --- relevance cut (no storage) ----------------------------------------------------------------


def _scored(*pairs: tuple[int, float]) -> list[tuple[Unit, float]]:
    """(unit id, score) pairs; unit ``u`` belongs to media ``u // 10`` (frames of one video)."""
    return [(Unit(uid, uid // 10, "frame", float(uid % 10)), score) for uid, score in pairs]


def test_the_relevance_cut_counts_only_hits_above_the_fetch_boundary() -> None:
    kept = _scored((10, 0.9), (11, 0.85), (20, 0.8), (30, 0.7))
    # Not exhausted and the last fetched score (0.7) is above the cut: 0.7 may tie unfetched units.
    partial = relevance_cut(kept, floor=0.1, margin=0.5, last=0.7, exhausted=False, want=1)
    assert partial is not None and not partial.complete
    assert [(u.media_id, s) for u, s in partial.items] == [(1, 0.9), (2, 0.8)]
    assert relevance_cut(kept, floor=0.1, margin=0.5, last=0.7, exhausted=False, want=2) is None
    done = relevance_cut(kept, floor=0.1, margin=0.15, last=0.7, exhausted=False, want=9)
    assert done is not None and done.complete and done.best == 0.9
    assert [u.media_id for u, _ in done.items] == [1, 2]  # 0.7 is below 0.9 - 0.15


# --- exclusions ---------------------------------------------------------------------------------


async def test_exclusions_drop_what_a_search_for_the_term_would_find(env: Env) -> None:
    await env.add("red circle", mix("red", "circle"))
    await env.add("blue circle", mix("blue", "circle"))
    await env.add("circle on a sofa", mix("sofa", "circle"))
    await env.add("red square", mix("red", "square"))
    plain = await env.service.search_text(env.owner, "a circle", strictness="loose")
    assert sorted(uids(plain)) == ["blue circle", "circle on a sofa", "red circle"]

    result = await env.service.search_text(env.owner, "a circle -red", strictness="loose")
    assert result.excluded == ("red",)
    assert uids(result) == ["blue circle", "circle on a sofa"]  # a tie: by media id


async def test_an_exclusion_without_a_match_in_the_collection_removes_nothing(env: Env) -> None:
    await env.add("blue circle", mix("blue", "circle"))
    await env.add("circle on a sofa", mix("sofa", "circle"))
    result = await env.service.search_text(env.owner, "a circle -x3", strictness="loose")
    assert uids(result) == ["blue circle", "circle on a sofa"]


async def test_exclusions_apply_to_frames_so_a_video_keeps_its_other_moments(env: Env) -> None:
    await env.add("video", [mix("red", "circle"), mix("blue", "circle")], times=[1.0, 2.0])
    plain = await env.service.search_text(env.owner, "circle")
    assert plain.hits[0].timestamp == 1.0  # equal scores: the first frame
    result = await env.service.search_text(env.owner, "circle -red")
    assert uids(result) == ["video"] and result.hits[0].timestamp == 2.0
    only_red = await env.service.search_text(env.owner, "circle -red -blue")
    assert only_red.hits == [] and only_red.reason == "no_match"


# --- similar items ------------------------------------------------------------------------------


async def test_similar_reuses_the_stored_vector_and_skips_the_item_itself(env: Env) -> None:
    media_id, (unit,) = await env.add("cat", axis("cat"))
    await env.add("cat2", scored(0.95))
    await env.add("dog", axis("dog"))
    by_unit = await env.service.search_similar(env.owner, unit_id=unit)
    by_media = await env.service.search_similar(env.owner, media_id=media_id)
    assert uids(by_unit) == uids(by_media) == ["cat2"]
    assert env.en.calls == [] and env.ru.calls == []  # nothing was encoded


async def test_similar_to_a_video_frame_excludes_the_whole_video(env: Env) -> None:
    _, frames = await env.add("video", [axis("cat"), scored(0.99)], times=[0.0, 3.0])
    await env.add("cat2", scored(0.9))
    result = await env.service.search_similar(env.owner, unit_id=frames[0], strictness="loose")
    assert uids(result) == ["cat2"]


async def test_similar_with_a_text_and_exclusions(env: Env) -> None:
    media_id, _ = await env.add("sea", axis("sea"))
    await env.add("cat-at-sea", mix("cat", "sea"))
    await env.add("red cat-at-sea", mix("cat", "sea", "red"))
    result = await env.service.search_similar(env.owner, media_id=media_id, text="cat -red")
    assert uids(result) == ["cat-at-sea"]


async def test_similar_to_another_owners_item_is_not_found(env: Env) -> None:
    theirs, (their_unit,) = await env.add("theirs", axis("cat"), owner=env.other)
    await env.add("mine", axis("cat"))
    with pytest.raises(NotFoundError):
        await env.service.search_similar(env.owner, unit_id=their_unit)
    with pytest.raises(NotFoundError):
        await env.service.search_similar(env.owner, media_id=theirs)
    with pytest.raises(NotFoundError):
        await env.service.search_similar(env.owner, media_id=10_000)
    with pytest.raises(ValueError):
        await env.service.search_similar(env.owner)


async def test_only_the_item_itself_means_nothing_else_to_find(env: Env) -> None:
    media_id, _ = await env.add("alone", axis("cat"))
    result = await env.service.search_similar(env.owner, media_id=media_id)
    assert result.hits == [] and result.reason == "empty"


# --- deletion -----------------------------------------------------------------------------------


async def test_deleting_an_item_removes_rows_vectors_and_index_entries(env: Env) -> None:
    video, frames = await env.add("video", [axis("cat"), scored(0.9)], times=[0.0, 1.0])
    await env.add("cat2", scored(0.8))
    assert {m: (await env.index.get(env.owner, m)).ntotal for m in (EN, RU)} == {EN: 3, RU: 3}

    result = await env.collection.delete_media(env.owner, video)
    assert result.media_ids == (video,) and set(result.unit_ids) == set(frames)
    assert await env.store.media.get(video) is None
    assert await env.store.units.by_ids(frames) == {}
    for m in (EN, RU):
        ids, _ = await env.store.vectors.of_units(m, frames)
        assert len(ids) == 0
        idx = await env.index.get(env.owner, m)
        assert idx.ntotal == 1 and idx.version == await env.store.vectors.index_version(m)
    assert uids(await env.service.search_text(env.owner, "cat", strictness="loose")) == ["cat2"]

    with pytest.raises(NotFoundError):
        await env.collection.delete_media(env.owner, video)


async def test_deleting_another_owners_item_is_not_found_and_changes_nothing(env: Env) -> None:
    theirs, _ = await env.add("theirs", axis("cat"), owner=env.other)
    with pytest.raises(NotFoundError):
        await env.collection.delete_media(env.owner, theirs)
    assert await env.db.owner(env.other).media.get(theirs) is not None
    assert (await env.index.get(env.other, EN)).ntotal == 1


async def test_clearing_a_collection_removes_everything_but_the_owner(env: Env) -> None:
    await env.add("cat", axis("cat"))
    await env.add("video", [axis("cat"), axis("dog")], times=[0.0, 2.0])
    await env.add("theirs", axis("cat"), owner=env.other)
    await env.index.flush()
    assert env.index.path(env.owner, EN).exists()

    purge = await env.collection.clear(env.owner)
    assert purge.media_count == 2 and set(purge.models) == {EN, RU}
    stats = await env.store.stats()
    assert stats.media_total == 0 and stats.units == 0 and stats.vectors_by_model == {}
    assert not env.index.path(env.owner, EN).exists()
    assert (await env.service.search_text(env.owner, "cat")).reason == "empty"
    assert await env.db.owners.get(env.owner) is not None
    assert uids(await env.service.search_text(env.other, "cat")) == ["theirs"]

    await env.add("again", axis("cat"))  # the collection works afterwards
    assert uids(await env.service.search_text(env.owner, "cat")) == ["again"]


async def test_forgetting_an_owner_removes_the_owner_too(env: Env) -> None:
    await env.add("cat", axis("cat"))
    await env.index.flush()
    await env.collection.forget_owner(env.owner)
    assert await env.db.owners.get(env.owner) is None
    assert not (env.index.index_dir / str(env.owner)).exists()
    assert (await env.service.search_text(env.owner, "cat")).reason == "empty"


# --- quality with the fixture models ------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models"
FIXTURE_BUNDLES = ("clip-fixture", "ruclip-fixture")
SHAPE_SET = PHOTO_SET  # a dozen; several share the blue square's colour or shape


def _fixtures_present() -> bool:
    return all((FIXTURES / name / "config.json").is_file() for name in FIXTURE_BUNDLES)


@dataclass
class Quality:
    env: Env
    photos: dict[tuple[str, str], bytes]


@pytest.fixture(scope="module")
def fixture_embedders() -> list[Any]:
    if not _fixtures_present():
        pytest.skip(f"fixture bundles not found in {FIXTURES} (python -m tools train-fixture)")
    from core.models.bundle import load_bundle
    from core.models.embedder import OnnxEmbedder

    return [OnnxEmbedder(load_bundle(FIXTURES / name), threads=1) for name in FIXTURE_BUNDLES]


@pytest.fixture
async def quality(
    database_target: DatabaseTarget, tmp_path: Path, fixture_embedders: list[Any]
) -> AsyncIterator[Quality]:
    from tests.fixtures.tooling.shapes import render_shape_photo

    db = await Database.open(database_target("q.db"))
    index = IndexManager(db.vectors, tmp_path / "indexes")
    configs = {e.model_id: e.config for e in fixture_embedders}
    embedder = AsyncEmbedder(fixture_embedders)
    service = SearchService(
        db, embedder, index, TextRouter(configs.values()), configs, make_settings().search
    )
    owner = (await db.owners.ensure("user", 1)).id
    other = (await db.owners.ensure("user", 2)).id
    collection = CollectionService(db, index)
    env = Env(db, index, service, None, None, owner, other, collection)  # type: ignore[arg-type]
    photos: dict[tuple[str, str], bytes] = {}
    for seed, obj in enumerate(SHAPE_SET):
        buf = io.BytesIO()
        render_shape_photo(*obj, seed=100 + seed).save(buf, "PNG")
        photos[obj] = buf.getvalue()
    data = list(photos.values())
    vectors = {m: await embedder.encode_images(data, model_id=m) for m in configs}
    store = db.owner(owner)
    for i, obj in enumerate(photos):
        result = await store.media.commit(
            NewMedia("photo", "-".join(obj), file_id=f"f{i}"),
            [NewUnit.image()],
            {m: v[i : i + 1] for m, v in vectors.items()},
        )
        for m, v in vectors.items():
            await index.add(owner, m, np.array(result.unit_ids), v[i : i + 1], result.versions[m])
    try:
        yield Quality(env, photos)
    finally:
        embedder.close()
        await db.close()


@pytest.mark.parametrize(
    ("text", "model"), [("a blue square", "clip"), ("синий квадрат", "ruclip")]
)
async def test_fixture_models_find_the_blue_square_first(
    quality: Quality, text: str, model: str
) -> None:
    result = await quality.env.service.search_text(quality.env.owner, text)
    assert result.model_id is not None and result.model_id.startswith(model)
    assert uids(result)[0] == "blue-square", uids(result)


async def test_fixture_model_finds_a_resized_copy_of_a_photo(quality: Quality) -> None:
    from PIL import Image

    original = Image.open(io.BytesIO(quality.photos[("blue", "circle")]))
    buf = io.BytesIO()
    original.resize((original.width // 2, original.height // 2)).save(buf, "JPEG", quality=80)
    result = await quality.env.service.search_image(quality.env.owner, buf.getvalue())
    assert uids(result)[0] == "blue-circle"


@pytest.mark.parametrize(("text", "banned"), [("a circle -red", "red"), ("круг -красный", "red")])
async def test_fixture_model_exclusion_removes_the_excluded_colour(
    quality: Quality, text: str, banned: str
) -> None:
    plain = await quality.env.service.search_text(
        quality.env.owner, text.split(" -")[0], strictness="loose"
    )
    result = await quality.env.service.search_text(quality.env.owner, text, strictness="loose")
    assert result.hits, result
    assert not any(u.startswith(banned) for u in uids(result)), uids(result)
    assert uids(result)[0].endswith("circle"), uids(result)
    assert len(plain.hits) >= len(result.hits)
