"""/help explains the query language in both languages, and the summary under results shows why
a hit matched by text, escaped: a hostile caption is shown as text, never as markup."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from bot.i18n import t
from tests.e2e.botapp import running_bot
from tests.e2e.fake_telegram import FakeTelegramServer, FakeUser

ENGLISH = (
    "-beach",
    '"invoice march"',
    "march 2024",
    "after:2024-03-01",
    "before:2023",
    "video",
    "gif",
    "photo",
    "from:@channel",
    "newest",
    "/duplicates",
    '"?"',
)
RUSSIAN = (
    "-пляж",
    '"счёт март"',
    "март 2024",
    "после:2024-03-01",
    "до:2023",
    "видео",
    "гиф",
    "фото",
    "от:@канал",
    "сначала новые",
    "/duplicates",
)


async def help_text(telegram: FakeTelegramServer, user: FakeUser) -> str:
    telegram.send_command(user, "help")
    return (await telegram.next_message(user.chat_id)).text or ""


async def test_help_explains_the_query_language_in_each_language(
    telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser, tmp_path: Path
) -> None:
    async with running_bot(telegram, tmp_path):
        english = await help_text(telegram, alice)
        russian = await help_text(telegram, boris)
    # What the fake shows is the text after Telegram parsed the HTML: markup was valid.
    assert [n for n in ENGLISH if n not in english] == []
    assert [n for n in RUSSIAN if n not in russian] == []
    assert "@image_finder_test_bot" in english and "Приватность" in russian
    assert max(len(english), len(russian)) < 4096  # one message


async def test_a_hostile_caption_is_shown_escaped_under_a_text_hit(
    telegram: FakeTelegramServer, alice: FakeUser, tmp_path: Path
) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 180, 40)).save(buf, "JPEG", quality=90)
    caption = "<script>alert(1)</script> invoice for march & co"
    async with running_bot(telegram, tmp_path, near_duplicate_threshold=1.0) as app:
        sent = telegram.send_photo(alice, buf.getvalue(), caption=caption)
        await telegram.wait_message(alice.id, lambda m: m.reply_to_message_id == sent["message_id"])

        answer = await app.ask(alice, '"invoice"')

    summary = answer.text
    assert len(answer.file_ids) == 1
    assert summary.text is not None and summary.raw_text is not None
    assert t("search-why-header", "en").strip() in summary.text
    assert "<script>alert(1)</script>" in summary.text  # shown as the text it is
    assert "&lt;script&gt;" in summary.raw_text and "<script>" not in summary.raw_text
    assert "<b>invoice</b>" in summary.raw_text
