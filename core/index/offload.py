"""Running blocking FAISS work off the event loop, in a thread or a given executor."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

T = TypeVar("T")


class Offload:
    """Awaitable calls of blocking functions: ``await offload(fn, *args)``.

    Without an executor the default thread pool of :func:`asyncio.to_thread` is used, so the
    caller need not own a pool; with one, the caller decides how many cores FAISS may take.
    """

    def __init__(self, executor: Executor | None = None) -> None:
        self._executor = executor

    async def __call__(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        call = functools.partial(fn, *args, **kwargs)
        if self._executor is None:
            return await asyncio.to_thread(call)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)
