"""A process killed at any moment loses no commit it had acknowledged (WAL, synchronous=NORMAL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from storage import Database

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    import numpy as np
    from storage import Database, NewMedia, NewUnit

    async def main() -> None:
        db = await Database.open(sys.argv[1])
        store = db.owner((await db.owners.ensure("user", 1)).id)
        rng = np.random.default_rng(0)
        i = 0
        while True:  # runs until killed
            i += 1
            job = await store.jobs.enqueue({"n": i})
            await db.queue.claim(1)
            r = await store.media.commit(
                NewMedia("video", f"v{i}"), [NewUnit.frame(t) for t in range(8)],
                {"clip@1": rng.standard_normal((8, 64)).astype(np.float32)}, job_id=job,
            )
            print(r.media_id, flush=True)  # the acknowledgement

    asyncio.run(main())
    """
)


async def test_killed_writer_keeps_every_acknowledged_commit(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    acked: list[int] = []
    try:
        assert proc.stdout is not None
        while len(acked) < 25:
            line = proc.stdout.readline()
            assert line, "writer exited early"
            acked.append(int(line))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    async with await Database.open(path) as db:
        owner = await db.owners.find("user", 1)
        assert owner is not None
        store = db.owner(owner.id)
        found = await store.media.by_ids(acked)
        assert sorted(found) == sorted(acked)
        ids, vectors = await store.vectors.load("clip@1")
        units = await store.units.by_ids(ids.tolist())
        assert {u.media_id for u in units.values()} >= set(acked)
        assert len(ids) % 8 == 0 and np.isfinite(vectors).all()  # whole items only
        done = await store.jobs.all(states=["done"], limit=10_000)
        assert {j.media_id for j in done} >= set(acked)
        assert await store.vectors.index_version("clip@1") == len(ids) // 8
        async with db.read() as conn:
            assert (await conn.execute_fetchall("PRAGMA integrity_check"))[0][0] == "ok"


async def test_write_cancelled_at_any_point_leaves_the_writer_usable(tmp_path: Path) -> None:
    """A task cancelled while BEGIN runs must not leave the shared writer inside a transaction."""
    import asyncio
    from contextlib import suppress

    from storage import Database

    async def one_write(db: Database) -> None:
        async with db.write() as conn:
            await conn.execute("SELECT 1")

    async with await Database.open(tmp_path / "db.sqlite") as db:
        for yields in range(6):  # cancel after 0..5 trips through the loop
            task = asyncio.create_task(one_write(db))
            for _ in range(yields):
                await asyncio.sleep(0)
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
            await one_write(db)  # raises "cannot start a transaction within a transaction"
