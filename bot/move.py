"""``python -m bot move-to-postgres URL`` (and ``image-finder move-to-postgres URL``): move the
collection in DATA_DIR's SQLite file into an empty PostgreSQL database (:mod:`storage.transfer`).

Stop the bot first: the copy is one snapshot of the file, so whatever the bot saves meanwhile
stays behind. Every table is printed as it is copied, then the verification; the exit code is 0
only when every count and vector checksum matched. Then set ``DATABASE_URL`` to the same URL and
start the bot (the SQLite file is left as it was, a backup).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from core.errors import ImageFinderError
from storage import Database
from storage.db import default_database_path
from storage.dbapi import DRIVER_ERRORS
from storage.postgres import is_postgres_url
from storage.transfer import TransferReport, transfer

EXIT_UNVERIFIED = 1
REFUSED: tuple[type[Exception], ...] = (ImageFinderError, *DRIVER_ERRORS)


class MoveError(ImageFinderError):
    """The move cannot start: no SQLite file, not a PostgreSQL URL, no server there."""

    code = "move"


def where(url: str) -> str:
    """The server and database of a URL without its password, for messages."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"


async def move_to_postgres(data_dir: Path, url: str, out: TextIO = sys.stdout) -> TransferReport:
    """Copy and verify; raises :class:`MoveError` or a storage error with a one-line message."""
    if not is_postgres_url(url):
        raise MoveError("the target must be a postgresql:// URL")
    path = default_database_path(data_dir)
    if not path.is_file():
        raise MoveError(f"no collection at {path}: check DATA_DIR")
    async with await Database.open(path) as source:
        try:
            target = await Database.open(url)
        except DRIVER_ERRORS as exc:
            raise MoveError(f"cannot use PostgreSQL at {where(url)}: {_line(exc)}") from exc
        async with target:
            print(f"moving {path} to PostgreSQL at {where(url)}", file=out, flush=True)
            report = await transfer(source, target, progress=_printer(out))
    _print_verification(report, out)
    return report


def run_move(data_dir: Path, url: str, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """The command: 0 verified, 1 copied but not verified, 2 nothing done (the error line)."""
    try:
        report = asyncio.run(move_to_postgres(data_dir, url, out))
    except REFUSED as exc:
        print(f"error: {_line(exc)}", file=err, flush=True)
        return 2
    return 0 if report.verified else EXIT_UNVERIFIED


def _printer(out: TextIO) -> Callable[[str, int, int], None]:
    def progress(table: str, copied: int, total: int) -> None:
        if copied == total:
            print(f"  {table}: {total} row(s)", file=out, flush=True)

    return progress


def _print_verification(report: TransferReport, out: TextIO) -> None:
    rows = sum(s for s, _ in report.tables.values())
    if report.verified:
        print(
            f"verified: {len(report.tables)} tables, {rows} rows, {report.text_index[1]} items "
            f"in the text index, vectors of {len(report.vectors)} (owner, model) pair(s) "
            "identical; now set DATABASE_URL to this URL",
            file=out,
            flush=True,
        )
        return
    print("NOT verified:", file=out)
    for line in report.mismatches:
        print(f"  {line}", file=out)


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
