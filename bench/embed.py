"""Ingest and query speed of the embedding core against a PyTorch open_clip / ruclip baseline.

One run, one machine, the same random-weight architectures (speed does not depend on weight
values): ViT-B/32@224 (CLIP) and ViT-B/32@384 (ruCLIP). For each, the full ingest path
(JPEG bytes -> decode -> preprocess -> encode) in images/s on 12 MP and 1 MP JPEGs at batch
1 / 8 / 32, for:

* ``torch``: the baseline a Python developer writes first: ``PIL.Image.open`` + the library's
  own eval transform (full decode, full-resolution resize) + ``model.encode_image``;
* ``onnx-fp32`` / ``onnx-int8``: our path, ``OnnxEmbedder.encode_images`` (reduced JPEG decode
  on parallel threads, then the batch as parallel single-threaded ONNX Runtime runs; the int8
  bundle is what ``python -m core.models quantize`` makes of the fp32 one).

and text-query latency p50 / p95 (tokenize + encode one query). Needs the export extra
(``make bench``). Prints a table and a final ``RESULT {json}`` line with the ratios and whether
each target (:data:`TARGETS`) is met.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# CLIP ViT-B/32 on 12 MP JPEGs, best batch against the PyTorch baseline's best batch; text p50.
TARGETS = {
    "clip_onnx-fp32_12MP_speedup": (">=", 2.0),
    "clip_onnx-int8_12MP_speedup": (">=", 4.0),
    "clip_onnx-int8_text_p50_ms": ("<=", 15.0),
    "clip_onnx-fp32_text_p50_ms": ("<=", 15.0),
}

QUERIES_EN = [
    "cat on a sofa",
    "a wedding in a tent",
    "sunset over the sea with boats",
    "my dog playing in the snow",
    "birthday cake with candles",
    "a red car parked near an old brick building at night",
]
QUERIES_RU = [
    "кот на диване",
    "свадьба в шатре",
    "закат над морем и лодки",
    "собака играет в снегу",
    "торт со свечами на день рождения",
    "красная машина у старого кирпичного дома ночью",
]


def photo_like_jpeg(width: int, height: int, seed: int) -> bytes:
    """A JPEG with photo-like statistics (smooth gradients, shapes, sensor noise), q90."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
    arr = np.asarray(img, dtype=np.int16)
    arr = arr + rng.normal(0, 6, size=arr.shape).astype(np.int16)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def ensure_bundles(out: Path) -> dict[str, Path]:
    """Export random-weight bundles once (cached in ``out``) and their int8 variants."""
    py = sys.executable
    jobs = {
        "clip": ["export", "clip", "--arch", "ViT-B-32", "--random-weights"],
        "ruclip": ["export", "ruclip", "--name", "ruclip-vit-base-patch32-384", "--random-weights"],
    }
    paths: dict[str, Path] = {}
    for key, args in jobs.items():
        fp32, int8 = out / f"{key}-fp32", out / f"{key}-int8"
        if not (fp32 / "config.json").exists():
            subprocess.run(
                [py, "-m", "core.models", *args, "--out", str(fp32)], check=True, cwd=ROOT
            )
        if not (int8 / "config.json").exists():
            subprocess.run(
                [py, "-m", "core.models", "quantize", str(fp32), "--out", str(int8)],
                check=True,
                cwd=ROOT,
            )
        paths[f"{key}-fp32"], paths[f"{key}-int8"] = fp32, int8
    return paths


def throughput(
    run_batch: Callable[[Sequence[bytes]], object], images: list[bytes], batch: int
) -> float:
    """Images per second over all of ``images`` in batches of ``batch`` (after one warm-up)."""
    run_batch(images[:batch])
    t0 = time.perf_counter()
    for i in range(0, len(images), batch):
        run_batch(images[i : i + batch])
    return len(images) / (time.perf_counter() - t0)


def latency_ms(fn: Callable[[str], object], queries: list[str], reps: int) -> tuple[float, float]:
    for q in queries:
        fn(q)
    times = []
    for _ in range(reps):
        for q in queries:
            t0 = time.perf_counter()
            fn(q)
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def torch_clip_baseline(threads: int):
    import open_clip
    import torch

    torch.set_num_threads(threads)
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    model.eval()
    tokenizer = open_clip.get_tokenizer("ViT-B-32")

    def images(batch: Sequence[bytes]) -> object:
        x = torch.stack([preprocess(Image.open(io.BytesIO(b))) for b in batch])
        with torch.inference_mode():
            return model.encode_image(x)

    def text(q: str) -> object:
        with torch.inference_mode():
            return model.encode_text(tokenizer([q]))

    return images, text


def _ruclip_processor_class() -> type:
    """ruclip's own ``RuCLIPProcessor``, loaded from its file: the package ``__init__`` imports a
    function newer huggingface_hub releases no longer have."""
    import importlib.util

    spec = importlib.util.find_spec("ruclip")
    assert spec is not None and spec.submodule_search_locations, "ruclip is not installed"
    path = Path(next(iter(spec.submodule_search_locations))) / "processor.py"
    mspec = importlib.util.spec_from_file_location("_ruclip_processor", path)
    assert mspec is not None and mspec.loader is not None
    module = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(module)
    return module.RuCLIPProcessor


def torch_ruclip_baseline(threads: int, bundle: Path):
    import torch

    from core.models.export import RUCLIP_CONFIGS, build_ruclip_random

    torch.set_num_threads(threads)
    name = "ruclip-vit-base-patch32-384"
    cfg = RUCLIP_CONFIGS[name]
    model = build_ruclip_random(name).eval()
    processor = _ruclip_processor_class()(
        str(bundle / "bpe.model"),
        image_size=cfg["image_resolution"],
        text_seq_length=cfg["context_length"],
    )

    def images(batch: Sequence[bytes]) -> object:
        x = torch.stack([processor.image_transform(Image.open(io.BytesIO(b))) for b in batch])
        with torch.inference_mode():
            return model.encode_image(x)

    def text(q: str) -> object:
        with torch.inference_mode():
            return model.encode_text(processor(text=[q])["input_ids"])

    return images, text


def onnx_path(bundle_dir: Path, threads: int, image_runs: int = 0):
    from core.embedder import OnnxEmbedder
    from core.models.bundle import load_bundle

    emb = OnnxEmbedder(
        load_bundle(bundle_dir), threads=threads, batch_size=32, image_runs=image_runs
    )

    def images(batch: Sequence[bytes]) -> object:
        return emb.encode_images(list(batch))

    def text(q: str) -> object:
        return emb.encode_texts([q])

    return images, text


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--n12", type=int, default=32, help="12 MP images per measurement")
    ap.add_argument("--n1", type=int, default=64, help="1 MP images per measurement")
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--reps", type=int, default=8, help="repetitions of the query list")
    ap.add_argument("--models", default="clip,ruclip")
    ap.add_argument(
        "--image-runs",
        type=int,
        default=0,
        help="parallel single-threaded image runs (0: the embedder's default, one per thread; "
        "1: one run with --threads intra-op threads)",
    )
    args = ap.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    bundles = ensure_bundles(args.out)
    batches = [int(b) for b in args.batches.split(",")]
    sets = {
        "12MP": [photo_like_jpeg(4032, 3024, s) for s in range(args.n12)],
        "1MP": [photo_like_jpeg(1152, 864, 1000 + s) for s in range(args.n1)],
    }

    rows: list[dict[str, object]] = []
    result: dict[str, object] = {"threads": args.threads}
    for model in args.models.split(","):
        impls = {
            "torch": (
                torch_clip_baseline(args.threads)
                if model == "clip"
                else torch_ruclip_baseline(args.threads, bundles["ruclip-fp32"])
            ),
            "onnx-fp32": onnx_path(bundles[f"{model}-fp32"], args.threads, args.image_runs),
            "onnx-int8": onnx_path(bundles[f"{model}-int8"], args.threads, args.image_runs),
        }
        queries = QUERIES_EN if model == "clip" else QUERIES_RU
        for impl, (img_fn, txt_fn) in impls.items():
            row: dict[str, object] = {"model": model, "impl": impl}
            for set_name, imgs in sets.items():
                for b in batches:
                    row[f"{set_name} b{b}"] = throughput(img_fn, imgs, b)
            p50, p95 = latency_ms(txt_fn, queries, args.reps)
            row["text p50 ms"], row["text p95 ms"] = p50, p95
            rows.append(row)
            print(f"  measured {model} {impl}", file=sys.stderr, flush=True)

        by = {r["impl"]: r for r in rows if r["model"] == model}
        base = by["torch"]
        for impl in ("onnx-fp32", "onnx-int8"):
            for set_name in sets:
                best = max(float(by[impl][f"{set_name} b{b}"]) for b in batches)
                best_base = max(float(base[f"{set_name} b{b}"]) for b in batches)
                result[f"{model}_{impl}_{set_name}_speedup"] = round(best / best_base, 2)
            result[f"{model}_{impl}_text_p50_ms"] = round(float(by[impl]["text p50 ms"]), 2)
            result[f"{model}_{impl}_text_p95_ms"] = round(float(by[impl]["text p95 ms"]), 2)
        result[f"{model}_torch_text_p50_ms"] = round(float(base["text p50 ms"]), 2)

    cols = list(rows[0].keys())
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        cells = [f"{v:.1f}" if isinstance(v, float) else str(v) for v in r.values()]
        print("| " + " | ".join(cells) + " |")
    print("(images/s for the full ingest path; text latency in ms for one query)")
    met = {}
    for key, (op, bound) in TARGETS.items():
        if key in result:
            value = float(result[key])  # type: ignore[arg-type]
            met[key] = value >= bound if op == ">=" else value <= bound
            print(f"target {key} {op} {bound}: {value} {'met' if met[key] else 'NOT met'}")
    result["targets_met"] = met
    print("RESULT " + json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
