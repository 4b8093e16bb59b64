"""Ingest and query speed of the embedding core against a PyTorch open_clip / ruclip baseline.

One run, one machine, the same random-weight architectures (speed does not depend on weight
values): ViT-B/32@224 (CLIP) and ViT-B/32@384 (ruCLIP). For each, the full ingest path
(JPEG bytes -> decode -> preprocess -> encode) in images/s on 12 MP and 1 MP JPEGs at batch
1 / 8 / 32, for:

* ``torch``: the baseline a Python developer writes first: ``PIL.Image.open`` + the library's
  own eval transform (full decode, full-resolution resize) + ``model.encode_image``;
* ``onnx-fp32`` / ``onnx-int8``: our path, ``OnnxEmbedder.encode_images`` (reduced JPEG decode
  on parallel threads, then the batch as parallel single-threaded ONNX Runtime runs; the int8
  bundle is what ``python -m tools quantize`` makes of the fp32 one).

and text-query latency p50 / p95 (tokenize + encode one query) in English and in Russian.
Needs the export extra (``make bench``). Prints a table and a final ``RESULT {json}`` line with
the ratios and whether each target (:data:`TARGETS`) is met.

Default-model candidates (``--models``), compared in one run:

* ``clip``, ``ruclip``: one model each; ``pair``: both, as the bot runs them (every image
  through both image towers, English queries to CLIP, Russian ones to ruCLIP);
* ``siglip2-b32-256``, ``xlmr-base-b32``, ``siglip2-b16``: random-weight stand-ins of Immich's
  published ONNX files (its layout, fixed batch 1, see ``bench/models.py``), one model for both
  languages; ``siglip2-b16`` measures the image tower only (its text tower is the same as
  ``siglip2-b32-256``'s).

``--rss`` adds the peak RSS of fresh processes that load the bundles and embed like ingest
(12 MP photos), like queries (both languages), or both; every row shows the download size
(all files of the fp32 or int8 bundles). ``--no-torch`` skips the PyTorch baseline.
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

from bench.queries import QUERIES_EN, QUERIES_RU  # noqa: E402

# CLIP ViT-B/32 on 12 MP JPEGs, best batch against the PyTorch baseline's best batch; text p50.
TARGETS = {
    "clip_onnx-fp32_12MP_speedup": (">=", 2.0),
    "clip_onnx-int8_12MP_speedup": (">=", 4.0),
    "clip_onnx-int8_text_p50_ms": ("<=", 15.0),
    "clip_onnx-fp32_text_p50_ms": ("<=", 15.0),
}


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


# Which bundles each --models key runs, and the query languages it answers.
MODEL_BUNDLES: dict[str, tuple[str, ...]] = {
    "clip": ("clip",),
    "ruclip": ("ruclip",),
    "pair": ("clip", "ruclip"),
    "siglip2-b32-256": ("siglip2-b32-256",),
    "xlmr-base-b32": ("xlmr-base-b32",),
    "siglip2-b16": ("siglip2-b16",),
}
TEXT_LANGS: dict[str, tuple[str, ...]] = {
    "clip": ("en",),
    "ruclip": ("ru",),
    "pair": ("en", "ru"),
    "siglip2-b32-256": ("en", "ru"),
    "xlmr-base-b32": ("en", "ru"),
    "siglip2-b16": (),  # same text tower as siglip2-b32-256
}
# Which bundle answers a language for a key (multilingual bundles answer both).
ROUTE = {"clip": "en", "ruclip": "ru"}


def _run(args: list[str]) -> None:
    subprocess.run([sys.executable, *args], check=True, cwd=ROOT)


def ensure_bundles(out: Path, names: Sequence[str] = ("clip", "ruclip")) -> dict[str, Path]:
    """Export random-weight bundles once (cached in ``out``) and their int8 variants."""
    from bench.models import CANDIDATES

    jobs = {
        "clip": ["export", "clip", "--arch", "ViT-B-32", "--random-weights"],
        "ruclip": ["export", "ruclip", "--name", "ruclip-vit-base-patch32-384", "--random-weights"],
    }
    paths: dict[str, Path] = {}
    for key in names:
        int8 = out / f"{key}-int8"
        if key in jobs:
            fp32 = out / f"{key}-fp32"
            if not (fp32 / "config.json").exists():
                _run(["-m", "tools", *jobs[key], "--out", str(fp32)])
        else:  # an Immich-layout stand-in (bench/models.py)
            fp32 = out / CANDIDATES[key].immich_name
            if not (fp32 / "config.json").exists():
                image_only = ["--image-only"] if key == "siglip2-b16" else []
                _run([str(ROOT / "bench" / "models.py"), "--out", str(out), *image_only, key])
        if not (int8 / "config.json").exists():
            _run(["-m", "tools", "quantize", str(fp32), "--out", str(int8)])
        paths[f"{key}-fp32"], paths[f"{key}-int8"] = fp32, int8
    return paths


def download_mb(dirs: Sequence[Path]) -> float:
    """Size of every file of the bundles (ONNX towers, tokenizer, configs), MB."""
    return sum(f.stat().st_size for d in dirs for f in Path(d).rglob("*") if f.is_file()) / 1e6


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

    from tools.export import RUCLIP_CONFIGS, build_ruclip_random

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
    from core.models.bundle import load_bundle
    from core.models.embedder import OnnxEmbedder

    emb = OnnxEmbedder(
        load_bundle(bundle_dir), threads=threads, batch_size=32, image_runs=image_runs
    )

    def images(batch: Sequence[bytes]) -> object:
        return emb.encode_images(list(batch))

    def text(q: str) -> object:
        return emb.encode_texts([q])

    return images, text


def onnx_models(dirs: Sequence[Path], langs: Sequence[str], threads: int, image_runs: int = 0):
    """Like :func:`onnx_path` for the bundles of one candidate: every image through every
    bundle (what ingest does), each query to the bundle of its language."""
    from core.models.bundle import load_bundle
    from core.models.embedder import OnnxEmbedder

    embs = [
        OnnxEmbedder(load_bundle(d), threads=threads, batch_size=32, image_runs=image_runs)
        for d in dirs
    ]

    def images(batch: Sequence[bytes]) -> object:
        return [emb.encode_images(list(batch)) for emb in embs]

    def for_lang(lang: str):
        emb = next((e for e in embs if e.config.multilingual or lang in e.config.languages), None)
        emb = emb or embs[list(langs).index(lang)]
        return lambda q: emb.encode_texts([q])

    return images, {lang: for_lang(lang) for lang in langs}, embs


def rss_probe(kind: str, dirs: Sequence[Path], langs: Sequence[str], n12: int, threads: int):
    """In this (fresh) process: load the bundles, embed like ingest / queries / both, print the
    peak RSS in MB (``VmHWM``: ``ru_maxrss`` would carry the parent's peak over ``exec``)."""
    images, texts, _ = onnx_models(dirs, langs, threads)
    if kind in ("ingest", "both"):
        photos = [f.read_bytes() for f in sorted(_probe_photos(n12).glob("*.jpg"))]
        for i in range(0, len(photos), 8):
            images(photos[i : i + 8])
    if kind in ("query", "both"):
        for lang, fn in texts.items():
            for q in QUERIES_EN if lang == "en" else QUERIES_RU:
                fn(q)
    status = Path("/proc/self/status").read_text().splitlines()
    hwm_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"rss_mb": hwm_kb / 1024}))


def _probe_photos(n: int) -> Path:
    """``n`` 12 MP JPEGs on disk (made once), so the probes' peak is not the generator's."""
    folder = ROOT / "bench" / "out" / f"rss-photos-{n}"
    if not folder.is_dir():
        folder.mkdir(parents=True)
        for s in range(n):
            (folder / f"{s:03d}.jpg").write_bytes(photo_like_jpeg(4032, 3024, s))
    return folder


def measure_rss(kind: str, dirs: Sequence[Path], langs: Sequence[str], n12: int, threads: int):
    _probe_photos(n12)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--probe", kind, "--n12", str(n12)]
    cmd += ["--threads", str(threads), "--probe-langs", ",".join(langs) or "-"]
    cmd += ["--probe-dirs", ",".join(str(d) for d in dirs)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return float(json.loads(out.strip().splitlines()[-1])["rss_mb"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--n12", type=int, default=32, help="12 MP images per measurement")
    ap.add_argument("--n1", type=int, default=64, help="1 MP images per measurement")
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--reps", type=int, default=8, help="repetitions of the query list")
    ap.add_argument("--models", default="clip,ruclip", help=", ".join(MODEL_BUNDLES))
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")
    ap.add_argument("--rss", action="store_true", help="peak RSS of ingest / query processes")
    ap.add_argument(
        "--image-runs",
        type=int,
        default=0,
        help="parallel single-threaded image runs (0: the embedder's default, one per thread; "
        "1: one run with --threads intra-op threads)",
    )
    ap.add_argument("--probe", choices=("ingest", "query", "both"), help=argparse.SUPPRESS)
    ap.add_argument("--probe-dirs", help=argparse.SUPPRESS)
    ap.add_argument("--probe-langs", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.probe:
        langs = [x for x in args.probe_langs.split(",") if x != "-"]
        dirs = [Path(d) for d in args.probe_dirs.split(",")]
        rss_probe(args.probe, dirs, langs, args.n12, args.threads)
        return

    import gc

    args.out.mkdir(parents=True, exist_ok=True)
    models = args.models.split(",")
    unknown = sorted(set(models) - set(MODEL_BUNDLES))
    if unknown:
        ap.error(f"unknown --models {unknown}; known: {', '.join(MODEL_BUNDLES)}")
    needed = list(dict.fromkeys(b for m in models for b in MODEL_BUNDLES[m]))
    bundles = ensure_bundles(args.out, needed)
    batches = [int(b) for b in args.batches.split(",")]
    sets = {
        "12MP": [photo_like_jpeg(4032, 3024, s) for s in range(args.n12)],
        "1MP": [photo_like_jpeg(1152, 864, 1000 + s) for s in range(args.n1)],
    }
    queries = {"en": QUERIES_EN, "ru": QUERIES_RU}

    rows: list[dict[str, object]] = []
    result: dict[str, object] = {"threads": args.threads}
    for model in models:
        langs = TEXT_LANGS[model]
        impls = ["onnx-fp32", "onnx-int8"]
        if model in ("clip", "ruclip") and not args.no_torch:
            impls.insert(0, "torch")
        for impl in impls:
            precision = impl.removeprefix("onnx-")  # fp32 | int8 (| torch: no bundle)
            dirs = [bundles[f"{b}-{precision}"] for b in MODEL_BUNDLES[model] if impl != "torch"]
            if impl == "torch":
                img_fn, txt_fn = (
                    torch_clip_baseline(args.threads)
                    if model == "clip"
                    else torch_ruclip_baseline(args.threads, bundles["ruclip-fp32"])
                )
                txt_fns = {langs[0]: txt_fn}
                embs: list[object] = []
            else:
                img_fn, txt_fns, embs = onnx_models(dirs, langs, args.threads, args.image_runs)
            row: dict[str, object] = {"model": model, "impl": impl}
            for set_name, imgs in sets.items():
                for b in batches:
                    row[f"{set_name} b{b}"] = throughput(img_fn, imgs, b)
            for lang in ("en", "ru"):
                if lang in txt_fns:
                    p50, p95 = latency_ms(txt_fns[lang], queries[lang], args.reps)
                else:
                    p50 = p95 = float("nan")
                row[f"{lang} p50 ms"], row[f"{lang} p95 ms"] = p50, p95
            for emb in embs:
                emb.close()  # type: ignore[attr-defined]
            del img_fn, txt_fns, embs
            gc.collect()
            if impl != "torch":
                row["download MB"] = download_mb(dirs)
                if args.rss:
                    for kind in ("ingest", "query", "both"):
                        if kind != "ingest" and not langs:
                            row[f"RSS {kind} MB"] = float("nan")
                            continue
                        row[f"RSS {kind} MB"] = measure_rss(
                            kind, dirs, langs, min(args.n12, 8), args.threads
                        )
            rows.append(row)
            print(f"  measured {model} {impl}", file=sys.stderr, flush=True)

        by = {r["impl"]: r for r in rows if r["model"] == model}
        own = langs[0] if langs else None
        for impl in ("onnx-fp32", "onnx-int8"):
            for set_name in sets:
                best = max(float(by[impl][f"{set_name} b{b}"]) for b in batches)
                result[f"{model}_{impl}_{set_name}_best"] = round(best, 2)
                if "torch" in by:
                    base = by["torch"]
                    best_base = max(float(base[f"{set_name} b{b}"]) for b in batches)
                    result[f"{model}_{impl}_{set_name}_speedup"] = round(best / best_base, 2)
            for lang in langs:
                for q in ("p50", "p95"):
                    value = round(float(by[impl][f"{lang} {q} ms"]), 2)
                    result[f"{model}_{impl}_text_{lang}_{q}_ms"] = value
                    if lang == own:
                        result[f"{model}_{impl}_text_{q}_ms"] = value
            for key, value in by[impl].items():
                if str(key).startswith(("RSS", "download")):
                    name = str(key).lower().replace(" mb", "").replace(" ", "_")
                    result[f"{model}_{impl}_{name}_mb"] = round(float(value), 1)  # type: ignore[arg-type]
        if "torch" in by and own:
            result[f"{model}_torch_text_p50_ms"] = round(float(by["torch"][f"{own} p50 ms"]), 2)

    cols = list(dict.fromkeys(k for r in rows for k in r))
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        values = [r.get(c, "") for c in cols]
        cells = [
            ("-" if v != v else f"{v:.1f}") if isinstance(v, float) else str(v) for v in values
        ]
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
