"""Local CLI: the same engine as the bot, over a folder on disk.

    python -m core index DIR            # new and changed files only; removed files are dropped
    python -m core search "a red car"   # text (Russian or English)
    python -m core search --image FILE  # photo by example (may be combined with a text)
    python -m core stats

Settings come from the environment and ``.env`` like the bot's (``DATA_DIR``, ``MODEL_DIRS``;
``--env-file`` picks another file); ``--data-dir`` and ``--models`` override them, relative to the
current directory. Folder items belong to one local owner, separate from every Telegram user.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from bot.config import BotSettings
from cli.commands import index_folder, search_cli, stats_cli
from core.errors import ImageFinderError
from core.models.memory import tune_allocator
from core.settings import Settings, SettingsError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description=__doc__.splitlines()[0])
    p.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help="settings file (default $IMAGE_FINDER_ENV_FILE or ./.env)",
    )
    p.add_argument("--data-dir", type=Path, help="where the collection lives (DATA_DIR)")
    p.add_argument("--models", help="comma-separated bundle directories (MODEL_DIRS)")
    sub = p.add_subparsers(dest="command", required=True)
    idx = sub.add_parser("index", help="index a folder (incremental)")
    idx.add_argument("folder", type=Path)
    s = sub.add_parser("search", help="search the indexed folder")
    s.add_argument("query", nargs="?", help='text; "-word" excludes')
    s.add_argument("--image", type=Path, help="a photo to search by example")
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--offset", type=int, default=0)
    s.add_argument(
        "--strict", dest="strictness", action="store_const", const="strict", default="normal"
    )
    s.add_argument("--loose", dest="strictness", action="store_const", const="loose")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("stats", help="what the local collection holds")
    return p


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}  # field values, for pydantic to validate
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    if args.models:
        overrides["model_dirs"] = args.models
    # The .env is shared with the bot: its keys are known here, though not read.
    return Settings.load(args.env_file, shared_sections=(BotSettings,), **overrides)


def search_args_error(args: argparse.Namespace) -> str | None:
    """Why a search command line cannot run (checked before any model loads), or None."""
    if not args.query and args.image is None:
        return "give a text query, --image FILE, or both"
    if args.image is not None and not args.image.is_file():
        return f"{args.image} is not a file"
    return None


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    tune_allocator()  # before any thread starts
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
        if args.command == "index":
            asyncio.run(index_folder(settings, args.folder, out))
        elif args.command == "search":
            error = search_args_error(args)
            if error is not None:
                print(f"error: {error}", file=sys.stderr)
                return 2
            asyncio.run(search_cli(settings, args, out))
        else:
            asyncio.run(stats_cli(settings, out))
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ImageFinderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
