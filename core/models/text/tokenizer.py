"""Loading a bundle's tokenizer and turning its output into a model input batch."""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypedDict, runtime_checkable

import numpy as np
from tokenizers import Tokenizer as HfTokenizerImpl

from core.errors import TokenizerError
from core.models.config import TextClean, TextConfig
from core.models.text.clip_bpe import ClipTokenizer, basic_clean
from core.models.text.yttm import YttmTokenizer

# Where each kind's file is looked for when the config does not name one.
DEFAULT_FILES = {"clip": "tokenizer.json", "hf": "tokenizer.json", "yttm": "bpe.model"}


_PUNCTUATION = str.maketrans("", "", string.punctuation)


def _clean_whitespace(text: str) -> str:
    return " ".join(basic_clean(text).split())


def _clean_lower(text: str) -> str:
    return _clean_whitespace(text).lower()


def _clean_canonicalize(text: str) -> str:
    """open_clip's ``canonicalize_text(basic_clean(text))``, the order of its steps kept."""
    text = basic_clean(text).replace("_", " ").translate(_PUNCTUATION).lower()
    return " ".join(text.split())


CLEANERS: dict[TextClean, Callable[[str], str] | None] = {
    "none": None,
    "whitespace": _clean_whitespace,
    "lower": _clean_lower,
    "canonicalize": _clean_canonicalize,
}


def clean_for_hf(text: str, clean: TextClean) -> str:
    """A text as open_clip's tokenizer with ``clean=<clean>`` hands it to the HF tokenizer."""
    fn = CLEANERS[clean]
    return fn(text) if fn is not None else text


@runtime_checkable
class Tokenizer(Protocol):
    """Text -> framed ids (SOT ... EOT), truncated to ``context_length``, not padded."""

    context_length: int
    pad_id: int

    def encode(self, texts: Sequence[str]) -> list[list[int]]: ...


class HfTokenizer:
    """Any HF ``tokenizer.json`` used as-is (Immich's textual models, multilingual ones included).

    ``clean`` (``TextConfig.clean``, open_clip's ``tokenizer_kwargs.clean``) runs first, as
    open_clip runs it, because the model was trained on cleaned text: a SigLIP model must not
    tell "Cat!" from "cat". ``TextConfig.lowercase`` is not applied: a cased multilingual model
    must see case. Normalization and framing come from the file. Truncation is the library's,
    which reserves room for the post-processor's special tokens, so the final special token
    survives; padding baked into the file is switched off, ``pad_batch`` pads.
    """

    def __init__(
        self,
        path: Path,
        *,
        context_length: int,
        pad_id: int = 0,
        sot_id: int | None = None,
        eot_id: int | None = None,
        clean: TextClean = "none",
    ) -> None:
        if clean not in CLEANERS:
            raise TokenizerError(f"{path}: unknown text cleaning {clean!r}")
        try:
            text = path.read_text(encoding="utf-8")
            has_post_processor = json.loads(text).get("post_processor") is not None
            self._tok = HfTokenizerImpl.from_str(text)
        except FileNotFoundError as exc:
            raise TokenizerError(f"{path}: tokenizer file is missing") from exc
        except Exception as exc:  # the library raises plain Exception on bad files
            raise TokenizerError(f"{path}: not a valid tokenizer.json ({exc})") from exc
        # Without a post-processor, the config's ids (if any) frame the sequence here instead.
        self._frame = (
            (sot_id, eot_id)
            if not has_post_processor and sot_id is not None and eot_id is not None
            else None
        )
        self._tok.no_padding()
        limit = context_length - 2 if self._frame else context_length
        try:
            self._tok.enable_truncation(max_length=limit)
        except Exception as exc:
            raise TokenizerError(f"{path}: cannot truncate to {context_length} ({exc})") from exc
        self.context_length = context_length
        self.pad_id = pad_id
        self.clean = clean

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        encodings = self._tok.encode_batch_fast([clean_for_hf(t, self.clean) for t in texts])
        if self._frame is None:
            return [e.ids for e in encodings]
        sot, eot = self._frame
        return [[sot, *e.ids, eot] for e in encodings]


class _TokenizerArgs(TypedDict):
    """What every tokenizer kind takes, key by key, so the ``**`` calls below are checked."""

    context_length: int
    pad_id: int
    sot_id: int | None
    eot_id: int | None


def load_tokenizer(bundle_dir: Path, cfg: TextConfig) -> Tokenizer:
    """The tokenizer a bundle's ``config.json`` describes; a bad file is a ``TokenizerError``."""
    name = cfg.tokenizer_file
    if "tokenizer_file" not in cfg.model_fields_set:
        name = DEFAULT_FILES[cfg.tokenizer]
    path = Path(bundle_dir) / name
    common = _TokenizerArgs(
        context_length=cfg.context_length, pad_id=cfg.pad_id, sot_id=cfg.sot_id, eot_id=cfg.eot_id
    )
    if cfg.tokenizer == "clip":
        return ClipTokenizer(path, **common, lowercase=cfg.lowercase)
    if cfg.tokenizer == "yttm":
        return YttmTokenizer(path, **common, lowercase=cfg.lowercase)
    if cfg.tokenizer == "hf":
        return HfTokenizer(path, **common, clean=cfg.clean)
    raise TokenizerError(f"{path}: unknown tokenizer kind {cfg.tokenizer!r}")


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int, length: int | None = None) -> np.ndarray:
    """Right-pad id sequences into an int64 [N, length] array (``length`` defaults to the
    longest sequence, so a short query batch feeds only the positions it needs)."""
    if length is None:
        length = max((len(s) for s in seqs), default=0)
    out = np.full((len(seqs), length), pad_id, dtype=np.int64)
    for i, seq in enumerate(seqs):
        if len(seq) > length:
            raise ValueError(f"sequence {i} has {len(seq)} ids, longer than {length}")
        out[i, : len(seq)] = seq
    return out
