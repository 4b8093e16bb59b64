"""Runtime model commands: ``python -m core.models <command>`` (``image-finder-models``).

    pull NAME [--out DIR]           download a ready bundle (e.g. immich-app/ViT-B-32__openai)
    check DIR [DIR ...]             load a bundle and run one dummy inference per tower

Both work with the runtime alone. The offline tooling that makes bundles (``export``,
``quantize``, ``train-fixture``) needs torch or onnx, so it lives outside the runtime package:
``python -m tools <command>`` from a source checkout; its old names here only say so.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from core.errors import ImageFinderError

# Commands that moved to ``python -m tools``; asking for one here explains where it went.
MOVED_TO_TOOLS = ("export", "quantize", "train-fixture")


def moved_message(command: str) -> str:
    """One line saying where a moved command runs now."""
    return (
        f"error: {command} moved to `python -m tools {command}` (from a source checkout with "
        f"the export extra: .venv-export/bin/python -m tools {command} ...)"
    )


def hub_url(args: argparse.Namespace) -> str | None:
    """``--base-url``, else the MODEL_HUB_URL setting (from the environment or ``.env``). The
    .env is the bot's and the CLI's too, whose keys this tool cannot know: it is not checked."""
    from core.settings import Settings

    base_url: str | None = args.base_url
    return base_url or Settings.load(check_keys=False).data.model_hub_url


def _pull(args: argparse.Namespace) -> int:
    from core.models.pull import pull

    out = pull(
        args.name, args.out, base_url=hub_url(args), revision=args.revision, force=args.force
    )
    print(out)
    return 0


def _check(args: argparse.Namespace) -> int:
    from core.models.check import check_bundle

    for path in args.bundles:
        bundle = check_bundle(path)
        cfg = bundle.config
        print(
            f"{bundle.path}: ok, {cfg.model_id} ({bundle.layout} layout), {cfg.embed_dim}-d, "
            f"image {cfg.image.size}px {cfg.image.resize_mode}, text {cfg.text.tokenizer} "
            f"x{cfg.text.context_length}, languages {','.join(cfg.languages)}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core.models",
        description="Model bundle commands.",
        epilog="export, quantize and train-fixture: python -m tools (source checkout)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    pull = sub.add_parser("pull", help="download a ready bundle")
    pull.add_argument("name", help="owner/name, an Immich model name, or an alias")
    pull.add_argument("--out", type=Path, help="destination (default models/<name>)")
    pull.add_argument(
        "--base-url",
        help="hub URL (default the MODEL_HUB_URL setting, else $HF_ENDPOINT, else huggingface.co)",
    )
    pull.add_argument("--revision", default="main")
    pull.add_argument("--force", action="store_true", help="replace an existing destination")
    pull.set_defaults(func=_pull)

    check = sub.add_parser("check", help="validate bundles (loads and runs both towers)")
    check.add_argument("bundles", nargs="+", type=Path)
    check.set_defaults(func=_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args_list if not a.startswith("-")), None)
    if command in MOVED_TO_TOOLS:
        print(moved_message(command), file=sys.stderr)
        return 2
    args = build_parser().parse_args(args_list)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose:
        logging.getLogger("core").setLevel(logging.INFO)
    try:
        return int(args.func(args))
    except ImageFinderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
