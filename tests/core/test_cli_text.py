"""The local CLI beyond pixels: file names and EXIF dates as metadata, OCR over a folder, the
query language's filters, and how text hits are printed."""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from PIL import Image, ImageDraw, ImageFont

from cli.__main__ import main
from cli.output import format_result, marked, media_time, result_json
from core.engine.engine import Engine
from core.media.exif import DATE_TIME_ORIGINAL, EXIF_IFD
from core.search.language import parse_query_language
from core.search.results import SearchResult
from core.settings import Settings
from tests.core.test_cli import MODELS, run, search, shape_jpeg

pytestmark = pytest.mark.skipif(
    not all((m / "config.json").exists() for m in MODELS), reason="fixture bundles missing"
)

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


def ocr_ready() -> bool:
    """Whether real OCR can run here; a machine that must run it fails instead of skipping."""
    from core.ocr.tessdata import find_tessdata

    ready = FONT.is_file() and find_tessdata("rus+eng") is not None
    if not ready and os.environ.get("IMAGE_FINDER_REQUIRE_OCR") == "1":
        pytest.fail("IMAGE_FINDER_REQUIRE_OCR=1 but tesseract's rus+eng data or DejaVu is missing")
    return ready


def text_png(path: Path, lines: list[str]) -> Path:
    img = Image.new("RGB", (720, 90 * len(lines) + 40), (250, 250, 248))
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONT), 52)
    for i, line in enumerate(lines):
        draw.text((30, 25 + 90 * i), line, fill=(20, 20, 20), font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "PNG")
    return path


def exif_jpeg(path: Path, taken: str, shade: int) -> Path:
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[DATE_TIME_ORIGINAL] = taken
    img = Image.new("RGB", (256, 256), (235, 235, shade))
    ImageDraw.Draw(img).rectangle((50, 50, 206, 206), fill=(30, 60, 220))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "JPEG", quality=92, exif=exif.tobytes())
    return path


async def stored_facts(data: Path) -> dict[str | None, tuple[int | None, str]]:
    """Each local item's file name -> (taken_at, its file-name row in the text index)."""
    settings = Settings(_env_file=None, data_dir=data, model_dirs=MODELS)  # type: ignore[call-arg]
    async with await Engine.open(settings) as engine:
        owner = await engine.owners.ensure_local()
        items = await engine.library.newest(owner.id)
        texts = await engine.db.owner(owner.id).texts.of_media(m.id for m in items)
    return {m.file_name: (m.taken_at, texts[m.id]["file_name"]) for m in items}


async def drop_ocr_texts(data: Path) -> None:
    settings = Settings(_env_file=None, data_dir=data, model_dirs=MODELS)  # type: ignore[call-arg]
    async with await Engine.open(settings) as engine:
        owner = await engine.owners.ensure_local()
        store = engine.db.owner(owner.id)
        for item in await engine.library.newest(owner.id):
            await store.texts.put(item.id, "ocr", None)


def paths(result: dict[str, Any]) -> list[str]:
    return [h["path"] for h in result["hits"]]


def test_index_records_file_names_and_capture_dates(tmp_path: Path) -> None:
    photos, data = tmp_path / "photos", tmp_path / "data"
    exif_jpeg(photos / "Summer 2019.jpg", "2019:07:14 12:00:00", 230)
    plain = shape_jpeg(photos / "sub" / "plain.jpg", "blue", "square")
    stamp = int(datetime(2015, 6, 1, 12, 0).timestamp())
    os.utime(plain, (stamp, stamp))
    run("index", "--no-ocr", str(photos), data=data)
    facts = asyncio.run(stored_facts(data))
    assert facts == {
        "Summer 2019.jpg": (int(datetime(2019, 7, 14, 12).timestamp()), "Summer 2019.jpg"),
        "plain.jpg": (stamp, "plain.jpg"),
    }


def test_file_names_are_searchable(tmp_path: Path) -> None:
    photos, data = tmp_path / "photos", tmp_path / "data"
    invoice = shape_jpeg(photos / "invoice_march.jpg", "green", "circle")
    shape_jpeg(photos / "holiday.jpg", "red", "square")
    run("index", "--no-ocr", str(photos), data=data)
    # Fused with the pictures (on a tie the picture leads): the file's name brings it in.
    found = {h["path"]: h for h in search("invoice", data)["hits"]}
    hit = found[str(invoice.resolve())]
    assert hit["file_name"] == "invoice_march.jpg"
    assert hit["matched"] in ("text", "both")
    assert hit["snippet"] == {"source": "file_name", "text": "invoice_march.jpg", "spans": [[0, 7]]}
    # Quoted: the text index only, so the other picture cannot come in by its look.
    assert paths(search('"invoice"', data)) == [str(invoice.resolve())]


def test_exif_dates_and_mtimes_filter(tmp_path: Path) -> None:
    photos, data = tmp_path / "photos", tmp_path / "data"
    old = exif_jpeg(photos / "a.jpg", "2019:07:14 12:00:00", 230)
    new = exif_jpeg(photos / "b.jpg", "2021:05:01 12:00:00", 200)
    copied = shape_jpeg(photos / "c.jpg", "blue", "square")  # no EXIF: its mtime counts
    stamp = datetime(2015, 6, 1, 12, 0).timestamp()
    os.utime(copied, (stamp, stamp))
    run("index", "--no-ocr", str(photos), data=data)

    in_2019 = search("blue square 2019", data, "--loose")
    assert paths(in_2019) == [str(old.resolve())]
    assert in_2019["hits"][0]["date"] == "2019-07-14"
    assert paths(search("blue square 2021", data, "--loose")) == [str(new.resolve())]
    assert paths(search("blue square 2015", data, "--loose")) == [str(copied.resolve())]
    assert str(old.resolve()) not in paths(search("blue square after:2020-01-01", data, "--loose"))


def test_ocr_after_indexing_finds_a_picture_by_its_words(tmp_path: Path) -> None:
    if not ocr_ready():
        pytest.skip("tesseract's rus+eng data is not installed")
    photos, data = tmp_path / "photos", tmp_path / "data"
    scan = text_png(photos / "scan1.png", ["INVOICE PAID", "КВИТАНЦИЯ"])
    shape_jpeg(photos / "red.jpg", "red", "circle")
    out = run("index", str(photos), data=data)
    assert "text: 2 pictures read, 0 failed" in out

    hit = search("invoice", data)["hits"][0]
    assert hit["path"] == str(scan.resolve())
    assert hit["matched"] in ("text", "both")
    assert hit["snippet"]["source"] == "ocr"
    assert "INVOICE" in hit["snippet"]["text"].upper()
    assert search("квитанции", data)["hits"][0]["path"] == str(scan.resolve())  # stemmed


def test_no_ocr_then_the_ocr_command_then_again(tmp_path: Path) -> None:
    if not ocr_ready():
        pytest.skip("tesseract's rus+eng data is not installed")
    photos, data = tmp_path / "photos", tmp_path / "data"
    scan = text_png(photos / "scan2.png", ["BOARDING PASS"])
    shape_jpeg(photos / "blue.jpg", "blue", "square")
    out = run("index", "--no-ocr", str(photos), data=data)
    assert "text:" not in out
    assert "2 left" in run("stats", data=data)  # nothing read, nothing lost
    assert str(scan.resolve()) not in paths(search('"boarding"', data))

    out = run("ocr", data=data)
    assert "text: 2 pictures read, 0 failed" in out and "left" not in out
    assert search('"boarding pass"', data)["hits"][0]["path"] == str(scan.resolve())

    # Lose the read text: a plain run has nothing to do, a run --again reads it back.
    asyncio.run(drop_ocr_texts(data))
    run("ocr", data=data)
    assert paths(search('"boarding pass"', data)) == []
    assert "text: 2 pictures read, 0 failed" in run("ocr", "--again", data=data)
    assert search('"boarding pass"', data)["hits"][0]["path"] == str(scan.resolve())


def test_ocr_enabled_0_skips_ocr_and_the_ocr_command_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCR_ENABLED", "0")
    photos, data = tmp_path / "photos", tmp_path / "data"
    shape_jpeg(photos / "blue.jpg", "blue", "square")
    assert "text:" not in run("index", str(photos), data=data)
    err = io.StringIO()
    code = main(["--data-dir", str(data), "--models", ",".join(map(str, MODELS)), "ocr"], err)
    assert code == 1


def test_help_query_lists_the_language(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert main(["search", "--help-query"], out) == 0
    text = out.getvalue()
    for example in ("after:2024-03-01", "март 2024", "видео", "from:@channel", "сначала новые"):
        assert example in text
    # What the help shows as filters is what the parser takes as filters.
    for example in ("в 2024 году", "в марте 2024", "до:01.06.2023", "гиф", "от:@канал"):
        assert example in text
        assert parse_query_language(example).filters.active, example
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    assert "--help-query" in capsys.readouterr().out


def fake_result(**hit: Any) -> SearchResult:
    media = SimpleNamespace(
        path="/p/scan.png",
        file_unique_id="x",
        kind="photo",
        file_name="scan.png",
        taken_at=int(datetime(2019, 7, 14, 12).timestamp()),
        message_date=None,
        created_at=int(time.time()),
    )
    fields = {"matched": "picture", "snippet": None, **hit}
    one = SimpleNamespace(media=media, score=0.5, unit_id=1, timestamp=None, **fields)
    return cast(
        SearchResult,
        SimpleNamespace(
            hits=[one], offset=0, has_more=False, next_offset=None, total=1, total_exact=True,
            model_id="m", elapsed_ms=3.0, reason=None, filters=None,
        ),
    )  # fmt: skip


def test_text_hits_print_date_kind_path_and_snippet() -> None:
    snippet = SimpleNamespace(source="ocr", text="…total: invoice march 2024…", spans=((8, 15),))
    result = fake_result(matched="text", snippet=snippet)
    first, second, _ = format_result(result).splitlines()
    assert "2019-07-14" in first and "photo" in first and "/p/scan.png" in first
    assert "[text]" in first
    assert second.strip() == "ocr: …total: invoice march 2024…"
    assert "\x1b[1minvoice\x1b[0m" in format_result(result, tty=True)
    payload = json.loads(json.dumps(result_json(result)))
    assert payload["hits"][0]["snippet"] == {
        "source": "ocr", "text": "…total: invoice march 2024…", "spans": [[8, 15]],
    }  # fmt: skip
    assert payload["hits"][0]["date"] == "2019-07-14" and payload["hits"][0]["matched"] == "text"


def test_a_picture_hit_prints_without_a_snippet() -> None:
    result = fake_result()
    lines = format_result(result).splitlines()
    assert len(lines) == 2 and "[" not in lines[0]
    hit = result_json(result)["hits"][0]
    assert hit["matched"] == "picture" and hit["snippet"] is None


def test_marked_never_cuts_words() -> None:
    assert marked("abc def", ((4, 7),), tty=False) == "abc def"
    assert marked("abc def", ((0, 3), (1, 2), (4, 99)), tty=True) == "\x1b[1mabc\x1b[0m def"
    media = SimpleNamespace(taken_at=None, message_date=None, created_at=5)
    assert media_time(cast(Any, media)) == 5
