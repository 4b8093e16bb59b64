"""The running bot purges old search sessions and finished jobs at start-up, and a button of a
purged search answers politely that it expired."""

from __future__ import annotations

import time
from pathlib import Path

from storage import Database
from storage.db import default_database_path
from storage.housekeeping import DAY_S
from storage.results import SESSION_TTL_S, ResultStore
from tests.e2e.botapp import bot_settings, running_bot
from tests.e2e.fake_telegram import FakeTelegramServer, FakeUser


async def seed(path: Path | str, user_id: int, *, age_s: float) -> tuple[int, int]:
    """A session and a done job of ``user_id``, made ``age_s`` seconds ago."""
    db = await Database.open(path, clock=lambda: time.time() - age_s)
    try:
        owner = await db.owners.ensure("user", user_id)
        session = await ResultStore(db, owner.id).create_session("text", text="old sunset")
        store = db.owner(owner.id)
        job_id = await store.jobs.enqueue({"kind": "photo"})
        await db.queue.claim(1)
        await store.jobs.finish(job_id)
        return session.id, job_id
    finally:
        await db.close()


async def test_bot_purges_at_start_up_and_old_buttons_expire(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    settings = bot_settings(telegram, tmp_path, jobs_retention_days=2)
    path = settings.database.url or default_database_path(settings.data.dir)
    old_session, _old_job = await seed(path, alice.id, age_s=SESSION_TTL_S + DAY_S)
    fresh_session, fresh_job = await seed(path, alice.id, age_s=DAY_S)
    async with running_bot(telegram, tmp_path, jobs_retention_days=2) as app:
        keeper = app.dispatcher["housekeeper"]
        await keeper.wait_passes(1)
        assert keeper.running  # scheduled for the next interval
        async with app.engine.db.read() as conn:
            sessions = await conn.execute_fetchall("SELECT id FROM search_sessions")
            jobs = await conn.execute_fetchall("SELECT id FROM jobs")
        assert [r[0] for r in sessions] == [fresh_session]
        assert [r[0] for r in jobs] == [fresh_job]
        query_id = telegram.press_stale(alice, alice.chat_id, 1, f"res:{old_session}:n:0")
        reply = await telegram.wait_callback_answer(query_id)
        assert "expired" in (reply["text"] or "")
    assert not keeper.running  # cancelled at shutdown, before the engine closed
