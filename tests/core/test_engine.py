"""The composition root: every embedding setting reaches the embedders it builds, and the
application services the front ends call (owners, library, folders, queries) work over it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from core.engine.engine import Engine
from core.ingest.fetch import local_fetcher
from core.ingest.request import IngestOutcome, IngestRequest
from core.settings import Settings
from storage import LocalFile
from tests.conftest import DatabaseTarget, database_url
from tests.core.onnx_builders import write_bundle


@pytest.mark.parametrize("runs", [0, 1])
async def test_embedding_settings_reach_the_embedders(tmp_path: Path, runs: int) -> None:
    write_bundle(tmp_path / "model", languages=("en",))
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        model_dirs=[tmp_path / "model"],
        embed_threads=2,
        embed_batch_size=3,
        embed_image_runs=runs,
    )
    engine = await Engine.open(settings)
    try:
        embedder = engine.embedder.get()
        assert embedder.batch_size == 3
        assert embedder.image_runs == (runs or 2)  # 0: one single-threaded run per thread
    finally:
        await engine.close()


def small_settings(tmp_path: Path, database_target: DatabaseTarget) -> Settings:
    write_bundle(tmp_path / "model", languages=("en",))
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        model_dirs=[tmp_path / "model"],
        database_url=database_url(database_target),
    )


async def test_owner_service_finds_moves_and_forgets_owners(
    tmp_path: Path, database_target: DatabaseTarget
) -> None:
    async with await Engine.open(small_settings(tmp_path, database_target)) as engine:
        owners = engine.owners
        assert await owners.find("chat", -1) is None  # finding never creates
        group = await owners.ensure("chat", -1)
        assert await owners.update_settings(group.id, {"page_size": 5}) == {"page_size": 5}
        moved = await owners.move("chat", -1, -100)
        assert moved is not None and moved.id == group.id
        assert (await owners.settings(group.id)) == {"page_size": 5}
        assert (await owners.stats(group.id)).media_total == 0
        assert (await owners.forget(group.id)).media_count == 0
        assert await owners.get(group.id) is None
        local = await owners.ensure_local()
        assert (local.kind, local.external_id) == ("local", "default")


async def test_a_search_only_engine_refuses_new_items(
    tmp_path: Path, database_target: DatabaseTarget
) -> None:
    async with await Engine.open(small_settings(tmp_path, database_target)) as engine:
        owner = await engine.owners.ensure_local()
        assert not engine.library.accepts_items
        file = LocalFile(str(tmp_path / "x.jpg"), 1, 1, "0" * 64)
        with pytest.raises(RuntimeError, match="without an ingest pipeline"):
            await engine.library.submit(IngestRequest.for_local_file(owner.id, file))
        assert await engine.library.newest(owner.id) == []
        session = await engine.queries.results(owner.id).create_session("text", text="cat")
        assert await engine.queries.results(owner.id).session(session.id) == session


async def test_folder_sync_plans_only_new_and_changed_files(
    tmp_path: Path, database_target: DatabaseTarget
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, color in (("a.jpg", "red"), ("b.png", "blue")):
        Image.new("RGB", (32, 32), color).save(photos / name)
    (photos / "notes.txt").write_text("not a photo")
    (photos / ".hidden.jpg").write_bytes((photos / "a.jpg").read_bytes())
    async with await Engine.open(
        small_settings(tmp_path, database_target), fetch=local_fetcher()
    ) as engine:
        owner = await engine.owners.ensure_local()
        plan = await engine.folders.plan(owner.id, photos)
        assert [p.name for p, _ in plan.todo] == ["a.jpg", "b.png"]
        seen: list[IngestOutcome] = []
        report = await engine.folders.ingest(owner.id, plan, on_outcome=seen.append)
        assert report.counts() == {
            "added": 2, "duplicates": 0, "failed": 0, "unchanged": 0, "removed": 0,
        }  # fmt: skip
        assert len(seen) == 2
        (photos / "b.png").unlink()
        again = await engine.folders.plan(owner.id, photos)
        assert (again.todo, again.unchanged, again.removed) == ([], 1, 1)
        assert (await engine.owners.stats(owner.id)).media_total == 1
