"""The project's own hostile suite: the real bot process against the fake Telegram server.

Scenarios (``--scenario``, default all):

- ``kill``: users keep sending photos and albums while the bot is SIGKILLed ``--kills`` times at
  random moments; after a final clean run every item whose update Telegram saw acknowledged,
  and every item the user was told was saved, must be in the collection.
- ``fuzz``: mutated photos, image documents and animations sent through the bot one by one;
  each must get a precise answer (saved, or "not saved: <reason>", never the generic "went
  wrong on my side") within the per-file budget, and the bot's RSS stays bounded.
- ``crowd``: ``--users`` simulated users for ``--minutes``: each sends photos, then queries at a
  human pace; query latency (text sent -> first answer) p50/p95, RSS over time, and a leak
  check (every picture a user gets back is one that user sent).
- ``faults``: a smaller crowd while random Telegram faults (5xx, 429, dropped connections,
  failed downloads) are injected; nothing acknowledged lost, every query answered.

The bot runs with production defaults (pacing, retries) and the small fixture models, so the
figures measure the bot, not a model. Prints a markdown table and a final ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.hostile_files import fuzz_cases, unique_photo  # noqa: E402
from bench.machine import cpu_label  # noqa: E402
from storage.db import default_database_path  # noqa: E402
from tests.e2e.fake_telegram import DOWNLOAD, FakeTelegramServer, FakeUser  # noqa: E402
from tests.e2e.harness import BotProcess, bot_env  # noqa: E402

MODELS = ROOT / "tests" / "fixtures" / "models"
GENERIC = ("went wrong on my side", "Something went wrong", "что-то пошло не так")
PROGRESS = "⏳"  # a progress message; its final state replaces it in place
QUERIES = ("red", "blue", "green circle", "yellow square", "a red star", "purple", "orange")


# --- the stack -----------------------------------------------------------------------------------


class RssSampler:
    """Samples a process's resident set from /proc while the block runs."""

    def __init__(self, pid: int, every_s: float = 0.25) -> None:
        self.pid = pid
        self.every_s = every_s
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MB)
        self._task: asyncio.Task[None] | None = None

    def read(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    async def _run(self) -> None:
        start = time.monotonic()
        while True:
            mb = self.read()
            if mb is not None:
                self.samples.append((time.monotonic() - start, mb))
            await asyncio.sleep(self.every_s)

    def start(self) -> RssSampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def peak(self) -> float:
        return max((mb for _, mb in self.samples), default=0.0)

    def at(self, fraction: float) -> float:
        """RSS at a fraction of the run (for "RSS over time")."""
        if not self.samples:
            return 0.0
        end = self.samples[-1][0]
        return min(self.samples, key=lambda s: abs(s[0] - fraction * end))[1]


def bot_environment(server: FakeTelegramServer, data_dir: Path, **extra: str) -> dict[str, str]:
    dirs = ",".join(str(MODELS / name) for name in ("clip-fixture", "ruclip-fixture"))
    return bot_env(
        server,
        DATA_DIR=str(data_dir),
        MODEL_DIRS=dirs,
        NEAR_DUPLICATE_THRESHOLD="1",  # random pictures must not be told apart as duplicates
        PYTHONPATH=str(ROOT),
        **extra,
    )


@contextlib.asynccontextmanager
async def bot_process(
    server: FakeTelegramServer, data_dir: Path, workdir: Path, **extra: str
) -> AsyncIterator[BotProcess]:
    env = bot_environment(server, data_dir, **extra)
    async with BotProcess(["-m", "bot"], env=env, cwd=workdir) as process:
        # the bot's own line, not the engine's "engine ready" that comes before start-up ends
        await process.wait_output(r"bot @\S+ ready", timeout=120)
        yield process


def tracebacks(output: str) -> list[str]:
    """The exception line of every traceback in the bot's log: errors that were not turned
    into a typed answer."""
    lines = output.splitlines()
    found: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            tail = next(
                (x for x in lines[i + 1 :] if x and not x.startswith((" ", "Traceback"))), "?"
            )
            found.append(tail[:160])
    return found


def examples(found: list[str], n: int = 3) -> list[str]:
    """The most frequent distinct lines, for the report."""
    counts: dict[str, int] = {}
    for line in found:
        counts[line] = counts.get(line, 0) + 1
    return [f"{c}x {line}" for line, c in sorted(counts.items(), key=lambda kv: -kv[1])[:n]]


def is_generic(text: str) -> bool:
    return any(g in text for g in GENERIC)


def jobs_open(data_dir: Path) -> int:
    """Ingest jobs not finished yet, read from the bot's database file."""
    path = default_database_path(data_dir)
    if not path.exists():
        return 0
    conn = sqlite3.connect(path, timeout=30)
    try:
        row = conn.execute("SELECT count(*) FROM jobs WHERE state IN ('pending', 'running')")
        return int(row.fetchone()[0])
    finally:
        conn.close()


def saved_message_ids(data_dir: Path) -> dict[int, set[int]]:
    """Telegram user id -> message ids of the media in that user's collection."""
    conn = sqlite3.connect(default_database_path(data_dir), timeout=30)
    try:
        rows = conn.execute(
            "SELECT o.external_id, m.message_id FROM media m JOIN owners o ON o.id = m.owner_id"
            " WHERE o.kind = 'user'"
        )
        saved: dict[int, set[int]] = {}
        for external, message_id in rows:
            saved.setdefault(int(external), set()).add(int(message_id or 0))
        return saved
    finally:
        conn.close()


async def settle(server: FakeTelegramServer, data_dir: Path, timeout: float = 300.0) -> None:
    """Wait until every update was acknowledged and every ingest job finished."""
    deadline = time.monotonic() + timeout
    while server.pending_updates() or jobs_open(data_dir):
        if time.monotonic() > deadline:
            raise TimeoutError("the bot did not finish its backlog")
        await asyncio.sleep(0.5)


# --- kill storm ----------------------------------------------------------------------------------


@dataclass
class Sent:
    """What the simulated users sent, to check against the collection afterwards."""

    messages: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # user -> messages

    def add(self, user: FakeUser, message: dict[str, Any]) -> None:
        self.messages.setdefault(user.id, []).append(message)


async def send_wave(
    server: FakeTelegramServer, users: list[FakeUser], sent: Sent, rng: random.Random
) -> None:
    for user in users:
        if rng.random() < 0.4:
            items = [("photo", unique_photo(rng)) for _ in range(rng.randint(2, 5))]
            for message in await server.send_album(user, items):
                sent.add(user, message)
        else:
            sent.add(user, server.send_photo(user, unique_photo(rng)))


def acknowledged(
    server: FakeTelegramServer, user: FakeUser, sent: list[dict[str, Any]]
) -> set[int]:
    """Message ids the user was told were saved (a ✅ reply; an album's reply covers it all)."""
    by_album: dict[str, list[int]] = {}
    for message in sent:
        if message.get("media_group_id"):
            by_album.setdefault(message["media_group_id"], []).append(message["message_id"])
    first_of = {ids[0]: ids for ids in by_album.values()}
    told: set[int] = set()
    for reply in server.messages(user.id):
        text = reply.text or ""
        target = reply.reply_to_message_id
        if target is None or not text.startswith("✅"):
            continue
        told.update(first_of.get(target, [target]))
    return told


async def kill_storm(args: argparse.Namespace, work: Path, rng: random.Random) -> dict[str, Any]:
    data_dir = work / "kill-data"
    sent = Sent()
    async with FakeTelegramServer() as server:
        users = [server.user(first_name=f"K{i}") for i in range(3)]
        escapes: list[str] = []
        for _ in range(args.kills):
            async with bot_process(server, data_dir, work) as process:
                await send_wave(server, users, sent, rng)
                await asyncio.sleep(rng.uniform(0.2, 2.5))  # a random moment mid-ingest
                await send_wave(server, users, sent, rng)
                await asyncio.sleep(rng.uniform(0.0, 1.0))
                await process.kill()
                escapes += tracebacks(process.output)
        async with bot_process(server, data_dir, work) as process:
            await settle(server, data_dir)
            await process.stop()
            escapes += tracebacks(process.output)
        saved = saved_message_ids(data_dir)
        confirmed_lost = told_lost = total = told_total = 0
        for user in users:
            mine = sent.messages.get(user.id, [])
            have = saved.get(user.id, set())
            total += len(mine)
            confirmed = {m["message_id"] for m in mine if server.update_record(m).confirmed}
            confirmed_lost += len(confirmed - have)
            told = acknowledged(server, user, mine)
            told_total += len(told)
            told_lost += len(told - have)
    return {
        "kills": args.kills,
        "items_sent": total,
        "items_told_saved": told_total,
        "acknowledged_lost": told_lost,
        "confirmed_updates_lost": confirmed_lost,
        "untyped_escapes": len(escapes),
        "escape_examples": examples(escapes),
    }


# --- fuzz through the bot ------------------------------------------------------------------------


async def final_answer(
    server: FakeTelegramServer, message: dict[str, Any], since: int, timeout: float
) -> str | None:
    """The text of the bot's final reply to ``message`` (progress edits skipped), or None.
    Only messages sent after index ``since`` are looked at, so waiting stays cheap."""
    chat_id = message["chat"]["id"]

    def found(_: FakeTelegramServer) -> str | None:
        for reply in server.sent[since:]:
            if reply.chat_id == chat_id and reply.reply_to_message_id == message["message_id"]:
                text = reply.text or ""
                if text and not text.startswith(PROGRESS):
                    return text
        return None

    with contextlib.suppress(AssertionError, TimeoutError):
        return await server.wait_for(found, timeout=timeout, what="a final answer")
    return None


async def fuzz_through_bot(
    args: argparse.Namespace, work: Path, rng: random.Random
) -> dict[str, Any]:
    data_dir = work / "fuzz-data"
    outcomes = {"saved": 0, "refused": 0, "generic": 0, "no_answer": 0}
    times: list[float] = []
    slow: list[str] = []
    async with FakeTelegramServer() as server:
        user = server.user(first_name="Fuzzer")
        async with bot_process(server, data_dir, work, SEND_PACE_PER_CHAT_S="0") as process:
            rss = RssSampler(process.process.pid).start()  # type: ignore[union-attr]
            base = rss.read() or 0.0
            for case in fuzz_cases(rng, args.fuzz_cases):
                started, since = time.monotonic(), len(server.sent)
                message = case.send(server, user)
                text = await final_answer(server, message, since, timeout=args.file_budget_s * 6)
                times.append(time.monotonic() - started)
                if times[-1] > args.file_budget_s or text is None or is_generic(text):
                    slow.append(f"{case.name} ({case.how}): {times[-1]:.1f}s {text!r:.60}")
                if text is None:
                    outcomes["no_answer"] += 1
                elif is_generic(text):
                    outcomes["generic"] += 1
                elif text.startswith("✅"):
                    outcomes["saved"] += 1
                else:
                    outcomes["refused"] += 1
            await rss.stop()
            await process.stop()
            escapes = tracebacks(process.output)
    over = sum(t > args.file_budget_s for t in times)
    return {
        "cases": len(times),
        **outcomes,
        "untyped_escapes": len(escapes) + outcomes["generic"],
        "escape_examples": examples(escapes),
        "worst_cases": slow[:5],
        "files_over_budget": over,
        "answer_p50_s": round(statistics.median(times), 3) if times else None,
        "answer_max_s": round(max(times), 3) if times else None,
        "rss_base_mb": round(base, 1),
        "rss_peak_extra_mb": round(rss.peak - base, 1),
    }


# --- crowd ---------------------------------------------------------------------------------------


@dataclass
class CrowdStats:
    latencies: list[float] = field(default_factory=list)
    unanswered: int = 0
    uploaded: dict[int, set[str]] = field(default_factory=dict)  # user -> file_unique_ids


async def next_bot_message(
    server: FakeTelegramServer, user: FakeUser, since: int, timeout: float
) -> bool:
    """Whether the bot answered this user after index ``since`` of its sent messages (ingest
    acknowledgements that happen to arrive meanwhile do not count)."""

    def found(_: FakeTelegramServer) -> bool:
        return any(
            m.chat_id == user.id and not (m.text or "").startswith(("✅", "❌"))
            for m in server.sent[since:]
        )

    with contextlib.suppress(AssertionError, TimeoutError):
        await server.wait_for(found, timeout=timeout, what="an answer")
        return True
    return False


def remember_upload(stats: CrowdStats, user: FakeUser, message: dict[str, Any]) -> None:
    ids = stats.uploaded.setdefault(user.id, set())
    for size in message.get("photo", []):
        ids.add(size["file_unique_id"])


async def simulated_user(
    server: FakeTelegramServer,
    user: FakeUser,
    stats: CrowdStats,
    rng: random.Random,
    until: float,
    think: tuple[float, float],
) -> None:
    await asyncio.sleep(rng.uniform(0, min(30.0, think[1])))
    for _ in range(rng.randint(3, 8)):
        remember_upload(stats, user, server.send_photo(user, unique_photo(rng)))
    while time.monotonic() < until:
        await asyncio.sleep(rng.uniform(*think))
        if time.monotonic() >= until:
            break
        started, since = time.monotonic(), len(server.sent)
        server.send_text(user, rng.choice(QUERIES))
        if await next_bot_message(server, user, since, timeout=60):
            stats.latencies.append(time.monotonic() - started)
        else:
            stats.unanswered += 1


def leaks(server: FakeTelegramServer, users: list[FakeUser], stats: CrowdStats) -> int:
    """Pictures a user got back that this user never sent."""
    count = 0
    for user in users:
        mine = stats.uploaded.get(user.id, set())
        for message in server.messages(user.id):
            unique = message.file_unique_id
            if unique is not None and message.kind == "photo" and unique not in mine:
                count += 1
    return count


FAULTS: tuple[Callable[[FakeTelegramServer], Any], ...] = (
    lambda s: s.fail("sendMessage", 500),
    lambda s: s.fail("sendMediaGroup", 502),
    lambda s: s.fail_retry_after("sendMessage", retry_after=1),
    lambda s: s.fail_retry_after("sendMediaGroup", retry_after=2),
    lambda s: s.fail("getFile", 500),
    lambda s: s.fail(DOWNLOAD, 502),
    lambda s: s.drop_connection("sendMessage"),
    lambda s: s.drop_connection("getFile"),
    lambda s: s.fail("editMessageText", 502),
)


async def inject_faults(server: FakeTelegramServer, rng: random.Random, every_s: float) -> int:
    injected = 0
    with contextlib.suppress(asyncio.CancelledError):
        while True:
            await asyncio.sleep(rng.expovariate(1 / every_s))
            rng.choice(FAULTS)(server)
            injected += 1
    return injected


async def crowd(
    args: argparse.Namespace,
    work: Path,
    rng: random.Random,
    *,
    users: int,
    minutes: float,
    faults: bool,
) -> dict[str, Any]:
    data_dir = work / ("faults-data" if faults else "crowd-data")
    stats = CrowdStats()
    think = (args.think_min_s, args.think_max_s)
    async with FakeTelegramServer() as server:
        people = [server.user(first_name=f"U{i}") for i in range(users)]
        async with bot_process(server, data_dir, work) as process:
            rss = RssSampler(process.process.pid).start()  # type: ignore[union-attr]
            injector = (
                asyncio.create_task(inject_faults(server, rng, args.fault_every_s))
                if faults
                else None
            )
            until = time.monotonic() + minutes * 60
            await asyncio.gather(
                *(simulated_user(server, u, stats, rng, until, think) for u in people)
            )
            injected = 0
            if injector is not None:
                injector.cancel()
                injected = await injector
            server.faults.clear()
            await settle(server, data_dir)
            await rss.stop()
            await process.stop()
            escapes = tracebacks(process.output)
        saved = saved_message_ids(data_dir)
        lost = sum(len(stats.uploaded.get(u.id, set())) > 0 and not saved.get(u.id) for u in people)
        result = {
            "users": users,
            "minutes": minutes,
            "queries": len(stats.latencies) + stats.unanswered,
            "unanswered": stats.unanswered,
            "query_p50_s": _quantile(stats.latencies, 0.5),
            "query_p95_s": _quantile(stats.latencies, 0.95),
            "rss_start_mb": round(rss.at(0.0), 1),
            "rss_mid_mb": round(rss.at(0.5), 1),
            "rss_end_mb": round(rss.at(1.0), 1),
            "rss_peak_mb": round(rss.peak, 1),
            "cross_user_leaks": leaks(server, people, stats),
            "users_with_nothing_saved": lost,
            "untyped_escapes": len(escapes),
            "escape_examples": examples(escapes),
        }
        if faults:
            result["faults_injected"] = injected
        return result


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


# --- report --------------------------------------------------------------------------------------


def print_table(results: dict[str, dict[str, Any]]) -> None:
    print(f"\nCPU flags: {cpu_label()}, {os.cpu_count()} cores\n")
    print("| scenario | figure | value |")
    print("|---|---|---|")
    for scenario, figures in results.items():
        for key, value in figures.items():
            print(f"| {scenario} | {key} | {value} |")


async def main_async(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    rng = random.Random(args.seed)
    wanted = (
        set(args.scenario.split(","))
        if args.scenario != "all"
        else {"kill", "fuzz", "crowd", "faults"}
    )
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        work = Path(tmp)
        if "kill" in wanted:
            results["kill"] = await kill_storm(args, work, rng)
        if "fuzz" in wanted:
            results["fuzz"] = await fuzz_through_bot(args, work, rng)
        if "crowd" in wanted:
            results["crowd"] = await crowd(
                args, work, rng, users=args.users, minutes=args.minutes, faults=False
            )
        if "faults" in wanted:
            results["faults"] = await crowd(
                args, work, rng, users=args.fault_users, minutes=args.fault_minutes, faults=True
            )
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="all", help="all or a comma list: kill,fuzz,crowd,faults")
    p.add_argument("--seed", type=int, default=20261202)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--fuzz-cases", type=int, default=200)
    p.add_argument("--file-budget-s", type=float, default=5.0)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--think-min-s", type=float, default=15.0)
    p.add_argument("--think-max-s", type=float, default=45.0)
    p.add_argument("--fault-users", type=int, default=10)
    p.add_argument("--fault-minutes", type=float, default=2.0)
    p.add_argument("--fault-every-s", type=float, default=2.0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = asyncio.run(main_async(args))
    print_table(results)
    print("RESULT " + json.dumps({"cpu_flags": cpu_label(), **results}, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
