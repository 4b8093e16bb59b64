"""``python -m bot``: start the Telegram bot with settings from the environment and ``.env``.

``--env-file PATH`` picks another settings file (a service started from another directory);
relative paths in it are relative to its folder.

``python -m bot check`` only validates the configuration; ``python -m bot prepare`` validates it
and downloads configured model bundles that are missing (what ``make run`` does first).

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

EXIT_CONFIG = 2


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return EXIT_CONFIG


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__.split("\n")[0])
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=("run", "check", "prepare", "health"),
        help="run the bot (default), check the configuration, also fetch missing models, or "
        "tell whether the running bot is polling or serving its webhook (exit 0 or 1)",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help="settings file (default $IMAGE_FINDER_ENV_FILE or ./.env); "
        "relative paths in it are relative to its folder",
    )
    return parser.parse_args(argv)


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
    from bot.config import StartupError, check_token, prepare_models

    try:
        check_token(settings.bot)
        if args.command == "prepare":
            prepare_models(settings.data)
    except StartupError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130
    if args.command != "run":
        print("configuration ok")
        return 0
    logging.basicConfig(
        level=settings.bot.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)

    from bot.app import run
    from core.errors import BundleError, ModelDownloadError

    try:
        asyncio.run(run(settings))
    except StartupError as exc:
        return fail(str(exc))
    except (BundleError, ModelDownloadError) as exc:
        text = str(exc)
        return fail(text if "README" in text else f"{text} (see README, section Models)")
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
