"""The query language: filters in both languages, phrases, exclusions, and the promise that
whatever is no filter stays text (checked on generated queries too)."""

from __future__ import annotations

import calendar
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.search.filters import QueryFilters
from core.search.language import parse_query, parse_query_language, search_words
from core.search.query import Query

TODAY = date(2025, 6, 1)


def ts(y: int, m: int = 1, d: int = 1) -> int:
    return calendar.timegm(date(y, m, d).timetuple())


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_query_language(text, today=TODAY)


def span(text: str) -> tuple[int | None, int | None]:
    f = parse(text).filters
    return f.date_from, f.date_to


# --- dates --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words", "period"),
    [
        ("кот 2024", "кот", (ts(2024), ts(2025))),
        ("in 2024 a cat", "a cat", (ts(2024), ts(2025))),
        ("кот в 2024 году", "кот", (ts(2024), ts(2025))),
        ("снимки за 2023 г.", "снимки", (ts(2023), ts(2024))),
        ("invoice march 2024", "invoice", (ts(2024, 3), ts(2024, 4))),
        ("Mar. 2024 invoice", "invoice", (ts(2024, 3), ts(2024, 4))),
        ("dec 2024", "", (ts(2024, 12), ts(2025))),
        ("в марте 2024 кот", "кот", (ts(2024, 3), ts(2024, 4))),
        ("мая 2025 года", "", (ts(2025, 5), ts(2025, 6))),
        ("2023 2024", "", (ts(2023), ts(2025))),  # bare periods join
        ("after:2024-03-01", "", (ts(2024, 3), None)),
        ("after:2024-03-01 before:2024-04", "", (ts(2024, 3), ts(2024, 4))),
        ("после:2024 до:2024-07", "", (ts(2024), ts(2024, 7))),
        ("before:2023", "", (None, ts(2023))),
        ("до:31.12.2023", "", (None, ts(2023, 12, 31))),
        ("after: 2020", "", (ts(2020), None)),
        ("2024 after:2024-06", "", (ts(2024, 6), ts(2025))),  # a range narrows a period
        ("before:1950", "", (None, ts(1950))),  # explicit: any sensible year
    ],
)
def test_dates(text: str, words: str, period: tuple[int | None, int | None]) -> None:
    parsed = parse(text)
    assert parsed.text == words
    assert (parsed.filters.date_from, parsed.filters.date_to) == period


@pytest.mark.parametrize(
    "text",
    [
        "before:xyz",
        "after:2024-13",
        "after:2024-02-30",
        "до:",
        "iphone 1234",
        "2030",  # later than next year
        "1989",
        "march",
        "март",  # a month without a year is a word
        "may the force",
        "20245",
        "٢٠٢٤",  # Arabic-Indic digits are no year here
        "after:99999",
    ],
)
def test_what_only_looks_like_a_date_stays_text(text: str) -> None:
    parsed = parse(text)
    assert parsed.text == " ".join(text.split())
    assert parsed.filters == QueryFilters()


RU_MONTHS = [
    ("январь", "января", "январе", "январю", "январем", "январём"),
    ("февраль", "февраля", "феврале", "февралю", "февралем"),
    ("март", "марта", "марте", "марту", "мартом"),
    ("апрель", "апреля", "апреле", "апрелю", "апрелем"),
    ("май", "мая", "мае", "маю", "маем"),
    ("июнь", "июня", "июне", "июню", "июнем"),
    ("июль", "июля", "июле", "июлю", "июлем"),
    ("август", "августа", "августе", "августу", "августом"),
    ("сентябрь", "сентября", "сентябре", "сентябрю", "сентябрем"),
    ("октябрь", "октября", "октябре", "октябрю", "октябрём"),
    ("ноябрь", "ноября", "ноябре", "ноябрю", "ноябрем"),
    ("декабрь", "декабря", "декабре", "декабрю", "декабрем"),
]
EN_MONTHS = [
    ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
    ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
    ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"), ("december", "dec"),
]  # fmt: skip


@pytest.mark.parametrize("month", range(1, 13))
def test_every_month_in_every_form(month: int) -> None:
    end = ts(2024, month + 1) if month < 12 else ts(2025)
    for form in (*RU_MONTHS[month - 1], *EN_MONTHS[month - 1]):
        for text in (f"{form} 2024", f"{form.capitalize()} 2024", f"в {form} 2024"):
            assert span(text) == (ts(2024, month), end), text


# --- kinds, sources, sort -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words", "kinds"),
    [
        ("cat video", "cat", {"video"}),
        ("видео с котом", "с котом", {"video"}),
        ("ролики", "", {"video"}),
        ("funny gif", "funny", {"animation"}),
        ("гифка", "", {"animation"}),
        ("фотки моря", "моря", {"photo"}),
        ("Photos, beach", "beach", {"photo"}),
        ("документ", "", {"document"}),
        ("кружок", "", {"video_note"}),
        ("video note from mom", "from mom", {"video_note"}),
        ("photo or video", "or", {"photo", "video"}),
    ],
)
def test_kinds(text: str, words: str, kinds: set[str]) -> None:
    parsed = parse(text)
    assert parsed.text == words and parsed.filters.kinds == kinds


def test_sources() -> None:
    parsed = parse("from:@trips cat от:@Кино from: @second from:@trips")
    assert parsed.text == "cat"
    assert parsed.filters.sources == ("trips", "кино", "second")
    assert parse("from:").text == "from:"
    assert parse("from:@").text == "from:@"
    assert parse("@trips").filters.sources == ()  # a bare mention is a word


@pytest.mark.parametrize(
    ("text", "words", "sort"),
    [
        ("newest cats", "cats", "newest"),
        ("cats, latest", "cats,", "newest"),  # words keep their punctuation
        ("new first cats", "cats", "newest"),
        ("коты сначала новые", "коты", "newest"),
        ("новые сначала коты", "коты", "newest"),
        ("oldest", "", "oldest"),
        ("сначала старые", "", "oldest"),
        ("sort:old", "", "oldest"),
        ("новые кроссовки", "новые кроссовки", "relevance"),  # "new sneakers"
        ("сначала кот", "сначала кот", "relevance"),
    ],
)
def test_sort(text: str, words: str, sort: str) -> None:
    parsed = parse(text)
    assert parsed.text == words and parsed.filters.sort == sort


def test_filters_alone_and_together() -> None:
    parsed = parse("видео 2024 сначала новые")
    assert parsed.text == "" and not parsed.text_only
    assert parsed.filters == QueryFilters(ts(2024), ts(2025), frozenset({"video"}), (), "newest")


# --- phrases and exclusions ---------------------------------------------------------------------


def test_phrases_are_exact_text_and_filter_words_in_them_stay_words() -> None:
    parsed = parse('"video of a cat 2024" фото')
    assert parsed.phrases == ("video of a cat 2024",)
    assert parsed.text == "" and parsed.text_only
    assert parsed.filters.kinds == {"photo"} and parsed.filters.date_from is None
    mixed = parse('invoice «Счёт №5» -"red blanket" -dog “exact”')
    assert mixed.text == "invoice" and not mixed.text_only
    assert mixed.phrases == ("Счёт №5", "exact")
    assert mixed.exclude == ("red blanket", "dog")
    assert parse('"unclosed phrase').phrases == ("unclosed phrase",)
    assert parse('cat "" ""').phrases == ()


def test_an_exclusion_inside_a_phrase_is_part_of_the_phrase() -> None:
    parsed = parse('"cat -dog" -sofa')
    assert parsed.phrases == ("cat -dog",) and parsed.exclude == ("sofa",)


def test_exclusions_keep_the_old_grammar() -> None:
    for text in ("cat -dog, -Dog -DOG", "e-mail -5 - x", 'cat -"unclosed', "-red -blue"):
        positive, excluded = parse_query(text)
        parsed = parse(text)
        assert (parsed.text, parsed.exclude) == (positive, excluded)


def test_search_words_drop_common_words_unless_nothing_is_left() -> None:
    assert search_words(["кот", "на", "диване"]) == ("кот", "диване")
    assert search_words(["A", "cat", "on", "the", "sofa"]) == ("cat", "sofa")
    assert search_words(["on", "the"]) == ("on", "the")


# --- the query object ---------------------------------------------------------------------------


def test_query_from_text_carries_the_language() -> None:
    q = Query.from_text('cat "on sofa" video 2024 -dog', today=TODAY)
    assert q.text == "cat" and q.phrases == ("on sofa",) and q.exclude == ("dog",)
    assert q.filters.kinds == {"video"} and not q.text_only and not q.listing
    assert Query.from_text('"on sofa"').text_only
    assert Query.from_text("видео сначала новые").listing
    assert not Query.from_text('"x"', image=b"png").text_only
    merged = Query.from_text("cat 2024", filters=QueryFilters(kinds=frozenset({"photo"})))
    assert merged.filters.kinds == {"photo"} and merged.filters.date_from is not None
    with pytest.raises(TypeError):
        Query(text="cat", phrases="on sofa")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        QueryFilters(kinds=frozenset({"movie"}))
    with pytest.raises(ValueError):
        QueryFilters(sort="random")  # type: ignore[arg-type]


def test_merged_filters_intersect_ranges_and_join_kinds() -> None:
    a = QueryFilters(ts(2023), ts(2025), frozenset({"photo"}), ("a",))
    b = QueryFilters(ts(2024), None, frozenset({"video"}), ("b", "a"), "oldest")
    assert a.merged(b) == QueryFilters(
        ts(2024), ts(2025), frozenset({"photo", "video"}), ("a", "b"), "oldest"
    )
    assert QueryFilters(ts(2025), ts(2024)).empty_range


# --- properties ---------------------------------------------------------------------------------

FILTER_SNIPPETS = [
    "2024", "march 2024", "в марте 2023", "after:2024-03-01", "before:2023", "до:2022-05",
    "video", "видео", "gif", "фотки", "документ", "кружок", "video note", "from:@chan",
    "от:@канал", "newest", "сначала новые", "oldest first", "in 2021", "2020 году",
]  # fmt: skip
_VOCABULARY = {
    *("in", "during", "в", "во", "за", "год", "года", "году", "г", "new", "old", "first"),
    *("newest", "latest", "oldest", "recent", "сначала", "новые", "старые", "свежие"),
    *("note", "notes", "sort"),
}
_LETTERS = st.characters(categories=("Ll", "Lu", "Nd"), exclude_characters='-"“«„»”')


def _plain_word(word: str) -> bool:
    """A word the language could never read as (part of) a filter."""
    from core.search.language import _KINDS  # the vocabulary under test
    from core.search.language_dates import month_number

    key = word.casefold().replace("ё", "е")
    return (
        key not in _VOCABULARY
        and key not in _KINDS
        and month_number(key) is None
        and not (len(key) == 4 and key.isdigit())
        and word.strip("-‐‑‒–—―−") != ""
    )


PLAIN_WORDS = st.text(_LETTERS, min_size=1, max_size=8).filter(_plain_word)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_the_parser_never_raises(text: str) -> None:
    parsed = parse(text)
    assert isinstance(parsed.text, str) and isinstance(parsed.filters, QueryFilters)
    for word in parsed.text.split():
        assert word in text  # nothing invented
    assert Query.from_text(text).text == (parsed.text or None)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(PLAIN_WORDS.map(lambda w: ("word", w)), st.sampled_from(FILTER_SNIPPETS)),
        max_size=10,
    )
)
def test_no_word_that_is_not_a_filter_is_lost(parts: list[object]) -> None:
    words = [p[1] for p in parts if isinstance(p, tuple)]
    text = " ".join(p[1] if isinstance(p, tuple) else str(p) for p in parts)
    parsed = parse(text)
    assert parsed.text.split() == words
    filters = [p for p in parts if not isinstance(p, tuple)]
    assert parsed.filters.active == bool(filters)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_the_words_left_over_parse_to_themselves(text: str) -> None:
    once = parse(text)
    again = parse(once.text)
    assert again.text == once.text and again.filters == QueryFilters()
