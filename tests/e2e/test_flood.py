"""Telegram's flood limits end to end: the real bot against a fake that enforces them.

A results page is up to 11 messages (an album of 10 and its summary), so a group, allowed about
20 messages a minute, fills up after two searches; the bot must spread the third out instead of
running into 429s. A 429 closes its chat for ``retry_after`` seconds: nothing else may go there
meanwhile, while other chats are served. And a send whose answer got lost on the way back may
well have arrived: sending it again would say the same thing twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.botapp import BotApp, running_search_bot
from tests.e2e.fake_telegram import FakeTelegramServer, FakeUser, FloodRule
from tests.e2e.search_support import SHAPES, shape_jpeg

# A minute in a group, scaled down to two seconds so the test does not take minutes.
GROUP_PERIOD_S = 2.0
WIDE = {"search_margin_strict": 2.0, "search_margin_normal": 2.0, "search_margin_loose": 2.0}


@pytest.fixture
async def app(telegram: FakeTelegramServer, tmp_path: Path) -> AsyncIterator[BotApp]:
    """The bot with Telegram's group and whole-bot limits (a group's minute scaled down), and
    every item a match, so each answer is a full page."""
    async with running_search_bot(
        telegram,
        tmp_path / "data",
        quality=False,
        near_duplicate_threshold=1.0,
        send_group_limit=20,
        send_group_period_s=GROUP_PERIOD_S,
        **WIDE,
    ) as running:
        yield running


def mention(telegram: FakeTelegramServer) -> str:
    return "@" + str(telegram.bot_user["username"])


async def test_three_searches_in_a_group_within_its_minute_get_no_429(
    app: BotApp, telegram: FakeTelegramServer, alice: FakeUser
) -> None:
    flood = telegram.enforce_flood_limits(group=FloodRule(20, GROUP_PERIOD_S))
    family = telegram.group()
    a = telegram.member(alice, family)
    owner = await app.chat_owner_id(family.id)
    for i in range(12):
        colour, shape = SHAPES[i % len(SHAPES)]
        await app.seed_photo(owner, shape_jpeg(colour, shape, seed=500 + i))
    answers = []
    for query in ("a red square", "a blue circle", "a green star"):
        telegram.send_text(a, f"{mention(telegram)} {query}")
        answers.append(await app.answer_in(family.id))
    assert [len(answer.media) for answer in answers] == [10, 10, 10]  # 33 messages in all
    assert flood.rejected == [] and flood.violations == []


async def test_a_429_for_one_chat_holds_that_chat_only(
    app: BotApp, telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser
) -> None:
    telegram.fail_retry_after("sendMessage", 1, when=lambda c: c.chat_id == alice.id)
    telegram.send_command(alice, "help")
    refused = await telegram.wait_call("sendMessage", where=lambda c: c.status == 429)
    deadline = telegram.flood.closed[alice.id]
    telegram.send_command(alice, "stats")  # its answer must wait for the chat to open
    telegram.send_command(boris, "help")  # another chat is served at once
    served = await telegram.next_message(boris.chat_id)
    assert served.call.at < deadline
    await telegram.next_messages(alice.chat_id, 2)
    assert telegram.flood.violations == []
    to_alice = [c for c in telegram.calls if c.chat_id == alice.id and c.index > refused.index]
    assert to_alice and all(c.at >= deadline for c in to_alice)


async def test_a_send_whose_answer_was_lost_is_not_sent_again(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    telegram.drop_connection("sendMessage", after=True, when=lambda c: c.chat_id == alice.id)
    async with running_search_bot(telegram, tmp_path / "data", quality=False) as app:
        update = telegram.send_command(alice, "help")
        await app.handled(update)
    answer = telegram.calls_of("sendMessage")[0]
    assert answer.ok and answer.injected  # done, then the connection dropped: no answer
    texts = [m.raw_text for m in telegram.messages(alice.id)]
    assert texts == [answer.params["text"]]  # once, and no apology after it either
    assert telegram.duplicates == []


async def test_telegram_failing_past_the_retries_gets_no_apology_and_no_traceback(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    """When Telegram keeps answering 502, telling the user "something went wrong" is one more
    call that fails; the bot logs one line and goes on (the running bot fails the test on any
    error aiogram logs)."""
    telegram.fail("sendMessage", 502, times=None, when=lambda c: c.chat_id == alice.id)
    async with running_search_bot(telegram, tmp_path / "data", quality=False) as app:
        await app.handled(telegram.send_command(alice, "help"))
        attempts = telegram.calls_of("sendMessage")
        telegram.faults.clear()
        telegram.send_command(alice, "help")
        answer = await telegram.next_message(alice.chat_id)
    assert len(attempts) == app.settings.bot.telegram_retry_attempts  # the help text, retried
    assert {c.params["text"] for c in attempts} == {answer.raw_text}
