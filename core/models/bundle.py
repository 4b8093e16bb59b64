"""Model bundle loader: one directory in, a validated :class:`Bundle` out.

Two layouts are accepted, told apart by what ``config.json`` holds:

* **ours** (``config.json`` is a :class:`~core.models.config.BundleConfig`)::

      config.json  visual.onnx  textual.onnx  tokenizer.json | bpe.model

* **Immich's** published ONNX CLIP models, loaded unchanged (``config.json`` is open_clip's
  model config, with ``embed_dim`` / ``vision_cfg`` / ``text_cfg``)::

      config.json                    open_clip config (embed_dim, vision_cfg, text_cfg)
      visual/model.onnx              input ``image`` float32 [1, 3, S, S]
      visual/preprocess_cfg.json     size / mean / std / interpolation / resize_mode
      textual/model.onnx             ``text`` int32 [1, L] (open_clip), or
                                     ``input_ids`` + ``attention_mask`` int32 (M-CLIP)
      textual/tokenizer.json         HF tokenizer, used as-is
      textual/tokenizer_config.json  pad_token, tokenizer_class (optional)

  It is translated into a ``BundleConfig`` (see :func:`immich_config`): name = directory name,
  version ``"immich"``, tokenizer kind ``"hf"`` with open_clip's text cleaning
  (:func:`open_clip_clean`) and padding to the context length where the tower sees its padding
  (:func:`sees_padding`), languages ``["*"]`` for multilingual models (rule in
  :func:`is_multilingual`) and ``["en"]`` otherwise.

:func:`load_bundle` checks the config and that every file exists; it never opens an ONNX
session. The checks that need a session (input/output names, ranks, dtypes, static dims) live
here as :func:`inspect_visual` / :func:`inspect_textual` / :func:`check_dims`, and are run by the
embedder when it creates its sessions and by ``OnnxEmbedder.validate()`` (see
:func:`core.models.check.check_bundle`, which sits above both modules so this one never imports
the embedder). Every failure is a :class:`~core.errors.BundleError` naming the file.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from pydantic import ValidationError

from core.errors import BundleError
from core.models.config import OPENAI_MEAN, OPENAI_STD, BundleConfig

if TYPE_CHECKING:
    from core.models.text import Tokenizer

CONFIG_FILE = "config.json"
Layout = Literal["native", "immich"]

IMMICH_VISUAL = "visual/model.onnx"
IMMICH_TEXTUAL = "textual/model.onnx"
IMMICH_PREPROCESS = "visual/preprocess_cfg.json"
IMMICH_TOKENIZER = "textual/tokenizer.json"
IMMICH_TOKENIZER_CONFIG = "textual/tokenizer_config.json"
IMMICH_VERSION = "immich"
IMMICH_CONTEXT_LENGTH = 77  # what Immich itself assumes when text_cfg has no context_length
SIGLIP_RELEVANCE_FLOOR = 0.1  # sigmoid-loss models score true pairs lower than CLIP does

# Substrings (lower case, without "-", "_", "/" and spaces) of a text model or tokenizer name
# that mark a multilingual text tower in Immich's catalogue and open_clip's configs.
MULTILINGUAL_MARKERS = (
    "xlmroberta",  # open_clip xlm-roberta-*, M-CLIP XLM-Roberta-Large-*
    "xlmv",  # facebook/xlm-v-base
    "nllb",  # nllb-clip-*
    "mt5",  # google/mt5-*
    "labse",  # M-CLIP LABSE-Vit-L-14
    "siglip2",  # SigLIP 2: Gemma tokenizer, multilingual WebLI training
    "i18n",  # ViT-B-16-SigLIP-i18n-256
    "multilingual",
    "mclip",
)

_NAME_BAD_CHARS = re.compile(r"[^A-Za-z0-9._+-]+")


class _Session(Protocol):
    """What we need from an ``onnxruntime.InferenceSession`` (kept abstract for tests)."""

    def get_inputs(self) -> Sequence[Any]: ...
    def get_outputs(self) -> Sequence[Any]: ...


@dataclass(frozen=True)
class Bundle:
    """A loaded, file-checked model bundle. The tokenizer is read on first use."""

    path: Path
    config: BundleConfig
    visual_path: Path
    textual_path: Path
    tokenizer_path: Path
    layout: Layout = "native"
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def model_id(self) -> str:
        return self.config.model_id

    @property
    def tokenizer(self) -> Tokenizer:
        """The bundle's tokenizer, loaded once (thread-safe); raises ``TokenizerError``."""
        tok = self._cache.get("tokenizer")
        if tok is None:
            with self._lock:
                tok = self._cache.get("tokenizer")
                if tok is None:
                    from core.models.text import load_tokenizer

                    tok = load_tokenizer(self.path, self.config.text)
                    self._cache["tokenizer"] = tok
        return tok


def load_bundle(path: str | Path) -> Bundle:
    """Read and check a bundle directory of either layout; raise ``BundleError`` naming the file."""
    root = Path(path)
    if not root.is_dir():
        raise BundleError(root, "not a directory" if root.exists() else "no such directory")
    raw = _read_json(root / CONFIG_FILE)
    open_clip_cfg = "embed_dim" in raw and ("vision_cfg" in raw or "text_cfg" in raw)
    if "format" not in raw and (open_clip_cfg or (root / IMMICH_VISUAL).is_file()):
        return _load_immich(root, raw)
    return _load_native(root, raw)


def _load_native(root: Path, raw: dict[str, Any]) -> Bundle:
    cfg = _parse_config(root / CONFIG_FILE, raw)
    visual = _require_file(root, cfg.visual_file, "the image tower")
    textual = _require_file(root, cfg.textual_file, "the text tower")
    tokenizer = _require_file(root, cfg.text.tokenizer_file, "the tokenizer")
    return Bundle(root, cfg, visual, textual, tokenizer, "native")


def _load_immich(root: Path, raw: dict[str, Any]) -> Bundle:
    visual = _require_file(root, IMMICH_VISUAL, "the image tower")
    textual = _require_file(root, IMMICH_TEXTUAL, "the text tower")
    tokenizer = _require_file(root, IMMICH_TOKENIZER, "the tokenizer")
    preprocess = _read_json(_require_file(root, IMMICH_PREPROCESS, "image preprocessing"))
    tok_cfg_path = root / IMMICH_TOKENIZER_CONFIG
    tok_cfg = _read_json(tok_cfg_path) if tok_cfg_path.is_file() else {}
    cfg = immich_config(root, raw, preprocess, tok_cfg)
    return Bundle(root, cfg, visual, textual, tokenizer, "immich")


def immich_config(
    root: Path,
    model_cfg: dict[str, Any],
    preprocess_cfg: dict[str, Any],
    tokenizer_cfg: dict[str, Any],
) -> BundleConfig:
    """Translate Immich's files into our schema (see the module docstring for the layout)."""
    cfg_path = root / CONFIG_FILE
    pre_path = root / IMMICH_PREPROCESS
    text_cfg = model_cfg.get("text_cfg") or {}
    vision_cfg = model_cfg.get("vision_cfg") or {}
    if not isinstance(text_cfg, dict) or not isinstance(vision_cfg, dict):
        raise BundleError(cfg_path, "text_cfg and vision_cfg must be JSON objects")

    size = _immich_image_size(pre_path, preprocess_cfg, vision_cfg)
    hf_names = [str(text_cfg.get(k, "")) for k in ("hf_tokenizer_name", "hf_model_name")]
    tokenizer_class = str(tokenizer_cfg.get("tokenizer_class", ""))
    # Immich's M-CLIP repositories carry the *image* model's open_clip config (a plain CLIP
    # text_cfg) next to an XLM-R / LaBSE tokenizer: a non-CLIP tokenizer with no hf_* names
    # in text_cfg means the text tower is M-CLIP (inputs input_ids + attention_mask).
    clip_tokenizer = tokenizer_class.lower().startswith("clip")
    mclip = not any(hf_names) and bool(tokenizer_class) and not clip_tokenizer
    hints = [*hf_names, tokenizer_class, str(tokenizer_cfg.get("name_or_path", "")), root.name]
    multilingual = mclip or is_multilingual(hints)

    siglip = "init_logit_bias" in model_cfg or any("siglip" in h.lower() for h in hints)
    clean = "none" if mclip else open_clip_clean(cfg_path, text_cfg, siglip=siglip)
    raw: dict[str, Any] = {
        "name": immich_name(root),
        "version": IMMICH_VERSION,
        "embed_dim": model_cfg.get("embed_dim"),
        "languages": ["*"] if multilingual else ["en"],
        "image": {
            "size": size,
            "mean": preprocess_cfg.get("mean", OPENAI_MEAN),
            "std": preprocess_cfg.get("std", OPENAI_STD),
            "resize_mode": preprocess_cfg.get("resize_mode", "shortest"),
            "interpolation": str(preprocess_cfg.get("interpolation", "bicubic")).lower(),
            "fill": preprocess_cfg.get("fill_color", 0),
        },
        "text": {
            "context_length": text_cfg.get("context_length", IMMICH_CONTEXT_LENGTH),
            "tokenizer": "hf",
            "tokenizer_file": IMMICH_TOKENIZER,
            "lowercase": clean in ("lower", "canonicalize"),
            "clean": clean,
            "pad_to_context": not mclip and sees_padding(text_cfg, siglip=siglip),
            "pad_id": _immich_pad_id(root, tokenizer_cfg),
            "attention_mask": mclip,
        },
        "relevance_floor": SIGLIP_RELEVANCE_FLOOR if siglip else 0.2,
        "visual_file": IMMICH_VISUAL,
        "textual_file": IMMICH_TEXTUAL,
        "source": f"Immich model directory {root.name}",
    }
    return _parse_config(cfg_path, raw, origin=(cfg_path, pre_path))


def _immich_image_size(
    pre_path: Path, preprocess_cfg: dict[str, Any], vision_cfg: dict[str, Any]
) -> Any:
    """The square input side: preprocess_cfg's ``size`` (an int or ``[S, S]``), else
    ``vision_cfg.image_size``; pydantic checks the type when the config is parsed."""
    size = preprocess_cfg.get("size", vision_cfg.get("image_size"))
    if isinstance(size, list | tuple):
        if len(size) != 2 or size[0] != size[1]:
            raise BundleError(pre_path, f"size {size} is not square; only square inputs work")
        size = size[0]
    if size is None:
        raise BundleError(pre_path, "no image size (neither 'size' nor vision_cfg.image_size)")
    return size


def open_clip_clean(cfg_path: Path, text_cfg: dict[str, Any], *, siglip: bool) -> str:
    """The text cleaning open_clip's ``get_tokenizer`` picks for this ``text_cfg``.

    ``tokenizer_kwargs.clean`` when given; else ``HFTokenizer``'s default ``whitespace`` for an
    ``hf_tokenizer_name``, ``SigLipTokenizer``'s ``canonicalize`` for a SigLIP name, and
    ``SimpleTokenizer``'s ``lower`` otherwise. Options we cannot reproduce are refused rather
    than silently giving other token ids.
    """
    kwargs = text_cfg.get("tokenizer_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise BundleError(cfg_path, "text_cfg.tokenizer_kwargs must be a JSON object")
    unsupported = sorted(k for k, v in kwargs.items() if k != "clean" and v)
    if text_cfg.get("tokenizer_mode"):
        unsupported.append("tokenizer_mode")
    if unsupported:
        raise BundleError(cfg_path, f"unsupported tokenizer options {unsupported} in text_cfg")
    clean = kwargs.get("clean")
    if clean is None:
        if text_cfg.get("hf_tokenizer_name"):
            return "whitespace"
        return "canonicalize" if siglip else "lower"
    if clean not in ("whitespace", "lower", "canonicalize"):
        raise BundleError(cfg_path, f"unknown text_cfg.tokenizer_kwargs.clean {clean!r}")
    return str(clean)


def sees_padding(text_cfg: dict[str, Any], *, siglip: bool) -> bool:
    """Whether the open_clip text tower's output depends on how much padding follows the text.

    An HF encoder (``hf_model_name``: XLM-R, NLLB) masks the pad ids, and a causal tower pooled
    at the EOT (``argmax`` / ``eos``) or the first position never looks past it, so padding to
    the longest query is exact. A tower without the causal mask (SigLIP), pooled at the last
    position, or with a CoCa class token appended after the padding, must be fed the full
    context length it was trained on; so must open_clip's HF ``max_pooler``, which masks the
    real tokens instead of the padding.
    """
    if text_cfg.get("hf_model_name"):
        return text_cfg.get("hf_pooler_type") == "max_pooler"
    if siglip or text_cfg.get("no_causal_mask") or text_cfg.get("embed_cls"):
        return True
    return text_cfg.get("pool_type", "argmax") not in ("argmax", "eos", "first")


def is_multilingual(hints: Sequence[str]) -> bool:
    """True when any name hint (model / tokenizer names, directory name) has a marker.

    Names are compared in lower case with ``-``, ``_``, ``/`` and spaces removed, so
    ``xlm-roberta-base``, ``M-CLIP/XLM-Roberta-Large-Vit-B-32`` and ``XLMRobertaTokenizer`` all
    match ``xlmroberta``; see :data:`MULTILINGUAL_MARKERS`.
    """
    for hint in hints:
        flat = re.sub(r"[-_/\s]", "", hint.lower())
        if any(marker in flat for marker in MULTILINGUAL_MARKERS):
            return True
    return False


def immich_name(root: Path) -> str:
    """The directory name (Immich's model name, e.g. ``ViT-B-32__openai``), with characters our
    ``name`` field does not allow turned into '-'."""
    name = _NAME_BAD_CHARS.sub("-", root.resolve().name)
    name = re.sub(r"^[^A-Za-z0-9]+", "", name)[:200]
    return name or "immich-model"


def _immich_pad_id(root: Path, tokenizer_cfg: dict[str, Any]) -> int:
    """Id of ``pad_token`` from tokenizer_config.json, as Immich pads (0 when not given)."""
    pad = tokenizer_cfg.get("pad_token")
    if isinstance(pad, dict):  # older transformers store AddedToken objects
        pad = pad.get("content")
    if not pad:
        return 0
    from tokenizers import Tokenizer as HFTokenizer

    path = root / IMMICH_TOKENIZER
    try:
        tok = HFTokenizer.from_file(str(path))
    except Exception as exc:  # the tokenizers library raises bare Exceptions
        raise BundleError(path, f"cannot be read as an HF tokenizer: {exc}") from exc
    pad_id = tok.token_to_id(str(pad))
    if pad_id is None:
        raise BundleError(
            root / IMMICH_TOKENIZER_CONFIG, f"pad_token {pad!r} is not in textual/tokenizer.json"
        )
    return int(pad_id)


# --- file helpers -------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise BundleError(path, "missing file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise BundleError(path, f"not UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise BundleError(path, f"malformed JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BundleError(path, "must hold a JSON object")
    return data


def _parse_config(
    path: Path, raw: dict[str, Any], origin: tuple[Path, Path] | None = None
) -> BundleConfig:
    try:
        return BundleConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        )
        if origin is not None:  # translated config: say which Immich file fed the bad value
            image_fields = any(err["loc"][:1] == ("image",) for err in exc.errors())
            path = origin[1] if image_fields else origin[0]
        raise BundleError(path, f"bad field {problems}") from exc


def _require_file(root: Path, rel: str, what: str) -> Path:
    path = root / rel
    # Lexical check only: model caches (Hugging Face's) symlink files to blobs elsewhere.
    if Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise BundleError(path, f"{what} must be a path inside the bundle directory")
    if not path.is_file():
        raise BundleError(path, f"missing file ({what})")
    return path


# --- ONNX input/output checks (need a session, so the embedder runs them) ----------------------

_ORT_DTYPES: dict[str, np.dtype[Any]] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32),
}
TEXT_ID_INPUTS = ("text", "input_ids")
MASK_INPUT = "attention_mask"
OUTPUT_NAME = "embedding"


@dataclass(frozen=True)
class VisualIO:
    """What the image tower's graph takes and gives; ``None`` marks a symbolic axis."""

    input: str
    batch: int | None
    output: str
    dim: int | None


@dataclass(frozen=True)
class TextualIO:
    """What the text tower's graph takes and gives; ``None`` marks a symbolic axis."""

    ids: str
    ids_dtype: np.dtype
    mask: str | None
    mask_dtype: np.dtype | None
    batch: int | None
    length: int | None
    output: str
    dim: int | None


def _static(dim: object) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def _shape(node: Any) -> list[object]:
    return list(node.shape or [])


def _output(session: _Session, path: Path) -> tuple[str, int | None]:
    outputs = {o.name: o for o in session.get_outputs()}
    out = outputs.get(OUTPUT_NAME)
    if out is None:
        raise BundleError(path, f"no output named {OUTPUT_NAME!r} (outputs: {sorted(outputs)})")
    if out.type != "tensor(float)":
        raise BundleError(path, f"output {OUTPUT_NAME!r} must be float32, got {out.type}")
    shape = _shape(out)
    if len(shape) != 2:
        raise BundleError(path, f"output {OUTPUT_NAME!r} must have rank 2 [N, D], got {shape}")
    return out.name, _static(shape[1])


def inspect_visual(session: _Session, bundle: Bundle) -> VisualIO:
    """Check the image tower's inputs/outputs against the config (dims checked separately)."""
    path = bundle.visual_path
    size = bundle.config.image.size
    inputs = list(session.get_inputs())
    names = [i.name for i in inputs]
    if names != ["image"]:
        raise BundleError(path, f"the only input must be named 'image', got {names}")
    node = inputs[0]
    if node.type != "tensor(float)":
        raise BundleError(path, f"input 'image' must be float32, got {node.type}")
    shape = _shape(node)
    if len(shape) != 4:
        raise BundleError(path, f"input 'image' must have rank 4 [N, 3, S, S], got {shape}")
    if _static(shape[1]) not in (None, 3):
        raise BundleError(path, f"input 'image' must have 3 channels, got shape {shape}")
    for axis in (2, 3):
        s = _static(shape[axis])
        if s is not None and s != size:
            raise BundleError(
                path,
                f"input 'image' takes {shape[2]}x{shape[3]} images, "
                f"but {CONFIG_FILE} says image.size = {size}",
            )
    output, dim = _output(session, path)
    return VisualIO("image", _static(shape[0]), output, dim)


def inspect_textual(session: _Session, bundle: Bundle) -> TextualIO:
    """Check the text tower's inputs/outputs against the config (dims checked separately)."""
    path = bundle.textual_path
    text = bundle.config.text
    inputs = {i.name: i for i in session.get_inputs()}
    ids_names = [n for n in TEXT_ID_INPUTS if n in inputs]
    extra = sorted(set(inputs) - {*TEXT_ID_INPUTS, MASK_INPUT})
    if len(ids_names) != 1 or extra:
        raise BundleError(
            path,
            "inputs must be 'text' (or 'input_ids') plus an optional 'attention_mask', "
            f"got {sorted(inputs)}",
        )
    mask = inputs.get(MASK_INPUT)
    if text.attention_mask and mask is None:
        raise BundleError(path, f"{CONFIG_FILE} says text.attention_mask but the model has none")
    ids = inputs[ids_names[0]]
    length: int | None = None
    batch: int | None = None
    dtypes: list[np.dtype] = []
    for node in (ids, mask):
        if node is None:
            continue
        dtype = _ORT_DTYPES.get(node.type)
        if dtype is None or dtype.kind != "i":
            raise BundleError(path, f"input {node.name!r} must be int32 or int64, got {node.type}")
        dtypes.append(dtype)
        shape = _shape(node)
        if len(shape) != 2:
            raise BundleError(path, f"input {node.name!r} must have rank 2 [N, L], got {shape}")
        batch = batch or _static(shape[0])
        length = length or _static(shape[1])
    if length is not None and length != text.context_length:
        raise BundleError(
            path,
            f"input {ids.name!r} has a fixed length of {length} tokens, "
            f"but {CONFIG_FILE} says text.context_length = {text.context_length}",
        )
    output, dim = _output(session, path)
    return TextualIO(
        ids=ids.name,
        ids_dtype=dtypes[0],
        mask=mask.name if mask is not None else None,
        mask_dtype=dtypes[1] if mask is not None else None,
        batch=batch,
        length=length,
        output=output,
        dim=dim,
    )


def check_width(bundle: Bundle, tower: Literal["visual", "textual"], dim: int) -> None:
    """One tower's output width must be the config's ``embed_dim``."""
    path = bundle.visual_path if tower == "visual" else bundle.textual_path
    if dim != bundle.config.embed_dim:
        raise BundleError(
            path,
            f"output {OUTPUT_NAME!r} is {dim}-dimensional, "
            f"but {CONFIG_FILE} says embed_dim = {bundle.config.embed_dim}",
        )


def check_dims(bundle: Bundle, visual_dim: int, textual_dim: int) -> None:
    """Both towers must give vectors of one width, and it must be ``embed_dim``."""
    if visual_dim != textual_dim:
        raise BundleError(
            bundle.textual_path,
            f"text tower gives {textual_dim}-dimensional vectors but the image tower "
            f"({bundle.visual_path.name}) gives {visual_dim}; the towers do not match",
        )
    check_width(bundle, "visual", visual_dim)
