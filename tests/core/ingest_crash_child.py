"""Run by the crash test: ingest N local photos, print each outcome as it is acknowledged.

Usage: ``python -m tests.core.ingest_crash_child DB IMAGES N``. The first embedding run is free;
every further run of the first model waits for a line on stdin, so the parent decides how far
the process gets before it kills it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from core.index.manager import IndexManager
from core.ingest.fetch import local_fetcher
from core.ingest.pipeline import IngestPipeline
from core.ingest.request import IngestOutcome, IngestRequest
from storage import Database
from tests.core.ingest_fakes import GridEmbedder, make_embedder, settings


def gate(n: int) -> None:
    if n > 0 and not sys.stdin.readline():
        os._exit(3)  # the parent went away


async def main(db_path: Path, images: Path, n: int) -> None:
    db = await Database.open(db_path, max_attempts=3)
    owner = (await db.owners.ensure("user", 1)).id
    a, b = GridEmbedder("grid", "1"), GridEmbedder("gridb", "1", project=32, seed=1)
    a.before_call = gate
    embedder = make_embedder(a, b)
    index = IndexManager(db.vectors, db_path.parent / "indexes")
    s = settings(db_path.parent, ingest_batch_size=2, ingest_queue_size=4)

    def acknowledge(outcome: IngestOutcome) -> None:
        print(outcome.status, outcome.request.file_unique_id, outcome.media_id, flush=True)

    pipeline = IngestPipeline(
        db, embedder, index, s.ingest, local_fetcher(images), video=s.video, on_outcome=acknowledge
    )
    await pipeline.start()
    requests = [
        IngestRequest.of(owner, "photo", f"u{i}", file_id=f"f{i}", path=f"{i}.png")
        for i in range(n)
    ]
    await pipeline.submit_many(requests)
    await pipeline.join()  # not reached: the parent kills the process long before


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])))
