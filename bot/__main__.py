"""``python -m bot``: start the Telegram bot with settings from the environment and ``.env``.

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

EXIT_CONFIG = 2


def format_validation_error(exc: object) -> str:
    """One line for a pydantic ValidationError: ``MODEL_DIRS: <problem>; ...``."""
    parts = []
    for err in exc.errors():  # type: ignore[attr-defined]
        loc = ".".join(str(p) for p in err.get("loc", ()) if not isinstance(p, int))
        name = loc.upper() or "settings"
        msg = str(err.get("msg", "invalid value"))
        msg = msg.removeprefix("Value error, ")
        parts.append(f"{name}: {msg}")
    return "; ".join(parts) or str(exc)


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return EXIT_CONFIG


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__.split("\n")[0])
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=("run", "check", "prepare"),
        help="run the bot (default), check the configuration, or also fetch missing models",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from pydantic import ValidationError

    from core.settings import Settings

    args = parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        return fail(format_validation_error(exc))
    from bot.config import StartupError, check_token, prepare_models

    try:
        check_token(settings)
        if args.command == "prepare":
            prepare_models(settings)
    except StartupError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130
    if args.command != "run":
        print("configuration ok")
        return 0
    logging.basicConfig(
        level=settings.log_level,
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
