"""Getting an item's bytes: the :data:`Fetch` contract the front ends implement, retried with a
doubling delay (:func:`fetch_with_retry`), and the folder CLI's :func:`local_fetcher`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from core.errors import FetchError, FileGoneError
from core.ingest.request import IngestRequest

log = logging.getLogger(__name__)

__all__ = ["MAX_BACKOFF_S", "Fetch", "Fetcher", "fetch_with_retry", "local_fetcher"]

MAX_BACKOFF_S = 300.0

Fetch = Callable[[IngestRequest, bool], Awaitable[bytes | Path]]
"""``await fetch(request, thumbnail)``: the file's bytes (or a local path), or with ``thumbnail``
the bytes of its thumbnail. Raise :class:`~core.errors.FetchError` (``retryable=False`` when a
retry cannot help), :class:`~core.errors.FileTooLargeError` or
:class:`~core.errors.FileGoneError`; any other exception counts as a transient failure."""


def local_fetcher(root: Path | None = None) -> Fetch:
    """A fetch callback for local files: returns ``root / request.path`` without reading it
    (decoders read paths directly). A missing file raises :class:`FileGoneError`; local files
    have no thumbnails."""

    async def fetch(request: IngestRequest, thumbnail: bool) -> bytes | Path:
        if thumbnail:
            raise FileGoneError("a local file has no separate thumbnail")
        if request.path is None:
            raise FileGoneError(f"item {request.file_unique_id} has no local path")
        path = Path(request.path)
        if root is not None and not path.is_absolute():
            path = root / path
        if not await asyncio.to_thread(path.is_file):
            raise FileGoneError(f"{path} no longer exists")
        return path

    return fetch


async def fetch_with_retry(
    fetch: Fetch,
    request: IngestRequest,
    thumbnail: bool,
    *,
    attempts: int,
    backoff_s: float,
) -> bytes | Path:
    """Call ``fetch`` up to ``attempts`` times, waiting ``backoff_s``, then twice that, ...
    between tries. Raises the last :class:`FetchError` (other exceptions are wrapped in one)."""
    for attempt in range(1, max(attempts, 1) + 1):
        try:
            data = await fetch(request, thumbnail)
        except FetchError as exc:
            if not exc.retryable or attempt >= attempts:
                raise
            reason = str(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the bot's download errors, timeouts, OSError, ...
            if attempt >= attempts:
                raise FetchError(f"{type(exc).__name__}: {exc}") from exc
            reason = f"{type(exc).__name__}: {exc}"
        else:
            if isinstance(data, bytes | bytearray | memoryview):
                return bytes(data)
            if isinstance(data, Path):
                return data
            raise TypeError(f"fetch returned {type(data).__name__}, expected bytes or a Path")
        delay = min(backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
        log.info("fetch of %s failed (%s); try %d in %.1f s", request.file_unique_id, reason,
                 attempt + 1, delay)  # fmt: skip
        await asyncio.sleep(delay)
    raise AssertionError("unreachable")


class Fetcher:
    """A fetch callback with the pipeline's retry policy bound (ingest and re-embedding alike)."""

    def __init__(self, fetch: Fetch, *, attempts: int, backoff_s: float) -> None:
        self._fetch = fetch
        self.attempts = attempts
        self.backoff_s = backoff_s

    async def __call__(self, request: IngestRequest, *, thumbnail: bool) -> bytes | Path:
        return await fetch_with_retry(
            self._fetch, request, thumbnail, attempts=self.attempts, backoff_s=self.backoff_s
        )
