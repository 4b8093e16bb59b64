"""``python -m bot``: start the Telegram bot with settings from the environment and ``.env``.

Configuration problems end start-up with one line on stderr (``error: ...``) and exit code 2,
never a traceback: the person running the bot should see what to fix, not where it broke.
"""

from __future__ import annotations

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


def main(argv: Sequence[str] | None = None) -> int:
    from pydantic import ValidationError

    from core.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        return fail(format_validation_error(exc))
    from bot.config import StartupError, check_token

    try:
        check_token(settings)
    except StartupError as exc:
        return fail(str(exc))
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
