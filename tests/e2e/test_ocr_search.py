"""Text inside pictures, end to end: a user sends photos with Russian and English text, the bot
saves them, the OCR stage the bot started reads them through its Telegram fetch (real
tesseract), and a text query finds each picture by its words (an inflected Russian form too),
with the words in bold under the results; a quoted query finds it by text alone; another user
never finds them. ``python -m bot ocr --again`` puts a collection back into the queue, and the
running bot reads it again."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from bot.__main__ import main
from bot.i18n import t
from core.ocr import APT_PACKAGES, find_tessdata
from tests.e2e.botapp import BotApp, running_search_bot
from tests.e2e.fake_telegram import FakeTelegramServer, FakeUser
from tests.e2e.search_support import Answer, shape_jpeg

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
RUSSIAN = ["Квитанция об оплате", "Электричество"]
ENGLISH = ["Invoice for tickets", "Total due Friday"]


@pytest.fixture(autouse=True)
def ocr_installed() -> None:
    """Real OCR needs tesseract's rus+eng data and the font; a machine that must run these
    tests (IMAGE_FINDER_REQUIRE_OCR=1) fails instead of skipping."""
    missing = []
    if find_tessdata("rus+eng") is None:
        missing.append(f"tesseract data for rus+eng (apt-get install {APT_PACKAGES})")
    if not FONT.is_file():
        missing.append(f"{FONT} (fonts-dejavu-core)")
    if not missing:
        return
    reason = "missing: " + "; ".join(missing)
    if os.environ.get("IMAGE_FINDER_REQUIRE_OCR") == "1":
        pytest.fail(f"IMAGE_FINDER_REQUIRE_OCR=1 but {reason}")
    pytest.skip(reason)


def text_photo(lines: list[str], shade: int = 250) -> bytes:
    """Large clean dark text on a light card, as a JPEG photo (what Telegram delivers)."""
    font = ImageFont.truetype(str(FONT), 56)
    img = Image.new("RGB", (900, 110 * len(lines) + 60), (shade, shade, shade - 4))
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((40, 30 + 110 * i), line, fill=(20, 20, 24), font=font)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


async def send_saved(app: BotApp, user: FakeUser, data: bytes) -> tuple[str, str]:
    """Send a photo as the user would and wait for the bot's answer to it; the photo's
    ``(file_id, file_unique_id)``."""
    sent = app.server.send_photo(user, data)
    await app.server.wait_message(user.id, lambda m: m.reply_to_message_id == sent["message_id"])
    largest = sent["photo"][-1]
    return str(largest["file_id"]), str(largest["file_unique_id"])


async def ocr_text(app: BotApp, user: FakeUser, photo: tuple[str, str]) -> str:
    """What the OCR stage stored for the user's item sent as ``photo``."""
    owner = await app.owner_id(user)
    media = await app.engine.library.find(owner, photo[1])
    assert media is not None
    texts = await app.engine.db.owner(owner).texts.of_media([media.id])
    return texts.get(media.id, {}).get("ocr", "")


def why(answer: Answer) -> str:
    """The raw HTML of the "matched by text" part of a summary ("" when there is none)."""
    raw = answer.text.raw_text or ""
    header = t("search-why-header", "en").strip()
    return raw.split(header, 1)[1] if header in raw else ""


async def test_text_in_photos_is_read_and_found_by_its_words(
    telegram: FakeTelegramServer, alice: FakeUser, boris: FakeUser, tmp_path: Path
) -> None:
    async with running_search_bot(telegram, tmp_path / "data", near_duplicate_threshold=1.0) as app:
        assert app.engine.ocr is not None, "the bot did not start the OCR stage"
        assert app.engine.ocr.owner_kinds == {"user", "chat"}  # never the local CLI's items
        receipt = await send_saved(app, alice, text_photo(RUSSIAN))
        invoice = await send_saved(app, alice, text_photo(ENGLISH, shade=240))
        plain = await send_saved(app, alice, shape_jpeg("red", "circle", size=(640, 480)))
        await send_saved(app, boris, shape_jpeg("blue", "square", size=(640, 480)))
        await app.engine.ocr.drain()  # read through the bot's own Telegram fetch

        assert "квитанция" in (await ocr_text(app, alice, receipt)).casefold()
        assert "invoice" in (await ocr_text(app, alice, invoice)).casefold()
        assert await ocr_text(app, alice, plain) == ""

        russian = await app.ask(alice, "квитанции об оплате")  # another case of the words
        assert russian.file_ids[:1] == [receipt[0]]
        assert "<b>Квитанция</b>" in why(russian) and "<b>оплате</b>" in why(russian)
        assert t("search-source-ocr", "en") in (russian.text.text or "")

        english = await app.ask(alice, "invoice tickets")
        assert english.file_ids[:1] == [invoice[0]]
        assert "<b>Invoice</b>" in why(english) and "<b>tickets</b>" in why(english)

        quoted = await app.ask(alice, '"total due"')  # the text only: no look-alike comes
        assert quoted.file_ids == [invoice[0]]
        assert "<b>Total</b>" in why(quoted) and "<b>due</b>" in why(quoted)

        # Boris has a collection of his own; Alice's text is not in it.
        theirs = await app.ask(boris, "квитанции")
        assert receipt[0] not in theirs.file_ids and why(theirs) == ""
        quoted_theirs = await app.ask(boris, '"invoice"')
        assert quoted_theirs.media == []
        assert "invoice" in (quoted_theirs.text.text or "")
        assert why(quoted_theirs) == ""


async def run_main(argv: list[str]) -> int:
    """``python -m bot ...`` as a separate run would do it (its own event loop), beside the
    running bot."""
    return await asyncio.to_thread(main, argv)


async def test_ocr_again_requeues_a_collection_for_the_running_bot(
    telegram: FakeTelegramServer,
    alice: FakeUser,
    boris: FakeUser,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "data"
    async with running_search_bot(telegram, data, near_duplicate_threshold=1.0) as app:
        assert app.engine.ocr is not None
        receipt = await send_saved(app, alice, text_photo(RUSSIAN))
        await send_saved(app, boris, text_photo(ENGLISH))
        await app.engine.ocr.drain()
        read = app.engine.ocr.read
        owner = await app.owner_id(alice)
        media = await app.engine.library.find(owner, receipt[1])
        assert media is not None
        await app.engine.db.owner(owner).texts.put(media.id, "ocr", "stale text")
        env = tmp_path / "bot.env"
        models = ",".join(str(d) for d in app.settings.data.model_dirs)
        url = app.settings.database.url
        database = f"DATABASE_URL={url}\n" if url else ""
        env.write_text(f"DATA_DIR={data}\nMODEL_DIRS={models}\n{database}")

        assert (
            await run_main(["ocr", "--again", "--owner", str(alice.id), "--env-file", str(env)])
            == 0
        )
        assert capsys.readouterr().out.startswith(
            f"OCR will run again over 1 item(s) of Telegram id {alice.id}; a running bot"
        )
        assert (await app.engine.ocr.counts(owner)).get("pending") == 1
        await app.engine.ocr.drain()  # the running bot picks it up
        assert app.engine.ocr.read == read + 1  # Alice's item only
        assert "квитанция" in (await ocr_text(app, alice, receipt)).casefold()

        assert await run_main(["ocr", "--again", "--env-file", str(env)]) == 0
        assert "over 2 item(s) of every Telegram chat;" in capsys.readouterr().out
        await app.engine.ocr.drain()
        assert app.engine.ocr.read == read + 3

        assert await run_main(["ocr", "--env-file", str(env)]) == 0
        assert capsys.readouterr().out.strip() == "OCR of every Telegram chat: done 2"
        assert await run_main(["ocr", "--again", "--owner", "-100777", "--env-file", str(env)]) == 2
        assert "no collection for Telegram id -100777" in capsys.readouterr().err
