"""Language choice and the Fluent catalogue of the bot's texts.

``texts_golden.json`` holds every text as the bot rendered it before the texts moved out of the
code (one-off dump of the old ``TEXTS`` dicts, with every placeholder filled and counts 0, 1, 2,
5, 11, 21, ...): the catalogue must keep rendering them byte for byte.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from bot.i18n import LOCALES_DIR, Catalog, catalog, normalize_lang, pick_lang, t
from bot.owner_views import human_bytes
from bot.reports import reason_text
from bot.search_texts import summary_text
from core.search.results import SearchResult

GOLDEN = json.loads(Path(__file__).with_name("texts_golden.json").read_text(encoding="utf-8"))
BOT_DIR = Path(__file__).resolve().parents[2] / "bot"
CYRILLIC = re.compile("[\u0400-\u04ff]")


def message_ids(path: Path) -> set[str]:
    return set(re.findall(r"^([a-zA-Z][\w-]*) =", path.read_text(encoding="utf-8"), re.M))


# --- language choice ------------------------------------------------------------------------


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


def test_the_offered_languages_are_the_locale_files() -> None:
    assert catalog.languages == ("ru", "en")  # the /settings keyboard: Russian, then English
    assert catalog.profile_languages() == [(None, "en"), ("en", "en"), ("ru", "ru")]


# --- the catalogue renders today's texts ----------------------------------------------------


def test_every_text_renders_as_before() -> None:
    wrong = [
        (m["source"], m["lang"], m["args"], got, m["text"])
        for m in GOLDEN["messages"]
        if (got := t(m["id"], m["lang"], **m["args"])) != m["text"]
    ]
    assert not wrong, wrong[:3]
    assert len(GOLDEN["messages"]) > 1000


def _search_result(fields: dict[str, Any]) -> SearchResult:
    return SearchResult([], "m", **{**fields, "excluded": tuple(fields["excluded"])}, limit=5)


def test_composed_texts_render_as_before() -> None:
    calls = {
        "human_bytes": lambda n, lang: human_bytes(n, lang),
        "reason_text": lambda code, lang, short: reason_text(code, lang, short=short),
        "summary_text": lambda r, shown, skipped, lang: summary_text(
            _search_result(r), shown, skipped, lang
        ),
    }
    wrong = [
        (f["function"], f["args"], got, f["text"])
        for f in GOLDEN["functions"]
        if (got := calls[f["function"]](*f["args"])) != f["text"]
    ]
    assert not wrong, wrong[:3]


def test_every_language_has_every_text() -> None:
    ids = {path.stem: message_ids(path) for path in LOCALES_DIR.glob("*.ftl")}
    assert set(ids) == {"en", "ru"}
    assert ids["ru"] == ids["en"]
    assert {m["id"] for m in GOLDEN["messages"]} <= ids["en"]


@pytest.mark.parametrize(
    ("n", "ru", "en"),
    [
        (1, "1 элемент", "1 item"),
        (2, "2 элемента", "2 items"),
        (5, "5 элементов", "5 items"),
        (11, "11 элементов", "11 items"),
        (14, "14 элементов", "14 items"),
        (21, "21 элемент", "21 items"),
        (22, "22 элемента", "22 items"),
        (111, "111 элементов", "111 items"),
        (0, "0 элементов", "0 items"),
        (1234, "1234 элемента", "1234 items"),  # CLDR plurals, and no "1,234" grouping
    ],
)
def test_plurals_follow_cldr(n: int, ru: str, en: str) -> None:
    assert f"({ru})" in t("commands-forget-ask", "ru", n=n)
    assert f"({en})" in t("commands-forget-ask", "en", n=n)


def test_values_are_inserted_as_given() -> None:
    text = t("commands-start", "en", name="<b>A&amp;B</b>")
    assert text.startswith("Hi <b>A&amp;B</b>! ")  # no escaping, no bidi isolation marks
    assert "<i>cat on a sofa</i>" in text


def test_a_missing_text_or_variable_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="bot.i18n"):
        assert t("no-such-text", "ru") == "no-such-text"
        assert t("commands-start", "en", nickname="x").startswith("Hi ")
    assert len(caplog.records) == 2


# --- adding a language is adding a file ------------------------------------------------------


def test_a_third_locale_file_is_offered_and_falls_back_to_english(tmp_path: Path) -> None:
    for path in LOCALES_DIR.glob("*.ftl"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "de.ftl").write_text(
        "language-name = Deutsch\n"
        "commands-saved = Gespeichert\n"
        "commands-forget-ask = Alles löschen ({ $n ->\n"
        "        [one] { $n } Element\n"
        "       *[other] { $n } Elemente\n"
        "    })?\n",
        encoding="utf-8",
    )
    german = Catalog.load(tmp_path)
    assert german.languages == ("de", "ru", "en")
    assert german.pick(None, "de-AT") == "de"
    assert german.pick("de", "ru") == "de"
    assert ("de", "de") in german.profile_languages()
    assert german.t("commands-saved", "de") == "Gespeichert"
    assert german.t("commands-forget-ask", "de", n=1234) == "Alles löschen (1234 Elemente)?"
    assert german.t("app-error-short", "de") == t("app-error-short", "en")  # not translated yet


def test_a_broken_locale_file_fails_at_load(tmp_path: Path) -> None:
    (tmp_path / "en.ftl").write_text("good = fine\nbroken = { $x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="cannot parse"):
        Catalog.load(tmp_path)


# --- no user text left in the code -----------------------------------------------------------

# Calls that put text in front of users, and the keyword arguments that carry it.
SENDERS = {"answer", "send_message", "reply", "edit_text", "edit", "answer_callback_query"}
TEXT_KEYWORDS = {"text", "title", "description", "caption"}
SENTENCE = re.compile(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}")


def _python_files() -> list[Path]:
    return sorted(BOT_DIR.rglob("*.py"))


def _sentence_arguments(call: ast.Call) -> list[str]:
    name = getattr(call.func, "attr", None) or getattr(call.func, "id", None)
    values = list(call.args) if name in SENDERS else []
    values += [kw.value for kw in call.keywords if kw.arg in TEXT_KEYWORDS]
    return [
        v.value
        for v in values
        if isinstance(v, ast.Constant) and isinstance(v.value, str) and SENTENCE.search(v.value)
    ]


def test_no_cyrillic_in_the_bot_code() -> None:
    found = [
        f"{path.name}:{node.lineno}"
        for path in _python_files()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if CYRILLIC.search(node.value)
    ]
    assert not found


def test_no_sentence_literal_is_sent_to_users() -> None:
    found = [
        f"{path.name}:{node.lineno}: {text!r}"
        for path in _python_files()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        for text in _sentence_arguments(node)
    ]
    assert not found


def test_every_literal_text_id_in_the_code_exists() -> None:
    ids = [
        (path.name, node.args[0].value)
        for path in _python_files()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "t" and node.args
        if isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
    ]
    assert len(ids) > 40
    assert [i for i in ids if not catalog.has(i[1])] == []
