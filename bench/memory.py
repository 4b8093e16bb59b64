"""Peak memory and speed of the image thread layouts while ingesting an album and a video.

Three layouts of ``OnnxEmbedder`` on the same bundle, compared in one run:

* ``ours``: the per-batch layout (:class:`core.models.embedder.ImageRunPlanner`): a lone photo as
  one run on every thread, a full batch as parallel runs on the same session, within
  ``EMBED_MEMORY_MB``;
* ``immich``: Immich's, one session with a thread per core, one image at a time;
* ``old``: the earlier layout, a single-threaded session and every batch as parallel runs.

Memory: each layout in a fresh process loads the bundle as the bot does (both towers,
``validate``), then ingests an album of 1 MP and 12 MP JPEGs in ingest-sized batches and the
frames sampled from a video, while a thread samples ``VmRSS`` from /proc; the load peak
(``VmHWM``) is read before the peak is reset (``/proc/self/clear_refs``). Weights = the ONNX
files' size. Speed: the image towers of all layouts in one process, rounds interleaved (the
best round counts, so other work on the machine skews every layout alike): lone-photo latency
(1 MP JPEG to vector) and bulk images/s on the album.

Prints a table and a final ``RESULT {json}`` line. The default bundle is the random-weight
stand-in of the default model (``bench/models.py``, cached in ``bench/out``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.embed import ensure_bundles, photo_like_jpeg  # noqa: E402
from bench.machine import cpu_flags  # noqa: E402

LAYOUTS = ("ours", "immich", "old")


def status_mb(*keys: str) -> dict[str, float]:
    """Fields of /proc/self/status in MB (VmRSS, VmHWM, ...)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in keys:
            out[name] = int(rest.split()[0]) / 1024
    return out


def reset_peak() -> None:
    """Start VmHWM afresh from the current RSS (Linux 4.0+)."""
    Path("/proc/self/clear_refs").write_text("5")


class RssSampler:
    """Highest VmRSS seen by a background thread, every ``interval`` seconds."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, status_mb("VmRSS")["VmRSS"])
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def make_embedder(bundle_dir: Path, layout: str, cores: int, memory_mb: int, batch: int) -> Any:
    """An ``OnnxEmbedder`` with one of :data:`LAYOUTS`."""
    from core.models.bundle import load_bundle
    from core.models.embedder import OnnxEmbedder

    bundle = load_bundle(bundle_dir)
    if layout == "ours":
        return OnnxEmbedder(bundle, threads=cores, batch_size=batch, memory_mb=memory_mb)
    if layout == "immich":
        return OnnxEmbedder(bundle, threads=cores, batch_size=1, image_runs=1)
    return OnnxEmbedder(bundle, threads=1, batch_size=batch, image_runs=cores)


def album(folder: Path, n1: int, n12: int) -> list[Path]:
    """JPEGs on disk (made once), so a probe's peak is not the generator's."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for kind, n, (w, h) in (("1mp", n1, (1152, 864)), ("12mp", n12, (4032, 3024))):
        for s in range(n):
            path = folder / f"{kind}-{s:03d}.jpg"
            if not path.exists():
                path.write_bytes(photo_like_jpeg(w, h, 7000 + s + (1000 if kind == "12mp" else 0)))
            files.append(path)
    return files


def video(path: Path, seconds: int = 20) -> Path:
    """A 1080p clip with a scene change every two seconds (made once)."""
    import cv2

    if path.exists():
        return path
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (1920, 1080))
    rng = np.random.default_rng(3)
    for second in range(seconds):
        if second % 2 == 0:
            small = rng.integers(0, 255, size=(9, 16, 3), dtype=np.uint8)
            base = cv2.resize(small, (1920, 1080), interpolation=cv2.INTER_CUBIC)
        for f in range(25):
            writer.write(np.roll(base, f * 4, axis=1))
    writer.release()
    return path


def ingest(emb: Any, files: Sequence[Path], clip: Path, batch: int, settings: Any) -> None:
    """What the ingest pipeline does per model: encode batches of photos, then a video's frames."""
    from core.media.video import sample_video

    for i in range(0, len(files), batch):
        emb.encode_images([f.read_bytes() for f in files[i : i + batch]])
    sample = sample_video(
        clip,
        settings.video,
        target_size=emb.config.image.size,
    )
    frames = [f.image for f in sample.frames]
    for i in range(0, len(frames), batch):
        emb.encode_images(frames[i : i + batch])


def probe(args: argparse.Namespace) -> None:
    """In this fresh process: load like the bot, ingest, print the memory figures as JSON."""
    from core.models.memory import tune_allocator
    from core.settings import Settings

    tune_allocator()  # as the bot's and the CLI's entry points do
    settings = Settings(_env_file=None)
    t0 = time.perf_counter()
    emb = make_embedder(args.bundle, args.probe, args.threads, args.memory_mb, args.batch)
    emb.validate()
    load_s = time.perf_counter() - t0
    loaded = status_mb("VmRSS", "VmHWM")
    files = album(args.work / "album", args.n1, args.n12)
    clip = video(args.work / "clip.mp4")
    reset_peak()
    with RssSampler() as sampler:
        ingest(emb, files, clip, settings.ingest.batch_size, settings)
    after = status_mb("VmRSS", "VmHWM")
    peak = max(sampler.peak, after["VmHWM"])
    print(json.dumps({"load_peak": loaded["VmHWM"], "loaded": loaded["VmRSS"], "load_s": load_s,
                      "ingest_peak": peak, "after": after["VmRSS"]}))  # fmt: skip


def measure_memory(args: argparse.Namespace, layout: str) -> dict[str, float]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--probe", layout]
    cmd += ["--bundle", str(args.bundle), "--threads", str(args.threads)]
    cmd += ["--memory-mb", str(args.memory_mb), "--batch", str(args.batch)]
    cmd += ["--n1", str(args.n1), "--n12", str(args.n12), "--work", str(args.work)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def lone_ms(emb: Any, photo: bytes, reps: int) -> float:
    emb.encode_images([photo])
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        emb.encode_images([photo])
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bulk_per_s(emb: Any, photos: Sequence[bytes], batch: int) -> float:
    emb.encode_images(list(photos[:batch]))
    t0 = time.perf_counter()
    for i in range(0, len(photos), batch):
        emb.encode_images(list(photos[i : i + batch]))
    return len(photos) / (time.perf_counter() - t0)


def measure_speed(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Best round of each layout, rounds interleaved."""
    from core.settings import Settings

    batch = Settings(_env_file=None).ingest.batch_size
    files = album(args.work / "album", args.n1, args.n12)
    photos = [f.read_bytes() for f in files if f.name.startswith("1mp")]
    embs = {
        k: make_embedder(args.bundle, k, args.threads, args.memory_mb, args.batch) for k in LAYOUTS
    }
    best: dict[str, dict[str, float]] = {k: {"lone_ms": 1e9, "bulk": 0.0} for k in LAYOUTS}
    for _ in range(args.rounds):
        for k, emb in embs.items():
            best[k]["lone_ms"] = min(best[k]["lone_ms"], lone_ms(emb, photos[0], args.reps))
            best[k]["bulk"] = max(best[k]["bulk"], bulk_per_s(emb, photos, batch))
    for emb in embs.values():
        emb.close()
    return best


def weights_mb(bundle: Path) -> float:
    return sum(f.stat().st_size for f in bundle.rglob("*.onnx")) / 2**20


def table(rows: list[dict[str, Any]]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [f"{v:.1f}" if isinstance(v, float) else str(v) for v in r.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from core.settings import Settings

    defaults = Settings(_env_file=None)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--bundle", type=Path, help="bundle directory (default: the default model)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--memory-mb", type=int, default=defaults.embed.memory_mb)
    ap.add_argument("--batch", type=int, default=defaults.embed.batch_size)
    ap.add_argument("--n1", type=int, default=32, help="1 MP photos in the album")
    ap.add_argument("--n12", type=int, default=32, help="12 MP photos in the album")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved speed rounds")
    ap.add_argument("--reps", type=int, default=10, help="lone-photo encodes per round")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench-memory")
    ap.add_argument("--probe", choices=LAYOUTS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.bundle is None:
        args.bundle = ensure_bundles(args.out, ["siglip2-b32-256"])["siglip2-b32-256-fp32"]
    if args.probe:
        probe(args)
        return

    weights = weights_mb(args.bundle)
    speed = measure_speed(args)
    rows: list[dict[str, Any]] = []
    for layout in LAYOUTS:
        mem = measure_memory(args, layout)
        rows.append(
            {
                "layout": layout,
                "weights MB": weights,
                "load peak MB": mem["load_peak"],
                "loaded MB": mem["loaded"],
                "ingest peak MB": mem["ingest_peak"],
                "peak - weights MB": mem["ingest_peak"] - weights,
                "lone 1 MP ms": speed[layout]["lone_ms"],
                "bulk 1 MP img/s": speed[layout]["bulk"],
            }
        )
        print(f"  measured {layout}", file=sys.stderr, flush=True)
    print(table(rows))
    ours = rows[0]
    result: dict[str, Any] = {
        "bundle": args.bundle.name,
        "threads": args.threads,
        "memory_mb": args.memory_mb,
        "cpu_flags": cpu_flags(),
        "loadavg": os.getloadavg(),
        "weights_mb": round(weights, 1),
    }
    for r in rows:
        key = r["layout"]
        result[f"{key}_load_peak_mb"] = round(r["load peak MB"], 1)
        result[f"{key}_ingest_peak_mb"] = round(r["ingest peak MB"], 1)
        result[f"{key}_peak_minus_weights_mb"] = round(r["peak - weights MB"], 1)
        result[f"{key}_lone_ms"] = round(r["lone 1 MP ms"], 1)
        result[f"{key}_bulk_per_s"] = round(r["bulk 1 MP img/s"], 2)
        if r is not ours:
            result[f"lone_speedup_vs_{key}"] = round(r["lone 1 MP ms"] / ours["lone 1 MP ms"], 2)
            result[f"bulk_ratio_vs_{key}"] = round(
                ours["bulk 1 MP img/s"] / r["bulk 1 MP img/s"], 2
            )
    result["within_weights_plus_300mb"] = ours["peak - weights MB"] <= 300
    print(f"(CPU flags: {', '.join(result['cpu_flags'])}; load average {result['loadavg']})")
    print("RESULT " + json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
