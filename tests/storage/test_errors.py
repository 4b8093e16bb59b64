"""Storage's errors: defined in storage, still caught as core errors, told apart by code."""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

import pytest

import core.errors
import storage
import storage.errors
from storage import Database, NewMedia, NewUnit, OwnerStore
from storage.results import is_id_collision
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


def test_id_collisions_are_told_apart_by_code_not_text() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, u TEXT UNIQUE, n INTEGER NOT NULL)")
    conn.execute("INSERT INTO t VALUES (1, 'a', 0)")
    for bad, collision in (
        ("INSERT INTO t VALUES (1, 'b', 0)", True),  # primary key
        ("INSERT INTO t VALUES (2, 'a', 0)", True),  # unique
        ("INSERT INTO t VALUES (3, 'c', NULL)", False),  # not null
    ):
        with pytest.raises(sqlite3.IntegrityError) as caught:
            conn.execute(bad)
        assert is_id_collision(caught.value) is collision, bad


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
