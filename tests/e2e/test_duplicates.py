"""/duplicates end to end: a near-duplicate found by the real ingest pipeline is recorded, shown
as its two pictures with buttons, and one press deletes an item (which search no longer finds)
or keeps both; a forged press from another user changes nothing; in a group only its admins
delete."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from bot.duplicates import PairCB
from bot.i18n import t
from tests.e2e.botapp import BotApp, running_bot
from tests.e2e.fake_telegram import FakeTelegramServer, FakeUser
from tests.e2e.search_support import Answer, Seeded

RED, BLUE = (220, 30, 30), (30, 40, 220)
NEAR = {"near_duplicate_threshold": 0.95}


def picture(color: tuple[int, int, int], size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A coloured field with a contrasting square (distinct colours embed far apart)."""
    img = Image.new("RGB", size, color)
    w, h = size
    img.paste(tuple(255 - c for c in color), (w // 4, h // 4, w // 2, h // 2))
    return img


def jpeg(img: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


async def seed_pair(app: BotApp, user: FakeUser | int) -> tuple[Seeded, Seeded]:
    """A red photo, then a resized, recompressed copy of it: a new file that looks the same."""
    original = picture(RED)
    first = await app.seed_photo(user, jpeg(original, 95))
    copy = await app.seed_photo(user, jpeg(original.resize((480, 360)), 60))
    return first, copy


async def show_pairs(app: BotApp, user: FakeUser) -> Answer:
    """/duplicates: the header, then the first pair (its pictures and the question)."""
    app.skip_sent(user)
    app.server.send_command(user, "duplicates")
    header = await app.answer(user)
    assert header.media == []
    return await app.answer(user)


async def test_a_pair_found_at_ingest_is_shown_and_one_of_it_deleted(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path, **NEAR) as app:
        first, copy = await seed_pair(app, alice)
        await app.seed_photo(alice, jpeg(picture(BLUE), 90))  # not alike: no pair
        before = await app.ask(alice, "red")
        assert copy.file_id in before.file_ids

        pair = await show_pairs(app, alice)
        assert pair.file_ids == [first.file_id, copy.file_id]  # the 1st was saved first
        assert pair.text.text is not None and "alike" in pair.text.text
        assert pair.text.reply_to_message_id == pair.media[0].message_id
        press = telegram.press_button(alice, pair.text, text=t("duplicates-delete-second", "en"))
        await telegram.wait_callback_answer(press)
        await telegram.wait_edit(pair.text)

        assert pair.text.text == t("duplicates-deleted-second", "en")
        assert pair.text.buttons() == []
        owner = await app.owner_id(alice)
        assert await app.engine.library.item(owner, copy.media_id) is None
        assert await app.engine.library.item(owner, first.media_id) is not None
        assert await app.count(alice) == 2
        after = await app.ask(alice, "red")
        assert copy.file_id not in after.file_ids
        app.skip_sent(alice)
        telegram.send_command(alice, "duplicates")
        assert (await app.answer(alice)).text.text == t("duplicates-empty", "en")


async def test_keep_both_dismisses_and_a_forged_press_changes_nothing(
    telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path, **NEAR) as app:
        first, copy = await seed_pair(app, alice)
        owner = await app.owner_id(alice)

        # Boris forges a button with Alice's ids under a message of his own chat.
        app.skip_sent(boris)
        telegram.send_command(boris, "duplicates")
        empty = (await app.answer(boris)).text
        assert empty.text == t("duplicates-empty", "ru")
        forged = PairCB(action="o", copy_id=copy.media_id, original_id=first.media_id).pack()
        refused = await telegram.wait_callback_answer(telegram.press_button(boris, empty, forged))
        assert refused.get("text") == t("duplicates-gone", "ru")
        assert await app.count(alice) == 2
        assert await app.engine.library.count_duplicates(owner) == 1

        pair = await show_pairs(app, alice)
        keep = telegram.press_button(alice, pair.text, text=t("duplicates-keep", "en"))
        await telegram.wait_callback_answer(keep)
        await telegram.wait_edit(pair.text)
        assert pair.text.text == t("duplicates-kept", "en")
        assert await app.count(alice) == 2
        assert await app.engine.library.count_duplicates(owner) == 0

        # The same button again (a stale copy of the message): answered politely.
        stale = telegram.press_button(
            alice,
            pair.text,
            PairCB(action="k", copy_id=copy.media_id, original_id=first.media_id).pack(),
        )
        assert (await telegram.wait_callback_answer(stale)).get("text") == t(
            "duplicates-gone", "en"
        )


async def test_in_a_group_only_its_admins_delete_one_of_a_pair(
    telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser, tmp_path: Path
) -> None:
    family = telegram.group(admins=[alice])
    member = telegram.member(boris, family)
    async with running_bot(telegram, tmp_path, **NEAR) as app:
        owner = await app.chat_owner_id(family.id)
        first, copy = await seed_pair(app, owner)
        app.skip_sent_in(family.id)
        telegram.send_command(member, "duplicates")
        await app.answer_in(family.id)  # the header
        pair = await app.answer_in(family.id)
        assert pair.file_ids == [first.file_id, copy.file_id]

        # Boris is a member, not an admin: a friendly no, in his language; nothing deleted.
        press = telegram.press_button(boris, pair.text, text=t("duplicates-delete-first", "ru"))
        refused = await telegram.wait_callback_answer(press)
        assert refused.get("text") == t("duplicates-admins-only", "ru")
        assert await app.chat_count(family.id) == 2
        assert pair.text.buttons() != []

        press = telegram.press_button(alice, pair.text, text=t("duplicates-delete-first", "ru"))
        await telegram.wait_callback_answer(press)
        await telegram.wait_edit(pair.text)
        assert await app.engine.library.item(owner, first.media_id) is None
        assert await app.engine.library.item(owner, copy.media_id) is not None
