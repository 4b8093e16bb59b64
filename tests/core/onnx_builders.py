"""Tiny ONNX towers and whole bundles for tests, built in memory with the ``onnx`` package.

The towers are small enough to run in microseconds but behave like the real ones where the
runtime cares:

* visual: mean of each colour channel, then a linear projection to ``dim`` (no bias, so an
  all-zero image gives an all-zero vector);
* textual (``pooling="eot"``): embeds ids, takes a causal cumulative sum over positions and
  reads the vector at the first EOT, so what follows the EOT (padding) never matters, exactly
  like CLIP's causal text tower;
* textual (``pooling="mean"``): embeds ids and averages the positions the ``attention_mask``
  keeps, then projects (M-CLIP, as Immich exports it, takes ``input_ids`` + ``attention_mask``);
* textual (``pooling="last"``): every position sees the mean of all positions, padding included,
  and the vector is read at the last one, so the result changes with the number of positions
  fed, like SigLIP's non-causal text tower.

``onnx`` is a dev dependency only; the runtime reads these files with onnxruntime alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 18
IR_VERSION = 8

Dim = int | str | None

# Word-level vocabulary of the test tokenizer: specials first, then a few words.
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
PAD_ID, SOT_ID, EOT_ID, UNK_ID = 0, 1, 2, 3
WORDS = [
    "a",
    "photo",
    "of",
    "cat",
    "dog",
    "red",
    "blue",
    "car",
    "tree",
    "house",
    "sea",
    "sky",
    "sun",
    "the",
    "in",
    "on",
    "with",
    "and",
    "кот",
    "собака",
    "фото",
    "красный",
    "синий",
    "машина",
    "дерево",
    "дом",
    "море",
    "небо",
    "солнце",
]
VOCAB_SIZE = len(SPECIALS) + len(WORDS)


def _dims(*dims: Dim) -> list[Dim]:
    return list(dims)


def _hide_dim(src: str, dst: str, dim: int) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Copy ``src`` [N, dim] to ``dst`` through a value-dependent Slice.

    Shape inference cannot see through it, so the output's second axis stays symbolic in the
    session, like a model exported without static output shapes.
    """
    nodes = [
        helper.make_node("ReduceMax", [src], [f"{dst}_max"], keepdims=0),
        helper.make_node("Mul", [f"{dst}_max", f"{dst}_zero"], [f"{dst}_z"]),
        helper.make_node("Cast", [f"{dst}_z"], [f"{dst}_zi"], to=TensorProto.INT64),
        helper.make_node("Add", [f"{dst}_zi", f"{dst}_dim"], [f"{dst}_end"]),
        helper.make_node("Slice", [src, f"{dst}_start", f"{dst}_end", f"{dst}_axis"], [dst]),
    ]
    inits = [
        numpy_helper.from_array(np.array([0.0], dtype=np.float32), f"{dst}_zero"),
        numpy_helper.from_array(np.array([dim], dtype=np.int64), f"{dst}_dim"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), f"{dst}_start"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), f"{dst}_axis"),
    ]
    return nodes, inits


def _project(
    src: str, weight: str, output_name: str, dim: int, symbolic_dim: bool
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], Dim]:
    if not symbolic_dim:
        return [helper.make_node("MatMul", [src, weight], [output_name])], [], dim
    nodes, inits = _hide_dim("projected", output_name, dim)
    return [helper.make_node("MatMul", [src, weight], ["projected"]), *nodes], inits, "D"


def _finish(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def visual_model(
    *,
    dim: int = 8,
    size: Dim = 16,
    batch: Dim = "N",
    input_name: str = "image",
    output_name: str = "embedding",
    input_dtype: int = TensorProto.FLOAT,
    rank: int = 4,
    symbolic_dim: bool = False,
    seed: int = 0,
) -> onnx.ModelProto:
    """Image tower ``[batch, 3, size, size] -> [batch, dim]``.

    ``symbolic_dim`` hides the output width from shape inference; ``rank=3`` drops one spatial
    axis to produce a wrongly shaped input.
    """
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((3, dim)).astype(np.float32)
    if rank == 4:
        in_shape = _dims(batch, 3, size, size)
        axes = [2, 3]
    else:
        in_shape = _dims(batch, 3, size)
        axes = [2]
    nodes = []
    x = input_name
    if input_dtype != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [x], ["x_f"], to=TensorProto.FLOAT))
        x = "x_f"
    nodes.append(helper.make_node("ReduceMean", [x, "axes"], ["pooled"], keepdims=0))
    proj_nodes, proj_inits, declared = _project("pooled", "weight", output_name, dim, symbolic_dim)
    nodes += proj_nodes
    graph = helper.make_graph(
        nodes,
        "visual",
        [helper.make_tensor_value_info(input_name, input_dtype, in_shape)],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, _dims(batch, declared))],
        initializer=[
            numpy_helper.from_array(np.array(axes, dtype=np.int64), "axes"),
            numpy_helper.from_array(weight, "weight"),
            *proj_inits,
        ],
    )
    return _finish(graph)


def textual_model(
    *,
    dim: int = 8,
    vocab: int = VOCAB_SIZE,
    eot_id: int = EOT_ID,
    batch: Dim = "N",
    length: Dim = "L",
    input_name: str = "text",
    input_dtype: int = TensorProto.INT64,
    attention_mask: bool = False,
    pooling: str = "eot",
    output_name: str = "embedding",
    symbolic_dim: bool = False,
    rank: int = 2,
    seed: int = 1,
) -> onnx.ModelProto:
    """Text tower ``ids [batch, length] -> [batch, dim]`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((vocab, dim)).astype(np.float32)
    proj = rng.standard_normal((dim, dim)).astype(np.float32)
    in_shape = _dims(batch, length) if rank == 2 else _dims(batch, length, 1)
    inputs = [helper.make_tensor_value_info(input_name, input_dtype, in_shape)]
    inits = [
        numpy_helper.from_array(table, "table"),
        numpy_helper.from_array(proj, "proj"),
    ]
    ids = input_name
    nodes = []
    if rank != 2:
        inits.append(numpy_helper.from_array(np.array([2], dtype=np.int64), "sq_axes"))
        nodes.append(helper.make_node("Squeeze", [ids, "sq_axes"], ["ids_2d"]))
        ids = "ids_2d"
    if input_dtype != TensorProto.INT64:
        nodes.append(helper.make_node("Cast", [ids], ["ids64"], to=TensorProto.INT64))
        ids = "ids64"
    nodes.append(helper.make_node("Gather", ["table", ids], ["emb"], axis=0))  # [N, L, D]
    if pooling == "eot":
        nodes += [
            helper.make_node("CumSum", ["emb", "axis1"], ["causal"]),  # causal: prefix sums
            helper.make_node("Equal", [ids, "eot"], ["is_eot"]),
            helper.make_node("Cast", ["is_eot"], ["is_eot_f"], to=TensorProto.FLOAT),
            helper.make_node("CumSum", ["is_eot_f", "axis1"], ["eot_seen"]),
            helper.make_node("Equal", ["eot_seen", "one_f"], ["seen_once"]),
            helper.make_node("Cast", ["seen_once"], ["seen_once_f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["is_eot_f", "seen_once_f"], ["first_eot"]),  # [N, L]
            helper.make_node("Einsum", ["first_eot", "causal"], ["pooled"], equation="nl,nld->nd"),
        ]
        inits += [
            numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one_f"),
            numpy_helper.from_array(np.array(1, dtype=np.int64), "axis1"),
            numpy_helper.from_array(np.array([eot_id], dtype=np.int64), "eot"),
        ]
    elif pooling == "mean":
        mask_name = "attention_mask"
        if attention_mask:
            nodes.append(helper.make_node("Cast", [mask_name], ["mask_f"], to=TensorProto.FLOAT))
        else:  # mean over every position
            nodes += [
                helper.make_node("Cast", [ids], ["ids_f"], to=TensorProto.FLOAT),
                helper.make_node("Mul", ["ids_f", "zero_f"], ["zeros"]),
                helper.make_node("Add", ["zeros", "one_f"], ["mask_f"]),
            ]
            inits += [
                numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero_f"),
                numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one_f"),
            ]
        nodes += [
            helper.make_node("Einsum", ["mask_f", "emb"], ["summed"], equation="nl,nld->nd"),
            helper.make_node("ReduceSum", ["mask_f", "axis1_list"], ["count"], keepdims=1),
            helper.make_node("Div", ["summed", "count"], ["pooled"]),
        ]
        inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1_list"))
    elif pooling == "last":
        nodes += [
            helper.make_node("ReduceMean", ["emb", "axis1_list"], ["context"], keepdims=1),
            helper.make_node("Add", ["emb", "context"], ["mixed"]),  # bidirectional: sees all
            helper.make_node("Gather", ["mixed", "last"], ["pooled"], axis=1),
        ]
        inits += [
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1_list"),
            numpy_helper.from_array(np.array(-1, dtype=np.int64), "last"),
        ]
    else:
        raise ValueError(pooling)
    if attention_mask:
        inputs.append(helper.make_tensor_value_info("attention_mask", input_dtype, in_shape))
    proj_nodes, proj_inits, declared = _project("pooled", "proj", output_name, dim, symbolic_dim)
    nodes += proj_nodes
    inits += proj_inits
    graph = helper.make_graph(
        nodes,
        "textual",
        inputs,
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, _dims(batch, declared))],
        initializer=inits,
    )
    return _finish(graph)


# --- tokenizer files -----------------------------------------------------------------------------


def write_hf_tokenizer(path: Path) -> Path:
    """A word-level HF ``tokenizer.json`` that frames every text as ``<s> ... </s>``."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel

    vocab = {tok: i for i, tok in enumerate([*SPECIALS, *WORDS])}
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", SOT_ID), ("</s>", EOT_ID)]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


# Gemma's special ids, and text for the cased stand-in's pieces (capitals, Cyrillic, punctuation).
GEMMA_PAD_ID, GEMMA_EOS_ID, GEMMA_BOS_ID, GEMMA_UNK_ID = 0, 1, 2, 3
GEMMA_TRAINING_TEXT = (
    "a cat on a sofa",
    "Cat on a sofa! A CAT ON A SOFA?",
    "a photo of a red car near the sea, my dog in the snow",
    "Photo of a Dog_Park at NIGHT (2024)",
    "кот на диване, Кот На Диване! КОТ",
    "фото собаки в снегу; красная машина у моря",
)


def write_gemma_like_tokenizer(path: Path) -> Path:
    """A small cased ``tokenizer.json`` shaped like Gemma's (what SigLIP 2 ships): SentencePiece
    style BPE with byte fallback, ``<pad>`` 0, ``<eos>`` 1, ``<bos>`` 2, ``<unk>`` 3, framing
    ``$A <eos>``, and no normalizer of its own beyond spaces, so case and punctuation reach it."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from tokenizers.processors import TemplateProcessing

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.pre_tokenizer = pre_tokenizers.Split("\u2581", "merged_with_next")
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback()])
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", *(f"<0x{b:02X}>" for b in range(256))]
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(GEMMA_TRAINING_TEXT, trainer)
    tok.post_processor = TemplateProcessing(
        single="$A <eos>", special_tokens=[("<eos>", GEMMA_EOS_ID)]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


# --- whole bundles -------------------------------------------------------------------------------


def bundle_config(
    *,
    name: str = "tiny",
    version: str = "1",
    dim: int = 8,
    size: int = 16,
    languages: Sequence[str] = ("en",),
    context_length: int = 12,
    **extra: Any,
) -> dict[str, Any]:
    """A valid ``config.json`` dict of our own layout for the tiny towers."""
    cfg: dict[str, Any] = {
        "format": "image-finder-bundle/1",
        "name": name,
        "version": version,
        "embed_dim": dim,
        "languages": list(languages),
        "image": {"size": size, "resize_mode": "squash", "interpolation": "bilinear"},
        "text": {
            "context_length": context_length,
            "tokenizer": "hf",
            "tokenizer_file": "tokenizer.json",
            "pad_id": PAD_ID,
            "pad_to_context": False,  # the default tiny tower is causal
        },
        "relevance_floor": 0.2,
    }
    cfg.update(extra)
    return cfg


def write_bundle(
    out_dir: Path,
    *,
    config: dict[str, Any] | None = None,
    visual: onnx.ModelProto | None = None,
    textual: onnx.ModelProto | None = None,
    dim: int = 8,
    size: int = 16,
    context_length: int = 12,
    **config_kwargs: Any,
) -> Path:
    """Write a complete bundle of our layout; pass pieces to replace the defaults."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = config or bundle_config(
        dim=dim, size=size, context_length=context_length, **config_kwargs
    )
    (out_dir / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    onnx.save(visual or visual_model(dim=dim, size=size), out_dir / "visual.onnx")
    onnx.save(textual or textual_model(dim=dim), out_dir / "textual.onnx")
    write_hf_tokenizer(out_dir / "tokenizer.json")
    return out_dir


def open_clip_config(
    *, dim: int = 8, size: int = 16, context_length: int | None = 12, **text_cfg: Any
) -> dict[str, Any]:
    """An open_clip model config as Immich ships it at the top of a model repository."""
    text: dict[str, Any] = {"width": 16, "heads": 2, "layers": 1, **text_cfg}
    if context_length is not None:
        text["context_length"] = context_length
    return {
        "embed_dim": dim,
        "vision_cfg": {"image_size": size, "layers": 1, "width": 16, "patch_size": 8},
        "text_cfg": text,
    }


def write_immich_bundle(
    out_dir: Path,
    *,
    style: str = "openclip",
    dim: int = 8,
    size: int = 16,
    context_length: int = 12,
    model_config: dict[str, Any] | None = None,
    preprocess_cfg: dict[str, Any] | None = None,
    tokenizer_config: dict[str, Any] | None = None,
    visual: onnx.ModelProto | None = None,
    textual: onnx.ModelProto | None = None,
) -> Path:
    """Write a model directory laid out like Immich's published ONNX CLIP models.

    ``style="openclip"``: textual input ``text`` int32 [1, context_length], pooled at EOT
    (what Immich's open_clip exporter produces, batch fixed at 1);
    ``style="mclip"``: inputs ``input_ids`` + ``attention_mask`` int32 [1, 77]-like, mean-pooled
    (Immich's M-CLIP exporter); the top ``config.json`` then describes only the image side's
    open_clip model, as in Immich's M-CLIP repositories.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "visual").mkdir(exist_ok=True)
    (out_dir / "textual").mkdir(exist_ok=True)
    if model_config is None:
        model_config = open_clip_config(dim=dim, size=size, context_length=context_length)
    (out_dir / "config.json").write_text(json.dumps(model_config, indent=4), encoding="utf-8")
    if preprocess_cfg is None:
        preprocess_cfg = {
            "size": [size, size],
            "mode": "RGB",
            "mean": [0.48145466, 0.4578275, 0.40821073],
            "std": [0.26862954, 0.26130258, 0.27577711],
            "interpolation": "bicubic",
            "resize_mode": "shortest",
            "fill_color": 0,
        }
    (out_dir / "visual" / "preprocess_cfg.json").write_text(
        json.dumps(preprocess_cfg, indent=4), encoding="utf-8"
    )
    onnx.save(visual or visual_model(dim=dim, size=size, batch=1), out_dir / "visual/model.onnx")
    if textual is None:
        if style == "openclip":
            textual = textual_model(
                dim=dim, batch=1, length=context_length, input_dtype=TensorProto.INT32
            )
        elif style == "mclip":
            textual = textual_model(
                dim=dim,
                batch=1,
                length=context_length,
                input_name="input_ids",
                input_dtype=TensorProto.INT32,
                attention_mask=True,
                pooling="mean",
            )
        else:
            raise ValueError(style)
    onnx.save(textual, out_dir / "textual/model.onnx")
    write_hf_tokenizer(out_dir / "textual" / "tokenizer.json")
    if tokenizer_config is None:
        tokenizer_config = {
            "pad_token": "<pad>",
            "bos_token": "<s>",
            "eos_token": "</s>",
            "model_max_length": context_length,
            "tokenizer_class": "CLIPTokenizer" if style == "openclip" else "XLMRobertaTokenizer",
        }
    (out_dir / "textual" / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config, indent=2), encoding="utf-8"
    )
    (out_dir / "textual" / "special_tokens_map.json").write_text(
        json.dumps({k: v for k, v in tokenizer_config.items() if k.endswith("_token")}),
        encoding="utf-8",
    )
    return out_dir


# --- stand-ins for modules written in parallel ---------------------------------------------------


class StubHFTokenizer:
    """``core.models.text``'s tokenizer contract for kind "hf": framed ids, truncated, unpadded."""

    def __init__(self, path: Path, context_length: int, pad_id: int) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(path))
        self.context_length = context_length
        self.pad_id = pad_id

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        out = []
        for enc in self._tok.encode_batch(list(texts)):
            ids = list(enc.ids)
            if len(ids) > self.context_length:
                ids = [*ids[: self.context_length - 1], ids[-1]]
            out.append(ids)
        return out


def _stub_load_tokenizer(bundle_dir: Path, cfg: Any) -> StubHFTokenizer:
    from core.errors import TokenizerError

    path = Path(bundle_dir) / cfg.tokenizer_file
    try:
        return StubHFTokenizer(path, cfg.context_length, cfg.pad_id)
    except Exception as exc:
        raise TokenizerError(f"{path}: {exc}") from exc


def use_text_runtime(monkeypatch: Any) -> None:
    """Use ``core.models.text.load_tokenizer`` when it exists, else the stub above."""
    import core.models.text

    if not hasattr(core.models.text, "load_tokenizer"):
        monkeypatch.setattr(core.models.text, "load_tokenizer", _stub_load_tokenizer, raising=False)


def _stub_image_module() -> Any:
    """``core.media.image`` contract on plain Pillow: squash-resize, normalise, typed errors."""
    import io
    import types

    from PIL import Image, UnidentifiedImageError

    from core.errors import EmptyImageError, UnsupportedImageError

    def decode_image(data: Any, *, target_size: int | None = None, **_: Any) -> Image.Image:
        raw = Path(data).read_bytes() if isinstance(data, Path) else bytes(data)
        if not raw:
            raise EmptyImageError("no bytes")
        try:
            img = Image.open(io.BytesIO(raw))
            img.load()
        except (UnidentifiedImageError, OSError) as exc:
            raise UnsupportedImageError(str(exc)) from exc
        return img.convert("RGB")

    def preprocess(img: Image.Image, cfg: Any) -> np.ndarray:
        img = img.convert("RGB").resize((cfg.size, cfg.size), Image.Resampling.BILINEAR)
        x = np.asarray(img, dtype=np.float32) / 255.0
        x = (x - np.asarray(cfg.mean, np.float32)) / np.asarray(cfg.std, np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def prepare_image(data: Any, cfg: Any, *, fast: bool = True) -> np.ndarray:
        return preprocess(decode_image(data, target_size=cfg.size), cfg)

    mod = types.ModuleType("core.media.image")
    mod.decode_image = decode_image  # type: ignore[attr-defined]
    mod.preprocess = preprocess  # type: ignore[attr-defined]
    mod.prepare_image = prepare_image  # type: ignore[attr-defined]
    return mod


def use_image_runtime(monkeypatch: Any) -> None:
    """Use ``core.media.image`` when it exists, else a stand-in with the same contract."""
    import sys

    try:
        import core.media.image as real

        if all(hasattr(real, n) for n in ("prepare_image", "preprocess", "decode_image")):
            return
    except ImportError:
        pass
    monkeypatch.setitem(sys.modules, "core.media.image", _stub_image_module())
