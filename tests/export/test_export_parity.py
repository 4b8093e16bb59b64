"""Exported ONNX towers give what torch gives (export tier: needs torch, open_clip, ruclip).

Run with ``.venv-export/bin/python -m pytest -m export tests/export``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")
pytest.importorskip("onnxruntime")

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from core.errors import BundleError  # noqa: E402
from core.models.bundle import load_bundle  # noqa: E402
from core.models.check import check_bundle  # noqa: E402
from tools import export  # noqa: E402
from tools.export import (  # noqa: E402
    build_open_clip,
    build_ruclip_random,
    export_open_clip_model,
    export_ruclip_model,
    max_normalized_diff,
    open_clip_image_config,
    ruclip_image_config,
    train_sample_bpe,
)

pytestmark = pytest.mark.export
TOL = 1e-4
QUERIES = ["a photo of a cat", "кошка спит на красном диване", "dog", "море, солнце и пальмы"]


@dataclass
class Exported:
    model: Any
    path: Path
    sessions: dict[str, ort.InferenceSession] = field(default_factory=dict)

    def session(self, tower: str) -> ort.InferenceSession:
        if tower not in self.sessions:  # a 350 MB tower takes seconds to load: once per module
            path = str(self.path / f"{tower}.onnx")
            self.sessions[tower] = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return self.sessions[tower]

    def torch_image(self, images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model.encode_image(torch.from_numpy(images)).numpy()

    def torch_text(self, ids: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model.encode_text(torch.from_numpy(ids)).numpy()


@pytest.fixture(scope="module")
def clip_b32(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    torch.manual_seed(0)
    model = build_open_clip("ViT-B-32", "openai", random_weights=True)
    out = export_open_clip_model(
        model,
        tmp_path_factory.mktemp("clip") / "clip-b32",
        name="clip-vit-b-32-random",
        version="test",
        languages=("en",),
        image=open_clip_image_config(model),
    )
    return Exported(model, out)


@pytest.fixture(scope="module")
def ruclip_384(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    torch.manual_seed(0)
    model = build_ruclip_random("ruclip-vit-base-patch32-384")
    work = tmp_path_factory.mktemp("ruclip")
    bpe = train_sample_bpe(work / "sample-bpe.model")
    out = export_ruclip_model(
        model,
        bpe,
        work / "ruclip-384",
        name="ruclip-vit-base-patch32-384-random",
        version="test",
        image=ruclip_image_config(model.visual.input_resolution),
    )
    return Exported(model, out)


@pytest.fixture(params=["clip_b32", "ruclip_384"])
def exported(request: pytest.FixtureRequest) -> Exported:
    return request.getfixturevalue(request.param)


def _images(size: int, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


def _padded(seqs: list[list[int]], length: int, pad: int) -> np.ndarray:
    out = np.full((len(seqs), length), pad, dtype=np.int64)
    for row, seq in enumerate(seqs):
        out[row, : len(seq)] = seq
    return out


def test_image_tower_matches_torch(exported: Exported) -> None:
    size = load_bundle(exported.path).config.image.size
    session = exported.session("visual")
    for n, seed in ((1, 1), (3, 2)):  # the batch axis is dynamic
        images = _images(size, n, seed)
        got = session.run(["embedding"], {"image": images})[0]
        assert max_normalized_diff(exported.torch_image(images), got) <= TOL


def test_text_tower_matches_torch_at_full_length(exported: Exported) -> None:
    cfg = load_bundle(exported.path).config.text
    seqs = load_bundle(exported.path).tokenizer.encode(QUERIES)
    ids = _padded(seqs, cfg.context_length, cfg.pad_id)
    got = exported.session("textual").run(["embedding"], {"text": ids})[0]
    assert max_normalized_diff(exported.torch_text(ids), got) <= TOL


def test_text_cut_to_its_real_length_equals_full_padding(exported: Exported) -> None:
    bundle = load_bundle(exported.path)
    cfg = bundle.config.text
    session = exported.session("textual")
    for queries in (QUERIES, QUERIES[2:3]):
        seqs = bundle.tokenizer.encode(queries)
        longest = max(len(s) for s in seqs)
        full = _padded(seqs, cfg.context_length, cfg.pad_id)
        assert longest < cfg.context_length
        got = session.run(["embedding"], {"text": full[:, :longest]})[0]
        assert max_normalized_diff(exported.torch_text(full), got) <= TOL
    framed_only = _padded([[cfg.sot_id, cfg.eot_id]], cfg.context_length, cfg.pad_id)
    got = session.run(["embedding"], {"text": framed_only[:, :2]})[0]
    assert max_normalized_diff(exported.torch_text(framed_only), got) <= TOL


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_graphs_follow_the_bundle_contract(exported: Exported) -> None:
    bundle = check_bundle(exported.path)  # loads, tokenizes, runs both towers, checks widths
    cfg = bundle.config
    visual = onnx.load(str(bundle.visual_path), load_external_data=False).graph
    textual = onnx.load(str(bundle.textual_path), load_external_data=False).graph
    assert [i.name for i in visual.input] == ["image"]
    assert _dims(visual.input[0]) == ["batch", 3, cfg.image.size, cfg.image.size]
    assert [i.name for i in textual.input] == ["text"]
    assert textual.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert _dims(textual.input[0]) == ["batch", "length"]
    for graph in (visual, textual):
        assert [o.name for o in graph.output] == ["embedding"]
        assert _dims(graph.output[0])[1] == cfg.embed_dim == 512


def test_clip_bundle_config(clip_b32: Exported) -> None:
    cfg = load_bundle(clip_b32.path).config
    assert (cfg.text.tokenizer, cfg.text.tokenizer_file) == ("clip", "tokenizer.json")
    assert (cfg.text.sot_id, cfg.text.eot_id, cfg.text.pad_id) == (49406, 49407, 0)
    assert cfg.text.context_length == 77
    assert (cfg.image.size, cfg.image.resize_mode, cfg.image.interpolation) == (
        224,
        "shortest",
        "bicubic",
    )
    assert cfg.languages == ("en",)


def test_ruclip_bundle_config_and_architecture(ruclip_384: Exported) -> None:
    cfg = load_bundle(ruclip_384.path).config
    assert (cfg.text.tokenizer, cfg.text.tokenizer_file) == ("yttm", "bpe.model")
    assert (cfg.text.sot_id, cfg.text.eot_id, cfg.text.pad_id) == (2, 3, 0)
    assert (cfg.image.size, cfg.image.resize_mode, cfg.image.interpolation) == (
        384,
        "crop_resize",
        "bilinear",
    )
    assert cfg.languages == ("ru",)
    m = ruclip_384.model
    assert m.visual.conv1.kernel_size == (32, 32)
    assert len(m.visual.transformer.resblocks) == 12 and m.visual.transformer.width == 768
    assert (m.transformer.width, m.transformer.layers) == (512, 12)
    assert m.transformer.resblocks[0].attn.num_heads == 8
    assert (m.context_length, m.vocab_size, m.eos_id) == (77, 49408, 3)


# --- small models: the fixed-length fallback and the loud failure --------------------------------


def _tiny_clip(**text_cfg: Any) -> Any:
    import open_clip

    torch.manual_seed(0)
    vision = open_clip.CLIPVisionCfg(
        layers=1, width=64, head_width=32, patch_size=16, image_size=32
    )
    text = open_clip.CLIPTextCfg(
        context_length=16, vocab_size=49408, width=32, heads=2, layers=2, **text_cfg
    )
    return open_clip.CLIP(embed_dim=16, vision_cfg=vision, text_cfg=text).eval()


def _export_tiny(model: Any, out: Path) -> Path:
    return export_open_clip_model(
        model,
        out,
        name="tiny",
        version="1",
        languages=("en",),
        image=open_clip_image_config(model),
    )


def test_non_causal_text_tower_is_exported_at_fixed_length(tmp_path: Path) -> None:
    model = _tiny_clip(no_causal_mask=True)  # padding changes the output: L cannot be cut
    out = _export_tiny(model, tmp_path / "tiny")
    textual = onnx.load(str(out / "textual.onnx")).graph
    assert _dims(textual.input[0]) == ["batch", 16]
    check_bundle(out)
    ids = _padded([[49406, 320, 1125, 49407], [49406, 49407]], 16, 0)
    got = ort.InferenceSession(str(out / "textual.onnx")).run(["embedding"], {"text": ids})[0]
    with torch.no_grad():
        want = model.encode_text(torch.from_numpy(ids)).numpy()
    assert max_normalized_diff(want, got) <= TOL


def test_a_diverging_export_fails_loudly_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real: Callable[[Any], Any] = export._visual_module

    def off_by_a_bit(model: Any) -> Any:
        inner = real(model)

        class Skewed(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, image: Any) -> Any:
                out = self.inner(image)
                return out + 0.05 * out.abs().max()

        return Skewed().eval()

    monkeypatch.setattr(export, "_visual_module", off_by_a_bit)
    with pytest.raises(BundleError, match="image tower: ONNX output differs from torch"):
        _export_tiny(_tiny_clip(), tmp_path / "tiny")
    assert list(tmp_path.iterdir()) == []


# --- the command line: model building and naming, with the (tested above) export stubbed --------


def test_cli_export_builds_the_named_architectures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools.__main__ import main

    calls: list[dict[str, Any]] = []

    def record(model: Any, *args: Any, **kwargs: Any) -> Path:
        calls.append({"model": model, "args": args, **kwargs})
        return Path(args[-1])

    monkeypatch.setattr(export, "export_open_clip_model", record)
    monkeypatch.setattr(export, "export_ruclip_model", record)
    argv = ["export", "clip", "--arch", "ViT-B-32", "--pretrained", "openai", "--random-weights"]
    assert main([*argv, "--out", str(tmp_path / "c")]) == 0
    argv = ["export", "ruclip", "--name", "ruclip-vit-base-patch32-384", "--random-weights"]
    assert main([*argv, "--out", str(tmp_path / "r"), "--seed", "3"]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "c"), str(tmp_path / "r")]

    clip, ruclip = calls
    assert (clip["name"], clip["version"], clip["languages"]) == (
        "clip-vit-b-32-random",
        "random-seed0",
        ("en",),
    )
    assert clip["image"] == open_clip_image_config(clip["model"])
    assert clip["image"].size == 224
    assert "random weights" in clip["source"]
    assert type(clip["model"].visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"

    bpe, _ = ruclip["args"]
    assert (ruclip["name"], ruclip["version"]) == (
        "ruclip-vit-base-patch32-384-random",
        "random-seed3",
    )
    assert ruclip["image"] == ruclip_image_config(384)
    assert ruclip["model"].visual.input_resolution == 384
    assert Path(bpe).name == "bpe.model"
