"""Fixtures for storage tests: a fresh database file per test and small item builders."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from storage import Database, NewMedia, NewUnit, OwnerStore
from tests.conftest import DatabaseTarget

CLIP = "clip-test@1"
RUCLIP = "ruclip-test@1"
DIM = 8


class Clock:
    """A settable clock, so tests about times never sleep."""

    def __init__(self, now: float = 1_700_000_000) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def db(database_target: DatabaseTarget, clock: Clock) -> AsyncIterator[Database]:
    database = await Database.open(database_target("test.db"), clock=clock, max_attempts=3)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def store(db: Database) -> OwnerStore:
    owner = await db.owners.ensure("user", 1001)
    return db.owner(owner.id)


def vecs(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """n L2-normalised float32 vectors."""
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def photo(uid: str, **kw: object) -> NewMedia:
    return NewMedia("photo", uid, file_id=f"file-{uid}", **kw)  # type: ignore[arg-type]


async def add_photo(store: OwnerStore, uid: str, seed: int = 0, **kw: object):
    """Commit a photo with one unit and vectors for both test models."""
    return await store.media.commit(
        photo(uid, **kw),
        [NewUnit.image()],
        {CLIP: vecs(1, seed=seed), RUCLIP: vecs(1, dim=DIM * 2, seed=seed + 1)},
    )


async def add_video(store: OwnerStore, uid: str, times: list[float], seed: int = 0):
    n = len(times)
    return await store.media.commit(
        NewMedia("video", uid, file_id=f"file-{uid}", duration=max(times) + 1),
        [NewUnit.frame(t) for t in times],
        {CLIP: vecs(n, seed=seed), RUCLIP: vecs(n, dim=DIM * 2, seed=seed + 1)},
    )
