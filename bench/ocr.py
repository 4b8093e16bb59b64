"""OCR and text search on the evaluation set of bench/ocr_set.py (Debian's fonts, ru + en).

What it measures, with the real tesseract (core.ocr.reader.OcrReader over Debian's tessdata):

- OCR word recall per language and per layout kind: the share of each picture's ground-truth
  words (case-folded, ``ё`` as ``е``) found among the words read; the detector's recall (text
  pictures it passes to tesseract) and skip rate (text-free pictures it stops);
- OCR milliseconds per picture with and without text (p50, p95; decoding at OCR resolution
  timed apart);
- text-query recall@5 through the engine with the fixture models: the set is ingested as a
  local folder (core/engine/folders.py) and OCR drained; "hybrid" is the engine's search with
  OCR on, "CLIP-only" the same search over the same pictures ingested with OCR off; "text index"
  is the text index alone (store.texts.search), the part OCR adds;
- the text index's bytes per 10k items (SQLite dbstat of the FTS5 tables and media_texts);
- OCR's share of ingest time on the set's mix (by default 80% text-free, 20% text): wall time
  of ingest + OCR drained against ingest alone. The fixture models embed in well under a
  millisecond, so the same OCR time is also set against the default model's image tower
  (a random-weight stand-in of SigLIP 2 B/32-256 built here, see bench/ocr_baseline.py, or the
  figure given with ``--embed-ms``).

Prints tables and a final ``RESULT {json}`` line.

    .venv/bin/python bench/ocr.py            # 200 text + 800 text-free pictures
    .venv/bin/python bench/ocr.py --small    # 40 + 60, about a minute
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import ocr_set  # noqa: E402
from machine import cpu_label, load_average  # noqa: E402

from cli.commands import LOCAL_ONLY  # noqa: E402
from core.engine.engine import Engine  # noqa: E402
from core.ingest.fetch import local_fetcher  # noqa: E402
from core.media.image import DECODE_MARGIN, decode_image  # noqa: E402
from core.ocr.reader import OcrReader  # noqa: E402
from core.ocr.tessdata import find_tessdata  # noqa: E402
from core.search.query import Query  # noqa: E402
from core.settings import DataSettings, IngestSettings, OcrSettings, Settings  # noqa: E402
from storage.db import default_database_path  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "models"
MODELS = [FIXTURES / "clip-fixture", FIXTURES / "ruclip-fixture"]
TARGETS = {"recall5_text_queries": 0.9, "ocr_share_of_ingest": 0.30}
K = 5
SMALL = (30, 120)  # text, text-free pictures of --small: the same 20/80 mix


def pct(values: Sequence[float], p: float) -> float:
    return float(np.percentile(values, p)) if values else float("nan")


# --- OCR alone ----------------------------------------------------------------------------------


@dataclass
class Read:
    """One picture read by the OCR reader."""

    item: ocr_set.EvalImage
    decode_ms: float
    read_ms: float
    regions: int
    found: set[str]
    truth: set[str]

    @property
    def hits(self) -> int:
        return len(self.truth & self.found)


def read_all(items: Sequence[ocr_set.EvalImage], root: Path, reader: OcrReader) -> list[Read]:
    """Decode each picture as the OCR stage does, read it, time both."""
    side = max(1, round(reader.max_side / 2 / DECODE_MARGIN))
    out = []
    for n, item in enumerate(items, 1):
        t = time.perf_counter()
        image = decode_image(root / item.name, target_size=side)
        t1 = time.perf_counter()
        result = reader.read(image)
        t2 = time.perf_counter()
        out.append(
            Read(
                item,
                (t1 - t) * 1e3,
                (t2 - t1) * 1e3,
                result.regions,
                set(ocr_set.words_of(result.text)),
                set(item.words),
            )
        )
        if n % 100 == 0:
            print(f"  read {n}/{len(items)}", file=sys.stderr, flush=True)
    return out


def recall_of(reads: Sequence[Read]) -> float:
    total = sum(len(r.truth) for r in reads)
    return sum(r.hits for r in reads) / total if total else float("nan")


def ocr_numbers(reads: Sequence[Read]) -> dict[str, Any]:
    text = [r for r in reads if r.item.has_text]
    free = [r for r in reads if not r.item.has_text]
    by_lang = {lang: recall_of([r for r in text if r.item.lang == lang]) for lang in ("ru", "en")}
    layouts: dict[str, dict[str, float]] = defaultdict(dict)
    for layout in ocr_set.TEXT_LAYOUTS:
        for lang in ("ru", "en"):
            rows = [r for r in text if r.item.layout == layout and r.item.lang == lang]
            layouts[layout][lang] = recall_of(rows)
    return {
        "word_recall": by_lang,
        "word_recall_by_layout": dict(layouts),
        "detector_recall": float(np.mean([r.regions > 0 for r in text])) if text else None,
        "detector_skip_rate": float(np.mean([r.regions == 0 for r in free])) if free else None,
        "text_free_with_words": sum(bool(r.found) for r in free),
        "read_ms_text": {
            "p50": pct([r.read_ms for r in text], 50),
            "p95": pct([r.read_ms for r in text], 95),
        },
        "read_ms_free": {
            "p50": pct([r.read_ms for r in free], 50),
            "p95": pct([r.read_ms for r in free], 95),
        },
        "decode_ms": {"p50": pct([r.decode_ms for r in reads], 50)},
        "read_ms_mean_mix": float(np.mean([r.read_ms + r.decode_ms for r in reads])),
    }


# --- through the engine -------------------------------------------------------------------------


@dataclass
class EngineRun:
    """One ingest of the set's folder; with OCR, drained."""

    ingest_s: float
    ocr_s: float
    ranked: dict[str, list[str]] = field(default_factory=dict)  # query -> file names, best first
    text_ranked: dict[str, list[str]] = field(default_factory=dict)  # text index alone
    index_bytes: dict[str, int] = field(default_factory=dict)
    ocr_counts: dict[str, int] = field(default_factory=dict)


def settings_for(data_dir: Path, ocr: bool, threads: int) -> Settings:
    return Settings(
        data=DataSettings(dir=data_dir, model_dirs=MODELS),
        ingest=IngestSettings(near_duplicate_threshold=1.0),  # synthetic pictures look alike
        ocr=OcrSettings(enabled=ocr, threads=threads),
    )


async def ingest_and_search(
    root: Path, queries: Sequence[str], tessdata: Path, *, ocr: bool, threads: int
) -> EngineRun:
    data_dir = Path(tempfile.mkdtemp(prefix="ocr-bench-"))
    try:
        settings = settings_for(data_dir, ocr, threads)
        async with await Engine.open(
            settings, fetch=local_fetcher(), ocr_owner_kinds=LOCAL_ONLY
        ) as engine:
            owner = await engine.owners.ensure_local()
            stage = engine.ocr
            if ocr and stage is None:
                raise SystemExit("OCR is on but the engine started no OCR stage")
            t = time.perf_counter()
            plan = await engine.folders.plan(owner.id, root)
            report = await engine.folders.ingest(owner.id, plan)
            ingest_s = time.perf_counter() - t
            assert not report.failures, report.failures[:3]
            if stage is not None:
                await stage.drain()
            run = EngineRun(ingest_s, time.perf_counter() - t - ingest_s)
            if stage is not None:
                run.ocr_counts = await stage.counts(owner.id)
            await search_all(engine, owner.id, queries, run)
        run.index_bytes = text_index_bytes(data_dir)
        return run
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def search_all(engine: Engine, owner_id: int, queries: Sequence[str], run: EngineRun) -> None:
    store = engine.db.owner(owner_id)
    names = {f.media_id: Path(p).name for p, f in (await store.local_files.indexed()).items()}
    for q in queries:
        result = await engine.queries.search(owner_id, Query.from_text(q, limit=K))
        run.ranked[q] = [names.get(h.media.id, "?") for h in result.hits[:K]]
        matches = await store.texts.search(q.split(), limit=K)
        run.text_ranked[q] = [names.get(m.media_id, "?") for m in matches]


def text_index_bytes(data_dir: Path) -> dict[str, int]:
    """Bytes in use per table of the text index (dbstat: page bytes less their free space, so a
    small set is not rounded up to whole 16 KB pages), empty when SQLite lacks dbstat."""
    db = default_database_path(data_dir)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT name, SUM(pgsize - unused) FROM dbstat "
            "WHERE name LIKE 'media_text%' AND name != 'media_text_backlog' GROUP BY name"
        ).fetchall()
    except sqlite3.OperationalError:
        rows = []
    finally:
        conn.close()
    return {str(name): int(size) for name, size in rows}


def query_recall(
    items: Sequence[ocr_set.EvalImage], ranked: dict[str, list[str]]
) -> dict[str, float]:
    """Share of queries whose picture is among the first K answers, per language."""
    hits: dict[str, list[bool]] = defaultdict(list)
    for item in items:
        for q in item.queries:
            hits[str(item.lang)].append(item.name in ranked.get(q, [])[:K])
    return {lang: float(np.mean(v)) for lang, v in sorted(hits.items())}


# --- the default model's cost, for the share of ingest ------------------------------------------


def default_embed_ms(args: argparse.Namespace) -> tuple[float | None, str]:
    """Milliseconds per picture of the default model's image tower, and what it came from."""
    if args.embed_ms is not None:
        return args.embed_ms, "given with --embed-ms"
    if args.no_baseline:
        return None, "not measured"
    import ocr_baseline

    ms = ocr_baseline.siglip2_b32_256_ms(threads=args.threads, n=args.baseline_n)
    return ms, "random-weight SigLIP 2 B/32-256 image tower (bench/ocr_baseline.py), batch 1"


# --- report -------------------------------------------------------------------------------------


def table(rows: list[list[str]], head: list[str]) -> None:
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")


def report(res: dict[str, Any]) -> None:
    o = res["ocr"]
    print(f"\nCPU: {res['cpu']}, load {res['load_avg_1m']}, set: {res['set']}\n")
    rows = [[lang, f"{o['word_recall'][lang]:.3f}"] + [
        f"{o['word_recall_by_layout'][k][lang]:.2f}" for k in ocr_set.TEXT_LAYOUTS
    ] for lang in ("ru", "en")]  # fmt: skip
    table(rows, ["lang", "word recall", *ocr_set.TEXT_LAYOUTS])
    print(
        f"\ndetector: passes {o['detector_recall']:.3f} of text pictures, skips "
        f"{o['detector_skip_rate']:.3f} of text-free ones ({o['text_free_with_words']} text-free "
        f"pictures produced words)\n"
    )
    table(
        [
            ["with text", f"{o['read_ms_text']['p50']:.0f}", f"{o['read_ms_text']['p95']:.0f}"],
            ["text-free", f"{o['read_ms_free']['p50']:.1f}", f"{o['read_ms_free']['p95']:.1f}"],
        ],
        ["OCR ms / picture", "p50", "p95"],
    )
    print(f"(decoding at OCR resolution, p50 {o['decode_ms']['p50']:.1f} ms, not included)\n")
    r = res["recall5"]
    table(
        [[name, f"{r[name].get('ru', 0):.3f}", f"{r[name].get('en', 0):.3f}"] for name in r],
        [f"text-query recall@{K}", "ru", "en"],
    )
    s = res["ingest"]
    print(
        f"\ningest {s['images']} pictures ({s['text_share']:.0%} with text), fixture models: "
        f"OCR off {s['off_s']:.1f} s, on {s['on_s']:.1f} s (ingest {s['on_ingest_s']:.1f} s + OCR "
        f"drain {s['on_ocr_s']:.1f} s): +{s['share_fixture']:.0%}"
    )
    if s.get("share_default") is not None:
        print(
            f"against the default model: OCR {s['ocr_ms_per_image']:.0f} ms per mixed picture vs "
            f"embedding {s['embed_ms']:.0f} ms + fixture ingest {s['fixture_ms']:.1f} ms "
            f"({s['embed_source']}): +{s['share_default']:.0%}"
        )
    i = res["index"]
    print(
        f"text index: {i['fts_bytes'] / 1e3:.0f} kB FTS5 + {i['texts_bytes'] / 1e3:.0f} kB raw "
        f"texts for {i['items']} items -> {i['per_10k_mb']:.1f} MB per 10k items of this mix, "
        f"{i['per_10k_text_mb']:.1f} MB per 10k text pictures"
    )
    print("meets targets:", json.dumps(res["meets_targets"]))


def index_numbers(on: EngineRun, off: EngineRun, items: int, text_items: int) -> dict[str, Any]:
    """Text index bytes with OCR (file names included) and OCR's part (against OCR off)."""
    fts = sum(v for k, v in on.index_bytes.items() if k.startswith("media_text_index"))
    texts = sum(v for k, v in on.index_bytes.items() if not k.startswith("media_text_index"))
    base = sum(off.index_bytes.values())
    return {
        "tables": on.index_bytes,
        "fts_bytes": fts,
        "texts_bytes": texts,
        "file_names_only_bytes": base,
        "items": items,
        "per_10k_mb": (fts + texts) / items * 1e4 / 1e6,
        "per_10k_text_mb": (fts + texts - base) / max(text_items, 1) * 1e4 / 1e6,
    }


def ingest_numbers(
    on: EngineRun, off: EngineRun, n: int, text_n: int, embed: tuple[float | None, str]
) -> dict[str, Any]:
    on_s = on.ingest_s + on.ocr_s
    extra_ms = max(on_s - off.ingest_s, 0.0) / n * 1e3
    fixture_ms = off.ingest_s / n * 1e3
    embed_ms, source = embed
    return {
        "images": n,
        "text_share": text_n / n,
        "off_s": off.ingest_s,
        "on_s": on_s,
        "on_ingest_s": on.ingest_s,
        "on_ocr_s": on.ocr_s,
        "share_fixture": extra_ms / fixture_ms if fixture_ms else None,
        "ocr_ms_per_image": extra_ms,
        "fixture_ms": fixture_ms,
        "embed_ms": embed_ms,
        "embed_source": source,
        "share_default": extra_ms / (embed_ms + fixture_ms) if embed_ms else None,
        "ocr_counts": on.ocr_counts,
    }


def checks(res: dict[str, Any]) -> dict[str, bool]:
    hybrid = res["recall5"]["hybrid"]
    share = res["ingest"]["share_default"]
    out = {f"recall5_{lang}": hybrid.get(lang, 0.0) >= TARGETS["recall5_text_queries"]
           for lang in ("ru", "en")}  # fmt: skip
    out["ocr_share_default_model"] = share is not None and share <= TARGETS["ocr_share_of_ingest"]
    out["ocr_share_fixture_models"] = (res["ingest"]["share_fixture"] or 0.0) <= TARGETS[
        "ocr_share_of_ingest"
    ]
    return out


def the_set(args: argparse.Namespace) -> tuple[Path, list[ocr_set.EvalImage], Path | None]:
    """The set given with --set, else one generated into a temporary folder."""
    if args.set is not None:
        return args.set, ocr_set.load(args.set), None
    n_text, n_free = SMALL if args.small else (args.text, args.free)
    tmp = Path(tempfile.mkdtemp(prefix="ocr-set-"))
    t = time.perf_counter()
    items = ocr_set.generate(tmp, n_text=n_text, n_free=n_free, seed=args.seed)
    print(f"  set: {len(items)} pictures in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return tmp, items, tmp


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", type=Path, help="a set written by bench/ocr_set.py (else generated)")
    ap.add_argument("--small", action="store_true", help="30 text + 120 text-free pictures")
    ap.add_argument("--text", type=int, default=200)
    ap.add_argument("--free", type=int, default=800)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--threads", type=int, default=1, help="OCR threads (OCR_THREADS)")
    ap.add_argument("--embed-ms", type=float, help="the default model's ms per picture, if known")
    ap.add_argument("--no-baseline", action="store_true", help="skip the default-model stand-in")
    ap.add_argument("--baseline-n", type=int, default=16, help="pictures for the stand-in")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    tessdata = find_tessdata("rus+eng")
    if tessdata is None:
        raise SystemExit("no tesseract data: apt-get install tesseract-ocr-rus tesseract-ocr-eng")
    root, items, tmp = the_set(args)
    try:
        res = measure(args, root, items, tessdata)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    res["wall_s"] = time.perf_counter() - started
    report(res)
    print("RESULT " + json.dumps(res, sort_keys=True, ensure_ascii=False, default=float))


def measure(
    args: argparse.Namespace, root: Path, items: list[ocr_set.EvalImage], tessdata: Path
) -> dict[str, Any]:
    defaults = OcrSettings()
    reader = OcrReader.from_settings(tessdata, defaults)
    try:
        reads = read_all(items, root, reader)
    finally:
        reader.close()
    text = [i for i in items if i.has_text]
    queries = [q for i in text for q in i.queries]
    print("  engine: OCR off", file=sys.stderr, flush=True)
    off = asyncio.run(ingest_and_search(root, queries, tessdata, ocr=False, threads=args.threads))
    print("  engine: OCR on", file=sys.stderr, flush=True)
    on = asyncio.run(ingest_and_search(root, queries, tessdata, ocr=True, threads=args.threads))
    embed = default_embed_ms(args)
    res: dict[str, Any] = {
        "cpu": cpu_label(),
        "load_avg_1m": load_average(),
        "set": ocr_set.summary(items),
        "ocr": ocr_numbers(reads),
        "recall5": {
            "hybrid": query_recall(text, on.ranked),
            "clip_only": query_recall(text, off.ranked),
            "text_index_only": query_recall(text, on.text_ranked),
        },
        "ingest": ingest_numbers(on, off, len(items), len(text), embed),
        "index": index_numbers(on, off, len(items), len(text)),
        "targets": TARGETS,
        "ocr_settings": defaults.model_dump(mode="json"),
    }
    res["meets_targets"] = checks(res)
    return res


if __name__ == "__main__":
    main()
