"""Commands end to end: the real polling loop (and, where start-up and shutdown are the point,
the real ``python -m bot`` process) against the fake Telegram server."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from bot.app import run
from bot.handlers.commands import ForgetCB, SettingsCB
from bot.services import check_quota
from core.errors import BundleError
from core.ingest.pipeline import IngestRequest
from tests.e2e.botapp import BotApp, bot_settings, model_dirs, running_bot
from tests.e2e.fake_telegram import FakeTelegramServer, FakeUser, make_jpeg
from tests.e2e.harness import BotProcess, LogCapture, bot_env

ROOT = Path(__file__).resolve().parents[2]
PHOTO = make_jpeg(320, 240, (30, 60, 220))


async def photo_fetch(request: IngestRequest, thumbnail: bool) -> bytes:
    """Every item is the same blue photo: these tests are about commands, not downloads."""
    return PHOTO


async def ingest_photo(app: BotApp, user: FakeUser, unique: str = "u1") -> int:
    """Store one photo for ``user`` straight through the engine (not through a chat)."""
    owner = await app.engine.db.owners.ensure("user", user.id)
    assert app.engine.pipeline is not None
    ticket = await app.engine.pipeline.submit(
        IngestRequest.of(owner.id, "photo", unique, file_id=f"file-{unique}", width=320, height=240)
    )
    outcome = await ticket.result()
    assert outcome.saved, outcome
    return owner.id


async def ask(telegram: FakeTelegramServer, user: FakeUser, command: str) -> str:
    telegram.send_command(user, command)
    return (await telegram.next_message(user.chat_id)).text or ""


async def test_start_speaks_the_users_language(
    telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path):
        english = await ask(telegram, alice, "start")
        russian = await ask(telegram, boris, "start")
    assert "Alice" in english and "your own photos" in english
    assert "Борис" in russian and "ваших собственных фото" in russian


async def test_help_covers_every_way_to_use_the_bot(
    telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path):
        english = await ask(telegram, alice, "help")
        russian = await ask(telegram, boris, "help")
    for needle in ("/similar", "/delete", "/forget", "/settings", "-beach", '"?"', "Privacy"):
        assert needle in english
    assert "@image_finder_test_bot" in english
    assert "Приватность" in russian and "/similar" in russian


async def test_stats_counts_what_was_ingested(
    telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path, fetch=photo_fetch) as app:
        empty = await ask(telegram, alice, "stats")
        await ingest_photo(app, alice, "a1")
        await ingest_photo(app, alice, "a2")
        full = await ask(telegram, alice, "stats")
        other = await ask(telegram, boris, "stats")
    assert "empty" in empty
    assert "2 items" in full and "2 photos" in full
    assert "Searchable pictures and video frames: 2" in full
    for model_id in app.engine.configs:
        assert model_id in full
    assert "пуста" in other  # Boris sees his own (empty) collection, not Alice's


async def test_settings_buttons_change_and_show_the_settings(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path) as app:
        telegram.send_command(alice, "settings")
        panel = await telegram.next_message(alice.chat_id)
        assert "Results per page: 10" in (panel.text or "")

        query = telegram.press_button(alice, panel, text="20")
        answer = await telegram.wait_callback_answer(query)
        await telegram.wait_edit(panel)
        owner = await app.engine.db.owners.find("user", alice.id)
        assert owner is not None and owner.settings["page_size"] == 20
        assert answer.get("text") == "Saved"
        assert "Results per page: 20" in (panel.text or "")
        assert any(b["text"] == "✓ 20" for b in panel.buttons())

        query = telegram.press_button(alice, panel, text="loose")
        await telegram.wait_callback_answer(query)
        query = telegram.press_button(alice, panel, text="Русский")
        await telegram.wait_callback_answer(query)
        await telegram.wait_edit(panel, edits=3)
        assert "Настройки" in (panel.text or "")
        assert "Строгость: мягко" in (panel.text or "")

        # Forged values and stale buttons are answered and change nothing.
        forged = telegram.press_button(alice, panel, SettingsCB(key="page", value="7").pack())
        assert "больше не действует" in (await telegram.wait_callback_answer(forged))["text"]
        junk = telegram.press_button(alice, panel, "set:not-a-key")
        await telegram.wait_callback_answer(junk)
        stale = telegram.press_button(
            alice, panel, SettingsCB(key="page", value="5").pack(), stale=True
        )
        assert "устарело" in (await telegram.wait_callback_answer(stale))["text"]
        owner = await app.engine.db.owners.find("user", alice.id)
        assert owner is not None
        assert owner.settings == {"page_size": 20, "strictness": "loose", "lang": "ru"}
        # The chosen language now wins over the Telegram client's.
        assert "Привет" in await ask(telegram, alice, "start")
    assert not telegram.unanswered_callbacks()


async def test_forget_needs_a_fresh_confirmation(
    telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path, fetch=photo_fetch) as app:
        owner_id = await ingest_photo(app, alice, "a1")
        await ingest_photo(app, boris, "b1")
        store = app.engine.db.owner(owner_id)

        telegram.send_command(alice, "forget")
        first = await telegram.next_message(alice.chat_id)
        assert "cannot be undone" in (first.text or "")
        assert (await store.stats()).media_total == 1  # asking deletes nothing
        first_yes = first.button("Yes, delete everything")["callback_data"]

        cancel = telegram.press_button(alice, first, text="Cancel")
        await telegram.wait_callback_answer(cancel)
        await telegram.wait_edit(first)
        assert "nothing was deleted" in (first.text or "")
        assert (await store.stats()).media_total == 1

        telegram.send_command(alice, "forget")
        second = await telegram.next_message(alice.chat_id)
        yes = second.button("Yes, delete everything")["callback_data"]
        old_yes = ForgetCB(action="yes", token=ForgetCB.unpack(yes).token)

        for data in (
            first_yes,  # the cancelled /forget
            ForgetCB(action="yes", token="forged-token").pack(),
            "forget:yes",  # malformed
        ):
            query = telegram.press_button(alice, second, data)
            await telegram.wait_callback_answer(query)
        stale = telegram.press_button(alice, second, yes, stale=True)
        await telegram.wait_callback_answer(stale)
        # Boris presses a copy of Alice's button in his own chat: his token differs.
        telegram.send_command(boris, "forget")
        boris_panel = await telegram.next_message(boris.chat_id)
        query = telegram.press_button(boris, boris_panel, old_yes.pack())
        await telegram.wait_callback_answer(query)
        assert (await store.stats()).media_total == 1

        query = telegram.press_button(alice, second, yes)
        await telegram.wait_callback_answer(query)
        await telegram.wait_for(lambda _: "Done" in (second.text or ""), what="forget done")
        assert "1 item deleted" in (second.text or "")
        assert (await store.stats()).media_total == 0
        assert await app.engine.db.owners.get(owner_id) is None

        boris_owner = await app.engine.db.owners.find("user", boris.id)
        assert boris_owner is not None
        assert (await app.engine.db.owner(boris_owner.id).stats()).media_total == 1
        assert "empty" in await ask(telegram, alice, "stats")
    assert not telegram.unanswered_callbacks()


async def test_commands_menu_in_both_languages(
    telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path, commands=True):
        pass
    default = [c["command"] for c in telegram.commands_for("")]
    russian = telegram.commands_for("ru")
    assert default == [c["command"] for c in telegram.commands_for("en")]
    assert {"start", "help", "stats", "settings", "forget", "similar", "delete"} <= set(default)
    assert [c["command"] for c in russian] == default
    assert any("коллекц" in c["description"] for c in russian)


async def test_blocked_user_is_remembered_and_nothing_crashes(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    telegram.allowed_errors.append("blocked by the user")
    async with running_bot(telegram, tmp_path) as app:
        telegram.block(alice)
        message = telegram.send_command(alice, "stats")
        await telegram.wait_for(
            lambda s: any(c.status == 403 for c in s.calls_of("sendMessage")), what="a 403"
        )
        await app.settle(message, telegram)
        owner = await app.engine.db.owners.find("user", alice.id)
        assert owner is not None

        async def blocked() -> object:
            return (await app.engine.db.owner(owner.id).profile.settings()).get("blocked")

        assert await blocked() is True

        telegram.unblock(alice)
        assert "Alice" in await ask(telegram, alice, "start")
        assert await blocked() is None

        # Telegram also reports the block as a chat-member update.
        update = telegram.push_update(
            {
                "my_chat_member": {
                    "chat": alice.chat(),
                    "from": alice.api(),
                    "date": 1_700_000_000,
                    "old_chat_member": {
                        "status": "member",
                        "user": {"id": 123456, "is_bot": True, "first_name": "Image Finder"},
                    },
                    "new_chat_member": {
                        "status": "kicked",
                        "until_date": 0,
                        "user": {"id": 123456, "is_bot": True, "first_name": "Image Finder"},
                    },
                }
            }
        )
        await app.settle(update["update_id"], telegram)
        assert await blocked() is True


async def test_unsupported_content_gets_a_friendly_answer(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path):
        telegram.send_document(
            alice, b"%PDF-1.4\n%...", file_name="report.pdf", mime_type="application/pdf"
        )
        pdf = await telegram.next_message(alice.chat_id)
        telegram.push_update(
            {
                "message": {
                    **telegram._new_message(alice.id, from_bot=False),
                    "location": {"latitude": 55.75, "longitude": 37.62},
                }
            }
        )
        location = await telegram.next_message(alice.chat_id)
        unknown = await ask(telegram, alice, "frobnicate")
    assert "report.pdf" in (pdf.text or "")  # whichever handler explains it names the file
    assert "/help" in (location.text or "")
    assert "do not know that command" in unknown


async def test_allow_list_refuses_strangers_politely(
    telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path, allowed_users=frozenset({alice.id})) as app:
        assert "Alice" in await ask(telegram, alice, "start")
        refusal = await ask(telegram, boris, "start")
        query = telegram.inline_query(boris, "cat")
        answer = await telegram.wait_inline_answer(query)
        assert await app.engine.db.owners.find("user", boris.id) is None
    assert "частный бот" in refusal and str(boris.id) in refusal
    assert answer["results"] == [] and answer.get("is_personal") is True


async def test_quota_check_counts_stored_and_queued_items(
    telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(
        telegram, tmp_path, fetch=photo_fetch, quota_items_per_user=2, quota_video_seconds=60
    ) as app:
        await ingest_photo(app, alice, "a1")
        owner = await app.engine.db.owners.ensure("user", alice.id)
        assert await check_quota(app.services, owner) is None
        refusal = await check_quota(app.services, owner, lang="ru", items=2)
        assert refusal is not None and "2" in refusal and "Коллекция заполнена" in refusal
        too_long = await check_quota(app.services, owner, video_seconds=61)
        assert too_long is not None and "1 min" in too_long
        other = await app.engine.db.owners.ensure("user", boris.id)
        assert await check_quota(app.services, other, items=2) is None


async def test_a_failing_handler_answers_politely_and_is_logged(
    telegram: FakeTelegramServer,
    boris: FakeUser,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from storage.repositories import OwnerStore

    async def broken_stats(self: OwnerStore) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(OwnerStore, "stats", broken_stats)
    async with running_bot(telegram, tmp_path, allow_log_errors=["disk on fire"]) as app:
        reply = await ask(telegram, boris, "stats")
        await app.settle()
        logged = app.run.log.unexpected()
    assert "Что-то пошло не так" in reply
    assert any("disk on fire" in line for line in logged)  # aiogram logged it with the cause


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_webhook_mode_serves_updates_and_keeps_the_queue(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    port = free_port()
    settings = bot_settings(
        telegram,
        tmp_path,
        webhook_url=f"http://127.0.0.1:{port}",
        webhook_path="/tg",
        webhook_host="127.0.0.1",
        webhook_port=port,
        webhook_secret="s3cret-token",
    )
    started = asyncio.Event()
    stop = asyncio.Event()
    lines: list[str] = []

    def ready(line: str) -> None:
        lines.append(line)
        started.set()

    with LogCapture() as errors:
        task = asyncio.create_task(run(settings, ready=ready, stop=stop))
        try:
            await asyncio.wait_for(started.wait(), 30)
            assert telegram.webhook == {
                "url": f"http://127.0.0.1:{port}/tg",
                "secret_token": "s3cret-token",
            }
            hook = telegram.calls_of("setWebhook")[0]
            assert str(hook.params.get("drop_pending_updates")).lower() == "false"
            assert "callback_query" in hook.params["allowed_updates"]
            assert "Alice" in await ask(telegram, alice, "start")
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
    assert len(lines) == 1
    assert lines[0].startswith("bot @image_finder_test_bot ready (models: ")
    assert not telegram.calls_of("getUpdates")
    assert not errors.unexpected()


# --- the real process ---------------------------------------------------------------------------


def process_env(telegram: FakeTelegramServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    values = {
        "MODEL_DIRS": ",".join(str(d) for d in model_dirs(tmp_path)),
        "DATA_DIR": str(tmp_path / "data"),
        "EMBED_THREADS": "1",
        "SEND_PACE_PER_CHAT_S": "0",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    return bot_env(telegram, **{**values, **extra})


async def test_bot_process_serves_and_stops_cleanly_on_sigterm(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    bot_settings(telegram, tmp_path)  # validates the same values the process will read
    env = process_env(telegram, tmp_path)
    async with BotProcess(["-m", "bot"], env=env, cwd=tmp_path) as process:
        ready = await process.wait_output(r"bot @(\w+) ready \(models: (.+)\)", timeout=60)
        assert ready.group(1) == "image_finder_test_bot"
        assert "Alice" in await ask(telegram, alice, "start")
        code = await process.stop()
    assert code == 0, process.output
    assert "Traceback" not in process.output
    assert telegram.token.split(":", 1)[1] not in process.output  # the secret is never logged
    languages = {c.params.get("language_code") for c in telegram.calls_of("setMyCommands")}
    assert {"en", "ru"} <= languages
    delete = telegram.calls_of("deleteWebhook")
    assert delete and str(delete[0].params.get("drop_pending_updates")).lower() in ("false", "none")


async def test_bot_process_without_token_stops_with_one_clear_line(
    telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    env = process_env(telegram, tmp_path, BOT_TOKEN="")
    async with BotProcess(["-m", "bot"], env=env, cwd=tmp_path) as process:
        assert process.process is not None
        code = await process.process.wait()
    assert code == 2
    assert process.lines == [
        "error: BOT_TOKEN is not set: get one from @BotFather and put it in .env"
    ]
    assert not telegram.calls  # it never even tried to connect


async def test_run_stops_on_a_missing_model_directory(
    telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    settings = bot_settings(telegram, tmp_path, model_dirs=[tmp_path / "nowhere"])
    with pytest.raises(BundleError, match="nowhere"):
        await run(settings, ready=lambda line: pytest.fail(f"printed {line!r}"))
    assert not any(c.method == "getUpdates" for c in telegram.calls)
