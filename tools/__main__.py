"""Offline model tooling: ``python -m tools <command>`` from a source checkout.

    export clip   --arch ViT-B-32 --pretrained openai --out DIR [--random-weights]
    export ruclip --name ruclip-vit-base-patch32-384 --out DIR [--random-weights]
    quantize DIR --out DIR          int8 copy of a bundle (a new model id: name + "-int8")
    train-fixture [ARGS ...]        train the small test models (tests.fixtures.tooling.train)

These make bundles; the bot only reads them, so none of this is in the runtime wheel.
``export`` and ``train-fixture`` need the ``export`` extra (torch, open_clip, ruclip:
``make install-export``, then ``.venv-export/bin/python -m tools ...``); ``quantize`` needs
onnx (the dev or export extra). The runtime commands ``pull`` and ``check`` stay in
``python -m core.models`` (``image-finder-models``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from core.errors import ImageFinderError
from tests.fixtures.tooling.train import main as train_fixture_main
from tools.export import export_clip, export_ruclip
from tools.quantize import quantize_bundle

EXPORT_HINT = (
    "export needs the export extra (make install-export; run with .venv-export/bin/python)"
)
PROG = "python -m tools"


def _export_clip(args: argparse.Namespace) -> int:
    out = export_clip(
        args.arch,
        args.pretrained,
        args.out,
        random_weights=args.random_weights,
        seed=args.seed,
        name=args.bundle_name,
        version=args.version,
        languages=args.languages or ("en",),
        relevance_floor=args.relevance_floor,
        opset=args.opset,
    )
    print(out)
    return 0


def _export_ruclip(args: argparse.Namespace) -> int:
    out = export_ruclip(
        args.name,
        args.out,
        random_weights=args.random_weights,
        seed=args.seed,
        name=args.bundle_name,
        version=args.version,
        languages=args.languages or ("ru",),
        relevance_floor=args.relevance_floor,
        opset=args.opset,
    )
    print(out)
    return 0


def _quantize(args: argparse.Namespace) -> int:
    report = quantize_bundle(
        args.src,
        args.out,
        per_channel=not args.per_tensor,
        reduce_range=not args.full_range,
        threads=args.threads,
    )
    print("\n".join(report.lines()))
    return 0


def _add_export_options(p: argparse.ArgumentParser, default_floor: float) -> None:
    p.add_argument("--out", type=Path, required=True, help="bundle directory to write")
    p.add_argument(
        "--random-weights",
        action="store_true",
        help="same architecture, untrained (offline; for tests and benchmarks)",
    )
    p.add_argument("--seed", type=int, default=0, help="torch seed for --random-weights")
    p.add_argument("--bundle-name", help="config name (default: derived from the model)")
    p.add_argument("--version", help='config version (default "1", or "random-seed<N>")')
    p.add_argument("--languages", nargs="+", help="ISO 639-1 codes, or * for multilingual")
    p.add_argument("--relevance-floor", type=float, default=default_floor)
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")


def _add_export(export: argparse.ArgumentParser) -> None:
    """``export clip`` and ``export ruclip``, each with the common bundle options."""
    kinds = export.add_subparsers(dest="kind", required=True)
    clip = kinds.add_parser("clip", help="an open_clip model")
    clip.add_argument("--arch", default="ViT-B-32", help="open_clip architecture")
    clip.add_argument("--pretrained", default="openai", help="open_clip pretrained tag")
    _add_export_options(clip, 0.2)
    clip.set_defaults(func=_export_clip)
    ruclip = kinds.add_parser("ruclip", help="a ruCLIP checkpoint")
    ruclip.add_argument(
        "--name", default="ruclip-vit-base-patch32-384", help="ruCLIP checkpoint name"
    )
    _add_export_options(ruclip, 0.2)
    ruclip.set_defaults(func=_export_ruclip)


def _add_quantize(quantize: argparse.ArgumentParser) -> None:
    quantize.add_argument("src", type=Path, help="bundle directory (ours or Immich's)")
    quantize.add_argument("--out", type=Path, required=True, help="new bundle directory")
    quantize.add_argument(
        "--per-tensor",
        action="store_true",
        help="one weight scale per tensor (default: per channel)",
    )
    quantize.add_argument(
        "--full-range",
        action="store_true",
        help="8-bit weights (default 7-bit: full range saturates on AVX2 CPUs without VNNI)",
    )
    quantize.add_argument("--threads", type=int, default=0, help="threads for the comparison")
    quantize.set_defaults(func=_quantize)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Offline model tooling: export, quantise, train the fixtures."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_export(
        sub.add_parser("export", help="export open_clip / ruCLIP to a bundle (needs torch)")
    )
    _add_quantize(sub.add_parser("quantize", help="int8 (dynamic) copy of a bundle"))
    # Its options belong to tests.fixtures.tooling.train; everything after the command goes there.
    sub.add_parser("train-fixture", help="train the fixture models (tests.fixtures.tooling.train)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["train-fixture"]:
        return int(train_fixture_main(args_list[1:]) or 0)
    args = build_parser().parse_args(args_list)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose:  # our own progress only; the exporter's INFO logs run to thousands of lines
        for name in ("core", "tools"):
            logging.getLogger(name).setLevel(logging.INFO)
    try:
        return int(args.func(args))
    except ImageFinderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:
        if args.command == "export":
            print(f"error: {exc}; {EXPORT_HINT}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
