"""Storage's errors: defined in storage, still caught as core errors, told apart by code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import core.errors
import storage
import storage.errors
import storage.results
from storage import Database, NewMedia, NewUnit, OwnerStore
from storage.dbapi import INTEGRITY_ERRORS
from storage.results import ResultStore
from tests.storage.conftest import CLIP, vecs


async def test_except_image_finder_error_catches_a_storage_error(db: Database) -> None:
    ghost = db.owner(999_999)
    with pytest.raises(core.errors.ImageFinderError) as caught:
        await ghost.jobs.enqueue({})
    assert isinstance(caught.value, core.errors.UnknownOwnerError)
    assert caught.value.code == "owner_unknown"
    try:
        await ghost.profile.update_settings({"a": 1})
    except core.errors.ImageFinderError as exc:  # the form core, bot and cli use
        assert exc.code == "owner_unknown"
    else:  # pragma: no cover
        pytest.fail("UnknownOwnerError was not raised")


def test_core_errors_re_exports_storage_errors_with_their_codes() -> None:
    codes = {
        "StorageError": "storage",
        "MigrationError": "migration",
        "VectorError": "vector",
        "UnknownOwnerError": "owner_unknown",
        "UnknownUnitError": "unit_unknown",
        "JobStateError": "job_state",
        "IncompleteModelError": "model_incomplete",
        "UnknownMediaError": "media_unknown",
    }
    for name, code in codes.items():
        cls = getattr(storage.errors, name)
        assert getattr(core.errors, name) is cls
        assert issubclass(cls, core.errors.ImageFinderError) and cls.code == code


def test_storage_imports_nothing_from_core() -> None:
    for path in Path(storage.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] != "core", f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] != "core" for a in node.names), path.name


async def test_a_session_id_drawn_twice_is_drawn_again(
    db: Database, store: OwnerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = ResultStore(db, store.owner_id)
    first = await results.create_session("text", text="cat")
    draws = iter([first.id, first.id, first.id + 1])
    monkeypatch.setattr(storage.results.secrets, "randbits", lambda _bits: next(draws))
    second = await results.create_session("text", text="dog")
    assert second.id == first.id + 1
    assert (await results.session(first.id)).text == "cat"  # type: ignore[union-attr]
    assert (await results.session(second.id)).text == "dog"  # type: ignore[union-attr]


async def test_a_broken_constraint_still_raises_and_leaves_the_writer_usable(
    db: Database, store: OwnerStore
) -> None:
    results = ResultStore(db, store.owner_id)
    with pytest.raises(INTEGRITY_ERRORS):
        await results.create_session("photo", text="no file")
    assert (await results.create_session("text", text="ok")).text == "ok"


async def test_video_seconds_count_videos_animations_and_notes(store: OwnerStore) -> None:
    assert await store.media.video_seconds() == 0.0
    for kind, uid, duration in (
        ("video", "v", 12.5),
        ("animation", "a", 3.0),
        ("video_note", "n", 1.5),
        ("photo", "p", 99.0),  # not a video: ignored
    ):
        media = NewMedia(kind, uid, file_id=f"f-{uid}", duration=duration)  # type: ignore[arg-type]
        await store.media.commit(media, [NewUnit.image()], {CLIP: vecs(1)})
    assert await store.media.video_seconds() == 17.0
