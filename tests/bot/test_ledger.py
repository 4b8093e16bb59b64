"""The update ledger: getUpdates confirms only updates that are settled."""

from __future__ import annotations

import asyncio

import pytest
from aiogram.types import Update

from bot.ledger import SettleMiddleware, UpdateLedger, holds_data


async def test_nothing_pending_confirms_at_once() -> None:
    ledger = UpdateLedger()
    await ledger.confirmable(100)
    ledger.received([5, 6])
    await ledger.confirmable(5)  # only ids below the offset hold it
    assert not ledger.held.is_set()


async def test_waits_until_every_update_below_the_offset_is_settled() -> None:
    ledger = UpdateLedger()
    ledger.received([1, 2, 3])
    waiting = asyncio.create_task(ledger.confirmable(3))
    await ledger.held.wait()
    ledger.settle(1)
    await asyncio.sleep(0)  # let the waiter look: 2 is still pending
    assert not waiting.done()
    ledger.settle(2)
    await waiting
    assert ledger.pending == {3}


async def test_a_stuck_handler_holds_polling_for_max_wait_only() -> None:
    ledger = UpdateLedger(max_wait_s=0.01)
    ledger.received([7])
    await ledger.confirmable(8)
    assert ledger.pending == frozenset()


def _update(content: dict[str, object]) -> Update:
    chat = {"id": 1, "type": "private"}
    message = {"message_id": 1, "date": 0, "chat": chat, **content}
    return Update.model_validate({"update_id": 9, "message": message})


@pytest.mark.parametrize(
    ("content", "data"),
    [
        ({"text": "a red car"}, False),
        ({"photo": [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}]}, True),
        ({"document": {"file_id": "f", "file_unique_id": "u"}}, True),
    ],
)
def test_what_holds_data(content: dict[str, object], data: bool) -> None:
    assert holds_data(_update(content)) is data


async def test_media_settles_after_its_handler_anything_else_before() -> None:
    ledger = UpdateLedger()
    middleware = SettleMiddleware(ledger)
    seen: list[frozenset[int]] = []

    async def handler(event: object, data: dict[str, object]) -> None:
        seen.append(ledger.pending)

    for update in (
        _update({"text": "hi"}),
        _update({"document": {"file_id": "f", "file_unique_id": "u"}}),
    ):
        ledger.received([9])
        await middleware(handler, update, {})
        assert ledger.pending == frozenset()
    assert seen == [frozenset(), frozenset({9})]
