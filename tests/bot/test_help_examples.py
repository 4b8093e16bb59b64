"""Every query /help shows as an example parses as /help says it does: the words it searches,
what it leaves out, its quoted phrases and its filters, in both languages. An example added to
/help without a line here fails, so the help cannot drift from the parser."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest

from bot.i18n import t
from core.search.filters import QueryFilters
from core.search.language import ParsedQuery, parse_query_language

TODAY = date(2025, 6, 1)
BOT = "image_finder_bot"
CODE = re.compile(r"<code>(.*?)</code>", re.S)
ITALIC = re.compile(r"<i>(.*?)</i>", re.S)


def ts(*ymd: int) -> int:
    return int(datetime(*ymd, tzinfo=UTC).timestamp())  # type: ignore[misc]


YEAR_2024: dict[str, Any] = {"date_from": ts(2024, 1, 1), "date_to": ts(2025, 1, 1)}
MARCH_2024: dict[str, Any] = {"date_from": ts(2024, 3, 1), "date_to": ts(2024, 4, 1)}


def query(
    text: str = "", exclude: tuple[str, ...] = (), phrases: tuple[str, ...] = (), **filters: Any
) -> ParsedQuery:
    if "kinds" in filters:
        filters["kinds"] = frozenset(filters["kinds"])
    return ParsedQuery(text, exclude, phrases, QueryFilters(**filters))


# What each example in <code> means: what /help says next to it.
EXAMPLES: dict[str, dict[str, ParsedQuery]] = {
    "en": {
        "dog -beach": query("dog", ("beach",)),
        '"invoice march"': query(phrases=("invoice march",)),  # "march" quoted: no filter
        "2024": query(**YEAR_2024),
        "march 2024": query(**MARCH_2024),
        "after:2024-03-01": query(date_from=ts(2024, 3, 1)),
        "before:2023": query(date_to=ts(2023, 1, 1)),
        "video": query(kinds={"video"}),
        "gif": query(kinds={"animation"}),
        "photo": query(kinds={"photo"}),
        "from:@channel": query(sources=("channel",)),
        "newest": query(sort="newest"),
        "oldest": query(sort="oldest"),
        "receipt 2024 from:@shop newest": query(
            "receipt", sources=("shop",), sort="newest", **YEAR_2024
        ),
    },
    "ru": {
        "собака -пляж": query("собака", ("пляж",)),
        '"счёт март"': query(phrases=("счёт март",)),
        "2024": query(**YEAR_2024),
        "март 2024": query(**MARCH_2024),
        "после:2024-03-01": query(date_from=ts(2024, 3, 1)),
        "до:2023": query(date_to=ts(2023, 1, 1)),
        "видео": query(kinds={"video"}),
        "гиф": query(kinds={"animation"}),
        "фото": query(kinds={"photo"}),
        "от:@канал": query(sources=("канал",)),
        "сначала новые": query(sort="newest"),
        "сначала старые": query(sort="oldest"),
        "чек 2024 от:@magazin сначала новые": query(
            "чек", sources=("magazin",), sort="newest", **YEAR_2024
        ),
    },
}
# Inline mode's example is typed after the bot's name, not into the search: no query language.
INLINE = {"en": f"@{BOT} query", "ru": f"@{BOT} запрос"}
# The italic examples are plain queries: none of their words may turn into a filter.
PLAIN = {
    "en": ["wedding in a tent", "red car at night", "?like this but in winter"],
    "ru": ["свадьба в шатре", "red car at night", "?такой же, но зимой"],
}
# Filter words /help names in the other language's help ("Russian words ... work too").
NAMED = {
    "en": {"после:2024": query(date_from=ts(2024, 1, 1)), "от:@x": query(sources=("x",)),
           "видео": query(kinds={"video"}), "сначала новые": query(sort="newest")},
    "ru": {"after:2024": query(date_from=ts(2024, 1, 1)), "from:@x": query(sources=("x",)),
           "video": query(kinds={"video"}), "newest": query(sort="newest")},
}  # fmt: skip


def help_text(lang: str) -> str:
    return t("commands-help", lang, bot=BOT)


def shown(pattern: re.Pattern[str], lang: str) -> list[str]:
    return [html.unescape(m) for m in pattern.findall(help_text(lang))]


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_every_example_in_help_is_listed_here(lang: str) -> None:
    assert sorted(shown(CODE, lang)) == sorted([*EXAMPLES[lang], INLINE[lang]])
    assert shown(ITALIC, lang) == PLAIN[lang]


@pytest.mark.parametrize(
    ("lang", "example"), [(lang, e) for lang, examples in EXAMPLES.items() for e in examples]
)
def test_each_example_parses_as_help_says(lang: str, example: str) -> None:
    assert parse_query_language(example, today=TODAY) == EXAMPLES[lang][example]


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_plain_examples_stay_text(lang: str) -> None:
    for example in PLAIN[lang]:
        parsed = parse_query_language(example, today=TODAY)
        assert parsed.text == example and not parsed.filters.active, example


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_filter_words_of_the_other_language_are_understood(lang: str) -> None:
    for words in ("после:", "от:", "видео", "сначала новые"):
        assert words in help_text("en")
    for words in ("after:", "from:", "video", "newest"):
        assert words in help_text("ru")
    for example, expected in NAMED[lang].items():
        assert parse_query_language(example, today=TODAY) == expected, example


def test_a_quoted_query_searches_the_text_alone_as_help_says() -> None:
    assert parse_query_language('"invoice march"', today=TODAY).text_only
    assert not parse_query_language('receipt "invoice march"', today=TODAY).text_only
