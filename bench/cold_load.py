"""Cold load of an owner's index from the database: PostgreSQL (shared) against SQLite.

What a front end pays the first time it answers an owner it does not hold in memory: the time
from "owner not in memory, no index file" to the first answer of ``IndexManager.search``, which
reads the owner's vectors (float16, as stored) in one snapshot and builds the FAISS index. Also:
the same from the process's own current index file, the price of the freshness check on an
unchanged index (one version read) and of a top-up after another process added 100 items.

Owners of 10k and 100k units of 512-d vectors (``--sizes``). PostgreSQL gets a schema of its own
(dropped afterwards) on the server of ``--url`` (default: IMAGE_FINDER_BENCH_DATABASE_URL, else
IMAGE_FINDER_TEST_DATABASE_URL); without one only SQLite is measured. The rows are written with
raw SQL kept here (COPY on PostgreSQL, executemany on SQLite), not through storage's commit:
populating 100k items one transaction each would take minutes. Every run after the first reads
from the server's buffers / the page cache, as a running front end would.

Prints a markdown table and a final ``RESULT {json}`` line.

    python -m bench.cold_load [--url postgresql://...] [--sizes 10000,100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from bench.machine import cpu_label, load_average
from core.index.manager import IndexManager
from core.settings import IndexSettings
from storage import Database, NewMedia, NewUnit
from storage.vectors import encode_vectors

MODEL = "clip-bench@1"
DIM = 512
URL_ENVS = ("IMAGE_FINDER_BENCH_DATABASE_URL", "IMAGE_FINDER_TEST_DATABASE_URL")
BATCH = 5_000
TOP_UP = 100


def unit_vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class MeteredSource:
    """The database's vector source, timing the snapshot reads and counting their bytes."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.read_s = 0.0
        self.bytes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def vector_snapshot(self, owner_id: int, model_id: str) -> Any:
        started = time.perf_counter()
        snap = await self._inner.vector_snapshot(owner_id, model_id)
        self.read_s += time.perf_counter() - started
        self.bytes += int(snap.ids.nbytes) + int(snap.vectors.shape[0]) * DIM * 2  # float16
        return snap


# --- populating ------------------------------------------------------------------------------


def rows_of(owner_id: int, first: int, n: int, seed: int) -> Iterator[tuple[list[Any], ...]]:
    """Batches of (media, units, vectors) rows: media id = unit id, ids from ``first``."""
    for start in range(0, n, BATCH):
        count = min(BATCH, n - start)
        ids = range(first + start, first + start + count)
        _, blobs = encode_vectors(unit_vectors(count, seed + start))
        media = [[i, owner_id, "photo", f"b{i}", 1_700_000_000] for i in ids]
        units = [[i, owner_id, i, "image"] for i in ids]
        vectors = [[owner_id, i, b] for i, b in zip(ids, blobs, strict=True)]
        yield media, units, vectors


def populate_postgres(url: str, owners: list[tuple[int, int, int]]) -> None:
    import psycopg

    with psycopg.connect(url) as conn, conn.cursor() as cur:
        name, version = MODEL.split("@")
        cur.execute("SELECT id FROM models WHERE name = %s AND version = %s", (name, version))
        model_key = int(cur.fetchone()[0])  # type: ignore[index]
        for owner_id, first, n in owners:
            for media, units, vectors in rows_of(owner_id, first, n, seed=owner_id):
                with cur.copy(
                    "COPY media (id, owner_id, kind, file_unique_id, created_at) FROM STDIN"
                ) as cp:
                    for r in media:
                        cp.write_row(r)
                with cur.copy("COPY units (id, owner_id, media_id, kind) FROM STDIN") as cp:
                    for r in units:
                        cp.write_row(r)
                with cur.copy("COPY vectors (owner_id, unit_id, model, data) FROM STDIN") as cp:
                    for o, u, b in vectors:
                        cp.write_row((o, u, model_key, b))
            cur.execute(
                "INSERT INTO index_versions (owner_id, model, version) VALUES (%s, %s, 1)",
                (owner_id, model_key),
            )
        for table in ("media", "units", "vectors"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
            )
        cur.execute("ANALYZE")


def populate_sqlite(path: Path, owners: list[tuple[int, int, int]]) -> None:
    conn = sqlite3.connect(path)
    try:
        name, version = MODEL.split("@")
        found = conn.execute(
            "SELECT id FROM models WHERE name = ? AND version = ?", (name, version)
        ).fetchone()
        model_key = int(found[0])
        with conn:
            for owner_id, first, n in owners:
                for media, units, vectors in rows_of(owner_id, first, n, seed=owner_id):
                    conn.executemany(
                        "INSERT INTO media (id, owner_id, kind, file_unique_id, created_at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        media,
                    )
                    conn.executemany(
                        "INSERT INTO units (id, owner_id, media_id, kind) VALUES (?, ?, ?, ?)",
                        units,
                    )
                    conn.executemany(
                        "INSERT INTO vectors (owner_id, unit_id, model, data) VALUES (?, ?, ?, ?)",
                        [(o, u, model_key, b) for o, u, b in vectors],
                    )
                conn.execute(
                    "INSERT INTO index_versions (owner_id, model, version) VALUES (?, ?, 1)",
                    (owner_id, model_key),
                )
    finally:
        conn.close()


# --- measuring -------------------------------------------------------------------------------


@dataclass
class Row:
    backend: str
    n: int
    cold_ms: list[float] = field(default_factory=list)
    read_ms: list[float] = field(default_factory=list)
    file_ms: list[float] = field(default_factory=list)
    check_ms: list[float] = field(default_factory=list)
    top_up_ms: float = 0.0
    bytes_read: int = 0

    def summary(self) -> dict[str, float | int | str]:
        cold, read = p50(self.cold_ms), p50(self.read_ms)
        return {
            "backend": self.backend,
            "n": self.n,
            "cold_p50_ms": cold,
            "cold_first_ms": round(self.cold_ms[0], 1),
            "read_p50_ms": read,
            "build_p50_ms": round(cold - read, 1),
            "file_p50_ms": p50(self.file_ms),
            "check_p50_ms": p50(self.check_ms, 3),
            "top_up_ms": round(self.top_up_ms, 1),
            "bytes_read": self.bytes_read,
            "mb_per_s": round(self.bytes_read / 1e6 / (read / 1e3), 1) if read else 0.0,
        }


def p50(values: list[float], digits: int = 1) -> float:
    return round(statistics.median(values), digits) if values else 0.0


async def timed(call: Callable[..., Awaitable[object]], *args: Any) -> float:
    started = time.perf_counter()
    await call(*args)
    return (time.perf_counter() - started) * 1e3


async def measure_owner(
    backend: str, db: Database, owner_id: int, n: int, runs: int, work: Path
) -> Row:
    row = Row(backend, n)
    query = unit_vectors(1, seed=99)
    settings = IndexSettings()
    for run in range(runs):
        source = MeteredSource(db.vectors)
        mgr = IndexManager(source, work / f"{backend}-{n}-{run}", settings, shared=True)
        row.cold_ms.append(await timed(mgr.search, owner_id, MODEL, query, 10))
        row.read_ms.append(source.read_s * 1e3)
        row.bytes_read = source.bytes
        for _ in range(5):
            row.check_ms.append(await timed(mgr.refresh, [(owner_id, MODEL)]))
        await mgr.flush()
        again = IndexManager(db.vectors, work / f"{backend}-{n}-{run}", settings, shared=True)
        row.file_ms.append(await timed(again.search, owner_id, MODEL, query, 10))
        assert again.stats.loads == 1, "the current file was not used"
        if run == runs - 1:
            await add_elsewhere(db, owner_id)
            row.top_up_ms = await timed(mgr.search, owner_id, MODEL, query, 10)
            assert mgr.stats.top_ups == 1, "another process's additions were not topped up"
    return row


async def add_elsewhere(db: Database, owner_id: int) -> None:
    """TOP_UP items committed as another process would (this manager is not told)."""
    store = db.owner(owner_id)
    for i, v in enumerate(unit_vectors(TOP_UP, seed=7)):
        await store.media.commit(
            NewMedia("photo", f"later-{i}", file_id=f"later-{i}"),
            [NewUnit.image()],
            {MODEL: v[None, :]},
        )


async def bench_backend(
    backend: str, target: str | Path, sizes: list[int], runs: int, work: Path
) -> list[Row]:
    db = await Database.open(target)
    try:
        await db.models.register(MODEL, DIM)
        owners = [(await db.owners.ensure("user", 1_000 + i)).id for i in range(len(sizes))]
    finally:
        await db.close()
    plan, first = [], 1
    for owner_id, n in zip(owners, sizes, strict=True):
        plan.append((owner_id, first, n))
        first += n
    started = time.perf_counter()
    if backend == "postgresql":
        populate_postgres(str(target), plan)
    else:
        populate_sqlite(Path(target), plan)
    print(f"{backend}: populated {sum(sizes):,} units in {time.perf_counter() - started:.1f} s")
    db = await Database.open(target)
    try:
        return [
            await measure_owner(backend, db, o, n, runs, work)
            for o, n in zip(owners, sizes, strict=True)
        ]
    finally:
        await db.close()


def with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


def run_postgres(url: str, sizes: list[int], runs: int, work: Path) -> list[Row]:
    import psycopg

    schema = f"bench_cold_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        return asyncio.run(bench_backend("postgresql", with_schema(url, schema), sizes, runs, work))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url", default=next((os.environ[e] for e in URL_ENVS if e in os.environ), "")
    )
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated owner sizes")
    parser.add_argument("--runs", type=int, default=5, help="cold loads per owner and backend")
    parser.add_argument("--backends", default="postgresql,sqlite")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    backends = [b for b in args.backends.split(",") if b.strip()]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="cold-load-") as tmp:
        work = Path(tmp)
        if "postgresql" in backends:
            if args.url:
                rows += run_postgres(args.url, sizes, args.runs, work)
            else:
                print("no PostgreSQL URL (--url or " + " / ".join(URL_ENVS) + "): skipped")
        if "sqlite" in backends:
            db_path = work / "cold.db"
            rows += asyncio.run(bench_backend("sqlite", db_path, sizes, args.runs, work))
    cpu = cpu_model()
    print(f"\nCPU: {cpu} ({cpu_label()}), load {load_average()}, {args.runs} runs, d={DIM}")
    cols = ["backend", "units", "cold p50 ms", "first ms", "read ms", "build ms", "MB read"]
    cols += ["MB/s", "from file ms", "check ms", f"top-up {TOP_UP} ms"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    summaries = [r.summary() for r in rows]
    for s in summaries:
        cells = [s["backend"], f"{s['n']:,}", s["cold_p50_ms"], s["cold_first_ms"]]
        cells += [s["read_p50_ms"], s["build_p50_ms"], round(int(s["bytes_read"]) / 1e6, 1)]
        cells += [s["mb_per_s"], s["file_p50_ms"], s["check_p50_ms"], s["top_up_ms"]]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    result = {"cpu": cpu, "flags": cpu_label(), "runs": args.runs, "dim": DIM, "rows": summaries}
    print("RESULT " + json.dumps(result, sort_keys=True))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
