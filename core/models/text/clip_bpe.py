"""CLIP's byte-level BPE (open_clip / OpenAI CLIP), run by the ``tokenizers`` library.

open_clip tokenizes with a pure-Python BPE on top of the ``regex`` module and torch. We keep its
vocabulary and its text cleaning but let ``tokenizers`` do the splitting and the merges, which is
token-for-token identical (the tests prove it on a mixed corpus) and about a hundred times faster.

The ``tokenizer.json`` written here is also a complete HF tokenizer (normalizer, pre-tokenizer,
post-processor), so the same file loads through the generic ``hf`` kind.
"""

from __future__ import annotations

import gzip
import html
import json
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ftfy
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from core.errors import TokenizerError

VENDORED_VOCAB = Path(__file__).parent / "data" / "bpe_simple_vocab_16e6.txt.gz"

SOT_TOKEN = "<start_of_text>"
EOT_TOKEN = "<end_of_text>"
# Names used by HF / Immich exports of the same vocabulary.
_SOT_ALIASES = (SOT_TOKEN, "<|startoftext|>")
_EOT_ALIASES = (EOT_TOKEN, "<|endoftext|>")

# open_clip's pre-tokenization regex (compiled there with re.IGNORECASE, hence ``(?i)``: it makes
# "'ſ" a contraction like "'s"). Special tokens are handled outside the regex, see _split_specials.
CLIP_PATTERN = r"""(?i)'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""

# open_clip keeps merges[1 : 49152 - 256 - 2 + 1] of the file (line 0 is a version header).
_N_MERGES = 49152 - 256 - 2

_SURROGATES = re.compile("[\ud800-\udfff]")
# The ``regex`` module (which open_clip uses) matches U+0345 with neither [\p{L}]+ nor
# [^\s\p{L}\p{N}]+ under IGNORECASE, so open_clip silently skips it: it acts as a separator.
_SKIPPED_BY_OPEN_CLIP = str.maketrans({"\u0345": " "})


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (same as open_clip's)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def read_clip_vocab(vocab_path: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocabulary and merges exactly as open_clip's ``SimpleTokenizer`` builds them."""
    try:
        with gzip.open(vocab_path) as f:
            lines = f.read().decode("utf-8").split("\n")
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise TokenizerError(f"{vocab_path}: cannot read BPE vocabulary ({exc})") from exc
    merges: list[tuple[str, str]] = []
    for line in lines[1 : _N_MERGES + 1]:
        parts = line.split()
        if len(parts) != 2:
            raise TokenizerError(f"{vocab_path}: malformed merge line {line!r}")
        merges.append((parts[0], parts[1]))
    if len(merges) != _N_MERGES:
        raise TokenizerError(f"{vocab_path}: {len(merges)} merges, expected {_N_MERGES}")
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    tokens += [SOT_TOKEN, EOT_TOKEN]
    vocab = {t: i for i, t in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise TokenizerError(f"{vocab_path}: duplicate tokens in the vocabulary")
    return vocab, merges


def build_clip_tokenizer(vocab_path: Path | None = None) -> Tokenizer:
    """A full HF tokenizer for open_clip's vocabulary (normalizer approximates open_clip's
    cleaning for generic ``hf`` use; the ``clip`` kind replaces it with the exact cleaning)."""
    vocab, merges = read_clip_vocab(vocab_path or VENDORED_VOCAB)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CLIP_PATTERN), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    sot, eot = vocab[SOT_TOKEN], vocab[EOT_TOKEN]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{SOT_TOKEN} $A {EOT_TOKEN}",
        pair=f"{SOT_TOKEN} $A {EOT_TOKEN} $B {EOT_TOKEN}",
        special_tokens=[(SOT_TOKEN, sot), (EOT_TOKEN, eot)],
    )
    tok.decoder = decoders.Sequence(
        [decoders.ByteLevel(), decoders.Replace("</w>", " "), decoders.Strip(" ", 0, 1)]
    )
    tok.add_special_tokens([SOT_TOKEN, EOT_TOKEN])
    return tok


def write_clip_tokenizer_json(out_path: Path, vocab_path: Path | None = None) -> Path:
    """Write ``tokenizer.json`` for a bundle from open_clip's ``bpe_simple_vocab_16e6.txt.gz``
    (the given file, or the copy vendored in this package)."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_text(build_clip_tokenizer(vocab_path).to_str(pretty=False), encoding="utf-8")
    tmp.replace(out_path)
    return out_path


def basic_clean(text: str) -> str:
    """open_clip's ``basic_clean``: mojibake fixed, HTML entities (twice) unescaped; the first
    step of every cleaning open_clip's tokenizers apply."""
    return html.unescape(html.unescape(ftfy.fix_text(text))).strip()


def clean_text(text: str, *, lowercase: bool = True) -> str:
    """open_clip's ``_clean_lower`` (or ``_clean_whitespace`` without lowercasing)."""
    text = _SURROGATES.sub("\ufffd", text)  # lone surrogates cannot be UTF-8 encoded
    text = " ".join(basic_clean(text).split())
    if lowercase:
        text = text.lower()
    return text.translate(_SKIPPED_BY_OPEN_CLIP)


def _is_word_char(ch: str) -> bool:
    """Whether open_clip's regex scan can stop right after ``ch`` (letter, digit, space)."""
    return ch.isspace() or unicodedata.category(ch)[0] in "LN"


def _split_specials(text: str, specials: dict[str, int]) -> list[str | int]:
    """Cut literal special tokens out of cleaned text exactly where open_clip's regex sees them.

    open_clip's regex tries the special tokens first at every position its scan reaches: at the
    start, after a letter/digit run, after whitespace, or right after another special token. After
    punctuation the greedy ``[^\\s\\p{L}\\p{N}]+`` run swallows the ``<`` instead.
    """
    out: list[str | int] = []
    pos = start = 0
    while True:
        hits = [(text.find(s, pos), s) for s in specials]
        hits = [(i, s) for i, s in hits if i >= 0]
        if not hits:
            break
        i, s = min(hits)
        if i == start or _is_word_char(text[i - 1]):
            if i > start:
                out.append(text[start:i])
            out.append(specials[s])
            pos = start = i + len(s)
        else:
            pos = i + 1
    if start < len(text):
        out.append(text[start:])
    return out


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise TokenizerError(f"{path}: tokenizer file is missing") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TokenizerError(f"{path}: not a readable tokenizer.json ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise TokenizerError(f"{path}: not a tokenizer.json (no model section)")
    return data


class ClipTokenizer:
    """open_clip's ``tokenize()`` without torch: cleaning, BPE, SOT/EOT framing, truncation.

    Only the file's model and pre-tokenizer are used; its normalizer and post-processor are
    replaced by open_clip's exact cleaning and framing.
    """

    def __init__(
        self,
        path: Path,
        *,
        context_length: int,
        pad_id: int = 0,
        sot_id: int | None = None,
        eot_id: int | None = None,
        lowercase: bool = True,
    ) -> None:
        data = _load_json(path)
        if data["model"].get("type") != "BPE":
            raise TokenizerError(f"{path}: CLIP tokenizer must be a BPE model")
        if data.get("pre_tokenizer") is None:
            raise TokenizerError(f"{path}: CLIP tokenizer has no pre-tokenizer")
        data.update(
            normalizer=None, post_processor=None, truncation=None, padding=None, added_tokens=[]
        )
        try:
            self._tok = Tokenizer.from_str(json.dumps(data))
        except Exception as exc:  # the library raises plain Exception on bad files
            raise TokenizerError(f"{path}: invalid tokenizer.json ({exc})") from exc
        self.sot_id = sot_id if sot_id is not None else self._special_id(path, _SOT_ALIASES)
        self.eot_id = eot_id if eot_id is not None else self._special_id(path, _EOT_ALIASES)
        self._specials = {
            self._token(path, self.sot_id): self.sot_id,
            self._token(path, self.eot_id): self.eot_id,
        }
        self.context_length = context_length
        self.pad_id = pad_id
        self.lowercase = lowercase

    def _special_id(self, path: Path, names: Sequence[str]) -> int:
        for name in names:
            tid = self._tok.token_to_id(name)
            if tid is not None:
                return tid
        raise TokenizerError(f"{path}: vocabulary has none of {', '.join(names)}")

    def _token(self, path: Path, tid: int) -> str:
        token = self._tok.id_to_token(tid)
        if token is None:
            raise TokenizerError(f"{path}: special id {tid} is outside the vocabulary")
        return token

    def encode_unframed(self, text: str) -> list[int]:
        """BPE ids of one text, as open_clip's ``SimpleTokenizer.encode``."""
        cleaned = clean_text(text, lowercase=self.lowercase)
        if "<" not in cleaned:
            return self._tok.encode(cleaned, add_special_tokens=False).ids if cleaned else []
        ids: list[int] = []
        for part in _split_specials(cleaned, self._specials):
            if isinstance(part, int):
                ids.append(part)
            else:
                ids.extend(self._tok.encode(part, add_special_tokens=False).ids)
        return ids

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Framed ids; over-long text keeps its first tokens and still ends with EOT."""
        keep = self.context_length - 2
        return [[self.sot_id, *self.encode_unframed(t)[:keep], self.eot_id] for t in texts]
