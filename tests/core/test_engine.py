"""The composition root: every embedding setting reaches the embedders it builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.engine.engine import Engine
from core.settings import Settings
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
