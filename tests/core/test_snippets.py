"""Snippets: the matching words of a text hit in a short window of their text."""

from __future__ import annotations

from core.search.snippets import Snippet, make_snippet, query_stems


def marked(snippet: Snippet) -> str:
    """The snippet with its spans in brackets, to compare by eye."""
    out, last = [], 0
    for start, end in snippet.spans:
        out += [snippet.text[last:start], "[", snippet.text[start:end], "]"]
        last = end
    return "".join([*out, snippet.text[last:]])


def test_a_short_text_is_whole_and_every_matching_word_is_marked() -> None:
    snippet = make_snippet({"caption": "Два кота и котами на диване"}, query_stems(["кот"]))
    assert snippet is not None and snippet.source == "caption"
    assert marked(snippet) == "Два [кота] и [котами] на диване"


def test_a_long_text_is_cut_at_words_around_the_first_match() -> None:
    words = " ".join(f"word{i}" for i in range(40))
    text = f"{words} the Invoice for March is attached {words}"
    snippet = make_snippet({"ocr": text}, query_stems(["invoices", "march"]))
    assert snippet is not None and snippet.source == "ocr"
    assert snippet.text.startswith("…") and snippet.text.endswith("…")
    assert len(snippet.text) <= 82
    body = snippet.text.strip("…")
    assert body == body.strip() and all(w.startswith("word") for w in body.split()[:2])
    assert "[Invoice] for [March]" in marked(snippet)
    assert not any(snippet.text[s - 1].isalnum() for s, _ in snippet.spans if s > 0)


def test_the_window_keeps_its_edges_whole_at_the_start_and_end() -> None:
    text = "квитанция " + "x" * 200
    snippet = make_snippet({"ocr": text}, query_stems(["квитанции"]))
    assert snippet is not None
    assert snippet.text.startswith("квитанция") and snippet.spans[0] == (0, 9)
    end = make_snippet({"ocr": "y" * 200 + " конец"}, query_stems(["конец"]))
    assert end is not None and end.text.endswith("конец") and end.text.startswith("…")
    start, stop = end.spans[0]
    assert end.text[start:stop] == "конец"


def test_newlines_become_spaces_and_spans_stay_on_the_words() -> None:
    snippet = make_snippet({"ocr": "ИТОГО\n1200 руб.\nСпасибо"}, query_stems(["итого", "руб"]))
    assert snippet is not None and "\n" not in snippet.text
    assert marked(snippet) == "[ИТОГО] 1200 [руб]. Спасибо"


def test_the_matched_source_is_preferred_and_no_match_is_none() -> None:
    texts = {"caption": "a cat", "ocr": "cat food price", "origin": "Cats (@cats)"}
    assert make_snippet(texts, query_stems(["cat"])).source == "caption"  # type: ignore[union-attr]
    chosen = make_snippet(texts, query_stems(["cat"]), prefer=("origin",))
    assert chosen is not None and chosen.source == "origin" and marked(chosen).startswith("[Cats]")
    assert make_snippet(texts, query_stems(["dog"])) is None
    assert make_snippet({}, query_stems(["cat"])) is None
    assert make_snippet(texts, frozenset()) is None
