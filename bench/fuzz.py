"""Fuzz the decoders: thousands of mutated small files through the real entry points.

Mutations (bit flips, truncation, duplicated chunks and frames, extreme width/height fields)
of generated PNG, JPEG, GIF, WebP, BMP, TIFF and MP4 seeds, plus junk that a lying MIME type
would send our way, go to ``prepare_image`` / ``decode_image`` / ``sample_video``. Counted:
typed errors by code, untyped escapes (bugs), wall time and the peak resident memory each case
adds. ``--dump DIR`` writes the bytes of every escape and every over-budget case.

Prints a table and a final ``RESULT {json}`` line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_label  # noqa: E402
from tests.core.fuzz_corpus import (  # noqa: E402
    MEMORY_BUDGET,
    TIME_BUDGET_S,
    Outcome,
    PeakMeter,
    cases,
    dump,
    run,
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def summarise(outcomes: list[Outcome], seconds: float) -> dict[str, object]:
    times = [o.seconds for o in outcomes]
    rss = [o.extra_rss for o in outcomes if o.extra_rss is not None]
    slowest = max(outcomes, key=lambda o: o.seconds)
    heaviest = max(outcomes, key=lambda o: o.extra_rss or 0)
    return {
        "cases": len(outcomes),
        "codes": dict(sorted(Counter(o.code for o in outcomes).items())),
        "untyped": sum(o.escape is not None for o in outcomes),
        "over_time": sum(o.seconds > TIME_BUDGET_S for o in outcomes),
        "over_memory": sum((o.extra_rss or 0) > MEMORY_BUDGET for o in outcomes),
        "wall_max_s": round(max(times), 3),
        "wall_p99_s": round(percentile(times, 0.99), 3),
        "wall_p50_ms": round(1000 * percentile(times, 0.5), 2),
        "slowest": slowest.case.name,
        "rss_max_mb": round(max(rss) / 2**20, 1) if rss else None,
        "heaviest": heaviest.case.name,
        "total_s": round(seconds, 1),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "cpu_flags": cpu_label(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dump", type=Path, help="folder for escapes and over-budget cases")
    args = parser.parse_args()

    meter = PeakMeter()
    outcomes: list[Outcome] = []
    t0 = time.perf_counter()
    for case in cases(args.seed, args.cases):
        outcome = run(case, meter)
        outcomes.append(outcome)
        bad = outcome.escape is not None or outcome.seconds > TIME_BUDGET_S
        bad = bad or (outcome.extra_rss or 0) > MEMORY_BUDGET
        if bad:
            print(
                f"! {case.name}: {outcome.escape or outcome.code} "
                f"{outcome.seconds:.2f} s {(outcome.extra_rss or 0) / 2**20:.0f} MB"
            )
            if args.dump:
                dump(case, args.dump)
    result = summarise(outcomes, time.perf_counter() - t0)

    print("| figure | value |\n|---|---|")
    for key, value in result.items():
        if key != "codes":
            print(f"| {key} | {value} |")
    for code, n in result["codes"].items():  # type: ignore[union-attr]
        print(f"| code {code} | {n} |")
    print("RESULT " + json.dumps({"seed": args.seed, **result}, sort_keys=True))


if __name__ == "__main__":
    main()
