"""``python -m bot``: start the Telegram bot with settings from the environment and ``.env``.

``--env-file PATH`` picks another settings file (a service started from another directory);
relative paths in it are relative to its folder.

``python -m bot check`` only validates the configuration; ``python -m bot prepare`` validates it
and downloads configured model bundles that are missing (what ``make run`` does first).
``python -m bot worker`` runs an inference worker for front ends with INGEST_REMOTE=true over a
shared PostgreSQL database (:mod:`bot.worker`).
``python -m bot ocr --again [--owner TELEGRAM_ID]`` puts the items of one Telegram user or group
(or of all) back into the OCR queue, for the running bot to read again (:mod:`bot.maintenance`).
``python -m bot move-to-postgres postgresql://...`` copies DATA_DIR's SQLite collection into an
empty PostgreSQL database and verifies the copy (:mod:`bot.move`).

Configuration problems end start-up with one line on stderr (``error: ...``) and exit code 2,
never a traceback: the person running the bot should see what to fix, not where it broke.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.settings import Settings

EXIT_CONFIG = 2
EXAMPLES = """examples:
  python -m bot prepare                      check the settings, download missing models
  python -m bot worker                       embed the jobs front ends enqueue (DATABASE_URL)
  python -m bot ocr                          how many items wait for OCR, are read, failed
  python -m bot ocr --again --owner 1234567  read one user's pictures again (a group: -100...)
  python -m bot ocr --again                  read the pictures of every Telegram collection again
  python -m bot move-to-postgres postgresql://user:pw@host/db   move the collection to PostgreSQL
"""


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return EXIT_CONFIG


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description=__doc__.split("\n")[0],
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=("run", "check", "prepare", "health", "ocr", "move-to-postgres", "worker"),
        help="run the bot (default), check the configuration, also fetch missing models, "
        "tell whether the running bot is polling or serving its webhook (exit 0 or 1), or "
        "show the OCR queue (ocr --again: read the pictures' text again), or move the "
        "SQLite collection to PostgreSQL, or run an inference worker",
    )
    parser.add_argument(
        "url", nargs="?", help="with move-to-postgres: the empty PostgreSQL database's URL"
    )
    parser.add_argument(
        "--again",
        action="store_true",
        help="with ocr: put every item back into the OCR queue; the running bot reads them "
        "again within a minute (a stopped one when it starts)",
    )
    parser.add_argument(
        "--owner",
        type=int,
        metavar="TELEGRAM_ID",
        help="with ocr: only this user's collection (a group's negative chat id: the group's)",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help="settings file (default $IMAGE_FINDER_ENV_FILE or ./.env); "
        "relative paths in it are relative to its folder",
    )
    args = parser.parse_args(argv)
    if args.command != "ocr" and (args.again or args.owner is not None):
        parser.error("--again and --owner go with the ocr command")
    if (args.command == "move-to-postgres") != (args.url is not None):
        parser.error("move-to-postgres takes one postgresql:// URL (and nothing else does)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from bot.config import BotAppSettings
    from core.models.memory import tune_allocator
    from core.settings import SettingsError

    tune_allocator()  # before any thread starts
    args = parse_args(argv)
    try:
        settings = BotAppSettings.load(args.env_file)
    except SettingsError as exc:
        return fail(str(exc))
    if args.command == "health":
        from bot.health import main as health

        return health(settings)
    if args.command == "ocr":
        return ocr(settings, again=args.again, telegram_id=args.owner)
    if args.command == "move-to-postgres":
        from bot.move import run_move

        return run_move(settings.data.dir, args.url)
    from bot.config import StartupError, check_token, prepare_models

    try:
        check_token(settings.bot)
        if args.command == "prepare":
            prepare_models(settings.data)
    except StartupError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130
    if args.command == "worker" and not settings.database.shared:
        return fail("python -m bot worker needs DATABASE_URL=postgresql://... (shared database)")
    if args.command not in ("run", "worker"):
        print("configuration ok")
        return 0
    logging.basicConfig(
        level=settings.bot.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)

    from bot.app import run
    from bot.worker import run_worker
    from core.errors import BundleError, ModelDownloadError

    try:
        asyncio.run(run_worker(settings) if args.command == "worker" else run(settings))
    except StartupError as exc:
        return fail(str(exc))
    except (BundleError, ModelDownloadError) as exc:
        text = str(exc)
        return fail(text if "README" in text else f"{text} (see README, section Models)")
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    return 0


def ocr(settings: Settings, *, again: bool, telegram_id: int | None) -> int:
    """``python -m bot ocr``: needs only the database (no token, no models)."""
    from bot.maintenance import OcrCommandError, ocr_command

    try:
        print(asyncio.run(ocr_command(settings, again=again, telegram_id=telegram_id)))
    except OcrCommandError as exc:
        return fail(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
