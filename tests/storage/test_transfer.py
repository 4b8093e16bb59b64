"""Moving a SQLite collection to PostgreSQL: every row with its id, vectors byte for byte, the
same search answers on both, and a refusal to move into a database that holds anything.

The collection is filled through the engine with the fixture models (photos, a video with its
frames, captions, near-duplicates, finished and failed jobs) plus OCR texts, result messages
and a search session through storage, for two owners.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.engine.engine import Engine
from core.ingest.pipeline import IngestRequest
from core.search.query import Query
from core.settings import Settings
from storage import Database
from storage.db import default_database_path
from storage.transfer import TargetNotEmptyError, TransferError, transfer
from tests.e2e.search_support import fixture_models_present, model_dirs, scenes_mp4, shape_jpeg
from tests.fixtures.tooling.shapes import render_shape_photo
from tests.postgres_support import fresh_schema

pytestmark = pytest.mark.skipif(not fixture_models_present(), reason="fixture models missing")

PHOTOS = [("red", "circle"), ("blue", "square"), ("green", "triangle"), ("yellow", "star")]
QUERIES = ["a red circle", "синий квадрат", "holiday", "receipt total", "a green triangle"]


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_schema("move") as url:
        yield url


def settings(data_dir: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "model_dirs": model_dirs(data_dir, quality=True),
        "embed_threads": 1,
        "ocr_enabled": False,
        "near_duplicate_threshold": 0.9,
        "ingest_retry_backoff_s": 0.0,
    }
    return Settings(_env_file=None, **values, **extra)  # type: ignore[call-arg]


class Files:
    """What the engine's fetch serves: bytes by Telegram file id; a missing id fails."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    async def __call__(self, request: IngestRequest, thumbnail: bool) -> bytes | Path:
        file_id = request.facts.file_id or ""
        if file_id not in self.blobs:
            raise OSError(f"no file {file_id}")
        return self.blobs[file_id]


async def populate(data_dir: Path, work: Path) -> dict[str, int]:
    """Two owners' collections in DATA_DIR's SQLite file; returns a few ids the test uses."""
    files = Files()
    ids: dict[str, int] = {}
    async with await Engine.open(settings(data_dir), fetch=files) as engine:
        alice = (await engine.db.owners.ensure("user", 1001)).id
        boris = (await engine.db.owners.ensure("user", 1002)).id

        async def submit(owner: int, uid: str, data: bytes, **facts: Any) -> Any:
            if data:
                files.blobs[f"f-{uid}"] = data
            return await (
                await engine.library.submit(
                    IngestRequest.of(
                        owner, facts.pop("kind", "photo"), uid, file_id=f"f-{uid}", **facts
                    )
                )
            ).result()

        for i, (colour, shape) in enumerate(PHOTOS):
            for owner in (alice, boris):
                caption = "holiday at the sea" if (i, owner) == (1, alice) else None
                out = await submit(
                    owner,
                    f"{colour}-{shape}-{owner}",
                    shape_jpeg(colour, shape, seed=i),
                    caption=caption,
                )
                assert out.status == "saved", out
                ids[f"{colour}-{shape}-{owner}"] = out.media_id
        # The same picture again, slightly larger: a near-duplicate of the first.
        out = await submit(
            alice, "red-circle-again", shape_jpeg("red", "circle", seed=0, size=(360, 270))
        )
        assert out.status == "saved", out
        ids["again"] = out.media_id
        video = scenes_mp4(
            work / "clip.mp4",
            [
                (3.0, render_shape_photo("blue", "square", seed=7, size=(160, 120))),
                (3.0, render_shape_photo("red", "circle", seed=8, size=(160, 120))),
            ],
        )
        out = await submit(
            alice,
            "clip",
            video,
            kind="video",
            duration=6.0,
            width=160,
            height=120,
            mime="video/mp4",
        )
        assert out.status == "saved", out
        ids["video"] = out.media_id
        failed = await submit(boris, "missing", b"")
        assert failed.status != "saved"

        store = engine.db.owner(alice)
        assert await store.texts.put(ids[f"green-triangle-{alice}"], "ocr", "receipt total 42")
        assert await store.near_duplicates.count() >= 1
        results = engine.queries.results(alice)
        await results.record(
            1001, [(500, ids["video"], None), (501, ids[f"red-circle-{alice}"], None)]
        )
        await results.create_session("text", text="a red circle")
    ids["alice"], ids["boris"] = alice, boris
    return ids


async def answers(engine: Engine, owner: int, query_photo: bytes) -> list[list[tuple[int, int]]]:
    """The (media id, unit id) of every hit of each query, in order."""
    out = []
    for text in QUERIES:
        result = await engine.queries.search(owner, Query.from_text(text))
        out.append([(h.media.id, h.unit_id) for h in result.hits])
    result = await engine.queries.search(owner, Query(image=query_photo))
    out.append([(h.media.id, h.unit_id) for h in result.hits])
    return out


async def all_vectors(db: Database) -> list[tuple[int, int, int, bytes]]:
    async with db.read() as conn:
        rows = await conn.execute_fetchall(
            "SELECT owner_id, unit_id, model, data FROM vectors ORDER BY owner_id, unit_id, model"
        )
    return [(int(o), int(u), int(m), bytes(d)) for o, u, m, d in rows]


async def test_a_collection_moves_whole_and_answers_the_same(tmp_path: Path, pg_url: str) -> None:
    sqlite_dir, pg_dir = tmp_path / "sqlite", tmp_path / "pg"
    ids = await populate(sqlite_dir, tmp_path)
    seen: list[tuple[str, int, int]] = []

    async with (
        await Database.open(default_database_path(sqlite_dir)) as source,
        await Database.open(pg_url) as target,
    ):
        report = await transfer(
            source, target, batch=3, progress=lambda t, n, total: seen.append((t, n, total))
        )
        assert report.verified, report.mismatches
        assert report.tables["vectors"][0] > 10 and report.tables["units"][0] > 10
        for table in (
            "owners",
            "media",
            "jobs",
            "result_messages",
            "search_sessions",
            "media_texts",
            "near_duplicates",
            "index_versions",
        ):
            assert report.tables[table][0] > 0, table
        assert report.text_index[0] >= 2
        assert len(report.vectors) == 4  # two owners, two models
        # Progress: per batch of three rows, ending on each table's total.
        assert ("media", 3, report.tables["media"][0]) in seen
        assert {t for t, n, total in seen if n == total} >= set(report.tables) - {
            "media_text_backlog"
        }
        assert await all_vectors(source) == await all_vectors(target)
        async with source.read() as a, target.read() as b:
            for table in ("media", "units", "jobs", "owners", "near_duplicates"):
                sql = f"SELECT * FROM {table} ORDER BY 1, 2"
                assert await a.execute_fetchall(sql) == await b.execute_fetchall(sql), table

        # Identities continue past the copied ids (never reusing a deleted unit's id).
        owner = await target.owners.ensure("user", 1003)
        assert owner.id > ids["boris"]

        # A second move into the now non-empty database refuses, naming what is there.
        with pytest.raises(TargetNotEmptyError, match="owners"):
            await transfer(source, target)

    query_photo = shape_jpeg("red", "circle", seed=3, size=(300, 300))
    async with await Engine.open(settings(sqlite_dir)) as engine:
        before = await answers(engine, ids["alice"], query_photo)
        other = await answers(engine, ids["boris"], query_photo)
    async with await Engine.open(settings(pg_dir, database_url=pg_url)) as engine:
        assert await answers(engine, ids["alice"], query_photo) == before
        assert await answers(engine, ids["boris"], query_photo) == other
    assert before[0] and before[2][0][0] == ids[f"blue-square-{ids['alice']}"]  # its caption
    assert before[3] and before[3][0][0] == ids[f"green-triangle-{ids['alice']}"]
    top = {m for m, _ in before[-1][:3]}  # red circles: the photo, its copy, the video's frame
    assert top == {ids[f"red-circle-{ids['alice']}"], ids["again"], ids["video"]}


async def test_a_move_needs_the_same_version_and_the_right_direction(
    tmp_path: Path, pg_url: str
) -> None:
    async with (
        await Database.open(tmp_path / "a.db") as source,
        await Database.open(pg_url) as target,
    ):
        with pytest.raises(TransferError, match="SQLite collection to a PostgreSQL"):
            await transfer(target, source)
        async with target.write() as conn:
            await conn.execute("DELETE FROM schema_migrations WHERE name LIKE '0007%'")
        with pytest.raises(TransferError, match="different migration versions"):
            await transfer(source, target)


def command(*argv: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """``python -m bot ARGV`` with DATA_DIR set and an empty settings file."""
    env_file = data_dir.parent / "empty.env"
    env_file.write_text("")
    env = {**os.environ, "DATA_DIR": str(data_dir), "IMAGE_FINDER_ENV_FILE": str(env_file)}
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_command_moves_verifies_and_then_refuses(tmp_path: Path, pg_url: str) -> None:
    data_dir = tmp_path / "data"
    ids = asyncio.run(populate(data_dir, tmp_path))

    done = command("move-to-postgres", pg_url, data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    assert "  media: " in done.stdout and "  vectors: " in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith("verified: ")
    assert "image_finder:image_finder@" not in done.stdout  # no password printed

    async def owners_there() -> list[int]:
        async with await Database.open(pg_url) as db:
            return await db.owners.ids()

    assert sorted(asyncio.run(owners_there())) == sorted([ids["alice"], ids["boris"]])

    again = command("move-to-postgres", pg_url, data_dir=data_dir)
    assert again.returncode == 2
    (line,) = again.stderr.strip().splitlines()
    assert line.startswith("error: the PostgreSQL database is not empty (rows in "), line
    assert "owners" in line and "vectors" in line

    refused = command("move-to-postgres", "postgresql://x:y@127.0.0.1:1/none", data_dir=data_dir)
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("error: cannot connect to PostgreSQL"), line

    missing = command("move-to-postgres", pg_url, data_dir=tmp_path / "empty")
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        f"error: no collection at {tmp_path / 'empty' / 'image-finder.db'}: check DATA_DIR"
    )


def test_the_folder_cli_moves_its_own_collection(tmp_path: Path, pg_url: str) -> None:
    from cli.__main__ import main

    data_dir = tmp_path / "data"
    asyncio.run(populate(data_dir, tmp_path))
    out = io.StringIO()
    assert main(["--data-dir", str(data_dir), "move-to-postgres", pg_url], out) == 0
    assert out.getvalue().rstrip().splitlines()[-1].startswith("verified: ")
    assert main(["--data-dir", str(data_dir), "move-to-postgres", pg_url], out) == 2
