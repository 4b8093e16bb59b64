"""Prove a bundle works end to end: the one place that needs both the loader and the embedder.

:mod:`core.models.bundle` only reads and checks files, and :mod:`core.models.embedder` builds on
it; this module sits above both, so imports between the two go one way only.
"""

from __future__ import annotations

from pathlib import Path

from core.models.bundle import Bundle, load_bundle
from core.models.embedder import OnnxEmbedder


def check_bundle(path: str | Path, *, threads: int = 1) -> Bundle:
    """Load a bundle and prove it works: sessions, I/O, tokenizer, one dummy inference each."""
    bundle = load_bundle(path)
    OnnxEmbedder(bundle, threads=threads).validate()
    return bundle
