"""Text-query latency of the text index, PostgreSQL against SQLite, through ``OwnerTexts.search``.

One owner with ``--items`` items (10k by default), each with a caption of bench/text_index.py's
corpus and, on most of them, an OCR-like text (several captions' worth of words, numbers and
misread letters, 20 to 120 words). The same items go into a SQLite file and into a PostgreSQL
schema of the bench's own (created on the server ``--database-url`` or
``IMAGE_FINDER_BENCH_DATABASE_URL`` names, dropped afterwards). Queries: one word, two words,
three words with ``min_share`` 0.6 (the search that forgives a misread word), and a quoted
two-word phrase, each in a form the items may not hold (stemming does the matching).

Prints a markdown table (p50/p95 ms per backend and query kind, mean hits) and a final
``RESULT {json}`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.text_index import Corpus, build_corpus  # noqa: E402
from storage import Database, NewMedia, NewUnit  # noqa: E402
from storage.owner_texts import OwnerTexts  # noqa: E402

URL_ENV = "IMAGE_FINDER_BENCH_DATABASE_URL"
KINDS = ("one word", "two words", "three, min_share 0.6", "phrase")


def ocr_texts(corpus: Corpus, rng: random.Random) -> list[str | None]:
    """An OCR-like text per item (None on a quarter of them): captions run together, numbers,
    and some letters misread as digits."""
    texts: list[str | None] = []
    for _ in corpus.texts:
        if rng.random() < 0.25:
            texts.append(None)
            continue
        words: list[str] = []
        while len(words) < rng.randint(20, 120):
            words += rng.choice(corpus.texts).split()
            words.append(str(rng.randint(1, 99_999)))
        misread = [
            w.replace("о", "0").replace("o", "0") if rng.random() < 0.05 else w for w in words
        ]
        texts.append(" ".join(misread))
    return texts


def queries(corpus: Corpus, rng: random.Random, n: int) -> list[tuple[str, dict[str, Any]]]:
    """``n`` searches of each kind, as (kind, keyword arguments of ``OwnerTexts.search``)."""
    form = [f for forms in corpus.forms for f in forms]
    found: list[tuple[str, dict[str, Any]]] = []
    for _ in range(n):
        found.append(("one word", {"words": [rng.choice(form)]}))
        found.append(("two words", {"words": rng.sample(form, 2)}))
        found.append(("three, min_share 0.6", {"words": rng.sample(form, 3), "min_share": 0.6}))
        words = rng.choice(corpus.texts).split()
        start = rng.randrange(max(1, len(words) - 1))
        found.append(("phrase", {"words": [], "phrases": [" ".join(words[start : start + 2])]}))
    rng.shuffle(found)
    return found


async def fill(db: Database, captions: list[str], ocr: list[str | None]) -> int:
    """Commit the items and their OCR texts; return the owner id."""
    owner = (await db.owners.ensure("user", 1)).id
    store = db.owner(owner)
    for i, (caption, text) in enumerate(zip(captions, ocr, strict=True)):
        media = NewMedia("photo", f"u{i}", file_id=f"f{i}", caption=caption)
        result = await store.media.commit(media, [NewUnit.image()], {})
        if text is not None:
            await store.texts.put(result.media_id, "ocr", text)
    return owner


async def timed(search: Callable[[], Awaitable[list[Any]]]) -> tuple[float, int]:
    start = time.perf_counter()
    hits = await search()
    return (time.perf_counter() - start) * 1000, len(hits)


async def measure(
    target: str | Path,
    captions: list[str],
    ocr: list[str | None],
    qs: list[tuple[str, dict[str, Any]]],
) -> dict[str, Any]:
    db = await Database.open(target)
    try:
        start = time.perf_counter()
        owner = await fill(db, captions, ocr)
        fill_s = time.perf_counter() - start
        texts = OwnerTexts(db.connections, owner)
        for _, kw in qs[:50]:  # warm caches, plans and the pool
            await texts.search(**kw)
        times: dict[str, list[float]] = {k: [] for k in KINDS}
        hits: dict[str, list[int]] = {k: [] for k in KINDS}
        for kind, kw in qs:
            ms, n = await timed(lambda kw=kw: texts.search(**kw))  # type: ignore[misc]
            times[kind].append(ms)
            hits[kind].append(n)
    finally:
        await db.close()
    result: dict[str, Any] = {"fill_s": round(fill_s, 1)}
    for kind in KINDS:
        ordered = sorted(times[kind])
        result[kind] = {
            "p50_ms": round(statistics.median(ordered), 3),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
            "mean_hits": round(statistics.fmean(hits[kind]), 1),
        }
    return result


def with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    corpus = build_corpus(args.items, 0, args.seed)
    ocr = ocr_texts(corpus, rng)
    qs = queries(corpus, rng, args.queries)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = await measure(Path(tmp) / "texts.db", corpus.texts, ocr, qs)
    schema = f"bench_text_{secrets.token_hex(4)}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = with_schema(args.database_url, schema)
        results["postgresql"] = await measure(url, corpus.texts, ocr, qs)
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=200, help="searches of each kind")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--database-url", default=os.environ.get(URL_ENV, ""))
    args = ap.parse_args(argv)
    if not args.database_url:
        ap.error(f"a PostgreSQL server is needed: --database-url or {URL_ENV}")
    results = asyncio.run(run(args))
    print(
        f"{args.items} items (caption; OCR text on about 3/4), {args.queries} searches per kind\n"
    )
    print(
        "| query | SQLite p50 ms | SQLite p95 ms | PostgreSQL p50 ms | PostgreSQL p95 ms | hits |"
    )
    print("|---|---|---|---|---|---|")
    for kind in KINDS:
        s, p = results["sqlite"][kind], results["postgresql"][kind]
        print(
            f"| {kind} | {s['p50_ms']:.2f} | {s['p95_ms']:.2f} | {p['p50_ms']:.2f} | "
            f"{p['p95_ms']:.2f} | {s['mean_hits']:.0f} / {p['mean_hits']:.0f} |"
        )
    print(f"\nfill: SQLite {results['sqlite']['fill_s']} s, "
          f"PostgreSQL {results['postgresql']['fill_s']} s")  # fmt: skip
    print("RESULT " + json.dumps({"items": args.items, **results}))


if __name__ == "__main__":
    main()
