"""Shared data of the tokenizer tests: the corpus, the reference goldens, the fixture models."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from core.models.text.clip_bpe import write_clip_tokenizer_json
from tests.core.text.make_goldens import CORPUS, GOLDENS, YTTM_MODEL


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return json.loads(CORPUS.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def goldens() -> dict[str, Any]:
    data = json.loads(GOLDENS.read_text(encoding="utf-8"))
    corpus_sha = hashlib.sha256(CORPUS.read_bytes()).hexdigest()
    assert data["corpus_sha256"] == corpus_sha, "goldens are stale: rerun make_goldens.py"
    return data


@pytest.fixture(scope="session")
def clip_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tokenizer.json`` built from the vendored open_clip vocabulary."""
    return write_clip_tokenizer_json(tmp_path_factory.mktemp("clip") / "tokenizer.json")


@pytest.fixture(scope="session")
def yttm_model() -> Path:
    return YTTM_MODEL
