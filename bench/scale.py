"""Ingest throughput of inference workers on PostgreSQL: 1, 2 and 3 ``python -m bot worker``
processes draining the same backlog.

For each worker count: a fresh schema, the fake Telegram server holding N photo-like JPEGs
(``bench.embed.photo_like_jpeg``), the workers started and ready on an empty queue, then N jobs
enqueued in one transaction; the figure is N over the time from the enqueue until every job has
ended (done or failed), i.e. fetch by file_id over the Bot API, decode, embed, commit and notify,
with the claims and lease renewals of several workers contending on one queue. Each worker runs
ONNX Runtime with ``--threads`` threads per run (default 1), but a full batch still goes as
parallel runs, one per CPU, with decoding on further threads: one worker alone may already fill
the machine, and the table says where more workers stop adding. Per-worker efficiency is
images/s per worker over the one-worker figure.

Model (``--model``): ``standin`` (default) is the default model's image tower at its exact
shapes with random weights (``bench/ocr_baseline.py``: SigLIP 2 B/32-256), projected to the
fixture bundle's dimension and packed with the fixture's text tower, since ingest runs only the
image tower; ``fixture`` is the trained fixture bundle (cheap towers: the queue's own overhead).
OCR is off in the workers (its cost is ``bench/ocr.py``'s).

    python -m bench.scale --url postgresql://user:pw@127.0.0.1:5432/db [--photos 120]

The URL comes from ``--url``, else ``IMAGE_FINDER_BENCH_DATABASE_URL``, ``BENCH_DATABASE_URL``,
``IMAGE_FINDER_TEST_DATABASE_URL`` or ``DATABASE_URL``; the role needs CREATE on the database
(a schema per run, dropped after).
Prints a table and a final ``RESULT {json}`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import onnx
from onnx import helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.embed import photo_like_jpeg  # noqa: E402
from bench.machine import cpu_label, load_average  # noqa: E402
from tests.e2e.botapp import photo_request  # noqa: E402
from tests.e2e.fake_telegram import FakeTelegramServer  # noqa: E402
from tests.e2e.harness import BotProcess, bot_env  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "models" / "clip-fixture"
URL_ENVS = (
    "IMAGE_FINDER_BENCH_DATABASE_URL",
    "BENCH_DATABASE_URL",
    "IMAGE_FINDER_TEST_DATABASE_URL",
    "DATABASE_URL",
)
READY_TIMEOUT_S = 180.0


# --- the model ---------------------------------------------------------------------------------


def standin_bundle(out: Path) -> Path:
    """The fixture bundle with its image tower replaced by the SigLIP 2 B/32-256 stand-in
    (256 px, 12 layers at width 768) plus a projection to the fixture's dimension."""
    from bench.ocr_baseline import SIDE, WIDTH, build

    bundle = out / "siglip2-b32-256-standin"
    if (bundle / "config.json").is_file():
        return bundle
    bundle.mkdir(parents=True, exist_ok=True)
    config = json.loads((FIXTURE / "config.json").read_text(encoding="utf-8"))
    dim = int(config["embed_dim"])
    model = onnx.load_from_string(build())
    graph = model.graph
    tower_out = graph.output[0].name
    weights = np.random.default_rng(7).standard_normal((WIDTH, dim)).astype(np.float32) * 0.02
    graph.initializer.append(numpy_helper.from_array(weights, "standin_projection"))
    graph.node.append(helper.make_node("MatMul", [tower_out, "standin_projection"], ["embedding"]))
    del graph.output[:]
    graph.output.append(
        helper.make_tensor_value_info("embedding", onnx.TensorProto.FLOAT, [1, dim])
    )
    onnx.save(model, str(bundle / "visual.onnx"))
    for name in ("textual.onnx", "tokenizer.json"):
        shutil.copy(FIXTURE / name, bundle / name)
    config.update(
        name="siglip2-b32-256-standin",
        source="random-weight SigLIP 2 B/32-256 image tower (bench/ocr_baseline.py) + fixture text",
    )
    config["image"].update(size=SIDE, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])
    (bundle / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return bundle


# --- one run -----------------------------------------------------------------------------------


def schema_url(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


async def create_schema(url: str, schema: str, *, drop: bool = False) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        if drop:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        else:
            await conn.execute(f'CREATE SCHEMA "{schema}"')


def worker_env(
    telegram: FakeTelegramServer, url: str, bundle: Path, data: Path, args: argparse.Namespace
) -> dict[str, str]:
    return bot_env(
        telegram,
        IMAGE_FINDER_ENV_FILE="",
        DATA_DIR=str(data),
        MODEL_DIRS=str(bundle),
        DATABASE_URL=url,
        DATABASE_POOL_SIZE="2",
        EMBED_THREADS=str(args.threads),
        INGEST_BATCH_SIZE=str(args.batch),
        INGEST_QUEUE_SIZE=str(args.queue),
        INGEST_WORKERS="2",
        NEAR_DUPLICATE_THRESHOLD="1",
        OCR_ENABLED="false",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )


async def drain(url: str, photos: Sequence[bytes], workers: int, bundle: Path, args: Any) -> dict:
    """Start ``workers`` workers on a fresh schema, enqueue every photo, time until all ended."""
    from storage.db import Database

    schema = f"bench_scale_{secrets.token_hex(4)}"
    await create_schema(url, schema)
    target = schema_url(url, schema)
    processes: list[BotProcess] = []
    try:
        async with FakeTelegramServer() as telegram:
            stored = [telegram.register_photo(p)[-1] for p in photos]
            db = await Database.open(target)  # migrates before any worker starts
            try:
                owner = (await db.owners.ensure("user", 1001)).id
                with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
                    for i in range(workers):
                        env = worker_env(telegram, target, bundle, Path(tmp) / f"w{i}", args)
                        processes.append(await BotProcess(["-m", "bot", "worker"], env=env).start())
                    for process in processes:
                        await process.wait_output(r"worker \S+ ready", timeout=READY_TIMEOUT_S)
                    payloads = [photo_request(owner, s).to_payload() for s in stored]
                    start = time.perf_counter()
                    await db.owner(owner).jobs.enqueue_many(payloads)
                    counts = await until_ended(db, len(payloads), args.timeout)
                    seconds = time.perf_counter() - start
                    for process in processes:
                        await process.stop(timeout=30)
            finally:
                await db.close()
    finally:
        for process in processes:
            if process.returncode is None:
                await process.kill()
        await create_schema(url, schema, drop=True)
    return {
        "workers": workers,
        "photos": len(photos),
        "seconds": round(seconds, 2),
        "images_per_s": round(len(photos) / seconds, 2),
        "failed": counts.get("failed", 0),
        "getfile_calls": len(telegram.calls_of("getFile")),
    }


async def until_ended(db: Any, total: int, timeout: float) -> dict[str, int]:
    """Every job done or failed; polled, since the workers are other processes."""
    deadline = time.monotonic() + timeout
    while True:
        counts: dict[str, int] = await db.queue.counts()
        if counts.get("done", 0) + counts.get("failed", 0) >= total:
            return counts
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs not finished after {timeout:g}s: {counts}")
        await asyncio.sleep(0.02)


# --- report ------------------------------------------------------------------------------------


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'workers':>7} {'photos':>6} {'seconds':>8} {'images/s':>9} {'speed-up':>8} "
        f"{'per-worker eff.':>15} {'failed':>6}"
    ]
    for row in rows:
        lines.append(
            f"{row['workers']:>7} {row['photos']:>6} {row['seconds']:>8.2f} "
            f"{row['images_per_s']:>9.2f} {row['speedup']:>7.2f}x {row['efficiency']:>14.0%} "
            f"{row['failed']:>6}"
        )
    return "\n".join(lines)


def plateau(rows: list[dict[str, Any]], within: float = 0.1) -> int:
    """The fewest workers within 10% of the best throughput: more add (next to) nothing."""
    best = max(r["images_per_s"] for r in rows)
    return int(min(r["workers"] for r in rows if r["images_per_s"] >= best * (1 - within)))


def database_url(given: str | None) -> str:
    url = given or next((os.environ[k] for k in URL_ENVS if os.environ.get(k)), "")
    if not url.startswith(("postgresql://", "postgres://")):
        raise SystemExit(f"a PostgreSQL URL is needed: --url, or one of {', '.join(URL_ENVS)}")
    return url


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = database_url(args.url)
    out = Path(args.out)
    bundle = standin_bundle(out) if args.model == "standin" else FIXTURE
    photos = [photo_like_jpeg(args.width, args.height, seed) for seed in range(args.photos)]
    rows = []
    for workers in args.workers:
        best: dict[str, Any] | None = None
        for _ in range(args.repeat):
            row = await drain(url, photos, workers, bundle, args)
            print(f"  {workers} worker(s): {row['images_per_s']} images/s", flush=True)
            if best is None or row["images_per_s"] > best["images_per_s"]:
                best = row
        assert best is not None
        rows.append(best)
    base = rows[0]["images_per_s"] / rows[0]["workers"]
    for row in rows:
        row["speedup"] = round(row["images_per_s"] / rows[0]["images_per_s"], 2)
        row["efficiency"] = round(row["images_per_s"] / row["workers"] / base, 2)
    return {
        "model": bundle.name,
        "photo": f"{args.width}x{args.height}",
        "threads_per_worker": args.threads,
        "batch": args.batch,
        "cores": os.cpu_count(),
        "cpu": cpu_label(),
        "load": load_average(),
        "rows": rows,
        "plateau_workers": plateau(rows),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="PostgreSQL URL (default: from the environment)")
    ap.add_argument("--photos", type=int, default=120, help="backlog size")
    ap.add_argument("--workers", type=lambda v: [int(x) for x in v.split(",")], default=[1, 2, 3])
    ap.add_argument("--model", choices=("standin", "fixture"), default="standin")
    ap.add_argument("--threads", type=int, default=1, help="EMBED_THREADS of each worker")
    ap.add_argument("--batch", type=int, default=16, help="INGEST_BATCH_SIZE")
    ap.add_argument("--queue", type=int, default=16, help="INGEST_QUEUE_SIZE (claimed at once)")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=960)
    ap.add_argument("--repeat", type=int, default=1, help="runs per worker count (best kept)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"), help="where the model goes")
    args = ap.parse_args(argv)
    result = asyncio.run(run(args))
    print(
        f"\nworkers on PostgreSQL, {result['model']}, {result['photo']} JPEGs, "
        f"{result['threads_per_worker']} thread(s) each, {result['cores']} cores, "
        f"{result['cpu']}, load {result['load']}"
    )
    print(table(result["rows"]))
    print(f"plateau: {result['plateau_workers']} worker(s)")
    print("RESULT " + json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
