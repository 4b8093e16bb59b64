"""Run the real bot against the fake Telegram server: in-process polling or a separate process.

aiogram logs and swallows handler exceptions, so a broken handler looks like "no reply"; both
runners collect those log lines and fail the test with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.fake_telegram import FakeTelegramServer


class LogCapture(logging.Handler):
    """Collects ERROR records from aiogram (handler exceptions, failed getUpdates)."""

    def __init__(
        self, logger: str = "aiogram", *, on_record: Callable[[], None] | None = None
    ) -> None:
        super().__init__(logging.ERROR)
        self.logger = logging.getLogger(logger)
        self.records: list[logging.LogRecord] = []
        self._on_record = on_record

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if self._on_record is not None:
            self._on_record()  # lets server.wait_for() wake up on a logged error

    def __enter__(self) -> LogCapture:
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)

    def unexpected(self, allow: Iterable[str] = ()) -> list[str]:
        allowed = list(allow)
        lines = []
        for record in self.records:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += f" [{type(record.exc_info[1]).__name__}: {record.exc_info[1]}]"
            if not any(a in text for a in allowed):
                lines.append(f"{record.name}: {text}")
        return lines


@dataclass
class PollingRun:
    """A running ``start_polling``: its task and the aiogram errors logged so far."""

    task: asyncio.Task[None]
    log: LogCapture


@contextlib.asynccontextmanager
async def polling(
    dispatcher: Any,
    bot: Any,
    server: FakeTelegramServer | None = None,
    *,
    polling_timeout: int = 1,
    allow_log_errors: Iterable[str] = (),
    stop_timeout: float = 5.0,
    **kwargs: Any,
) -> AsyncIterator[PollingRun]:
    """Run ``dispatcher.start_polling(bot)`` for the duration of the block, then stop it.

    With ``server`` given, the block starts once the first getUpdates reached the fake, so
    updates pushed inside it are picked up by the live loop. ERROR logs from aiogram fail the
    test on a clean exit unless they contain one of ``allow_log_errors``.
    """
    notify = server.notify if server is not None else None
    with LogCapture(on_record=notify) as capture:
        mark = server.mark() if server is not None else 0
        task = asyncio.create_task(
            dispatcher.start_polling(
                bot, polling_timeout=polling_timeout, handle_signals=False, **kwargs
            )
        )
        try:
            if server is not None:
                await server.wait_for(
                    lambda s: task.done() or any(c.method == "getUpdates" for c in s.calls[mark:]),
                    what="the polling loop's first getUpdates",
                )
                if task.done():
                    task.result()  # start-up failed: raise its error
            yield PollingRun(task, capture)
        finally:
            if not task.done():
                try:
                    await dispatcher.stop_polling()
                except RuntimeError:  # not started yet
                    task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, stop_timeout)
    problems = capture.unexpected(allow_log_errors)
    if problems:
        raise AssertionError("aiogram logged errors:\n" + "\n".join(problems))


def bot_env(server: FakeTelegramServer, **extra: str) -> dict[str, str]:
    """Environment for a bot process pointed at the fake (settings names from the issue)."""
    env = {"BOT_TOKEN": server.token, "TELEGRAM_API_BASE": server.url}
    if server.local_dir is not None:
        env["TELEGRAM_API_LOCAL"] = "true"
    env.update(extra)
    return env


class BotProcess:
    """A bot running as its own process (e.g. ``python -m bot``), output captured.

    Use as an async context manager; ``stop()`` sends SIGTERM (graceful), ``kill()`` SIGKILL
    (a crash: nothing gets flushed or acknowledged).
    """

    def __init__(
        self,
        args: Sequence[str] = ("-m", "bot"),
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        python: str = sys.executable,
    ) -> None:
        self.argv = [python, *args]
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.cwd = cwd
        self.lines: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self) -> BotProcess:
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._notify()
        self._notify()

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.returncode

    async def wait_output(self, pattern: str, *, timeout: float = 10.0) -> re.Match[str]:
        """Wait for a line matching the regular expression; fail if the process exits first."""
        regex = re.compile(pattern)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = 0
        while True:
            event = self._changed
            for line in self.lines[seen:]:
                match = regex.search(line)
                if match:
                    return match
            seen = len(self.lines)
            finished = self._reader is not None and self._reader.done()
            remaining = deadline - loop.time()
            if finished or remaining <= 0:
                why = "exited" if finished else f"timed out after {timeout:g}s"
                raise AssertionError(f"bot {why} before printing {pattern!r}:\n{self.output}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def stop(self, *, timeout: float = 10.0) -> int:
        """SIGTERM and wait; SIGKILL if it does not exit in time. Returns the exit code."""
        return await self._end(signal.SIGTERM, timeout)

    async def kill(self) -> int:
        """SIGKILL: the process dies at once, like a crash or an OOM kill."""
        return await self._end(signal.SIGKILL, 10.0)

    async def _end(self, sig: signal.Signals, timeout: float) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            await self._reader
        return int(self.process.returncode or 0)

    async def __aenter__(self) -> BotProcess:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        if self.process is not None and self.process.returncode is None:
            await self.stop()
