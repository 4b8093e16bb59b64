"""Language choice and text lookup."""

from __future__ import annotations

import logging

import pytest

from bot.i18n import normalize_lang, pick_lang, plural, tr

TEXTS = {
    "hello": {"ru": "Привет, {name}!", "en": "Hello, {name}!"},
    "only_en": {"en": "English only"},
}


@pytest.mark.parametrize(
    ("setting", "code", "expected"),
    [
        (None, "ru", "ru"),
        (None, "ru-RU", "ru"),
        (None, "en-GB", "en"),
        (None, "uk", "en"),
        (None, None, "en"),
        ("en", "ru", "en"),  # the user's choice beats the client's language
        ("ru", "en", "ru"),
        ("de", "ru", "ru"),  # an unknown stored value is ignored
        (42, None, "en"),
    ],
)
def test_pick_lang(setting: object, code: str | None, expected: str) -> None:
    assert pick_lang(setting, code) == expected


def test_normalize_lang() -> None:
    assert normalize_lang("RU_ru") == "ru"
    assert normalize_lang("fr") is None
    assert normalize_lang("") is None


def test_tr_formats_in_the_language() -> None:
    assert tr(TEXTS, "hello", "ru", name="Борис") == "Привет, Борис!"
    assert tr(TEXTS, "hello", "en", name="Alice") == "Hello, Alice!"


def test_tr_falls_back_instead_of_raising(caplog: pytest.LogCaptureFixture) -> None:
    assert tr(TEXTS, "only_en", "ru") == "English only"
    with caplog.at_level(logging.ERROR, logger="bot.i18n"):
        assert tr(TEXTS, "missing", "en") == "missing"
        assert tr(TEXTS, "hello", "en", nickname="x") == "Hello, {name}!"
    assert len(caplog.records) == 2


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1, "фото1"),
        (2, "фото2"),
        (5, "фото5"),
        (11, "фото5"),
        (21, "фото1"),
        (22, "фото2"),
        (14, "фото5"),
        (111, "фото5"),
        (0, "фото5"),
    ],
)
def test_russian_plurals(n: int, expected: str) -> None:
    assert plural(n, "ru", "фото1", "фото2", "фото5") == expected


def test_english_plurals() -> None:
    assert plural(1, "en", "item", "items", "items") == "item"
    assert plural(2, "en", "item", "items", "items") == "items"
    assert plural(0, "en", "item", "items", "items") == "items"
