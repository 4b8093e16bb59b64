"""Local CLI: the same engine as the bot, over a folder on disk.

    image-finder index DIR            # new and changed files only; removed files are dropped;
                                      # then the text in the new pictures is read (--no-ocr: not)
    image-finder search "a red car"   # text (Russian or English), with filters: --help-query
    image-finder search --image FILE  # photo by example (may be combined with a text)
    image-finder ocr [--again]        # read text not read yet (--again: of every picture)
    image-finder stats
    image-finder move-to-postgres URL # copy the collection into an empty PostgreSQL database

``image-finder`` is ``python -m cli``. Settings come from the environment and ``.env`` like the
bot's (``DATA_DIR``, ``MODEL_DIRS``, ``OCR_ENABLED``; ``--env-file`` picks another file);
``--data-dir`` and ``--models`` override them, relative to the current directory. Folder items
belong to one local owner, separate from every Telegram user.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from bot.config import BotSettings
from cli.commands import index_folder, ocr_cli, search_cli, stats_cli
from cli.output import QUERY_HELP
from core.errors import ImageFinderError
from core.models.memory import tune_allocator
from core.settings import Settings, SettingsError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="image-finder", description=__doc__.splitlines()[0])
    p.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help="settings file (default $IMAGE_FINDER_ENV_FILE or ./.env)",
    )
    p.add_argument("--data-dir", type=Path, help="where the collection lives (DATA_DIR)")
    p.add_argument("--models", help="comma-separated bundle directories (MODEL_DIRS)")
    sub = p.add_subparsers(dest="command", required=True)
    idx = sub.add_parser("index", help="index a folder (incremental), then read text in it")
    idx.add_argument("folder", type=Path)
    idx.add_argument(
        "--no-ocr", action="store_true", help="do not read text off the pictures (OCR)"
    )
    add_search_parser(sub)
    ocr = sub.add_parser("ocr", help="read text off the pictures not read yet (OCR)")
    ocr.add_argument(
        "--again", action="store_true", help="read every picture again, not only new ones"
    )
    sub.add_parser("stats", help="what the local collection holds")
    move = sub.add_parser(
        "move-to-postgres",
        help="copy DATA_DIR's collection into an empty PostgreSQL database and verify it",
    )
    move.add_argument("url", help="postgresql://user:password@host/database")
    return p


def add_search_parser(sub: Any) -> None:  # argparse's subparsers action has no public type
    s = sub.add_parser(
        "search",
        help="search the indexed folders",
        description="Search the local collection by words, filters and/or an example photo.",
        epilog=QUERY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("query", nargs="?", help='words and filters; "-word" excludes (--help-query)')
    s.add_argument("--image", type=Path, help="a photo to search by example")
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--offset", type=int, default=0)
    s.add_argument(
        "--strict", dest="strictness", action="store_const", const="strict", default="normal"
    )
    s.add_argument("--loose", dest="strictness", action="store_const", const="loose")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--help-query", action="store_true", help="explain the query language")


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}  # field values, for pydantic to validate
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    if args.models:
        overrides["model_dirs"] = args.models
    if getattr(args, "no_ocr", False):
        overrides["ocr_enabled"] = False  # the stage is not even started
    # The .env is shared with the bot: its keys are known here, though not read.
    return Settings.load(args.env_file, shared_sections=(BotSettings,), **overrides)


def search_args_error(args: argparse.Namespace) -> str | None:
    """Why a search command line cannot run (checked before any model loads), or None."""
    if not args.query and args.image is None:
        return "give a text query, --image FILE, or both"
    if args.image is not None and not args.image.is_file():
        return f"{args.image} is not a file"
    return None


async def run(args: argparse.Namespace, settings: Settings, out: TextIO) -> None:
    if args.command == "index":
        await index_folder(settings, args.folder, out, ocr=not args.no_ocr)
    elif args.command == "search":
        await search_cli(settings, args, out)
    elif args.command == "ocr":
        await ocr_cli(settings, out, again=args.again)
    else:
        await stats_cli(settings, out)


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    tune_allocator()  # before any thread starts
    args = build_parser().parse_args(argv)
    if args.command == "search":
        if args.help_query:
            print(QUERY_HELP, file=out)
            return 0
        error = search_args_error(args)
        if error is not None:
            print(f"error: {error}", file=sys.stderr)
            return 2
    if args.command == "move-to-postgres":
        from bot.move import run_move

        try:
            return run_move(settings_from(args).data.dir, args.url, out)
        except SettingsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    try:
        asyncio.run(run(args, settings_from(args), out))
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ImageFinderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
