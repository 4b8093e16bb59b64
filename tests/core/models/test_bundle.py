"""Bundle loading and validation: every failure names the file and the problem."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto

from core.errors import BundleError
from core.models.bundle import (
    IMMICH_TOKENIZER,
    immich_name,
    is_multilingual,
    load_bundle,
)
from core.models.check import check_bundle
from core.models.config import OPENAI_MEAN
from core.models.embedder import OnnxEmbedder
from tests.core.onnx_builders import (
    PAD_ID,
    bundle_config,
    open_clip_config,
    textual_model,
    use_text_runtime,
    visual_model,
    write_bundle,
    write_gemma_like_tokenizer,
    write_immich_bundle,
)


@pytest.fixture(autouse=True)
def _text_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    use_text_runtime(monkeypatch)


def _fails(path: Path, file: str, *words: str) -> BundleError:
    """Full validation of ``path`` must fail naming ``file`` and containing ``words``."""
    with pytest.raises(BundleError) as info:
        check_bundle(path)
    err = info.value
    assert Path(err.path).name == Path(file).name, err
    assert Path(err.path).parent.name == Path(path / file).parent.name, err
    for word in words:
        assert word in err.problem, err
    assert err.path in str(err)  # the message itself names the file
    return err


# --- our layout: happy path ----------------------------------------------------------------------


def test_valid_bundle_loads_and_validates(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "tiny")
    bundle = check_bundle(root)
    assert bundle.layout == "native"
    assert bundle.config.model_id == "tiny@1"
    assert bundle.visual_path == root / "visual.onnx"
    assert bundle.textual_path == root / "textual.onnx"
    assert bundle.tokenizer_path == root / "tokenizer.json"
    assert bundle.tokenizer.encode(["a cat"])[0][-1] == 2  # framed by the tokenizer


def test_load_bundle_opens_no_session(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b")
    (root / "visual.onnx").write_bytes(b"not a model")  # only a session would notice
    load_bundle(root)  # files exist, config is fine: loading succeeds
    _fails(root, "visual.onnx", "onnxruntime cannot load")


def test_symbolic_output_dims_are_measured_by_a_dummy_run(tmp_path: Path) -> None:
    root = write_bundle(
        tmp_path / "b",
        visual=visual_model(symbolic_dim=True),
        textual=textual_model(symbolic_dim=True),
    )
    check_bundle(root)
    bad = write_bundle(
        tmp_path / "bad",
        dim=8,
        visual=visual_model(dim=8, symbolic_dim=True),
        textual=textual_model(dim=4, symbolic_dim=True),
    )
    _fails(bad, "textual.onnx", "4", "8", "do not match")


# --- our layout: every failure -------------------------------------------------------------------


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such directory"):
        load_bundle(tmp_path / "nope")


def test_missing_config(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b")
    (root / "config.json").unlink()
    with pytest.raises(BundleError) as info:
        load_bundle(root)
    assert info.value.path == str(root / "config.json")
    assert "missing file" in info.value.problem


def test_malformed_json(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b")
    (root / "config.json").write_text("{ not json", encoding="utf-8")
    with pytest.raises(BundleError, match="malformed JSON") as info:
        load_bundle(root)
    assert info.value.path == str(root / "config.json")


def test_config_not_an_object(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b")
    (root / "config.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(BundleError, match="JSON object"):
        load_bundle(root)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"embed_dim": 0}, "embed_dim"),
        ({"name": "has space"}, "name"),
        ({"languages": []}, "languages"),
        ({"text": {"context_length": 12, "tokenizer": "sentencepiece"}}, "text.tokenizer"),
        ({"unknown_key": 1}, "unknown_key"),
        ({"format": "other/2"}, "format"),
    ],
)
def test_bad_field_is_named(tmp_path: Path, change: dict, field: str) -> None:
    cfg = bundle_config()
    cfg.update(change)
    root = write_bundle(tmp_path / "b", config=cfg)
    with pytest.raises(BundleError) as info:
        load_bundle(root)
    assert info.value.path == str(root / "config.json")
    assert "bad field" in info.value.problem and field in info.value.problem


@pytest.mark.parametrize(
    ("file", "what"),
    [
        ("visual.onnx", "image tower"),
        ("textual.onnx", "text tower"),
        ("tokenizer.json", "tokenizer"),
    ],
)
def test_missing_model_files(tmp_path: Path, file: str, what: str) -> None:
    root = write_bundle(tmp_path / "b")
    (root / file).unlink()
    with pytest.raises(BundleError) as info:
        load_bundle(root)
    assert info.value.path == str(root / file)
    assert "missing file" in info.value.problem and what in info.value.problem


def test_file_outside_bundle_is_refused(tmp_path: Path) -> None:
    cfg = bundle_config(visual_file="../visual.onnx")
    root = write_bundle(tmp_path / "b", config=cfg)
    with pytest.raises(BundleError, match="inside the bundle"):
        load_bundle(root)


def test_wrong_visual_input_name(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", visual=visual_model(input_name="pixel_values"))
    _fails(root, "visual.onnx", "'image'", "pixel_values")


def test_wrong_textual_input_name(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", textual=textual_model(input_name="tokens"))
    _fails(root, "textual.onnx", "'text'", "tokens")


def test_wrong_output_name(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", visual=visual_model(output_name="features"))
    _fails(root, "visual.onnx", "'embedding'", "features")


def test_wrong_visual_rank(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", visual=visual_model(rank=3))
    _fails(root, "visual.onnx", "rank 4")


def test_wrong_textual_rank(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", textual=textual_model(rank=3))
    _fails(root, "textual.onnx", "rank 2")


def test_wrong_visual_dtype(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", visual=visual_model(input_dtype=TensorProto.UINT8))
    _fails(root, "visual.onnx", "float32", "uint8")


def test_wrong_textual_dtype(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", textual=textual_model(input_dtype=TensorProto.FLOAT))
    _fails(root, "textual.onnx", "int32 or int64")


def test_image_size_mismatch(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", size=16, visual=visual_model(size=32))
    _fails(root, "visual.onnx", "32x32", "image.size = 16")


def test_fixed_text_length_must_match_context_length(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", context_length=12, textual=textual_model(length=20))
    _fails(root, "textual.onnx", "20", "context_length = 12")


def test_output_dim_differs_from_embed_dim(tmp_path: Path) -> None:
    cfg = bundle_config(dim=16)
    root = write_bundle(
        tmp_path / "b", config=cfg, visual=visual_model(dim=8), textual=textual_model(dim=8)
    )
    _fails(root, "visual.onnx", "8-dimensional", "embed_dim = 16")


def test_tower_dims_differ(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", dim=8, textual=textual_model(dim=4))
    _fails(root, "textual.onnx", "4-dimensional", "image tower", "8")


def test_declared_attention_mask_missing_from_model(tmp_path: Path) -> None:
    cfg = bundle_config()
    cfg["text"]["attention_mask"] = True
    root = write_bundle(tmp_path / "b", config=cfg)
    _fails(root, "textual.onnx", "attention_mask")


def test_unreadable_tokenizer_is_a_bundle_error(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b")
    (root / "tokenizer.json").write_text("{}", encoding="utf-8")
    _fails(root, "tokenizer.json")


def test_errors_surface_on_first_use_without_validate(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", size=16, visual=visual_model(size=32))
    emb = OnnxEmbedder(load_bundle(root))
    with pytest.raises(BundleError, match=r"image\.size"):
        emb.encode_pixels(np.zeros((1, 3, 16, 16), "float32"))


# --- Immich's layout -----------------------------------------------------------------------------


def test_immich_openclip_layout(tmp_path: Path) -> None:
    root = write_immich_bundle(tmp_path / "ViT-B-32__openai", dim=8, size=16, context_length=12)
    bundle = check_bundle(root)
    cfg = bundle.config
    assert bundle.layout == "immich"
    assert cfg.name == "ViT-B-32__openai" and cfg.version == "immich"
    assert cfg.model_id == "ViT-B-32__openai@immich"
    assert cfg.languages == ("en",) and not cfg.multilingual
    assert cfg.embed_dim == 8
    assert cfg.image.size == 16 and cfg.image.mean == OPENAI_MEAN
    assert cfg.image.resize_mode == "shortest" and cfg.image.interpolation == "bicubic"
    assert cfg.text.tokenizer == "hf" and cfg.text.tokenizer_file == IMMICH_TOKENIZER
    assert cfg.text.context_length == 12 and cfg.text.pad_id == PAD_ID
    assert not cfg.text.attention_mask
    assert bundle.visual_path == root / "visual" / "model.onnx"
    assert bundle.textual_path == root / "textual" / "model.onnx"


def test_immich_mclip_layout_is_multilingual_with_attention_mask(tmp_path: Path) -> None:
    # Immich's M-CLIP repos: config.json is the *image* model's plain open_clip config.
    root = write_immich_bundle(tmp_path / "XLM-Roberta-Large-Vit-B-32", style="mclip")
    bundle = check_bundle(root)
    assert bundle.config.multilingual and bundle.config.languages == ("*",)
    assert bundle.config.text.attention_mask


def test_immich_mclip_detected_by_tokenizer_not_name(tmp_path: Path) -> None:
    root = write_immich_bundle(tmp_path / "some-model", style="mclip")
    assert load_bundle(root).config.multilingual


@pytest.mark.parametrize(
    ("text_cfg", "multilingual"),
    [
        ({"hf_model_name": "xlm-roberta-base", "hf_tokenizer_name": "xlm-roberta-base"}, True),
        ({"hf_tokenizer_name": "facebook/nllb-200-distilled-600M"}, True),
        ({"hf_tokenizer_name": "timm/ViT-B-16-SigLIP2"}, True),
        ({"hf_tokenizer_name": "timm/ViT-B-16-SigLIP-i18n-256"}, True),
        ({"hf_tokenizer_name": "timm/ViT-B-16-SigLIP"}, False),
        ({"hf_tokenizer_name": "bert-base-uncased"}, False),
        ({}, False),
    ],
)
def test_immich_multilingual_rule(tmp_path: Path, text_cfg: dict, multilingual: bool) -> None:
    root = write_immich_bundle(
        tmp_path / "model",
        model_config=open_clip_config(**text_cfg),
        tokenizer_config={"pad_token": "<pad>", "tokenizer_class": "SomeTokenizer"}
        if text_cfg
        else {"pad_token": "<pad>", "tokenizer_class": "CLIPTokenizer"},
    )
    assert load_bundle(root).config.multilingual is multilingual


def test_multilingual_markers() -> None:
    assert is_multilingual(["M-CLIP/LABSE-Vit-L-14"])
    assert is_multilingual(["XLMRobertaTokenizer"])
    assert not is_multilingual(["openai/clip-vit-base-patch32", "ViT-B-32__openai"])


def test_immich_name_is_sanitised(tmp_path: Path) -> None:
    assert immich_name(tmp_path / "ViT-B-16-SigLIP2__webli") == "ViT-B-16-SigLIP2__webli"
    assert immich_name(tmp_path / "my model (v2)") == "my-model-v2-"
    assert immich_name(tmp_path / "__") == "immich-model"


def test_immich_siglip_canonicalize_and_floor(tmp_path: Path) -> None:
    cfg = open_clip_config(
        hf_tokenizer_name="timm/ViT-B-16-SigLIP", tokenizer_kwargs={"clean": "canonicalize"}
    )
    cfg["init_logit_bias"] = -10
    root = write_immich_bundle(tmp_path / "ViT-B-16-SigLIP__webli", model_config=cfg)
    config = load_bundle(root).config
    assert config.text.lowercase and config.text.clean == "canonicalize"
    assert config.text.pad_to_context  # known as SigLIP even though text_cfg omits the mask flag
    assert config.relevance_floor < 0.2


# ViT-B-32-SigLIP2-256's text_cfg as open_clip (and so Immich) ships it, minus the tower sizes.
SIGLIP2_TEXT_CFG = {
    "context_length": 12,  # 64 in the real config; 12 is what the tiny test graph takes
    "vocab_size": 256000,
    "hf_tokenizer_name": "timm/ViT-B-32-SigLIP2-256",
    "tokenizer_kwargs": {"clean": "canonicalize"},
    "no_causal_mask": True,
    "proj_bias": True,
    "pool_type": "last",
}


@pytest.mark.parametrize(
    ("name", "text_cfg", "style", "clean", "pad_to_context"),
    [
        ("ViT-B-32-SigLIP2-256__webli", SIGLIP2_TEXT_CFG, "openclip", "canonicalize", True),
        (  # open_clip's HF text tower masks its pad id: padding to the longest query is exact
            "XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k",
            {
                "hf_model_name": "xlm-roberta-base",
                "hf_tokenizer_name": "xlm-roberta-base",
                "hf_pooler_type": "mean_pooler",
            },
            "openclip",
            "whitespace",  # open_clip HFTokenizer's default
            False,
        ),
        ("ViT-B-32__openai", {}, "openclip", "lower", False),  # SimpleTokenizer's default
        ("custom", {"no_causal_mask": True}, "openclip", "lower", True),  # argmax, no mask
        ("custom", {"pool_type": "last"}, "openclip", "lower", True),  # causal, read at the end
        ("custom", {"embed_cls": True}, "openclip", "lower", True),  # CoCa: class token last
        ("custom", {"pool_type": "eos", "eos_id": 2}, "openclip", "lower", False),
        # M-CLIP: the reference tokenizes raw text and the tower takes the attention mask.
        ("XLM-Roberta-Large-Vit-B-32", {}, "mclip", "none", False),
    ],
)
def test_immich_text_cleaning_and_padding_follow_open_clip(
    tmp_path: Path, name: str, text_cfg: dict, style: str, clean: str, pad_to_context: bool
) -> None:
    cfg = open_clip_config(**{"context_length": 12, **text_cfg})
    root = write_immich_bundle(tmp_path / name, model_config=cfg, style=style)
    text = check_bundle(root).config.text
    assert (text.clean, text.pad_to_context) == (clean, pad_to_context)
    assert text.lowercase == (clean in ("lower", "canonicalize"))


@pytest.mark.parametrize(
    ("text_cfg", "words"),
    [
        ({"tokenizer_kwargs": {"strip_sep_token": True}}, "strip_sep_token"),  # CLIPA
        ({"tokenizer_mode": "clips"}, "tokenizer_mode"),
        ({"tokenizer_kwargs": {"clean": "shout"}}, "shout"),
        ({"tokenizer_kwargs": ["clean"]}, "JSON object"),
    ],
)
def test_immich_tokenizer_options_we_cannot_honour_are_refused(
    tmp_path: Path, text_cfg: dict, words: str
) -> None:
    root = write_immich_bundle(tmp_path / "m", model_config=open_clip_config(**text_cfg))
    with pytest.raises(BundleError, match=words) as info:
        load_bundle(root)
    assert info.value.path == str(root / "config.json")


def test_immich_siglip_query_case_and_punctuation_do_not_matter(tmp_path: Path) -> None:
    """End to end through Immich's layout, on a cased Gemma-shaped tokenizer file."""
    cfg = open_clip_config(**SIGLIP2_TEXT_CFG)
    root = write_immich_bundle(tmp_path / "ViT-B-32-SigLIP2-256__webli", model_config=cfg)
    write_gemma_like_tokenizer(root / IMMICH_TOKENIZER)
    noisy, plain = load_bundle(root).tokenizer.encode(["Cat on a sofa!", "cat on a sofa"])
    assert noisy == plain


@pytest.mark.parametrize(
    ("text", "pad_to_context"),
    [
        ({"tokenizer": "hf"}, True),  # nothing known about an hf-kind tower: the safe way
        ({"tokenizer": "hf", "pad_to_context": False}, False),
        ({"tokenizer": "clip"}, False),  # our own causal exports, as before
        ({"tokenizer": "yttm", "tokenizer_file": "tokenizer.json"}, False),
    ],
)
def test_native_pad_to_context_default(tmp_path: Path, text: dict, pad_to_context: bool) -> None:
    cfg = bundle_config()
    cfg["text"] = {"context_length": 12, **text}
    config = load_bundle(write_bundle(tmp_path / "b", config=cfg)).config
    assert config.text.pad_to_context is pad_to_context and config.text.clean == "none"


def test_clean_is_refused_for_kinds_that_clean_their_own_way(tmp_path: Path) -> None:
    cfg = bundle_config()
    cfg["text"] = {"context_length": 12, "tokenizer": "clip", "clean": "canonicalize"}
    with pytest.raises(BundleError, match="hf tokenizer kind only") as info:
        load_bundle(write_bundle(tmp_path / "b", config=cfg))
    assert info.value.path == str(tmp_path / "b" / "config.json")


def test_immich_default_context_length_is_77(tmp_path: Path) -> None:
    root = write_immich_bundle(
        tmp_path / "m",
        model_config=open_clip_config(context_length=None),
        textual=textual_model(batch=1, length=77, input_dtype=TensorProto.INT32),
    )
    assert check_bundle(root).config.text.context_length == 77


def test_immich_int_size_and_lowercase_interpolation(tmp_path: Path) -> None:
    pre = {"size": 16, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "BILINEAR"}
    root = write_immich_bundle(tmp_path / "m", preprocess_cfg=pre)
    cfg = load_bundle(root).config
    assert cfg.image.size == 16 and cfg.image.interpolation == "bilinear"
    assert cfg.image.mean == (0.5, 0.5, 0.5) and cfg.image.resize_mode == "shortest"


@pytest.mark.parametrize(
    "file",
    [
        "config.json",
        "visual/model.onnx",
        "textual/model.onnx",
        "textual/tokenizer.json",
        "visual/preprocess_cfg.json",
    ],
)
def test_immich_missing_files(tmp_path: Path, file: str) -> None:
    root = write_immich_bundle(tmp_path / "m")
    (root / file).unlink()
    with pytest.raises(BundleError) as info:
        load_bundle(root)
    assert info.value.path == str(root / file)
    assert "missing file" in info.value.problem


def test_immich_non_square_size(tmp_path: Path) -> None:
    root = write_immich_bundle(tmp_path / "m", preprocess_cfg={"size": [16, 32]})
    with pytest.raises(BundleError, match="not square") as info:
        load_bundle(root)
    assert info.value.path.endswith("preprocess_cfg.json")


def test_immich_bad_resize_mode_names_preprocess_cfg(tmp_path: Path) -> None:
    root = write_immich_bundle(tmp_path / "m", preprocess_cfg={"size": 16, "resize_mode": "zoom"})
    with pytest.raises(BundleError, match="resize_mode") as info:
        load_bundle(root)
    assert info.value.path.endswith("preprocess_cfg.json")


def test_immich_unknown_pad_token(tmp_path: Path) -> None:
    root = write_immich_bundle(tmp_path / "m", tokenizer_config={"pad_token": "<nope>"})
    with pytest.raises(BundleError, match="pad_token") as info:
        load_bundle(root)
    assert info.value.path.endswith("tokenizer_config.json")


def test_immich_missing_embed_dim(tmp_path: Path) -> None:
    root = write_immich_bundle(tmp_path / "m")
    cfg = json.loads((root / "config.json").read_text())
    cfg["embed_dim"] = "wide"
    (root / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="embed_dim") as info:
        load_bundle(root)
    assert info.value.path.endswith("config.json")


def test_immich_textual_with_unexpected_inputs(tmp_path: Path) -> None:
    bad = textual_model(batch=1, length=12, input_name="tokens", input_dtype=TensorProto.INT32)
    root = write_immich_bundle(tmp_path / "m", textual=bad)
    _fails(root, "textual/model.onnx", "tokens")


def test_immich_directory_recognised_by_its_files(tmp_path: Path) -> None:
    root = write_immich_bundle(tmp_path / "m")
    (root / "config.json").write_text(json.dumps({"embed_dim": 8}))  # no vision_cfg/text_cfg
    cfg = load_bundle(root).config
    assert cfg.version == "immich" and cfg.image.size == 16 and cfg.text.context_length == 77


def test_tokenizer_is_loaded_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.models.text

    bundle = load_bundle(write_bundle(tmp_path / "b"))
    calls: list[Path] = []
    real = core.models.text.load_tokenizer

    def counting(path: Path, cfg: object) -> object:
        calls.append(path)
        return real(path, cfg)

    monkeypatch.setattr(core.models.text, "load_tokenizer", counting)
    first = bundle.tokenizer
    assert bundle.tokenizer is first and calls == [bundle.path]
