"""CLIP tokenizer: token-for-token equal to open_clip's (goldens from ``make_goldens.py``)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from core.errors import TokenizerError
from core.models.text.clip_bpe import (
    EOT_TOKEN,
    SOT_TOKEN,
    VENDORED_VOCAB,
    ClipTokenizer,
    clean_text,
    read_clip_vocab,
    write_clip_tokenizer_json,
)
from tests.core.text.make_goldens import digest

SOT, EOT = 49406, 49407


@pytest.fixture(scope="module")
def clip(clip_json: Path) -> ClipTokenizer:
    return ClipTokenizer(clip_json, context_length=77)


def _mismatches(
    tok: ClipTokenizer, corpus: list[str], cases: list[dict[str, Any]], key: str
) -> list[str]:
    bad = []
    for text, case in zip(corpus, cases, strict=True):
        got = tok.encode([text])[0]
        if got != case[key]:
            bad.append(f"{text[:60]!r}: {got[:12]} != {case[key][:12]}")
    return bad


def test_unframed_ids_equal_open_clip_encode(
    clip: ClipTokenizer, corpus: list[str], goldens: dict[str, Any]
) -> None:
    bad = []
    for text, case in zip(corpus, goldens["clip"], strict=True):
        ids = clip.encode_unframed(text)
        expected_ok = ids == case["ids"] if "ids" in case else digest(ids) == case["sha256"]
        if len(ids) != case["n"] or not expected_ok:
            bad.append(f"{text[:60]!r}: {ids[:12]} != {case.get('ids', [])[:12]}")
    assert not bad, f"{len(bad)} of {len(corpus)} differ:\n" + "\n".join(bad[:20])


@pytest.mark.parametrize("context", [77, 16])
def test_framed_ids_equal_open_clip_tokenize(
    clip_json: Path, corpus: list[str], goldens: dict[str, Any], context: int
) -> None:
    tok = ClipTokenizer(clip_json, context_length=context)
    bad = _mismatches(tok, corpus, goldens["clip"], f"ctx{context}")
    assert not bad, f"{len(bad)} of {len(corpus)} differ:\n" + "\n".join(bad[:20])


def test_corpus_covers_what_the_issue_asks_for(corpus: list[str]) -> None:
    joined = "".join(corpus)
    assert len(corpus) >= 300
    assert sum(len(t) >= 10_000 for t in corpus) >= 5
    for needle in ("ё", "Ё", "\u200d", "🇷🇺", "&amp;", "\t", "\n", "“", "«", "7", "<start_of_text>"):
        assert needle in joined, needle


def test_framing_and_truncation(clip: ClipTokenizer) -> None:
    assert clip.encode(["a photo of a cat"]) == [[SOT, 320, 1125, 539, 320, 2368, EOT]]
    long = clip.encode(["cat " * 500])[0]
    assert len(long) == 77
    assert long[0] == SOT and long[-1] == EOT
    assert long[1:-1] == [2368] * 75


@pytest.mark.parametrize("text", ["", " ", "\t\n ", "\u00a0\u3000", "&nbsp;"])
def test_empty_and_whitespace_only_text_is_just_the_frame(clip: ClipTokenizer, text: str) -> None:
    assert clip.encode([text]) == [[SOT, EOT]]


def test_batch_keeps_order(clip: ClipTokenizer) -> None:
    texts = ["a dog", "", "кот", "a dog"]
    assert clip.encode(texts) == [clip.encode([t])[0] for t in texts]


def test_lone_surrogates_are_not_an_error(clip: ClipTokenizer) -> None:
    ids = clip.encode(["\ud83d cat \udc00"])[0]
    assert ids[0] == SOT and ids[-1] == EOT
    assert 2368 in ids  # "cat</w>"


def test_cleaning_matches_open_clip_steps() -> None:
    assert clean_text("  Tom &amp;amp;  Jerry\n\tÐ¼Ð¾Ñ€Ðµ ") == "tom & jerry море"
    assert clean_text("MiXeD", lowercase=False) == "MiXeD"


def test_literal_special_tokens_follow_open_clip_regex(clip: ClipTokenizer) -> None:
    # open_clip's regex yields a special token only where its scan stops; after punctuation the
    # "<" is swallowed by the punctuation run instead.
    assert SOT in clip.encode_unframed("hello<start_of_text>world")
    assert SOT not in clip.encode_unframed("x<<start_of_text>")


def test_vocabulary_layout_matches_open_clip(clip_json: Path) -> None:
    vocab, merges = read_clip_vocab(VENDORED_VOCAB)
    assert len(vocab) == 49408 and len(merges) == 48894
    assert vocab[SOT_TOKEN] == SOT and vocab[EOT_TOKEN] == EOT
    data = json.loads(clip_json.read_text(encoding="utf-8"))
    assert data["model"]["type"] == "BPE"
    assert data["model"]["end_of_word_suffix"] == "</w>"
    assert data["normalizer"] and data["pre_tokenizer"] and data["post_processor"]


def test_write_from_explicit_vocab_path(tmp_path: Path, clip_json: Path) -> None:
    out = write_clip_tokenizer_json(tmp_path / "sub" / "tokenizer.json", vocab_path=VENDORED_VOCAB)
    assert out.read_bytes() == clip_json.read_bytes()
    assert not list(out.parent.glob("*.tmp"))


def test_bad_vocab_file_names_the_file(tmp_path: Path) -> None:
    not_gzip = tmp_path / "vocab.txt.gz"
    not_gzip.write_bytes(b"not gzip at all")
    with pytest.raises(TokenizerError, match=r"vocab\.txt\.gz"):
        write_clip_tokenizer_json(tmp_path / "tokenizer.json", vocab_path=not_gzip)
    short = tmp_path / "short.txt.gz"
    short.write_bytes(gzip.compress(b"#version: 0.2\ni n\nt h\n"))
    with pytest.raises(TokenizerError, match=r"short\.txt\.gz"):
        write_clip_tokenizer_json(tmp_path / "tokenizer.json", vocab_path=short)
    with pytest.raises(TokenizerError, match=r"missing\.gz"):
        write_clip_tokenizer_json(tmp_path / "tokenizer.json", vocab_path=tmp_path / "missing.gz")
