"""Random-weight stand-ins of Immich's published ONNX CLIP models, for speed and memory
measurements on a machine that cannot reach the model hub.

Speed and memory do not depend on weight values, so a bundle with the exact architecture and
the same graph shapes as Immich's export measures what the published files would cost. Each
candidate is written in Immich's layout, the way Immich's exporter writes it
(``machine-learning/export``: open_clip ``encode_image`` / ``encode_text`` with
``normalize=True``, TorchScript exporter, opset 19, fixed shapes ``image`` float32
[1, 3, S, S] and ``text`` int32 [1, L], L = ``text_cfg.context_length`` or 77)::

    config.json                    open_clip's model config of the architecture
    visual/model.onnx              visual/preprocess_cfg.json (the pretrained tag's transform)
    textual/model.onnx             textual/tokenizer.json (stand-in)  textual/tokenizer_config.json

The tokenizers (Gemma's 256k SentencePiece BPE for SigLIP 2, XLM-R's 250k Unigram) come with
the weights and cannot be downloaded here; the stand-in ``tokenizer.json`` has the real vocabulary
size, the real special-token ids (pad, bos/eos) and framing, but a small learned vocabulary
padded with unused pieces, so it splits words into more tokens than the real one. The text
graphs take a fixed L, so token counts change tokenisation time only, not the tower's cost.

    .venv-export/bin/python bench/models.py --out bench/out siglip2-b32-256 xlmr-base-b32

Needs the export extra plus ``timm`` (SigLIP's image tower) and ``transformers`` (XLM-R).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

IMMICH_OPSET = 19  # Immich's exporter default (exporters/onnx/__init__.py)

# xlm-roberta-base's config.json on the hub, written out so the text tower builds offline.
XLMR_BASE_CONFIG: dict[str, Any] = {
    "vocab_size": 250002,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-05,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}

# A few hundred words in both languages for the stand-in tokenizers to learn pieces from.
_EXTRA_TEXT = (
    "a photo of people at a wedding in a white tent with flowers and candles",
    "sunset over the sea with boats, a cat on a sofa, my dog playing in the snow",
    "birthday cake, a red car parked near an old brick building at night, mountains",
    "screenshot of a chat, receipt from a shop, children in the park, a bowl of soup",
    "фото людей на свадьбе в белом шатре с цветами и свечами",
    "закат над морем и лодки, кот на диване, моя собака играет в снегу",
    "торт на день рождения, красная машина у старого кирпичного дома ночью, горы",
    "скриншот переписки, чек из магазина, дети в парке, тарелка супа",
)


@dataclass(frozen=True)
class Candidate:
    """One Immich model: its directory name, open_clip architecture and pretrained tag."""

    immich_name: str
    arch: str
    pretrained: str
    tokenizer: str  # "gemma" | "xlmr"
    tokenizer_class: str


CANDIDATES: dict[str, Candidate] = {
    "siglip2-b32-256": Candidate(
        "ViT-B-32-SigLIP2-256__webli", "ViT-B-32-SigLIP2-256", "webli", "gemma", "GemmaTokenizer"
    ),
    "siglip2-b16": Candidate(
        "ViT-B-16-SigLIP2__webli", "ViT-B-16-SigLIP2", "webli", "gemma", "GemmaTokenizer"
    ),
    "xlmr-base-b32": Candidate(
        "XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k",
        "xlm-roberta-base-ViT-B-32",
        "laion5b_s13b_b90k",
        "xlmr",
        "XLMRobertaTokenizer",
    ),
}


# --- stand-in tokenizers ------------------------------------------------------------------------


def _corpus() -> list[str]:
    from bench.queries import QUERIES_EN, QUERIES_RU
    from tools.export import SAMPLE_TEXT

    return [*SAMPLE_TEXT, *_EXTRA_TEXT, *QUERIES_EN, *QUERIES_RU]


def gemma_standin(vocab_size: int = 256000) -> str:
    """A Gemma-shaped ``tokenizer.json``: SentencePiece-style BPE with byte fallback, ids
    <pad> 0, <eos> 1, <bos> 2, <unk> 3, framing ``$A <eos>``, ``vocab_size`` pieces."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from tokenizers.processors import TemplateProcessing

    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.pre_tokenizer = pre_tokenizers.Split("\u2581", "merged_with_next")
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback()])
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(
        vocab_size=3000, special_tokens=specials + byte_tokens, show_progress=False
    )
    tok.train_from_iterator(_corpus(), trainer)
    tok.post_processor = TemplateProcessing(single="$A <eos>", special_tokens=[("<eos>", 1)])
    data = json.loads(tok.to_str())
    vocab: dict[str, int] = data["model"]["vocab"]
    for i in range(len(vocab), vocab_size):
        vocab[f"<unused{i}>"] = i
    return json.dumps(data, ensure_ascii=False)


def xlmr_standin(vocab_size: int = 250002) -> str:
    """An XLM-R-shaped ``tokenizer.json``: Unigram, ids <s> 0, <pad> 1, </s> 2, <unk> 3,
    <mask> last, framing ``<s> $A </s>``, ``vocab_size`` pieces."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from tokenizers.processors import TemplateProcessing

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=2000,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        unk_token="<unk>",
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer)
    tok.post_processor = TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    data = json.loads(tok.to_str())
    pieces: list[list[Any]] = data["model"]["vocab"]
    pieces += [[f"\u2581unused{i}", -99.0] for i in range(len(pieces), vocab_size - 1)]
    pieces.append(["<mask>", 0.0])
    data["added_tokens"].append(
        {
            "id": vocab_size - 1,
            "content": "<mask>",
            "single_word": False,
            "lstrip": True,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
    )
    return json.dumps(data, ensure_ascii=False)


STANDINS: dict[str, Callable[[], str]] = {"gemma": gemma_standin, "xlmr": xlmr_standin}


# --- the models ---------------------------------------------------------------------------------


def _offline_xlmr_config() -> None:
    """Make ``AutoConfig.from_pretrained("xlm-roberta-base")`` answer without the hub."""
    import transformers

    original = transformers.AutoConfig.from_pretrained

    def from_pretrained(name: str, *args: Any, **kwargs: Any) -> Any:
        if str(name) == "xlm-roberta-base":
            # Eager attention builds the padding mask arithmetically; SDPA's mask helpers
            # take data-dependent shortcuts that the TorchScript trace would bake in.
            return transformers.XLMRobertaConfig(**XLMR_BASE_CONFIG, attn_implementation="eager")
        return original(name, *args, **kwargs)

    transformers.AutoConfig.from_pretrained = from_pretrained  # type: ignore[method-assign]


def build_model(c: Candidate, seed: int = 0) -> Any:
    """The architecture with random weights and the pretrained tag's preprocessing, as
    ``tools.export.build_open_clip`` makes it, without an HF text tower's base weights."""
    import open_clip
    import torch

    torch.manual_seed(seed)
    if c.tokenizer == "xlmr":
        _offline_xlmr_config()
    tag = open_clip.get_pretrained_cfg(c.arch, c.pretrained)
    preprocess = {k: tag[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag}
    return open_clip.create_model(
        c.arch,
        pretrained=None,
        pretrained_image=False,
        pretrained_text=False,
        force_quick_gelu=bool(tag.get("quick_gelu", False)),
        force_preprocess_cfg=preprocess or None,
    ).eval()


def _export(
    model: Any,
    fn: Callable[[Any, Any], Any],
    example: Any,
    path: Path,
    input_name: str,
    dynamo: bool = False,
) -> None:
    """Immich's export call: TorchScript exporter, fixed shapes, opset 19. The model is a
    submodule, so its weights are initializers (one file per tower, as Immich's are)."""
    import torch

    class Wrap(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, text: Any) -> Any:  # named like the text input (torch.export)
            return fn(self.model, text)

    path.parent.mkdir(parents=True, exist_ok=True)
    if dynamo:  # the project's dynamo export (fixed shapes here), which unshadows "embedding"
        from tools.export import _export_onnx

        _export_onnx(
            Wrap().eval(), example, path, input_name=input_name, dims={}, opset=IMMICH_OPSET
        )
        return
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Wrap(),
            (example,),
            str(path),
            input_names=[input_name],
            output_names=["embedding"],
            opset_version=IMMICH_OPSET,
            dynamo=dynamo,
        )


def _parity(path: Path, feed: dict[str, np.ndarray], want: np.ndarray) -> float:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    got = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]).run(None, feed)[
        0
    ]
    diff = float(np.abs(got - want).max())
    if diff > 1e-4:
        raise RuntimeError(f"{path}: ONNX and torch differ by {diff}")
    return diff


def export_immich_standin(key: str, out_root: Path, *, text: bool = True, seed: int = 0) -> Path:
    """Write ``out_root/<Immich name>`` for candidate ``key``; skipped when it exists."""
    import open_clip
    import torch

    c = CANDIDATES[key]
    out = Path(out_root) / c.immich_name
    if (out / "config.json").is_file():
        return out
    torch.backends.mha.set_fastpath_enabled(False)
    model = build_model(c, seed).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model_cfg = open_clip.get_model_config(c.arch)
    size = int(model_cfg["vision_cfg"]["image_size"])
    length = int(model_cfg["text_cfg"].get("context_length", 77))
    pad_id = 1 if c.tokenizer == "xlmr" else 0  # XLM-R's <pad>; Gemma's <pad>
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp:
        work = Path(tmp)
        image = torch.randn(1, 3, size, size)
        _export(
            model,
            lambda m, x: m.encode_image(x, normalize=True),
            image,
            work / "visual/model.onnx",
            "image",
        )
        with torch.no_grad():
            want = model.encode_image(image, normalize=True).numpy()
        diffs = {"visual": _parity(work / "visual/model.onnx", {"image": image.numpy()}, want)}
        preprocess = open_clip.get_model_preprocess_cfg(model)
        (work / "visual/preprocess_cfg.json").write_text(json.dumps(preprocess, indent=2))
        (work / "config.json").write_text(json.dumps(model_cfg, indent=2))
        if text:
            # A framed short text and padding (Immich traces all-ones, which is XLM-R's pad id).
            ids = torch.full((1, length), int(pad_id), dtype=torch.int32)
            ids[0, :6] = torch.tensor(
                [2 if pad_id == 0 else 0, 10, 11, 12, 13, 1 if pad_id == 0 else 2]
            )
            _export(
                model,
                lambda m, t: m.encode_text(t, normalize=True),
                ids,
                work / "textual/model.onnx",
                "text",
                # transformers' mask helpers branch on the data, which a trace bakes in
                # (ONNX vs torch 0.015 apart); torch.export keeps them as graph ops.
                dynamo=c.tokenizer == "xlmr",
            )
            rng = np.random.default_rng(seed)
            for n in (length, 9):  # a full row and a padded one
                sample = np.full((1, length), pad_id, dtype=np.int32)
                sample[0, :n] = rng.integers(4, 3000, size=n)
                with torch.no_grad():
                    want = model.encode_text(torch.from_numpy(sample), normalize=True).numpy()
                diffs[f"textual_{n}"] = _parity(work / "textual/model.onnx", {"text": sample}, want)
            (work / "textual/tokenizer.json").write_text(STANDINS[c.tokenizer](), "utf-8")
            tok_cfg = {"pad_token": "<pad>", "tokenizer_class": c.tokenizer_class}
            (work / "textual/tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2))
        else:
            _borrow_text_tower(c, out_root, work)
        print(f"{out.name}: ONNX vs torch max abs diff {diffs}", file=sys.stderr)
        out.mkdir(exist_ok=True)
        for item in sorted(work.iterdir()):
            item.replace(out / item.name)
    return out


def _borrow_text_tower(c: Candidate, out_root: Path, work: Path) -> None:
    """Hard-link ``textual/`` from an exported candidate whose text tower is the same
    architecture (ViT-B-16-SigLIP2 and ViT-B-32-SigLIP2-256 share theirs), so an image-only
    export still makes a bundle the runtime loads."""
    import open_clip

    def tower(arch: str) -> dict[str, Any]:  # the tokenizer's hub name is no architecture
        cfg = dict(open_clip.get_model_config(arch)["text_cfg"])
        cfg.pop("hf_tokenizer_name", None)
        return cfg

    want = tower(c.arch)
    for other in CANDIDATES.values():
        src = Path(out_root) / other.immich_name / "textual"
        same = tower(other.arch) == want
        if other is not c and same and (src / "model.onnx").is_file():
            (work / "textual").mkdir()
            for f in src.iterdir():
                (work / "textual" / f.name).hardlink_to(f)
            print(f"{c.immich_name}: text tower linked from {other.immich_name}", file=sys.stderr)
            return
    raise RuntimeError(f"{c.immich_name}: no exported candidate shares its text tower")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--image-only", action="store_true", help="skip the text tower")
    ap.add_argument("candidates", nargs="+", choices=sorted(CANDIDATES))
    args = ap.parse_args(argv)
    for key in args.candidates:
        print(export_immich_standin(key, args.out, text=not args.image_only))


if __name__ == "__main__":
    main()
