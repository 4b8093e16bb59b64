"""The analyser of the text index: tokens, Russian and English stems, what goes into FTS."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from storage.text_terms import index_terms, stem, stems, words


@pytest.mark.parametrize(
    "forms",
    [
        ["кот", "кота", "коту", "котом", "коте", "коты", "котов", "котами", "котах"],
        ["квитанция", "квитанции", "квитанцию", "квитанцией", "квитанций", "квитанциями"],
        ["машина", "машины", "машине", "машину", "машиной", "машин", "машинах"],
        ["паспорт", "паспорта", "паспортом", "паспорте"],
        ["invoice", "invoices", "invoicing"],
        ["run", "runs", "running"],
        ["hike", "hikes", "hiking"],
        ["party", "parties"],
        ["box", "boxes"],
    ],
)
def test_inflected_forms_share_a_stem(forms: list[str]) -> None:
    assert len({stem(w) for w in forms}) == 1, {w: stem(w) for w in forms}


def test_snowball_russian_reduces_cats_to_kot() -> None:
    assert stem("котами") == stem("кот") == "кот"
    assert stem("квитанции") == stem("квитанция") == "квитанц"


def test_different_words_keep_different_stems() -> None:
    # A stem is not a substring match: "кот" is not "котлета" or "который", "cat" not "catalog".
    assert len({stem(w) for w in ["кот", "котлета", "который", "котенок"]}) == 4
    assert len({stem(w) for w in ["cat", "catalog", "category"]}) == 3


def test_words_are_casefolded_letters_and_digits() -> None:
    assert words("Привет, Мир! e-mail 2024-03-01 snake_case") == [
        "привет", "мир", "e", "mail", "2024", "03", "01", "snake", "case",
    ]  # fmt: skip
    assert words("ЁЛКА ёжик") == ["елка", "ежик"]
    assert words("ＡＢＣ ﬁle") == ["abc", "file"]  # NFKC: full-width letters, ligatures
    assert words("Straße") == ["strasse"]
    assert words(" \n!!! … 🙂 ") == []


def test_yo_and_ye_are_one_letter() -> None:
    assert stem(words("Ёлки")[0]) == stem(words("елка")[0])
    assert index_terms("Ёжик в тумане") == index_terms("ежик в тумане")


def test_numbers_and_other_scripts_are_kept() -> None:
    assert stem("2024") == "2024"
    assert stem("0042") == "0042"
    assert stem("東京") == "東京"
    assert index_terms("IMG 0042") == "img 0042"


def test_index_terms_are_the_stems_in_order() -> None:
    assert stems("Коты и invoices") == ["кот", "и", "invoic"]
    assert index_terms("Коты и invoices") == "кот и invoic"
    assert index_terms("") == ""


def test_stemming_is_safe_from_several_threads() -> None:
    raw = stem.__wrapped__  # past the cache, so every thread runs the stemmers themselves
    forms = words("котами квитанциями машинах паспортом running invoices parties hiking") * 200
    expected = [raw(w) for w in forms]
    results: list[list[str]] = []

    def work() -> None:
        results.append([raw(w) for w in forms])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4


def test_latin_diacritics_go_after_stemming() -> None:
    assert index_terms("Café in São Paulo, Müller") == index_terms("cafe in Sao Paulo, Muller")
    assert stem("cafés") == stem("cafes") == "cafe"
    assert index_terms("ǅemal") == "dzemal"  # NFKC then casefold give "dž": its caron goes
    assert index_terms("йод ёж Ελλάδα") == "йод еж ελλάδα"  # other scripts keep their marks


# New Tai Lue letters and two Vedic signs that SQLite's Unicode tables do not count as letters.
_SQLITE_NOT_LETTERS = {*range(0x19B0, 0x19C1), 0x19C8, 0x19C9, 0x1CF2, 0x1CF3}


def test_terms_are_what_sqlites_tokenizer_keeps() -> None:
    """Every one-character word's term comes out of SQLite's unicode61 tokenizer unchanged, so
    the stems PostgreSQL indexes as they are match what SQLite indexes (the tokenizer folds
    case and Latin diacritics; :func:`stem` already did)."""
    con = sqlite3.connect(":memory:")
    con.execute("CREATE VIRTUAL TABLE t USING fts5 (x, tokenize = 'unicode61')")
    con.execute("CREATE VIRTUAL TABLE v USING fts5vocab (t, 'instance')")
    terms = {}
    for cp in range(0x30000):
        if 0xD800 <= cp < 0xE000 or cp in _SQLITE_NOT_LETTERS:
            continue
        found = words(chr(cp))
        if len(found) == 1:
            terms[cp] = index_terms(found[0])
    con.executemany("INSERT INTO t (rowid, x) VALUES (?, ?)", terms.items())
    tokens: dict[int, list[str]] = {}
    for doc, term in con.execute("SELECT doc, term FROM v ORDER BY doc, offset"):
        tokens.setdefault(doc, []).append(term)
    changed = {hex(cp): (t, tokens.get(cp)) for cp, t in terms.items() if tokens.get(cp) != [t]}
    assert len(terms) > 100_000 and not changed
