"""Tokenizers against the live reference implementations (not just the committed goldens).

open_clip's ``tokenize()`` and ruCLIP's ``RuCLIPProcessor`` (youtokentome underneath) run on the
full corpus plus random strings drawn from many Unicode blocks; every id must be equal.
"""

from __future__ import annotations

import json
import random
import unicodedata
from pathlib import Path

import pytest

from core.models.text.clip_bpe import ClipTokenizer, write_clip_tokenizer_json
from core.models.text.yttm import YttmTokenizer
from tests.core.text.make_goldens import CORPUS, YTTM_MODEL, ruclip_processor_class

pytestmark = pytest.mark.export

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")
youtokentome = pytest.importorskip("youtokentome")

CONTEXTS = (77, 24)
# Latin, Cyrillic (+ supplement), Greek, Armenian, Hebrew, Arabic, Devanagari, Thai, Georgian,
# general punctuation, currency, letterlike, arrows, CJK, Hangul, emoji, flags, combining marks.
BLOCKS = [
    (0x20, 0x7E),
    (0xA0, 0x24F),
    (0x300, 0x36F),
    (0x370, 0x3FF),
    (0x400, 0x52F),
    (0x530, 0x58F),
    (0x590, 0x6FF),
    (0x900, 0x97F),
    (0xE00, 0xE7F),
    (0x10A0, 0x10FF),
    (0x2000, 0x206F),
    (0x20A0, 0x214F),
    (0x2190, 0x21FF),
    (0x2460, 0x24FF),
    (0x3000, 0x30FF),
    (0x4E00, 0x4E80),
    (0xAC00, 0xAC80),
    (0xFB00, 0xFB4F),
    (0x1F1E6, 0x1F1FF),
    (0x1F300, 0x1F64F),
    (0x1F900, 0x1F9FF),
]


def _fuzz(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    extra = [" ", " ", " ", "\t", "\n", "\u200d", "\ufe0f", "'s", "&amp;", "<start_of_text>", "ё"]
    out = []
    for _ in range(n):
        block = rng.choice(BLOCKS)
        chars = []
        for _ in range(rng.randint(1, 30)):
            if rng.random() < 0.15:
                chars.append(rng.choice(extra))
            else:
                lo, hi = block if rng.random() < 0.7 else rng.choice(BLOCKS)
                ch = chr(rng.randint(lo, hi))
                # Code points unassigned in this Python's Unicode tables are skipped: open_clip's
                # ``regex`` may know them as letters from a newer Unicode release than the
                # ``tokenizers`` regex engine does (e.g. Armenian U+0558, added in Unicode 16).
                if unicodedata.category(ch) != "Cn":
                    chars.append(ch)
        out.append("".join(chars))
    return out


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return json.loads(CORPUS.read_text(encoding="utf-8")) + _fuzz(1500, seed=11)


@pytest.fixture(scope="module")
def clip_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from open_clip's own copy of the vocabulary, as the exporter does.
    vocab = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    return write_clip_tokenizer_json(tmp_path_factory.mktemp("clip") / "tokenizer.json", vocab)


@pytest.mark.parametrize("context", CONTEXTS)
def test_clip_equals_open_clip_tokenize(clip_json: Path, texts: list[str], context: int) -> None:
    from open_clip.tokenizer import _tokenizer

    ours = ClipTokenizer(clip_json, context_length=context)
    bad = []
    for text in texts:
        full = _tokenizer.encode(text)
        row = open_clip.tokenize([text], context_length=context)[0].tolist()
        expected = row[: min(len(full) + 2, context)]
        if ours.encode_unframed(text) != full or ours.encode([text])[0] != expected:
            bad.append(f"{text[:60]!r}: {ours.encode([text])[0][:12]} != {expected[:12]}")
    assert not bad, f"{len(bad)} of {len(texts)} differ:\n" + "\n".join(bad[:20])


@pytest.mark.parametrize("context", CONTEXTS)
def test_yttm_equals_ruclip_processor(texts: list[str], context: int) -> None:
    processor = ruclip_processor_class()(str(YTTM_MODEL), text_seq_length=context)
    bpe = youtokentome.BPE(str(YTTM_MODEL), n_threads=1)
    ours = YttmTokenizer(YTTM_MODEL, context_length=context)
    bad = []
    for text in texts:
        full = bpe.encode([text.lower()], output_type=youtokentome.OutputType.ID)[0]
        row = processor.encode_text(text).tolist()
        expected = row[: min(len(full) + 2, context)]
        if ours.encode_unframed(text) != full or ours.encode([text])[0] != expected:
            bad.append(f"{text[:60]!r}: {ours.encode([text])[0][:12]} != {expected[:12]}")
    assert not bad, f"{len(bad)} of {len(texts)} differ:\n" + "\n".join(bad[:20])
