"""The distributed shape end to end: real ``python -m bot`` front ends and ``python -m bot
worker`` processes on one PostgreSQL schema, against the fake Telegram server.

Webhook: two front replicas (INGEST_REMOTE=true) behind a round-robin proxy, so the items of one
album reach both, and three inference workers. Two users send albums and single photos; one
worker and one front are killed with SIGKILL in the middle of albums. Afterwards every item
acknowledged as saved is found by a search through the surviving front, each album got exactly
one acknowledgement, no answer carries another user's files, and no job is left unfinished.

Polling: two fronts, one active and one hot standby; SIGKILL the active one, the standby takes
over within seconds and answers.

The database is inspected directly (psycopg) for what no Bot API call shows: which worker holds
which job, which front answers an album. Waiting on those is a bounded poll (another process'
database rows have no event a test can await); everything Telegram-side is awaited on the fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import psycopg
from aiohttp import web
from PIL import Image

from bot.i18n import Lang, t
from tests.e2e.fake_telegram import FakeTelegramServer, FakeUser, SentMessage
from tests.e2e.harness import BotProcess, bot_env
from tests.e2e.proxy import RoundRobinProxy
from tests.e2e.search_support import model_dirs
from tests.postgres_support import fresh_schema

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 2  # a killed worker's jobs are claimed again this soon (the lease is whole seconds)
START_TIMEOUT_S = 120.0  # five processes importing aiogram and loading models on two cores
WEBHOOK_PATH = "/tg"
WHOLE_TEST_S = 300.0  # a bound on each multi-process test, start-up included
T = TypeVar("T")


# --- the round-robin proxy on its own (no PostgreSQL) ----------------------------------------


@contextlib.asynccontextmanager
async def echo_server(name: str, *, drop: bool = False) -> AsyncIterator[tuple[str, web.AppRunner]]:
    """A tiny HTTP server answering its name (``drop``: closing the connection instead)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        await request.read()
        if drop:
            assert request.transport is not None
            request.transport.close()
        return web.Response(text=name)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", runner
    finally:
        await runner.cleanup()


async def test_proxy_takes_turns_and_skips_a_replica_that_refuses() -> None:
    async with (
        echo_server("a") as (a_url, a_runner),
        echo_server("b") as (b_url, _),
        RoundRobinProxy([a_url, b_url]) as proxy,
        aiohttp.ClientSession() as http,
    ):

        async def post(update_id: int) -> tuple[int, str]:
            async with http.post(f"{proxy.url}/tg?x=1", json={"update_id": update_id}) as r:
                return r.status, await r.text()

        assert [await post(i) for i in range(4)] == [(200, "a"), (200, "b")] * 2
        assert [proxy.replica_of(i) for i in range(4)] == [0, 1, 0, 1]
        await a_runner.cleanup()  # replica a is gone: its port refuses connections
        assert [await post(i) for i in range(4, 8)] == [(200, "b")] * 4
        assert proxy.refused and set(proxy.refused) == {0}


async def test_proxy_never_hands_a_request_a_replica_took_to_another() -> None:
    async with (
        echo_server("dies", drop=True) as (dying, _),
        echo_server("b") as (b_url, _),
        RoundRobinProxy([dying, b_url]) as proxy,
        aiohttp.ClientSession() as http,
        http.post(proxy.url, json={"update_id": 7}) as response,
    ):
        assert response.status == 502  # Telegram delivers it again later
        assert proxy.replica_of(7) is None and proxy.routed[-1].replica is None


# --- helpers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def photo(i: int, seed: int) -> bytes:
    """A distinct picture per (i, seed): a coloured field with a contrasting block."""
    colour = ((37 * i + 91 * seed) % 256, (101 * i + 17 * seed) % 256, (53 * i + 29) % 256)
    img = Image.new("RGB", (320, 240), colour)
    box = (20 + 7 * (i % 20), 20 + 5 * (seed % 20), 160 + 3 * i % 100, 200)
    img.paste(tuple(255 - c for c in colour), box)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


async def until(
    check: Callable[[], Awaitable[T | None]], *, timeout: float, what: str, every: float = 0.1
) -> T:
    """Poll another process' state (database rows) until ``check`` returns a value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(every)


class Rows:
    """What the processes wrote to the shared schema, read with a connection of the test's."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def all(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            cursor = await conn.execute(sql, params)
            return list(await cursor.fetchall())

    async def jobs_by_state(self) -> dict[str, int]:
        rows = await self.all("SELECT state, count(*) FROM jobs GROUP BY state")
        return {str(state): int(n) for state, n in rows}

    async def album_jobs(self, album_id: str) -> int:
        rows = await self.all(
            "SELECT count(*) FROM jobs WHERE CAST(payload AS jsonb) ->> 'album_id' = %s",
            album_id,
        )
        return int(rows[0][0])

    async def running_by_worker(self) -> dict[str, int]:
        rows = await self.all(
            "SELECT worker, count(*) FROM jobs WHERE state = 'running' AND worker IS NOT NULL "
            "GROUP BY worker"
        )
        return {str(worker): int(n) for worker, n in rows}

    async def album_holder(self, album_id: str) -> str | None:
        """Which front answers an album (``holder`` of its album_answers row), if any yet."""
        rows = await self.all("SELECT holder FROM album_answers WHERE album_id = %s", album_id)
        return str(rows[0][0]) if rows and rows[0][0] else None


class Cluster:
    """Environments and processes of one distributed bot: fronts and workers on one schema."""

    def __init__(self, telegram: FakeTelegramServer, work: Path, url: str) -> None:
        self.telegram = telegram
        self.work = work
        self.url = url
        self.models = ",".join(str(d) for d in model_dirs(work, quality=False))
        self.processes: dict[str, BotProcess] = {}

    def env(self, name: str, **extra: str) -> dict[str, str]:
        """One process' settings: its own data directory (another machine), the shared schema,
        a model whose every score is relevant (a search lists the whole collection)."""
        values = {
            "IMAGE_FINDER_ENV_FILE": "",
            "DATA_DIR": str(self.work / name),
            "MODEL_DIRS": self.models,
            "DATABASE_URL": self.url,
            "DATABASE_POOL_SIZE": "2",
            "EMBED_THREADS": "1",
            "OCR_ENABLED": "false",
            "INGEST_LEASE_S": str(LEASE_S),
            "INGEST_RETRY_BACKOFF_S": "0.05",
            "NEAR_DUPLICATE_THRESHOLD": "1",
            "ALBUM_WAIT_S": "1.0",
            "ALBUM_LEASE_S": "3",
            "BOT_STANDBY_RETRY_S": "0.5",
            "SEND_PACE_PER_CHAT_S": "0",
            "TELEGRAM_RETRY_BACKOFF_S": "0.05",
            "SEARCH_DEFAULT_LIMIT": "20",
            "SEARCH_MARGIN_NORMAL": "2.0",  # cosine distances span [0, 2]: nothing is cut
            "SEARCH_MARGIN_LOOSE": "2.0",
            "POLLING_TIMEOUT_S": "1",
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        return bot_env(self.telegram, **{**values, **extra})

    async def start(self, name: str, args: list[str], **extra: str) -> BotProcess:
        process = BotProcess(args, env=self.env(name, **extra), cwd=self.work)
        self.processes[name] = await process.start()
        return process

    async def webhook_front(self, name: str, port: int, proxy: RoundRobinProxy) -> BotProcess:
        return await self.start(
            name,
            ["-m", "bot"],
            INGEST_REMOTE="true",
            WEBHOOK_URL=proxy.url,
            WEBHOOK_PATH=WEBHOOK_PATH,
            WEBHOOK_HOST="127.0.0.1",
            WEBHOOK_PORT=str(port),
        )

    async def polling_front(self, name: str) -> BotProcess:
        return await self.start(name, ["-m", "bot"], INGEST_REMOTE="true")

    async def worker(self, name: str) -> BotProcess:
        return await self.start(name, ["-m", "bot", "worker"])

    def by_worker_name(self, worker: str) -> BotProcess:
        """The process a ``hostname:pid:random`` worker name belongs to."""
        pid = int(worker.split(":")[1])
        for process in self.processes.values():
            if process.process is not None and process.process.pid == pid:
                return process
        raise AssertionError(f"no process of ours is worker {worker}")

    def name_of(self, process: BotProcess) -> str:
        return next(n for n, p in self.processes.items() if p is process)

    async def stop_all(self) -> dict[str, int]:
        codes = {}
        for name, process in self.processes.items():
            codes[name] = await process.stop(timeout=20)
        return codes

    def outputs(self) -> str:
        return "\n".join(f"--- {n}\n{p.output[-4000:]}" for n, p in self.processes.items())

    async def run(self, scenario: Awaitable[None]) -> None:
        """The scenario within the whole test's bound; every process's output if it fails; the
        processes still running stopped in any case."""
        try:
            async with asyncio.timeout(WHOLE_TEST_S):
                await scenario
        except BaseException:
            print(self.outputs())
            raise
        finally:
            for process in self.processes.values():
                if process.returncode is None:
                    await process.stop(timeout=20)


@contextlib.contextmanager
def schema() -> Iterator[str]:
    with fresh_schema("mp") as url:
        yield url


def album_items(seed: int, n: int) -> list[tuple[str, bytes]]:
    return [("photo", photo(i, seed)) for i in range(n)]


def answers_to(telegram: FakeTelegramServer, user: FakeUser, sent: list[dict[str, Any]]) -> list:
    """The bot's messages replying to any of ``sent`` (deleted ones too)."""
    ids = {m["message_id"] for m in sent}
    return [
        m
        for m in telegram.messages(user.chat_id, include_deleted=True)
        if m.reply_to_message_id in ids
    ]


async def final_album_answer(
    telegram: FakeTelegramServer, user: FakeUser, sent: list[dict[str, Any]], *, timeout: float
) -> SentMessage:
    """The album's answer once it reads as final (no longer "⏳ Saving the album: k of n")."""

    def final(_: FakeTelegramServer) -> SentMessage | None:
        for message in answers_to(telegram, user, sent):
            if message.text and not message.text.startswith("⏳"):
                return message
        return None

    return await telegram.wait_for(final, timeout=timeout, what=f"the album answer to {user.id}")


async def single_answer(
    telegram: FakeTelegramServer, user: FakeUser, sent: dict[str, Any], *, timeout: float
) -> SentMessage:
    return await telegram.wait_for(
        lambda _: next(
            (m for m in answers_to(telegram, user, [sent]) if (m.text or "").startswith("✅")),
            None,
        ),
        timeout=timeout,
        what=f"the answer to photo {sent['message_id']}",
    )


def lang(user: FakeUser) -> Lang:
    return "ru" if user.language_code == "ru" else "en"


def album_saved(user: FakeUser, n: int) -> str:
    """The final answer to an album of ``n`` photos all saved, in the user's language."""
    return t("reports-album-saved-all", lang(user), total=n)


def file_id(message: dict[str, Any]) -> str:
    return str(message["photo"][-1]["file_id"])


async def search_all(telegram: FakeTelegramServer, user: FakeUser, *, timeout: float) -> set[str]:
    """Ask for anything (every item scores as relevant): the file ids of the results. Results
    reply to the query; the closing text replies to nothing (an album's late answer, which
    replies to the album, is not it)."""
    start = len(telegram.messages(user.chat_id, include_deleted=True))
    query = telegram.send_text(user, "a picture")["message_id"]

    def answered(_: FakeTelegramServer) -> list[SentMessage] | None:
        sent = telegram.messages(user.chat_id, include_deleted=True)[start:]
        for i, message in enumerate(sent):
            if message.kind == "text" and message.reply_to_message_id in (None, query):
                return [m for m in sent[: i + 1] if m.reply_to_message_id in (None, query)]
        return None

    messages = await telegram.wait_for(answered, timeout=timeout, what=f"{user.id}'s results")
    return {m.file_id for m in messages if m.file_id}


def assert_no_leak(telegram: FakeTelegramServer, own: dict[int, set[str]]) -> None:
    """Every media message the bot sent to a user's chat carries that user's files only."""
    everyone = set().union(*own.values())
    for chat_id, files in own.items():
        for message in telegram.messages(chat_id, include_deleted=True):
            if message.file_id and message.file_id in everyone:
                assert message.file_id in files, f"{message.file_id} leaked into chat {chat_id}"


# --- webhook replicas and workers ------------------------------------------------------------


async def test_two_webhook_fronts_and_three_workers_survive_kills_mid_album(
    telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser, tmp_path: Path
) -> None:
    telegram.allowed_errors.append("Conflict")  # the dead front's leftovers, if any
    with schema() as url:
        rows = Rows(url)
        cluster = Cluster(telegram, tmp_path, url)
        ports = [free_port(), free_port()]
        async with RoundRobinProxy([f"http://127.0.0.1:{p}" for p in ports]) as proxy:
            await cluster.run(scenario(cluster, rows, proxy, ports, telegram, alice, boris))


async def scenario(
    cluster: Cluster,
    rows: Rows,
    proxy: RoundRobinProxy,
    ports: list[int],
    telegram: FakeTelegramServer,
    alice: FakeUser,
    boris: FakeUser,
) -> None:
    fronts = [await cluster.webhook_front(f"front{i}", p, proxy) for i, p in enumerate(ports)]
    workers = [await cluster.worker(f"worker{i}") for i in range(3)]
    for process in fronts:
        await process.wait_output(r"bot @\w+ ready", timeout=START_TIMEOUT_S)
    for process in workers:
        await process.wait_output(r"worker \S+ ready", timeout=START_TIMEOUT_S)
    saved: dict[int, set[str]] = {alice.id: set(), boris.id: set()}
    answers = []

    # 1. Everything up: an album each, split across both fronts, and a single photo each.
    albums = {
        alice.id: await telegram.send_album(alice, album_items(1, 4)),
        boris.id: await telegram.send_album(boris, album_items(2, 4)),
    }
    for user in (alice, boris):
        sent = albums[user.id]
        answer = await final_album_answer(telegram, user, sent, timeout=60)
        assert answer.text == album_saved(user, 4), answer.text
        answers.append((user, sent))
        saved[user.id] |= {file_id(m) for m in sent}
    split = {
        proxy.replica_of(telegram.update_record(m).update["update_id"]) for m in albums[alice.id]
    }
    for user, seed in ((alice, 3), (boris, 4)):
        single = telegram.send_photo(user, photo(0, seed))
        answer = await single_answer(telegram, user, single, timeout=60)
        assert answer.text == t("reports-saved-photo", lang(user)), answer.text
        saved[user.id].add(file_id(single))

    # 2. Downloads wait; new albums become durable jobs, claimed by the workers; then one
    # worker holding jobs and the front answering Alice's album die.
    gate = telegram.hold("getFile")
    alice_album = await telegram.send_album(alice, album_items(5, 5))
    boris_album = await telegram.send_album(boris, album_items(6, 3))
    for sent in (alice_album, boris_album):
        await until(
            album_durable(rows, sent), timeout=30, what=f"the jobs of {sent[0]['media_group_id']}"
        )
    await gate.arrived(1, timeout=30)
    holders = await until(rows.running_by_worker, timeout=30, what="a worker holding jobs")
    victim_worker = cluster.by_worker_name(max(holders, key=lambda w: holders[w]))
    assert await victim_worker.kill() != 0
    holder = await until(
        lambda: rows.album_holder(alice_album[0]["media_group_id"]),
        timeout=30,
        what="the front answering Alice's album",
    )
    victim_front = cluster.by_worker_name(holder)  # a front's holder name is its db's name
    assert victim_front in fronts
    survivor = next(f for f in fronts if f is not victim_front)
    assert await victim_front.kill() != 0
    gate.release()

    for user, sent in ((alice, alice_album), (boris, boris_album)):
        answer = await final_album_answer(telegram, user, sent, timeout=90)
        assert answer.text == album_saved(user, len(sent)), answer.text
        answers.append((user, sent))
        saved[user.id] |= {file_id(m) for m in sent}

    # 3. Nothing left over, and every saved item is found through the surviving front.
    await until(
        lambda: _none_unfinished(rows), timeout=60, what="every job done (none pending/running)"
    )
    assert (await rows.jobs_by_state()).get("failed", 0) == 0
    for user in (alice, boris):
        found = await search_all(telegram, user, timeout=60)
        missing = len(saved[user.id] - found)
        assert found == saved[user.id], f"{user.id}: {missing} of {len(saved[user.id])} missing"
    for user, sent in answers:
        assert len(answers_to(telegram, user, sent)) == 1, f"album {sent[0]['media_group_id']}"
    assert_no_leak(telegram, saved)
    assert len(split) == 2, "the proxy should have split the first album across both fronts"
    assert survivor.returncode is None
    assert "Traceback" not in survivor.output, survivor.output[-4000:]


def album_durable(rows: Rows, sent: list[dict[str, Any]]) -> Callable[[], Awaitable[bool]]:
    """A check: every item of the album is a job row."""

    async def check() -> bool:
        return await rows.album_jobs(sent[0]["media_group_id"]) >= len(sent)

    return check


async def _none_unfinished(rows: Rows) -> bool:
    states = await rows.jobs_by_state()
    return states.get("pending", 0) == 0 and states.get("running", 0) == 0


# --- polling: one active front, one hot standby ----------------------------------------------


async def test_a_standby_front_takes_over_polling_when_the_active_one_dies(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    telegram.allowed_errors.append("Conflict")  # the dead replica's long poll ends in a 409
    with schema() as url:
        cluster = Cluster(telegram, tmp_path, url)
        await cluster.run(standby_scenario(cluster, telegram, alice))


async def standby_scenario(cluster: Cluster, telegram: FakeTelegramServer, alice: FakeUser) -> None:
    worker = await cluster.worker("worker")
    first = await cluster.polling_front("front0")
    await first.wait_output(r"active: polling", timeout=START_TIMEOUT_S)
    second = await cluster.polling_front("front1")
    await second.wait_output(r"standby: waiting", timeout=START_TIMEOUT_S)
    await worker.wait_output(r"worker \S+ ready", timeout=START_TIMEOUT_S)

    sent = telegram.send_photo(alice, photo(1, 9))
    answer = await single_answer(telegram, alice, sent, timeout=60)
    assert answer.text == t("reports-saved-photo", "en")
    assert "active: polling" not in second.output  # the standby stayed out of it

    assert await first.kill() != 0
    killed = time.monotonic()
    await second.wait_output(r"active: polling", timeout=15)
    took_over_s = time.monotonic() - killed
    assert took_over_s < 10, f"standby took {took_over_s:.1f}s"
    found = await search_all(telegram, alice, timeout=30)
    assert found == {file_id(sent)}
    assert len(answers_to(telegram, alice, [sent])) == 1
    codes = await cluster.stop_all()
    assert codes["front1"] == 0 and codes["worker"] == 0, cluster.outputs()
