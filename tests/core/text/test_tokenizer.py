"""``load_tokenizer`` over bundle configs, the ``hf`` kind, ``pad_batch``, error reporting."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tokenizers import Tokenizer as HfLib
from tokenizers import processors

from core.errors import TokenizerError
from core.models.config import TextConfig
from core.models.text import ClipTokenizer, HfTokenizer, YttmTokenizer, load_tokenizer, pad_batch
from core.models.text.clip_bpe import clean_text
from core.models.text.tokenizer import clean_for_hf
from tests.core.onnx_builders import GEMMA_EOS_ID, write_gemma_like_tokenizer

SOT, EOT = 49406, 49407


@pytest.fixture()
def bundle(tmp_path: Path, clip_json: Path, yttm_model: Path) -> Path:
    shutil.copy(clip_json, tmp_path / "tokenizer.json")
    shutil.copy(yttm_model, tmp_path / "bpe.model")
    return tmp_path


@pytest.fixture(scope="module")
def immich_style_json(clip_json: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layout HF/Immich ship for OpenAI CLIP: ``<|startoftext|>`` names, a Roberta
    post-processor, and padding/truncation to 77 baked into the file."""
    data = json.loads(clip_json.read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    vocab["<|startoftext|>"] = vocab.pop("<start_of_text>")
    vocab["<|endoftext|>"] = vocab.pop("<end_of_text>")
    data["added_tokens"] = []
    data["post_processor"] = None
    tok = HfLib.from_str(json.dumps(data))
    tok.add_special_tokens(["<|startoftext|>", "<|endoftext|>"])
    tok.post_processor = processors.RobertaProcessing(
        ("<|endoftext|>", EOT), ("<|startoftext|>", SOT)
    )
    tok.enable_padding(length=77, pad_id=EOT, pad_token="<|endoftext|>")
    tok.enable_truncation(max_length=77)
    path = tmp_path_factory.mktemp("immich") / "tokenizer.json"
    tok.save(str(path))
    return path


def test_kinds_and_default_files(bundle: Path) -> None:
    clip = load_tokenizer(bundle, TextConfig(context_length=77, tokenizer="clip"))
    yttm = load_tokenizer(bundle, TextConfig(context_length=77, tokenizer="yttm"))
    hf = load_tokenizer(bundle, TextConfig(context_length=77, tokenizer="hf", pad_id=7))
    assert isinstance(clip, ClipTokenizer) and isinstance(yttm, YttmTokenizer)
    assert isinstance(hf, HfTokenizer)
    assert (clip.context_length, clip.pad_id, hf.pad_id) == (77, 0, 7)
    assert yttm.encode(["кот"])[0][0] == 2


def test_explicit_tokenizer_file(bundle: Path) -> None:
    (bundle / "bpe.model").rename(bundle / "ru.model")
    cfg = TextConfig(context_length=77, tokenizer="yttm", tokenizer_file="ru.model")
    assert load_tokenizer(bundle, cfg).encode([""]) == [[2, 3]]


@pytest.mark.parametrize("kind", ["clip", "hf", "yttm"])
def test_missing_file_names_it(tmp_path: Path, kind: str) -> None:
    cfg = TextConfig(context_length=77, tokenizer=kind)
    with pytest.raises(TokenizerError, match=str(tmp_path)):
        load_tokenizer(tmp_path, cfg)


@pytest.mark.parametrize("kind", ["clip", "hf"])
@pytest.mark.parametrize(
    "content",
    ["", "{not json", '{"model": {"type": "Nope"}}', '["a list"]', '{"version": "1.0"}'],
)
def test_bad_tokenizer_json_names_it(tmp_path: Path, kind: str, content: str) -> None:
    (tmp_path / "tokenizer.json").write_text(content, encoding="utf-8")
    with pytest.raises(TokenizerError, match=r"tokenizer\.json"):
        load_tokenizer(tmp_path, TextConfig(context_length=77, tokenizer=kind))


def test_clip_kind_rejects_a_non_bpe_file(tmp_path: Path) -> None:
    from tokenizers import models

    HfLib(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]")).save(
        str(tmp_path / "tokenizer.json")
    )
    with pytest.raises(TokenizerError, match="BPE"):
        load_tokenizer(tmp_path, TextConfig(context_length=77, tokenizer="clip"))


def test_hf_kind_frames_from_the_file_and_keeps_eot_on_truncation(bundle: Path) -> None:
    hf = load_tokenizer(bundle, TextConfig(context_length=10, tokenizer="hf"))
    assert hf.encode(["a photo of a cat"]) == [[SOT, 320, 1125, 539, 320, 2368, EOT]]
    assert hf.encode([""]) == [[SOT, EOT]]
    long = hf.encode(["cat " * 100])[0]
    assert long == [SOT, *[2368] * 8, EOT]


def test_hf_kind_equals_clip_kind_on_plain_text(
    bundle: Path, corpus: list[str], goldens: dict[str, Any]
) -> None:
    """Where open_clip's cleaning is just whitespace + lowercase, the file's own normalizer
    gives the same ids, so our tokenizer.json is a faithful HF tokenizer too."""
    hf = load_tokenizer(bundle, TextConfig(context_length=77, tokenizer="hf"))
    plain = [
        (t, case)
        for t, case in zip(corpus, goldens["clip"], strict=True)
        if t.isprintable()
        and "&" not in t
        and "<" not in t
        and "\u0345" not in t
        and clean_text(t) == " ".join(t.split()).lower()
        and t.lower() == "".join(c.lower() for c in t)  # no context-dependent final sigma
    ]
    assert len(plain) > 100
    texts = [t for t, _ in plain]
    assert hf.encode(texts) == [case["ctx77"] for _, case in plain]


def test_immich_layout_loads_as_hf_without_padding(immich_style_json: Path) -> None:
    hf = HfTokenizer(immich_style_json, context_length=77)
    short, long = hf.encode(["a cat", "cat " * 200])
    assert short == [SOT, 320, 2368, EOT]
    assert len(long) == 77 and long[0] == SOT and long[-1] == EOT


def test_immich_layout_loads_as_clip_kind(
    immich_style_json: Path, clip_json: Path, corpus: list[str]
) -> None:
    ours = ClipTokenizer(clip_json, context_length=77)
    theirs = ClipTokenizer(immich_style_json, context_length=77)
    # Literal "<start_of_text>" is special only in our file; the Immich one spells it differently.
    sample = [t for t in corpus[::5] if "_of_text>" not in t]
    assert theirs.encode(sample) == ours.encode(sample)
    assert theirs.encode_unframed("<|endoftext|>") == [EOT]


def test_hf_file_without_post_processor_is_framed_from_the_config(
    tmp_path: Path, clip_json: Path
) -> None:
    data = json.loads(clip_json.read_text(encoding="utf-8"))
    data["post_processor"] = None
    (tmp_path / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    cfg = TextConfig(context_length=5, tokenizer="hf", sot_id=SOT, eot_id=EOT)
    assert load_tokenizer(tmp_path, cfg).encode(["cat cat cat cat cat"]) == [
        [SOT, 2368, 2368, 2368, EOT]
    ]
    bare = TextConfig(context_length=5, tokenizer="hf")
    assert load_tokenizer(tmp_path, bare).encode(["cat cat cat cat cat cat"]) == [[2368] * 5]


@pytest.fixture(scope="module")
def gemma_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a cased, Gemma-shaped ``tokenizer.json`` (SigLIP 2's kind)."""
    root = tmp_path_factory.mktemp("gemma")
    write_gemma_like_tokenizer(root / "tokenizer.json")
    return root


@pytest.mark.parametrize(
    ("clean", "text", "cleaned"),
    [
        ("none", "  Cat_on a SOFA! ", "  Cat_on a SOFA! "),
        ("whitespace", "  Cat_on \t a\nSOFA! &amp;amp; ", "Cat_on a SOFA! &"),
        ("lower", "  Cat_on \t a\nSOFA! ", "cat_on a sofa!"),
        ("canonicalize", "  Cat_on \t a\nSOFA! ", "cat on a sofa"),
        ("canonicalize", "Кот, «кот» и КОТ!", "кот «кот» и кот"),  # only ASCII punctuation goes
        ("canonicalize", "Tom &amp; Jerry", "tom jerry"),  # unescaped first, then removed
        ("canonicalize", "a_b__c", "a b c"),
        ("canonicalize", "!!!", ""),
    ],
)
def test_clean_modes(clean: Any, text: str, cleaned: str) -> None:
    assert clean_for_hf(text, clean) == cleaned


def test_hf_canonicalize_bundle_folds_case_and_punctuation(gemma_bundle: Path) -> None:
    """SigLIP's cleaning runs before the tokenizer file, so a query's case and punctuation do
    not change its ids (open_clip tokenizes the same way: tests/export/test_hf_text_parity)."""
    cfg = TextConfig(context_length=64, tokenizer="hf", clean="canonicalize")
    tok = load_tokenizer(gemma_bundle, cfg)
    pairs = [
        ("Cat on a sofa!", "cat on a sofa"),
        ("  CAT   on a\tSofa?? ", "cat on a sofa"),
        ("dog_park", "dog park"),
        ("Кот на диване!", "кот на диване"),
    ]
    for noisy, plain in pairs:
        got, want = tok.encode([noisy, plain])
        assert got == want and got[-1] == GEMMA_EOS_ID, noisy


def test_hf_bundle_without_cleaning_keeps_case(gemma_bundle: Path) -> None:
    tok = load_tokenizer(gemma_bundle, TextConfig(context_length=64, tokenizer="hf"))
    upper, lower = tok.encode(["Cat on a sofa", "cat on a sofa"])
    assert upper != lower and upper[-4:] == lower[-4:]  # "on a sofa <eos>" alike, "Cat" not


def test_cleaning_never_drops_the_final_special_token(gemma_bundle: Path) -> None:
    cfg = TextConfig(context_length=6, tokenizer="hf", clean="canonicalize")
    long, empty = load_tokenizer(gemma_bundle, cfg).encode(["Cat, " * 50, "?!"])
    assert len(long) == 6 and long[-1] == GEMMA_EOS_ID
    assert empty == [GEMMA_EOS_ID]  # punctuation only: nothing left but the framing


def test_unknown_clean_mode_is_a_tokenizer_error(gemma_bundle: Path) -> None:
    with pytest.raises(TokenizerError, match="cleaning"):
        HfTokenizer(gemma_bundle / "tokenizer.json", context_length=8, clean="loud")  # type: ignore[arg-type]


def test_pad_batch() -> None:
    out = pad_batch([[1, 2, 3], [4], []], pad_id=0, length=5)
    assert out.dtype == np.int64
    assert out.tolist() == [[1, 2, 3, 0, 0], [4, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
    assert pad_batch([[1, 2], [3]], pad_id=9).tolist() == [[1, 2], [3, 9]]
    assert pad_batch([], pad_id=0, length=4).shape == (0, 4)
    with pytest.raises(ValueError, match="longer"):
        pad_batch([[1, 2, 3]], pad_id=0, length=2)


def test_runtime_import_needs_no_torch_or_youtokentome() -> None:
    code = (
        "import sys, core.models.text; "
        "bad = {'torch', 'open_clip', 'youtokentome', 'ruclip', 'onnx'} & set(sys.modules); "
        "assert not bad, bad"
    )
    root = Path(__file__).parents[3]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)
