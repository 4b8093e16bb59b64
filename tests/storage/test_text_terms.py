"""The analyser of the text index: tokens, Russian and English stems, what goes into FTS."""

from __future__ import annotations

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
