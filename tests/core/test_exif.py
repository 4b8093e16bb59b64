"""Capture dates from EXIF headers, and that no damaged file ever makes the reader raise."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image

from core.media.exif import (
    DATE_TIME,
    DATE_TIME_ORIGINAL,
    EXIF_IFD,
    OFFSET_TIME_ORIGINAL,
    capture_time,
    parse_exif_time,
)


def jpeg_with_exif(
    original: str | None = None,
    *,
    offset: str | None = None,
    date_time: str | None = None,
    size: tuple[int, int] = (32, 24),
) -> bytes:
    exif = Image.Exif()
    if date_time is not None:
        exif[DATE_TIME] = date_time
    sub = exif.get_ifd(EXIF_IFD)
    if original is not None:
        sub[DATE_TIME_ORIGINAL] = original
    if offset is not None:
        sub[OFFSET_TIME_ORIGINAL] = offset
    buf = io.BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def local(*parts: int) -> int:
    return int(datetime(*parts).timestamp())  # type: ignore[arg-type]


def test_original_time_with_its_offset_is_exact() -> None:
    raw = jpeg_with_exif("2019:07:14 18:30:05", offset="+03:00")
    expected = datetime(2019, 7, 14, 18, 30, 5, tzinfo=timezone(timedelta(hours=3)))
    assert capture_time(raw) == int(expected.timestamp())


def test_without_an_offset_the_time_is_local(tmp_path: Path) -> None:
    path = tmp_path / "p.jpg"
    path.write_bytes(jpeg_with_exif("2021:01:02 03:04:05"))
    assert capture_time(path) == local(2021, 1, 2, 3, 4, 5)


def test_original_time_wins_over_the_edit_time_which_is_the_fallback() -> None:
    both = jpeg_with_exif("2019:07:14 18:30:05", date_time="2023:05:05 10:00:00")
    assert capture_time(both) == local(2019, 7, 14, 18, 30, 5)
    only_edit = jpeg_with_exif(date_time="2023:05:05 10:00:00")
    assert capture_time(only_edit) == local(2023, 5, 5, 10, 0, 0)
    # a placeholder original does not hide a real DateTime
    zeros = jpeg_with_exif("0000:00:00 00:00:00", date_time="2022:02:02 02:02:02")
    assert capture_time(zeros) == local(2022, 2, 2, 2, 2, 2)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "    ",
        "0000:00:00 00:00:00",
        "2019:13:40 10:00:00",  # no such month
        "1850:01:01 00:00:00",  # older than any real capture clock
        "garbage",
        "2019:07:14",  # no time of day
        None,
        12345,
    ],
)
def test_garbage_dates_are_unknown(value: object) -> None:
    assert parse_exif_time(value) is None


def test_a_date_in_the_future_is_a_wrong_clock() -> None:
    next_year = time.localtime().tm_year + 1
    assert parse_exif_time(f"{next_year}:06:01 12:00:00") is None


def test_tolerated_spellings() -> None:
    assert parse_exif_time(b"2019:07:14 18:30:05\x00") == local(2019, 7, 14, 18, 30, 5)
    assert parse_exif_time("2019-07-14 18:30") == local(2019, 7, 14, 18, 30, 0)
    assert parse_exif_time("2019:07:14 18:30:05", "Z") == local(2019, 7, 14, 18, 30, 5)
    utc = parse_exif_time("2019:07:14 18:30:05", "+00:00")
    assert utc == int(datetime(2019, 7, 14, 18, 30, 5, tzinfo=UTC).timestamp())
    minus = parse_exif_time("2019:07:14 18:30:05", "-05:30")
    assert minus == utc + 5 * 3600 + 1800


def test_files_without_a_date_or_not_images_give_none(tmp_path: Path) -> None:
    plain = io.BytesIO()
    Image.new("RGB", (16, 16)).save(plain, "JPEG")
    assert capture_time(plain.getvalue()) is None
    png = io.BytesIO()
    Image.new("RGB", (16, 16)).save(png, "PNG")
    assert capture_time(png.getvalue()) is None
    raw = jpeg_with_exif("2019:07:14 18:30:05", size=(400, 300))
    # Only the header is read: a file cut inside its pixel data still has its date.
    assert capture_time(raw[: len(raw) * 2 // 3]) == local(2019, 7, 14, 18, 30, 5)
    for junk in (
        b"",
        b"not an image",
        raw[:40],
        b"\xff\xd8\xff\xe1\xff\xffExif\x00\x00" + b"\x00" * 9,
    ):
        assert capture_time(junk) is None
    assert capture_time(tmp_path / "missing.jpg") is None
    (tmp_path / "dir.jpg").mkdir()
    assert capture_time(tmp_path / "dir.jpg") is None


def test_png_with_an_exif_chunk_is_read() -> None:
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[DATE_TIME_ORIGINAL] = "2018:03:08 09:10:11"
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "PNG", exif=exif.tobytes())
    assert capture_time(buf.getvalue()) == local(2018, 3, 8, 9, 10, 11)
