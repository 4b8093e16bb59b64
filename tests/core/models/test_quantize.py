"""int8 quantisation of whole bundles: loadable result, new model id, vectors close to fp32."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from core.errors import BundleError
from core.models.bundle import load_bundle
from core.models.check import check_bundle
from core.models.config import BundleConfig
from core.models.embedder import OnnxEmbedder
from tests.core.onnx_builders import VOCAB_SIZE, bundle_config, write_bundle, write_immich_bundle
from tools.__main__ import main
from tools.quantize import (
    _rewritten,
    _run_fp32,
    _same_outputs,
    fuse_attention,
    patch_convs_to_matmul,
    quantize_bundle,
    synthetic_pixels,
)

SIZE = 32
DIM = 64
HIDDEN = 256
CONTEXT = 12
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "models"


def _dense(rng: np.random.Generator, n_in: int, n_out: int, name: str) -> onnx.TensorProto:
    w = rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)
    return numpy_helper.from_array(w.astype(np.float32), name)


def _mlp(x: str, n_in: int, rng: np.random.Generator) -> tuple[list, list]:
    """x [N, n_in] -> Gelu(x W1 + b1) -> Gelu(. W2) -> . W3 -> embedding [N, DIM]."""
    nodes = [
        helper.make_node("MatMul", [x, "w1"], ["h1"]),
        helper.make_node("Add", ["h1", "b1"], ["h1b"]),
        helper.make_node("Gelu", ["h1b"], ["a1"]),
        helper.make_node("MatMul", ["a1", "w2"], ["h2"]),
        helper.make_node("Gelu", ["h2"], ["a2"]),
        helper.make_node("MatMul", ["a2", "w3"], ["embedding"]),
    ]
    inits = [
        _dense(rng, n_in, HIDDEN, "w1"),
        numpy_helper.from_array(rng.normal(0, 0.1, HIDDEN).astype(np.float32), "b1"),
        _dense(rng, HIDDEN, HIDDEN, "w2"),
        _dense(rng, HIDDEN, DIM, "w3"),
    ]
    return nodes, inits


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def mlp_visual(batch: int | str = "N", seed: int = 0) -> onnx.ModelProto:
    """image [N, 3, S, S] -> flatten -> MLP: weights big enough for int8 to matter."""
    rng = np.random.default_rng(seed)
    flat = 3 * SIZE * SIZE
    nodes, inits = _mlp("flat", flat, rng)
    nodes.insert(0, helper.make_node("Reshape", ["image", "shape"], ["flat"]))
    inits.append(numpy_helper.from_array(np.array([-1, flat], dtype=np.int64), "shape"))
    graph = helper.make_graph(
        nodes,
        "visual",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, DIM])],
        initializer=inits,
    )
    return _model(graph)


def mlp_textual(
    batch: int | str = "N", length: int | str = "L", dtype: int = TensorProto.INT64, seed: int = 1
) -> onnx.ModelProto:
    """text [N, L] -> embedding table -> mean over L -> MLP."""
    rng = np.random.default_rng(seed)
    nodes, inits = _mlp("pooled", DIM, rng)
    ids = "text"
    pre = []
    if dtype != TensorProto.INT64:
        pre.append(helper.make_node("Cast", ["text"], ["ids"], to=TensorProto.INT64))
        ids = "ids"
    pre += [
        helper.make_node("Gather", ["table", ids], ["emb"], axis=0),
        helper.make_node("ReduceMean", ["emb", "axis1"], ["pooled"], keepdims=0),
    ]
    inits += [
        numpy_helper.from_array(rng.standard_normal((VOCAB_SIZE, DIM)).astype(np.float32), "table"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]
    graph = helper.make_graph(
        pre + nodes,
        "textual",
        [helper.make_tensor_value_info("text", dtype, [batch, length])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, DIM])],
        initializer=inits,
    )
    return _model(graph)


PATCH = 8
WIDTH = 48


def patch_visual(
    seed: int = 2, bias: bool = True, stride: int = PATCH, pads: int = 0
) -> onnx.ModelProto:
    """A ViT-like image tower: a patch Conv (stride = kernel) on the input, flatten, MLP."""
    rng = np.random.default_rng(seed)
    grid = (SIZE + 2 * pads - PATCH) // stride + 1
    weight = rng.standard_normal((WIDTH, 3, PATCH, PATCH)) / np.sqrt(3 * PATCH * PATCH)
    inits = [numpy_helper.from_array(weight.astype(np.float32), "patch_w")]
    conv_in = ["image", "patch_w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.normal(0, 0.1, WIDTH).astype(np.float32), "pb"))
        conv_in.append("pb")
    flat = WIDTH * grid * grid
    nodes, mlp_inits = _mlp("flat", flat, rng)
    nodes[:0] = [
        helper.make_node(
            "Conv",
            conv_in,
            ["grid"],
            kernel_shape=[PATCH, PATCH],
            strides=[stride, stride],
            pads=[pads] * 4,
        ),
        helper.make_node("Reshape", ["grid", "shape"], ["flat"]),
    ]
    inits += [*mlp_inits, numpy_helper.from_array(np.array([-1, flat], np.int64), "shape")]
    graph = helper.make_graph(
        nodes,
        "visual",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", DIM])],
        initializer=inits,
    )
    return _model(graph)


def _run(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), opts, ["CPUExecutionProvider"])
    return session.run(None, feed)[0]


def _run_visual(model: onnx.ModelProto, pixels: np.ndarray) -> np.ndarray:
    return _run(model, {"image": pixels})


def load_bundle_config() -> BundleConfig:
    """The image settings of the tiny test bundles (what synthetic_pixels needs)."""
    return BundleConfig.model_validate(bundle_config(dim=DIM, size=SIZE, context_length=CONTEXT))


@pytest.mark.parametrize("bias", [True, False])
def test_patch_conv_becomes_an_equal_matmul(bias: bool) -> None:
    model = patch_visual(bias=bias)
    pixels = np.random.default_rng(3).standard_normal((3, 3, SIZE, SIZE)).astype(np.float32)
    want = _run_visual(model, pixels)
    assert patch_convs_to_matmul(model) == 1
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert "Conv" not in ops and "MatMul" in ops
    assert "patch_w" not in {t.name for t in model.graph.initializer}  # no dead fp32 copy
    np.testing.assert_allclose(_run_visual(model, pixels), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("stride", "pads"), [(PATCH // 2, 0), (PATCH, 1)])
def test_other_convs_are_left_alone(stride: int, pads: int) -> None:
    model = patch_visual(stride=stride, pads=pads)
    assert patch_convs_to_matmul(model) == 0
    assert "Conv" in [n.op_type for n in model.graph.node]


def test_patch_embedding_is_quantized(tmp_path: Path) -> None:
    src = write_bundle(
        tmp_path / "vit",
        visual=patch_visual(),
        textual=mlp_textual(),
        dim=DIM,
        size=SIZE,
        context_length=CONTEXT,
    )
    report = quantize_bundle(src, tmp_path / "vit-int8", threads=1)
    model = onnx.load(str(tmp_path / "vit-int8" / "visual.onnx"))
    assert "Conv" not in {n.op_type for n in model.graph.node}
    assert not any(len(t.dims) == 4 for t in model.graph.initializer)  # no fp32 kernel left
    assert sorted(p.name for p in (tmp_path / "vit-int8").iterdir()) == [
        "config.json",
        "textual.onnx",
        "tokenizer.json",
        "visual.onnx",
    ]
    assert report.visual.cosine_min > 0.99


HEADS = 4
TOKENS = (SIZE // PATCH) ** 2


def attention_nodes(
    x: str,
    out: str,
    rng: np.random.Generator,
    *,
    seq_first: bool = True,
    stream: str = "NLD",
    scale: float | None = None,
    mask: bool = False,
    tokens: int = TOKENS,
) -> tuple[list, list]:
    """x -> x + self-attention(x), written the way torch's dynamo exporter writes
    ``nn.MultiheadAttention``: packed q|k|v, reshapes and transposes to per-head layout, q and k
    each scaled by head**-0.25. x is [N, L, D] (``stream="NLD"``), the block running through
    [L, N, D] when ``seq_first`` (open_clip); or x is [L, N, D] (``"LND"``, ruCLIP)."""
    d, hd = WIDTH, WIDTH // HEADS
    s = (hd**-0.25) if scale is None else scale

    def arr(name: str, a: np.ndarray, dtype: type = np.float32) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(a, dtype), f"{out}/{name}")

    n = f"{out}/"
    inits = [
        arr("w_in", rng.standard_normal((d, 3 * d)) / np.sqrt(d)),
        arr("b_in", rng.normal(0, 0.1, 3 * d)),
        arr("w_out", rng.standard_normal((d, d)) / np.sqrt(d)),
        arr("b_out", rng.normal(0, 0.1, d)),
        arr("s", s),
        *(arr(f"i{i}", i, np.int64) for i in range(3)),
    ]
    if seq_first:
        inits += [
            arr("split_heads", [tokens, 0, 3, HEADS, hd], np.int64),
            arr("merge_heads", [tokens, 0, d], np.int64),
        ]
        head_perm, back_perm = [2, 1, 3, 0, 4], [2, 0, 1, 3]
    else:
        inits += [
            arr("split_heads", [0, tokens, 3, HEADS, hd], np.int64),
            arr("merge_heads", [0, tokens, d], np.int64),
        ]
        head_perm, back_perm = [2, 0, 3, 1, 4], [0, 2, 1, 3]
    first = x
    nodes = []
    transpose_io = seq_first and stream == "NLD"
    if transpose_io:
        nodes.append(helper.make_node("Transpose", [x], [n + "lnd"], perm=[1, 0, 2]))
        first = n + "lnd"
    nodes += [
        helper.make_node("MatMul", [first, n + "w_in"], [n + "qkv0"]),
        helper.make_node("Add", [n + "qkv0", n + "b_in"], [n + "qkv"]),
        helper.make_node("Reshape", [n + "qkv", n + "split_heads"], [n + "heads"]),
        helper.make_node("Transpose", [n + "heads"], [n + "t"], perm=head_perm),
        *(
            helper.make_node("Gather", [n + "t", n + f"i{i}"], [n + "qkv"[i]], axis=0)
            for i in range(3)
        ),
        helper.make_node("Mul", [n + "q", n + "s"], [n + "qs"]),
        helper.make_node("Transpose", [n + "k"], [n + "kt"], perm=[0, 1, 3, 2]),
        helper.make_node("Mul", [n + "kt", n + "s"], [n + "ks"]),
        helper.make_node("MatMul", [n + "qs", n + "ks"], [n + "scores"]),
    ]
    scores = n + "scores"
    if mask:
        causal = np.triu(np.full((tokens, tokens), -1e4, np.float32), 1)
        inits.append(arr("mask", causal))
        nodes.append(helper.make_node("Add", [scores, n + "mask"], [n + "masked"]))
        scores = n + "masked"
    nodes += [
        helper.make_node("Softmax", [scores], [n + "p"], axis=-1),
        helper.make_node("MatMul", [n + "p", n + "v"], [n + "mixed"]),
        helper.make_node("Transpose", [n + "mixed"], [n + "mt"], perm=back_perm),
        helper.make_node("Reshape", [n + "mt", n + "merge_heads"], [n + "merged"]),
        helper.make_node("MatMul", [n + "merged", n + "w_out"], [n + "o0"]),
        helper.make_node("Add", [n + "o0", n + "b_out"], [n + "o"]),
    ]
    o = n + "o"
    if transpose_io:
        nodes.append(helper.make_node("Transpose", [o], [n + "nld"], perm=[1, 0, 2]))
        o = n + "nld"
    nodes.append(helper.make_node("Add", [x, o], [out]))
    return nodes, inits


def attention_model(stream: str = "NLD", **kwargs: Any) -> onnx.ModelProto:
    """x -> two attention blocks -> mean over L -> embedding [N, D]."""
    rng = np.random.default_rng(4)
    nodes, inits = attention_nodes("x", "h1", rng, stream=stream, **kwargs)
    more, more_inits = attention_nodes("h1", "h2", rng, stream=stream, **kwargs)
    axis = stream.index("L")
    nodes += [*more, helper.make_node("ReduceMean", ["h2", "axis"], ["embedding"], keepdims=0)]
    inits += [*more_inits, numpy_helper.from_array(np.array([axis], np.int64), "axis")]
    dims = {"N": "N", "L": TOKENS, "D": WIDTH}
    graph = helper.make_graph(
        nodes,
        "attention",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [dims[c] for c in stream])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", WIDTH])],
        initializer=inits,
    )
    return _model(graph)


def vit_visual(**kwargs: Any) -> onnx.ModelProto:
    """A tiny ViT: patch Conv -> [N, L, D] -> attention block -> mean -> projection."""
    rng = np.random.default_rng(5)
    weight = rng.standard_normal((WIDTH, 3, PATCH, PATCH)) / np.sqrt(3 * PATCH * PATCH)
    block, block_inits = attention_nodes("tokens", "h", rng, **kwargs)
    nodes = [
        helper.make_node(
            "Conv", ["image", "patch_w"], ["grid"], kernel_shape=[PATCH] * 2, strides=[PATCH] * 2
        ),
        helper.make_node("Reshape", ["grid", "to_tokens"], ["nd_l"]),
        helper.make_node("Transpose", ["nd_l"], ["tokens"], perm=[0, 2, 1]),
        *block,
        helper.make_node("ReduceMean", ["h", "axis1"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "proj"], ["embedding"]),
    ]
    inits = [
        *block_inits,
        numpy_helper.from_array(weight.astype(np.float32), "patch_w"),
        numpy_helper.from_array(np.array([0, WIDTH, TOKENS], np.int64), "to_tokens"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        _dense(rng, WIDTH, DIM, "proj"),
    ]
    graph = helper.make_graph(
        nodes,
        "visual",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", DIM])],
        initializer=inits,
    )
    return _model(graph)


@pytest.mark.parametrize(
    ("stream", "seq_first", "transposes"),
    [("NLD", True, 0), ("NLD", False, 0), ("LND", True, 4)],
    ids=["open_clip", "batch-first", "ruclip"],
)
def test_attention_blocks_become_multi_head_attention(
    stream: str, seq_first: bool, transposes: int
) -> None:
    model = attention_model(stream=stream, seq_first=seq_first)
    fused = onnx.ModelProto()
    fused.CopyFrom(model)
    assert fuse_attention(fused) == 2
    onnx.checker.check_model(fused)
    ops = [n.op_type for n in fused.graph.node]
    assert ops.count("MultiHeadAttention") == 2
    assert ops.count("Transpose") == transposes  # [L, N, D] in and out of each block
    assert "Softmax" not in ops and "Gather" not in ops
    shape = (3, TOKENS, WIDTH) if stream == "NLD" else (TOKENS, 3, WIDTH)
    x = np.random.default_rng(6).standard_normal(shape).astype(np.float32)
    assert _same_outputs(_run_fp32(model, {"x": x}), fused, {"x": x})
    want, got = _run(model, {"x": x}), _run(fused, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_masked_attention_is_left_alone() -> None:
    model = attention_model(mask=True)
    before = [n.op_type for n in model.graph.node]
    assert fuse_attention(model) == 0
    assert [n.op_type for n in model.graph.node] == before


def test_a_rewrite_that_changes_outputs_is_not_used() -> None:
    # Same structure, but q.k is scaled by 1 instead of 1/sqrt(head): the fused op would use
    # its default scale, so the check against the original must refuse the fusion.
    pixels = synthetic_pixels(load_bundle_config(), n=2)
    model = vit_visual(scale=1.0)
    out = _rewritten(model, pixels)
    assert out is not None  # the patch embedding is still rewritten
    ops = {n.op_type for n in out.graph.node}
    assert "MultiHeadAttention" not in ops and "Conv" not in ops
    good = _rewritten(vit_visual(), pixels)
    assert good is not None and "MultiHeadAttention" in {n.op_type for n in good.graph.node}


def test_vit_bundle_is_quantized_with_fused_attention(tmp_path: Path) -> None:
    src = write_bundle(
        tmp_path / "vit",
        visual=vit_visual(),
        textual=mlp_textual(),
        dim=DIM,
        size=SIZE,
        context_length=CONTEXT,
    )
    report = quantize_bundle(src, tmp_path / "vit-int8", threads=1)
    ops = {n.op_type for n in onnx.load(str(tmp_path / "vit-int8" / "visual.onnx")).graph.node}
    assert "MultiHeadAttention" in ops and "Conv" not in ops and "Softmax" not in ops
    check_bundle(tmp_path / "vit-int8")
    assert report.visual.cosine_min > 0.99
    vis, _ = _cosines(src, tmp_path / "vit-int8")
    assert vis.min() > 0.99


@pytest.fixture(scope="module")
def fp32_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bundle(
        tmp_path_factory.mktemp("fp32") / "tiny",
        visual=mlp_visual(),
        textual=mlp_textual(),
        dim=DIM,
        size=SIZE,
        context_length=CONTEXT,
        source="test MLP towers",
    )


def _cosines(src: Path, dst: Path) -> tuple[np.ndarray, np.ndarray]:
    a, b = OnnxEmbedder(load_bundle(src), threads=1), OnnxEmbedder(load_bundle(dst), threads=1)
    pixels = synthetic_pixels(a.config, n=6, seed=7)  # not the images quantize_bundle used
    texts = ["a photo of a cat", "red car in the sea", "кот", "дом на море под солнцем"]
    vis = np.sum(a.encode_pixels(pixels) * b.encode_pixels(pixels), axis=1)
    txt = np.sum(a.encode_texts(texts) * b.encode_texts(texts), axis=1)
    return vis, txt


def _initializer_types(path: Path) -> set[int]:
    return {init.data_type for init in onnx.load(str(path)).graph.initializer}


def test_quantized_bundle_loads_and_matches_fp32(fp32_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "tiny-int8"
    report = quantize_bundle(fp32_bundle, out, threads=1)

    bundle = check_bundle(out)  # loads, runs both towers, dims agree with the config
    src = load_bundle(fp32_bundle).config
    assert bundle.config.name == f"{src.name}-int8"
    assert bundle.config.model_id != src.model_id
    assert bundle.config.embed_dim == src.embed_dim
    assert bundle.config.image == src.image
    assert bundle.config.text == src.text
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "textual.onnx",
        "tokenizer.json",
        "visual.onnx",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-int8"]  # no temp dir left
    for tower in ("visual.onnx", "textual.onnx"):
        assert TensorProto.INT8 in _initializer_types(out / tower)
        assert (out / tower).stat().st_size < (fp32_bundle / tower).stat().st_size / 2

    vis, txt = _cosines(fp32_bundle, out)
    assert vis.min() > 0.98
    assert txt.min() > 0.98
    assert report.visual.cosine_min > 0.98
    assert report.textual.cosine_min > 0.98
    assert report.model_id == bundle.config.model_id


def test_text_length_stays_dynamic(fp32_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "q"
    quantize_bundle(fp32_bundle, out, threads=1)
    text_input = onnx.load(str(out / "textual.onnx")).graph.input[0]
    dims = [d.dim_param or d.dim_value for d in text_input.type.tensor_type.shape.dim]
    assert dims == ["N", "L"]


def test_immich_layout_becomes_our_layout(tmp_path: Path) -> None:
    src = write_immich_bundle(
        tmp_path / "Tiny__immich",
        dim=DIM,
        size=SIZE,
        context_length=CONTEXT,
        visual=mlp_visual(batch=1),
        textual=mlp_textual(batch=1, length=CONTEXT, dtype=TensorProto.INT32),
    )
    out = tmp_path / "tiny-int8"
    report = quantize_bundle(src, out, threads=1)
    bundle = check_bundle(out)
    assert bundle.layout == "native"
    assert bundle.config.name == load_bundle(src).config.name + "-int8"
    assert bundle.config.text.tokenizer_file == "tokenizer.json"
    assert report.visual.cosine_min > 0.98 and report.textual.cosine_min > 0.98


def test_refuses_to_quantize_twice(fp32_bundle: Path, tmp_path: Path) -> None:
    once = tmp_path / "once"
    quantize_bundle(fp32_bundle, once, threads=1)
    with pytest.raises(BundleError, match="already int8"):
        quantize_bundle(once, tmp_path / "twice", threads=1)
    assert not (tmp_path / "twice").exists()


def test_cli_prints_the_cosines(
    fp32_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["quantize", str(fp32_bundle), "--out", str(tmp_path / "q"), "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "visual.onnx:" in out and "textual.onnx:" in out and "cosine vs fp32 min" in out


@pytest.mark.parametrize("name", ["clip-fixture", "ruclip-fixture"])
def test_fixture_bundles_survive_int8(name: str, tmp_path: Path) -> None:
    src = FIXTURES / name
    if not (src / "config.json").is_file():
        pytest.skip(f"{src} not built yet (make fixtures)")
    report = quantize_bundle(src, tmp_path / f"{name}-int8", threads=1)
    check_bundle(tmp_path / f"{name}-int8")
    assert report.visual.cosine_min > 0.98
    assert report.textual.cosine_min > 0.98


def test_a_failing_rewrite_only_costs_the_rewrite(monkeypatch: pytest.MonkeyPatch) -> None:
    import tools.quantize as quantize

    calls: list[onnx.ModelProto] = []

    def refuse(model: onnx.ModelProto) -> int:
        calls.append(model)
        raise ValueError("too large for shape inference")

    monkeypatch.setattr(quantize, "fuse_attention", refuse)
    pixels = synthetic_pixels(load_bundle_config(), n=2)
    out = _rewritten(vit_visual(), pixels)
    assert calls  # the attention rewrite was tried and failed
    assert out is not None  # the patch embedding alone
    assert {"MultiHeadAttention", "Conv"}.isdisjoint(n.op_type for n in out.graph.node)
