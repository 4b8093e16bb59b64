"""Export open_clip and ruCLIP models to bundles: ``config.json``, two ONNX towers, a tokenizer.

Tooling only: needs the ``export`` extra (torch, open_clip_torch, ruclip, youtokentome, onnx,
onnxscript). The runtime never imports this module (it is not in the wheel); ``python -m tools
export`` runs it.

Graph contract (see :mod:`core.models.config`): ``visual.onnx`` maps ``image`` float32
[N, 3, S, S] to ``embedding`` [N, D]; ``textual.onnx`` maps ``text`` int64 [N, L] to
``embedding`` [N, D]. N is always dynamic. L is dynamic when the text tower is causal and pools
at the end-of-text token: then the tokens after EOT (padding) cannot change the output, so a
batch may be cut to its longest sequence, which makes short queries several times cheaper. The
wrapper slices the positional embedding and the causal mask to L and pools at
``argmax(text == eot_id)`` inside the graph. A tower without that guarantee is exported with a
fixed L = context length, which the runtime reads as "pad to the context length".

Every export is checked right away: onnxruntime and torch must agree (normalised vectors,
max abs difference <= :data:`PARITY_TOLERANCE`) on a random batch, and for a dynamic L the
cut batch must give what torch gives on the fully padded one. A mismatch raises
:class:`~core.errors.BundleError` and leaves no bundle behind.

We use the dynamo exporter: the TorchScript one bakes the example length into
``nn.MultiheadAttention``'s reshapes, so its graph fails at any other text length.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from core.errors import BundleError
from core.models.config import (
    OPENAI_MEAN,
    OPENAI_STD,
    BundleConfig,
    ImageConfig,
    TextConfig,
)

log = logging.getLogger(__name__)

OUTPUT_NAME = "embedding"
DEFAULT_OPSET = 18  # the dynamo exporter's native opset; lower ones go through a converter
PARITY_TOLERANCE = 1e-4
MAX_BATCH = 4096
# Protobuf cannot hold a model over 2 GiB; bigger towers keep their weights in a side file.
EXTERNAL_DATA_BYTES = 1_500_000_000

# open_clip's byte-level BPE (bpe_simple_vocab_16e6): 49406 <start_of_text>, 49407 <end_of_text>.
CLIP_SOT_ID = 49406
CLIP_EOT_ID = 49407
CLIP_PAD_ID = 0
# ruCLIP's YouTokenToMe BPE: pad 0, unk 1, bos 2, eos 3 (ruclip.processor.RuCLIPProcessor).
YTTM_PAD_ID, YTTM_UNK_ID, YTTM_SOT_ID, YTTM_EOT_ID = 0, 1, 2, 3

# Cosine below which a text->image hit counts as noise. Starting points, not calibrated here:
# matching captions score about 0.25-0.35 with OpenAI's ViT-B/32 and unrelated ones 0.1-0.2;
# ruCLIP's scores sit in a similar band. The search service also cuts relative to the best
# hit, so a floor only has to drop the clearly unrelated; tune it on real queries.
CLIP_RELEVANCE_FLOOR = 0.2
RUCLIP_RELEVANCE_FLOOR = 0.2

# Architectures of the published ruCLIP checkpoints (their config.json on the Hugging Face hub,
# sberbank-ai/<name>), so ``--random-weights`` can build them offline. ruclip's CLIP derives
# the vision heads as width // 64.
RUCLIP_CONFIGS: dict[str, dict[str, int]] = {
    "ruclip-vit-base-patch32-224": {
        "embed_dim": 512,
        "image_resolution": 224,
        "vision_layers": 12,
        "vision_width": 768,
        "vision_patch_size": 32,
        "context_length": 77,
        "vocab_size": 49408,
        "transformer_width": 512,
        "transformer_heads": 8,
        "transformer_layers": 12,
    },
    "ruclip-vit-base-patch32-384": {
        "embed_dim": 512,
        "image_resolution": 384,
        "vision_layers": 12,
        "vision_width": 768,
        "vision_patch_size": 32,
        "context_length": 77,
        "vocab_size": 49408,
        "transformer_width": 512,
        "transformer_heads": 8,
        "transformer_layers": 12,
    },
    "ruclip-vit-base-patch16-224": {
        "embed_dim": 512,
        "image_resolution": 224,
        "vision_layers": 12,
        "vision_width": 768,
        "vision_patch_size": 16,
        "context_length": 77,
        "vocab_size": 49408,
        "transformer_width": 512,
        "transformer_heads": 8,
        "transformer_layers": 12,
    },
    "ruclip-vit-base-patch16-384": {
        "embed_dim": 512,
        "image_resolution": 384,
        "vision_layers": 12,
        "vision_width": 768,
        "vision_patch_size": 16,
        "context_length": 77,
        "vocab_size": 49408,
        "transformer_width": 512,
        "transformer_heads": 8,
        "transformer_layers": 12,
    },
    "ruclip-vit-large-patch14-224": {
        "embed_dim": 768,
        "image_resolution": 224,
        "vision_layers": 24,
        "vision_width": 1024,
        "vision_patch_size": 14,
        "context_length": 77,
        "vocab_size": 49408,
        "transformer_width": 768,
        "transformer_heads": 12,
        "transformer_layers": 12,
    },
    "ruclip-vit-large-patch14-336": {
        "embed_dim": 768,
        "image_resolution": 336,
        "vision_layers": 24,
        "vision_width": 1024,
        "vision_patch_size": 14,
        "context_length": 77,
        "vocab_size": 49408,
        "transformer_width": 768,
        "transformer_heads": 12,
        "transformer_layers": 12,
    },
}
RUCLIP_HUB_ORG = "sberbank-ai"
RUCLIP_HUB_FILES = ("bpe.model", "config.json", "pytorch_model.bin")

# A few lines in both languages, enough for YouTokenToMe to learn a working vocabulary when
# the real bpe.model (which comes with the real weights) is not at hand.
SAMPLE_TEXT = (
    "a photo of a cat sleeping on a red sofa",
    "a dog running on the beach at sunset",
    "two children playing football in the park",
    "a bowl of fresh fruit on a wooden table",
    "snow covered mountains under a clear blue sky",
    "an old car parked in front of a yellow house",
    "a city street at night with bright lights",
    "a birthday cake with candles and flowers",
    "a man riding a bicycle across the bridge",
    "screenshot of a chat with a funny message",
    "фотография кошки, которая спит на красном диване",
    "собака бежит по пляжу на закате",
    "двое детей играют в футбол в парке",
    "миска свежих фруктов на деревянном столе",
    "заснеженные горы под ясным голубым небом",
    "старая машина стоит перед жёлтым домом",
    "ночная улица города с яркими огнями",
    "праздничный торт со свечами и цветами",
    "мужчина едет на велосипеде через мост",
    "скриншот переписки со смешным сообщением",
    "море, солнце, пальмы и белый песок",
    "зелёный лес осенью, листья под ногами",
    "the quick brown fox jumps over the lazy dog",
    "съешь же ещё этих мягких французских булок да выпей чаю",
)
SAMPLE_BPE_VOCAB = 400


# --- configs ---------------------------------------------------------------------------------


def open_clip_image_config(model: Any) -> ImageConfig:
    """Image preprocessing of an open_clip model, from ``model.visual.preprocess_cfg``."""
    cfg = dict(getattr(model.visual, "preprocess_cfg", None) or {})
    size = cfg.get("size", getattr(model.visual, "image_size", None))
    if isinstance(size, list | tuple):
        if len(size) != 2 or size[0] != size[1]:
            raise ValueError(f"only square image inputs are supported, got {size}")
        size = size[0]
    if size is None:
        raise ValueError("the model does not say its image size")
    return ImageConfig(
        size=int(size),
        mean=tuple(cfg.get("mean", OPENAI_MEAN)),
        std=tuple(cfg.get("std", OPENAI_STD)),
        resize_mode=cfg.get("resize_mode", "shortest"),
        interpolation=str(cfg.get("interpolation", "bicubic")).lower(),
        fill=int(cfg.get("fill_color", 0)),
    )


def ruclip_image_config(
    size: int, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> ImageConfig:
    """ruCLIP's eval transform: ``RandomResizedCrop(size, scale=(1, 1), ratio=(1, 1))`` finds no
    square of the image's full area inside a non-square image and falls back to the central
    largest square, resized bilinearly; then OpenAI's mean/std unless config.json has others."""
    return ImageConfig(
        size=size,
        mean=tuple(mean) if mean else OPENAI_MEAN,
        std=tuple(std) if std else OPENAI_STD,
        resize_mode="crop_resize",
        interpolation="bilinear",
    )


# --- torch modules that become the ONNX graphs ------------------------------------------------


def _torch() -> ModuleType:
    import torch

    return torch


def _visual_module(model: Any) -> Any:
    nn = _torch().nn

    class Visual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, image: Any) -> Any:
            return self.model.encode_image(image)

    return Visual().eval()


def _static_text_module(model: Any) -> Any:
    """The model's own ``encode_text``: exact only at the length it was written for."""
    nn = _torch().nn

    class StaticText(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, text: Any) -> Any:
            return self.model.encode_text(text)

    return StaticText().eval()


def _is_causal(mask: Any, length: int) -> bool:
    """True for the additive causal mask: -inf strictly above the diagonal, 0 elsewhere."""
    torch = _torch()
    if mask is None or tuple(mask.shape) != (length, length):
        return False
    upper = torch.ones(length, length, dtype=torch.bool).triu(1)
    return bool(torch.isneginf(mask[upper]).all()) and bool((mask[~upper] == 0).all())


def _open_clip_pool_id(model: Any) -> int | None:
    """The token whose position open_clip pools at, or None when cutting L is not exact."""
    import open_clip

    if type(model) is not open_clip.CLIP:  # CustomTextCLIP / CoCa have other text towers
        return None
    if not _is_causal(getattr(model, "attn_mask", None), model.context_length):
        return None
    pool = getattr(model, "text_pool_type", "argmax")
    if pool == "argmax":  # argmax(text) is the EOT position because EOT is the largest id
        return CLIP_EOT_ID
    if pool == "eos" and getattr(model, "text_eos_id", None) is not None:
        return int(model.text_eos_id)
    return None


def _open_clip_text_module(model: Any, eot_id: int) -> Any:
    """open_clip's ``CLIP.encode_text`` with the positional embedding and causal mask cut to
    the batch's length L and pooling at the first ``eot_id``."""
    torch = _torch()

    class OpenClipText(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, text: Any) -> Any:
            m = self.model
            length = text.shape[1]
            cast = m.transformer.get_cast_dtype()
            x = m.token_embedding(text).to(cast)
            x = x + m.positional_embedding[:length].to(cast)
            x = m.transformer(x, attn_mask=m.attn_mask[:length, :length])
            x = m.ln_final(x)
            eot = (text == eot_id).to(torch.int32).argmax(dim=-1)
            x = x[torch.arange(x.shape[0]), eot]
            if isinstance(m.text_projection, torch.nn.Linear):
                return m.text_projection(x)
            return x @ m.text_projection

    return OpenClipText().eval()


def _ruclip_is_causal(model: Any) -> bool:
    """ruclip's text blocks each hold the mask built by ``CLIP.build_attention_mask``."""
    return all(
        _is_causal(block.attn_mask, model.context_length) for block in model.transformer.resblocks
    )


def _ruclip_text_module(model: Any) -> Any:
    """``ruclip.model.CLIP.encode_text`` with L cut as above.

    ruclip's blocks hold a fixed [77, 77] mask, so the wrapper runs the blocks itself with the
    mask cut to L. ruclip pools at ``torch.where(input_ids == eos_id)[1]``, which is the EOT
    position when each row has one EOT, as ruclip's processor guarantees.
    """
    torch = _torch()
    eot_id = int(model.eos_id)

    class RuClipText(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            mask = torch.full((model.context_length, model.context_length), float("-inf"))
            self.register_buffer("mask", mask.triu(1), persistent=False)

        def forward(self, text: Any) -> Any:
            m = self.model
            length = text.shape[1]
            mask = self.mask[:length, :length]
            x = m.token_embedding(text).type(m.dtype)
            x = x + m.positional_embedding[:length].type(m.dtype)
            x = x.permute(1, 0, 2)  # NLD -> LND, as ruclip's nn.MultiheadAttention expects
            for block in m.transformer.resblocks:
                h = block.ln_1(x)
                x = x + block.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
                x = x + block.mlp(block.ln_2(x))
            x = x.permute(1, 0, 2)
            x = m.ln_final(x).type(m.dtype)
            eot = (text == eot_id).to(torch.int32).argmax(dim=-1)
            return x[torch.arange(x.shape[0]), eot] @ m.text_projection

    return RuClipText().eval()


# --- ONNX export and the parity check -----------------------------------------------------------


def _param_bytes(model: Any) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _export_onnx(
    module: Any,
    example: Any,
    path: Path,
    *,
    input_name: str,
    dims: dict[int, tuple[str, int, int]],
    opset: int,
) -> None:
    """Export one tower; ``dims`` maps an input axis to (name, min, max) of a dynamic axis."""
    torch = _torch()
    shapes = {
        input_name: {
            axis: torch.export.Dim(n, min=lo, max=hi) for axis, (n, lo, hi) in dims.items()
        }
    }
    with torch.no_grad():
        program = torch.onnx.export(
            module,
            (example,),
            None,
            input_names=[input_name],
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            dynamo=True,
            dynamic_shapes=shapes,
            verbose=False,
        )
    _unshadow_output(program.model)
    program.save(str(path), external_data=_param_bytes(module) > EXTERNAL_DATA_BYTES)


def _unshadow_output(model: Any) -> None:
    """Rename inner values that carry the output's name.

    The exporter names values after the aten op that made them, so the token embedding lookup
    is called ``embedding`` too, and the graph would define that name twice.
    """
    outputs = list(model.graph.outputs)
    names = {v.name for v in outputs}
    for node in model.graph:
        for value in node.outputs:
            if value.name in names and not any(value is o for o in outputs):
                value.name = f"{value.name}_inner"


def _normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def max_normalized_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference between the L2-normalised rows of ``a`` and ``b``."""
    return float(np.abs(_normalize(a) - _normalize(b)).max())


def _session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _check(path: Path, what: str, expected: np.ndarray, got: np.ndarray, tol: float) -> float:
    if expected.shape != got.shape:
        raise BundleError(path, f"{what}: ONNX gives shape {got.shape}, torch {expected.shape}")
    diff = max_normalized_diff(expected, got)
    if not diff <= tol:  # also catches NaN
        raise BundleError(
            path, f"{what}: ONNX output differs from torch by {diff:.2e} (tolerance {tol:.0e})"
        )
    return diff


def _random_token_batch(
    context_length: int, sot_id: int, eot_id: int, low: int, high: int, seed: int = 0
) -> tuple[np.ndarray, int]:
    """Framed random ids of several lengths, padded with 0 to the context length; and the
    longest framed length."""
    rng = np.random.default_rng(seed)
    lengths = sorted({2, 3, min(7, context_length), min(16, context_length)})
    batch = np.zeros((len(lengths), context_length), dtype=np.int64)
    for row, n in enumerate(lengths):
        body = rng.integers(low, high, size=n - 2)
        batch[row, :n] = [sot_id, *body.tolist(), eot_id]
    return batch, max(lengths)


def _verify_visual(model: Any, path: Path, image_size: int, tol: float) -> float:
    """Run the ONNX image tower and torch on random images; raise on a mismatch."""
    torch = _torch()
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(3, 3, image_size, image_size, generator=gen)
    with torch.no_grad():
        want = model.encode_image(images).float().numpy()
    got = _session(path).run([OUTPUT_NAME], {"image": images.numpy()})[0]
    return _check(path, "image tower", want, got, tol)


def _verify_textual(
    model: Any, path: Path, tokens: tuple[np.ndarray, int], dynamic_length: bool, tol: float
) -> dict[str, float]:
    """Run the ONNX text tower on the fully padded batch and, for a dynamic L, on the batch cut
    to its longest sequence; both must give what torch gives on the padded batch."""
    torch = _torch()
    ids, longest = tokens
    with torch.no_grad():
        want = model.encode_text(torch.from_numpy(ids)).float().numpy()
    session = _session(path)
    got = session.run([OUTPUT_NAME], {"text": ids})[0]
    diffs = {"textual": _check(path, "text tower", want, got, tol)}
    if dynamic_length:
        got = session.run([OUTPUT_NAME], {"text": ids[:, :longest]})[0]
        what = f"text tower cut to {longest} tokens"
        diffs["textual_cut"] = _check(path, what, want, got, tol)
    return diffs


@dataclass(frozen=True)
class _BundleMeta:
    """What a bundle's config says about the model beyond its shapes."""

    name: str
    version: str
    languages: Sequence[str]
    relevance_floor: float
    source: str


def _export_bundle(
    model: Any,
    out_dir: Path,
    *,
    text_module: Any,
    dynamic_length: bool,
    context_length: int,
    tokens: tuple[np.ndarray, int],
    image: ImageConfig,
    text: TextConfig,
    meta: _BundleMeta,
    write_tokenizer: Callable[[Path], None],
    opset: int,
    tol: float = PARITY_TOLERANCE,
) -> Path:
    """Export, verify and write a bundle; built in a temporary directory next to ``out_dir``
    and moved in only once every check passed. The embedding width is read off the model."""
    torch = _torch()
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.", dir=out_dir.parent) as tmp:
        work = Path(tmp)
        size = image.size
        example_image = torch.zeros(2, 3, size, size)
        _export_onnx(
            _visual_module(model),
            example_image,
            work / "visual.onnx",
            input_name="image",
            dims={0: ("batch", 1, MAX_BATCH)},
            opset=opset,
        )
        diffs = {"visual": _verify_visual(model, work / "visual.onnx", size, tol)}
        text_dims = {0: ("batch", 1, MAX_BATCH)}
        if dynamic_length:
            text_dims[1] = ("length", 2, context_length)
        _export_onnx(
            text_module,
            torch.from_numpy(tokens[0][:2].copy()),
            work / "textual.onnx",
            input_name="text",
            dims=text_dims,
            opset=opset,
        )
        diffs |= _verify_textual(model, work / "textual.onnx", tokens, dynamic_length, tol)
        log.info("ONNX vs torch (normalised, max abs): %s", diffs)
        with torch.no_grad():
            dim = int(model.encode_image(example_image[:1]).shape[-1])
        write_tokenizer(work)
        config = BundleConfig(
            name=meta.name,
            version=meta.version,
            embed_dim=dim,
            languages=tuple(meta.languages),
            image=image,
            text=text,
            relevance_floor=meta.relevance_floor,
            source=meta.source,
        )
        (work / "config.json").write_text(config.model_dump_json(indent=2) + "\n", "utf-8")
        out_dir.mkdir(exist_ok=True)
        for item in sorted(work.iterdir()):
            item.replace(out_dir / item.name)
    return out_dir


# --- public export functions --------------------------------------------------------------------


def export_open_clip_model(
    model: Any,
    out_dir: Path,
    *,
    name: str,
    version: str,
    languages: Sequence[str],
    image: ImageConfig,
    relevance_floor: float = CLIP_RELEVANCE_FLOOR,
    source: str = "",
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Write a complete bundle (visual.onnx, textual.onnx, tokenizer.json, config.json) from an
    ``open_clip.CLIP``; the text context length is the model's. Returns ``out_dir``."""
    if int(model.vocab_size) <= CLIP_EOT_ID:
        raise ValueError(
            f"the model's vocabulary has {model.vocab_size} tokens; the CLIP tokenizer needs "
            f"{CLIP_EOT_ID + 1}"
        )
    context_length = int(model.context_length)
    pool_id = _open_clip_pool_id(model)
    dynamic = pool_id == CLIP_EOT_ID
    if not dynamic:
        log.warning("text tower is not causal with EOT pooling: exporting a fixed length")
    text_module = _open_clip_text_module(model, CLIP_EOT_ID) if dynamic else None
    text_module = text_module or _static_text_module(model)
    tokens = _random_token_batch(context_length, CLIP_SOT_ID, CLIP_EOT_ID, 1, CLIP_SOT_ID)

    def write_tokenizer(work: Path) -> None:
        from core.models.text.clip_bpe import write_clip_tokenizer_json

        write_clip_tokenizer_json(work / "tokenizer.json")

    text = TextConfig(
        context_length=context_length,
        tokenizer="clip",
        tokenizer_file="tokenizer.json",
        lowercase=True,
        pad_id=CLIP_PAD_ID,
        sot_id=CLIP_SOT_ID,
        eot_id=CLIP_EOT_ID,
    )

    return _export_bundle(
        model,
        Path(out_dir),
        text_module=text_module,
        dynamic_length=dynamic,
        context_length=context_length,
        tokens=tokens,
        image=image,
        text=text,
        meta=_BundleMeta(name, version, languages, relevance_floor, source),
        write_tokenizer=write_tokenizer,
        opset=opset,
    )


def export_ruclip_model(
    model: Any,
    bpe_model: Path,
    out_dir: Path,
    *,
    name: str,
    version: str,
    languages: Sequence[str] = ("ru",),
    image: ImageConfig,
    relevance_floor: float = RUCLIP_RELEVANCE_FLOOR,
    source: str = "",
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Write a complete bundle (visual.onnx, textual.onnx, bpe.model, config.json) from a
    ``ruclip.model.CLIP``; eot is the model's ``eos_id`` (3 in every published checkpoint)."""
    bpe_model = Path(bpe_model)
    if not bpe_model.is_file():
        raise FileNotFoundError(bpe_model)
    context_length = int(model.context_length)
    eot_id = int(model.eos_id)
    dynamic = _ruclip_is_causal(model)
    if not dynamic:
        log.warning("text tower is not causal: exporting a fixed length")
    text_module = _ruclip_text_module(model) if dynamic else _static_text_module(model)
    low = max(YTTM_UNK_ID, YTTM_SOT_ID, eot_id) + 1
    tokens = _random_token_batch(context_length, YTTM_SOT_ID, eot_id, low, int(model.vocab_size))

    def write_tokenizer(work: Path) -> None:
        shutil.copyfile(bpe_model, work / "bpe.model")

    text = TextConfig(
        context_length=context_length,
        tokenizer="yttm",
        tokenizer_file="bpe.model",
        lowercase=True,
        pad_id=YTTM_PAD_ID,
        sot_id=YTTM_SOT_ID,
        eot_id=eot_id,
    )

    return _export_bundle(
        model,
        Path(out_dir),
        text_module=text_module,
        dynamic_length=dynamic,
        context_length=context_length,
        tokens=tokens,
        image=image,
        text=text,
        meta=_BundleMeta(name, version, languages, relevance_floor, source),
        write_tokenizer=write_tokenizer,
        opset=opset,
    )


# --- building the models (what the CLI calls) ---------------------------------------------------


def build_open_clip(arch: str, pretrained: str, *, random_weights: bool = False) -> Any:
    """An ``open_clip.CLIP``: with weights, as open_clip downloads them; with
    ``random_weights``, the same architecture (QuickGELU and preprocessing of the tag included)
    untrained and without touching the network."""
    import open_clip

    if not random_weights:
        return open_clip.create_model(arch, pretrained=pretrained).eval()
    tag = open_clip.get_pretrained_cfg(arch, pretrained) if pretrained else {}
    preprocess = {k: tag[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag}
    return open_clip.create_model(
        arch,
        pretrained=None,
        force_quick_gelu=bool(tag.get("quick_gelu", False)),
        force_preprocess_cfg=preprocess or None,
    ).eval()


def import_ruclip_model() -> ModuleType:
    """``ruclip.model`` without running the package ``__init__``.

    ruclip 0.0.2's ``__init__`` imports ``huggingface_hub.cached_download`` (removed from
    huggingface_hub) and its predictor needs ``more_itertools``; the model code needs only torch.
    """
    if "ruclip.model" in sys.modules:
        return sys.modules["ruclip.model"]
    try:
        import ruclip.model as module
    except ImportError:
        spec = importlib.util.find_spec("ruclip")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("ruclip is not installed (make install-export)") from None
        path = Path(next(iter(spec.submodule_search_locations))) / "model.py"
        mspec = importlib.util.spec_from_file_location("ruclip.model", path)
        if mspec is None or mspec.loader is None:
            raise ImportError(f"cannot load {path}") from None
        module = importlib.util.module_from_spec(mspec)
        sys.modules["ruclip.model"] = module
        mspec.loader.exec_module(module)
    return module


def build_ruclip_random(name: str) -> Any:
    """A published ruCLIP architecture with random weights (see :data:`RUCLIP_CONFIGS`)."""
    if name not in RUCLIP_CONFIGS:
        raise ValueError(f"unknown ruCLIP model {name!r}; known: {', '.join(RUCLIP_CONFIGS)}")
    module = import_ruclip_model()
    return module.CLIP(**RUCLIP_CONFIGS[name], eos_id=YTTM_EOT_ID).eval()


def download_ruclip(name: str, cache_dir: Path | None = None) -> Path:
    """Fetch a ruCLIP checkpoint's files, as ``ruclip.load`` does (its own downloader uses a
    huggingface_hub helper that no longer exists). Returns the directory holding them."""
    from huggingface_hub import hf_hub_download

    if name not in RUCLIP_CONFIGS:
        raise ValueError(f"unknown ruCLIP model {name!r}; known: {', '.join(RUCLIP_CONFIGS)}")
    folder = None
    for filename in RUCLIP_HUB_FILES:
        path = hf_hub_download(
            f"{RUCLIP_HUB_ORG}/{name}", filename, cache_dir=str(cache_dir) if cache_dir else None
        )
        folder = Path(path).parent
    assert folder is not None
    return folder


def train_sample_bpe(out_path: Path, vocab_size: int = SAMPLE_BPE_VOCAB) -> Path:
    """A small YouTokenToMe model on :data:`SAMPLE_TEXT`, with ruCLIP's special ids, for
    bundles with random weights (the real ``bpe.model`` comes with the real weights)."""
    import youtokentome as yttm

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "sample.txt"
        corpus.write_text("\n".join(SAMPLE_TEXT).lower() + "\n", encoding="utf-8")
        yttm.BPE.train(
            data=str(corpus),
            model=str(out_path),
            vocab_size=vocab_size,
            n_threads=1,
            pad_id=YTTM_PAD_ID,
            unk_id=YTTM_UNK_ID,
            bos_id=YTTM_SOT_ID,
            eos_id=YTTM_EOT_ID,
        )
    return out_path


def export_clip(
    arch: str,
    pretrained: str,
    out_dir: Path,
    *,
    random_weights: bool = False,
    seed: int = 0,
    name: str | None = None,
    version: str | None = None,
    languages: Sequence[str] = ("en",),
    relevance_floor: float = CLIP_RELEVANCE_FLOOR,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """``export clip``: build (or download) an open_clip model and export it."""
    torch = _torch()
    torch.manual_seed(seed)
    model = build_open_clip(arch, pretrained, random_weights=random_weights)
    weights = f"random weights (seed {seed})" if random_weights else f"{pretrained} weights"
    slug = "random" if random_weights else pretrained
    return export_open_clip_model(
        model,
        out_dir,
        name=name or f"clip-{arch}-{slug}".lower(),
        version=version or (f"random-seed{seed}" if random_weights else "1"),
        languages=languages,
        image=open_clip_image_config(model),
        relevance_floor=relevance_floor,
        source=f"open_clip {arch} {pretrained}, {weights}",
        opset=opset,
    )


def export_ruclip(
    model_name: str,
    out_dir: Path,
    *,
    random_weights: bool = False,
    seed: int = 0,
    name: str | None = None,
    version: str | None = None,
    languages: Sequence[str] = ("ru",),
    relevance_floor: float = RUCLIP_RELEVANCE_FLOOR,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """``export ruclip``: build (or download) a ruCLIP checkpoint and export it."""
    import json

    torch = _torch()
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        if random_weights:
            model = build_ruclip_random(model_name)
            bpe = train_sample_bpe(Path(tmp) / "bpe.model")
            mean = std = None
            source = f"ruclip {model_name}, random weights (seed {seed}), sample BPE"
        else:
            folder = download_ruclip(model_name)
            model = import_ruclip_model().CLIP.from_pretrained(str(folder)).eval()
            bpe = folder / "bpe.model"
            hub_cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            mean, std = hub_cfg.get("mean"), hub_cfg.get("std")
            source = f"ruclip {RUCLIP_HUB_ORG}/{model_name}"
        return export_ruclip_model(
            model,
            bpe,
            out_dir,
            name=name or (f"{model_name}-random" if random_weights else model_name),
            version=version or (f"random-seed{seed}" if random_weights else "1"),
            languages=languages,
            image=ruclip_image_config(model.visual.input_resolution, mean, std),
            relevance_floor=relevance_floor,
            source=source,
            opset=opset,
        )
