"""YouTokenToMe reimplementation: equal to youtokentome + ruCLIP's framing."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import pytest

from core.errors import TokenizerError
from core.models.text.yttm import YttmModel, YttmTokenizer
from tests.core.text.make_goldens import digest

BOS, EOS, UNK = 2, 3, 1


@pytest.fixture(scope="module")
def model(yttm_model: Path) -> YttmModel:
    return YttmModel(yttm_model)


def test_goldens_were_made_with_the_committed_model(
    goldens: dict[str, Any], yttm_model: Path
) -> None:
    assert goldens["yttm"]["model"] == yttm_model.name
    assert goldens["yttm"]["model_sha256"] == hashlib.sha256(yttm_model.read_bytes()).hexdigest()


def test_unframed_ids_equal_youtokentome(
    model: YttmModel, corpus: list[str], goldens: dict[str, Any]
) -> None:
    bad = []
    for text, case in zip(corpus, goldens["yttm"]["cases"], strict=True):
        ids = model.encode(text.lower())
        expected_ok = ids == case["ids"] if "ids" in case else digest(ids) == case["sha256"]
        if len(ids) != case["n"] or not expected_ok:
            bad.append(f"{text[:60]!r}: {ids[:12]} != {case.get('ids', [])[:12]}")
    assert not bad, f"{len(bad)} of {len(corpus)} differ:\n" + "\n".join(bad[:20])


@pytest.mark.parametrize("context", [77, 16])
def test_framed_ids_equal_ruclip_processor(
    yttm_model: Path, corpus: list[str], goldens: dict[str, Any], context: int
) -> None:
    tok = YttmTokenizer(yttm_model, context_length=context)
    bad = []
    for text, case in zip(corpus, goldens["yttm"]["cases"], strict=True):
        got = tok.encode([text])[0]
        if got != case[f"ctx{context}"]:
            bad.append(f"{text[:60]!r}: {got[:12]} != {case[f'ctx{context}'][:12]}")
    assert not bad, f"{len(bad)} of {len(corpus)} differ:\n" + "\n".join(bad[:20])


def _fuzz_texts(model: YttmModel, n: int, seed: int) -> list[str]:
    """Random strings over the model's alphabet, unknown characters and every kind of space."""
    rng = random.Random(seed)
    alphabet = [c for c in model.char2id if c != "\u2581"]
    extra = [
        " ",
        " ",
        "\t",
        "\n",
        "\r",
        "\x0b",
        "\x0c",
        "\u2581",
        "\u00a0",
        "\x1c",
        "é",
        "😀",
        "中",
    ]
    pool = alphabet * 3 + extra
    return ["".join(rng.choice(pool) for _ in range(rng.randint(0, 40))) for _ in range(n)]


@pytest.mark.export  # live youtokentome is built only for make test-export; goldens cover make test
def test_live_equality_with_youtokentome(
    model: YttmModel, yttm_model: Path, corpus: list[str]
) -> None:
    yttm = pytest.importorskip("youtokentome")
    bpe = yttm.BPE(str(yttm_model), n_threads=1)
    texts = [t.lower() for t in corpus] + _fuzz_texts(model, 3000, seed=7)
    expected = bpe.encode(texts, output_type=yttm.OutputType.ID)
    bad = [
        f"{t[:60]!r}: {model.encode(t)[:12]} != {e[:12]}"
        for t, e in zip(texts, expected, strict=True)
        if model.encode(t) != e
    ]
    assert not bad, f"{len(bad)} of {len(texts)} differ:\n" + "\n".join(bad[:20])


def test_words_start_with_the_marker_and_unknown_runs_are_one_unk(model: YttmModel) -> None:
    space = model.char2id["\u2581"]
    assert model.encode("😀😀") == [space, UNK]
    assert model.encode("кот😀😀кот").count(UNK) == 1
    assert model.encode("кот 😀 😀").count(UNK) == 2
    # "▁" and C-locale whitespace separate words; NBSP does not.
    assert model.encode("кот\u2581кот") == model.encode("кот кот") == model.encode("кот\x0bкот")
    assert model.encode("кот\u00a0кот") != model.encode("кот кот")


def test_framing_truncation_and_lowercase(yttm_model: Path) -> None:
    tok = YttmTokenizer(yttm_model, context_length=8)
    assert tok.encode([""]) == [[BOS, EOS]]
    assert tok.encode([" \t\n"]) == [[BOS, EOS]]
    assert tok.encode(["КОТ"]) == tok.encode(["кот"])
    long = tok.encode(["кот на море " * 50])[0]
    assert len(long) == 8 and long[0] == BOS and long[-1] == EOS
    assert long[1:-1] == tok.encode_unframed("кот на море " * 50)[:6]
    assert YttmTokenizer(yttm_model, context_length=2).encode(["кот"]) == [[BOS, EOS]]


def test_config_ids_override_the_model_file(yttm_model: Path) -> None:
    tok = YttmTokenizer(yttm_model, context_length=77, sot_id=10, eot_id=11, lowercase=False)
    ids = tok.encode(["КОТ"])[0]
    assert ids[0] == 10 and ids[-1] == 11
    assert ids != YttmTokenizer(yttm_model, context_length=77).encode(["КОТ"])[0]


def test_lone_surrogates_become_unknown(model: YttmModel) -> None:
    assert UNK in model.encode("кот\ud83d")


def test_long_single_word(model: YttmModel) -> None:
    ids = model.encode("котнаморе" * 1200)
    assert ids and UNK not in ids


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "empty header"),
        ("not a model", "not a YouTokenToMe model"),
        ("2 0\n9601 4\n1072 5\n1 0 2", "header says"),
        ("1 0\n1072 4\n1 0 2 3\n", "word-start marker"),
        ("1 0\n99999999 4\n1 0 2 3\n", "invalid code point"),
    ],
)
def test_bad_model_file_names_the_file(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bpe.model"
    path.write_text(content, encoding="ascii")
    with pytest.raises(TokenizerError, match=problem) as info:
        YttmModel(path)
    assert str(path) in str(info.value)


def test_missing_and_binary_model_files(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="missing"):
        YttmModel(tmp_path / "bpe.model")
    binary = tmp_path / "binary.model"
    binary.write_bytes(b"\x89PNG\x00\xff")
    with pytest.raises(TokenizerError, match=r"binary\.model"):
        YttmModel(binary)
