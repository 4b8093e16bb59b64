"""Dynamic int8 quantisation of a bundle: both towers, written as a new complete bundle.

Dynamic quantisation (``onnxruntime.quantization.quantize_dynamic``) stores weights as int8 and
quantises activations on the fly, so it needs no calibration photos; static quantisation
calibrated on anything but real photos loses far more accuracy. Choices, measured on a
random-weight ViT-B/32 export on an AVX2 CPU without VNNI:

* ``reduce_range`` (7-bit weights): onnxruntime multiplies uint8 activations by int8 weights
  with instructions that saturate on AVX2 without VNNI; full-range int8 weights gave image
  cosine 0.984 against fp32, 7-bit ones 0.9997 at the same speed (about 2x fp32);
* per-channel weight scales make up for the lost bit (text cosine 0.998 instead of 0.996);
* ``Gather`` too: the token embedding table is most of a CLIP text tower (254 -> 65 MB instead
  of 141 MB) and costs no measurable cosine;
* the image tower is rewritten first, each rewrite kept only if the fp32 outputs stay the same:
  a ViT's patch embedding (a ``Conv`` whose stride equals its kernel) becomes reshape +
  ``MatMul``, so it is quantised like the other layers (the fp32 ``Conv`` was about 5% of an
  int8 ViT-B/32 image run; the image cosine moves by 3e-5), and each exported self-attention
  block becomes one ``MultiHeadAttention`` op (the exporter's per-head reshapes and transposes
  were another 5-10%).

The int8 vectors differ from the fp32 ones, so the result is a different model: its config
``name`` gets the ``-int8`` suffix, and every stored vector says which of the two made it.

Needs ``onnx`` (onnxruntime's quantiser imports it), a dev/export dependency; the runtime only
reads the result.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.errors import BundleError
from core.models.bundle import load_bundle
from core.models.config import BundleConfig

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

INT8_SUFFIX = "-int8"
# Ops with weights; attention's activation-by-activation MatMuls stay fp32 (MatMulConstBOnly).
DEFAULT_OP_TYPES = ("MatMul", "Gemm", "Gather")
VISUAL_FILE = "visual.onnx"
TEXTUAL_FILE = "textual.onnx"

# Queries the int8 text tower is compared on (both languages; a tokenizer ignores what it
# cannot spell, the comparison still holds).
SAMPLE_QUERIES = (
    "a photo of a cat",
    "a dog running on the beach at sunset",
    "screenshot of a chat",
    "red car parked near a house",
    "mountains covered with snow",
    "birthday cake with candles",
    "кошка спит на диване",
    "собака на пляже",
    "красная машина у дома",
    "горы под снегом",
    "торт со свечами на дне рождения",
    "чек из магазина",
)


@dataclass(frozen=True)
class TowerReport:
    """How one tower changed: file sizes and output cosine against fp32 (min and mean)."""

    file: str
    bytes_fp32: int
    bytes_int8: int
    cosine_min: float
    cosine_mean: float

    def line(self) -> str:
        return (
            f"{self.file}: {self.bytes_fp32 / 1e6:.1f} MB -> {self.bytes_int8 / 1e6:.1f} MB, "
            f"cosine vs fp32 min {self.cosine_min:.4f} mean {self.cosine_mean:.4f}"
        )


@dataclass(frozen=True)
class QuantizeReport:
    out_dir: Path
    model_id: str
    visual: TowerReport
    textual: TowerReport

    def lines(self) -> list[str]:
        return [f"{self.out_dir} ({self.model_id})", self.visual.line(), self.textual.line()]


def synthetic_pixels(config: BundleConfig, n: int = 8, seed: int = 0) -> np.ndarray:
    """Model-ready [n, 3, S, S] images: smooth colour fields plus grain, normalised like the
    model's preprocessing, so activations cover the ranges real photos give."""
    rng = np.random.default_rng(seed)
    size = config.image.size
    coarse = rng.random((n, 3, 6, 6))
    idx = np.minimum(np.arange(size) * 6 // size, 5)
    smooth = coarse[:, :, idx][:, :, :, idx]
    img = np.clip(smooth + rng.normal(0.0, 0.05, smooth.shape), 0.0, 1.0)
    mean = np.asarray(config.image.mean).reshape(1, 3, 1, 1)
    std = np.asarray(config.image.std).reshape(1, 3, 1, 1)
    return ((img - mean) / std).astype(np.float32)


def _row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine per row of two already normalised [N, D] arrays."""
    return np.sum(np.asarray(a, np.float64) * np.asarray(b, np.float64), axis=1)


def _int8_config(cfg: BundleConfig, tokenizer_file: str) -> BundleConfig:
    source = f"{cfg.source}; " if cfg.source else ""
    return BundleConfig.model_validate(
        {
            **cfg.model_dump(),
            "name": f"{cfg.name}{INT8_SUFFIX}",
            "visual_file": VISUAL_FILE,
            "textual_file": TEXTUAL_FILE,
            "text": {**cfg.text.model_dump(), "tokenizer_file": tokenizer_file},
            "source": f"{source}int8 dynamic quantisation of {cfg.model_id}",
        }
    )


class _NoPreprocessHint(logging.Filter):
    """Drop the quantiser's advice to pre-process the model first: its shape inference and
    optimisation changed neither the graph's quantised ops nor the cosines here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _static_dims(graph: onnx.GraphProto, name: str) -> list[int] | None:
    """The dims of graph input ``name`` when all but the first (batch) are fixed numbers."""
    for value in graph.input:
        if value.name == name:
            dims = [
                d.dim_value if d.HasField("dim_value") else 0
                for d in value.type.tensor_type.shape.dim
            ]
            return dims if dims and all(d > 0 for d in dims[1:]) else None
    return None


def patch_convs_to_matmul(model: onnx.ModelProto) -> int:
    """Rewrite each patch-embedding ``Conv`` on a graph input (stride == kernel, no padding,
    dilation or groups) as Reshape -> Transpose -> Reshape -> ``MatMul`` (+ bias) -> back to the
    Conv's [N, D, H/k, W/k] layout, which is the same arithmetic; returns how many it rewrote.

    The quantiser leaves ``Conv`` in fp32 (dynamic ConvInteger is slow on CPU), ``MatMul`` it
    quantises like every other layer."""
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    done = 0
    for node in list(graph.node):
        if node.op_type != "Conv" or node.input[1] not in inits:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight = numpy_helper.to_array(inits[node.input[1]])
        dims = _static_dims(graph, node.input[0])
        if weight.ndim != 4 or dims is None or len(dims) != 4:
            continue
        d, c, kh, kw = weight.shape
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if (
            list(attrs.get("strides", [1, 1])) != [kh, kw]
            or list(attrs.get("kernel_shape", [kh, kw])) != [kh, kw]
            or any(attrs.get("pads", [0]))
            or any(x != 1 for x in attrs.get("dilations", [1]))
            or attrs.get("group", 1) != 1
            or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID")
            or dims[1] != c
            or dims[2] % kh
            or dims[3] % kw
            or (bias is not None and bias not in inits)
        ):
            continue
        gh, gw = dims[2] // kh, dims[3] // kw
        p = f"{node.output[0]}/patches"
        graph.initializer.extend(
            [
                numpy_helper.from_array(np.array([-1, c, gh, kh, gw, kw], np.int64), f"{p}/grid"),
                numpy_helper.from_array(
                    np.array([-1, gh * gw, c * kh * kw], np.int64), f"{p}/flat"
                ),
                numpy_helper.from_array(np.array([-1, d, gh, gw], np.int64), f"{p}/out"),
                numpy_helper.from_array(
                    np.ascontiguousarray(weight.reshape(d, -1).T), f"{p}/weight"
                ),
            ]
        )
        new = [
            helper.make_node("Reshape", [node.input[0], f"{p}/grid"], [f"{p}/0"]),
            helper.make_node("Transpose", [f"{p}/0"], [f"{p}/1"], perm=[0, 2, 4, 1, 3, 5]),
            helper.make_node("Reshape", [f"{p}/1", f"{p}/flat"], [f"{p}/2"]),
            helper.make_node("MatMul", [f"{p}/2", f"{p}/weight"], [f"{p}/3"]),
        ]
        last = f"{p}/3"
        if bias is not None:
            new.append(helper.make_node("Add", [last, bias], [f"{p}/4"]))
            last = f"{p}/4"
        new += [
            helper.make_node("Transpose", [last], [f"{p}/5"], perm=[0, 2, 1]),
            helper.make_node("Reshape", [f"{p}/5", f"{p}/out"], [node.output[0]]),
        ]
        at = list(graph.node).index(node)
        graph.node.remove(node)
        for k, item in enumerate(new):
            graph.node.insert(at + k, item)
        if not any(node.input[1] in n.input for n in graph.node):
            graph.initializer.remove(inits[node.input[1]])
        done += 1
    return done


# Ops that only move, pick or rescale data between an attention block's projections.
_LAYOUT_OPS = frozenset(
    {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Gather", "Split", "Slice", "Mul", "Identity"}
)
_RESHAPES = frozenset({"Reshape", "Transpose", "Squeeze", "Unsqueeze"})


class _Graph:
    """Producers, consumers, constants and inferred shapes of a graph, for pattern matching."""

    def __init__(self, model: onnx.ModelProto) -> None:
        from onnx import shape_inference

        self.graph = model.graph
        self.inits = {t.name: t for t in model.graph.initializer}
        self.shapes: dict[str, list[int | str]] = {}
        inferred = shape_inference.infer_shapes(model).graph
        for value in [*inferred.value_info, *inferred.input, *inferred.output]:
            dims = value.type.tensor_type.shape.dim
            self.shapes[value.name] = [d.dim_value or d.dim_param for d in dims]
        self.producer = {o: n for n in self.graph.node for o in n.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def const(self, name: str) -> np.ndarray | None:
        from onnx import numpy_helper

        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant" and node.attribute[0].name == "value":
            return numpy_helper.to_array(node.attribute[0].t)
        return None

    def up(self, name: str) -> str:
        """Follow the data input up through layout ops and scalings by a constant."""
        while (node := self.producer.get(name)) is not None and node.op_type in _LAYOUT_OPS:
            data = [i for i in node.input if i and self.const(i) is None]
            if node.op_type == "Mul" and len(data) != 1:
                break
            name = data[0] if node.op_type == "Mul" else node.input[0]
        return name

    def user(self, name: str, *op_types: str) -> onnx.NodeProto | None:
        """The only consumer of ``name`` if it is one of ``op_types``."""
        users = self.consumers.get(name, [])
        return users[0] if len(users) == 1 and users[0].op_type in op_types else None


@dataclass
class _Attention:
    x: str  # block input [N, L, D] or [L, N, D]
    end: str  # the tensor the block's output projection ends in
    shape: list[int | str]  # of x and end
    seq_first: bool  # x is [L, N, D]
    heads: int
    w_in: np.ndarray  # [D, 3D], q | k | v
    b_in: np.ndarray
    w_out: np.ndarray  # [D, D]
    b_out: np.ndarray | None


def _match_attention(g: _Graph, softmax: onnx.NodeProto) -> _Attention | None:
    """The unmasked multi-head self-attention block around ``softmax``, as torch's dynamo
    exporter writes ``nn.MultiheadAttention``: one q|k|v projection, per-head scores, softmax,
    mix, output projection, with reshapes and transposes in between. Anything else: None."""
    scores = g.producer.get(softmax.input[0])
    mix = g.user(softmax.output[0], "MatMul")
    if (
        scores is None
        or scores.op_type != "MatMul"
        or mix is None
        or mix.input[0] != softmax.output[0]
    ):
        return None  # e.g. a causal text tower adds its mask to the scores: left alone
    sources = {g.up(scores.input[0]), g.up(scores.input[1]), g.up(mix.input[1])}
    add = g.producer.get(sources.pop()) if len(sources) == 1 else None
    if add is None or add.op_type != "Add":
        return None
    proj = next((g.producer[i] for i in add.input if i in g.producer), None)
    if proj is None or proj.op_type != "MatMul":
        return None
    w_in = g.const(proj.input[1])
    b_in = g.const(next(i for i in add.input if i != proj.output[0]))
    q_shape = g.shapes.get(scores.input[0], [])
    if w_in is None or b_in is None or w_in.ndim != 2 or len(q_shape) != 4:
        return None
    width, (length, head) = w_in.shape[0], q_shape[2:]
    if w_in.shape[1] != 3 * width or b_in.shape != (3 * width,) or not isinstance(head, int):
        return None
    if head < 1 or width % head:
        return None
    projection = _match_out_projection(g, mix.output[0], width)
    if projection is None:
        return None
    w_out, b_out, end = projection
    # The block reads x: [N, L, D], possibly through one transpose to [L, N, D] (open_clip),
    # or [L, N, D] itself (ruCLIP runs the whole transformer sequence-first). It ends at the
    # first tensor after the output projection that has x's shape again.
    x = proj.input[0]
    first = g.producer.get(x)
    if g.shapes.get(x, [])[1:] != [length, width] and first and first.op_type == "Transpose":
        x = first.input[0] if g.shapes.get(first.input[0], [])[1:] == [length, width] else x
    shape = g.shapes.get(x)
    if not shape or len(shape) != 3 or shape[2] != width:
        return None
    if shape[1] == length:
        seq_first = False
    elif shape[0] == length:
        seq_first = True
    else:
        return None
    while g.shapes.get(end) != shape and (step := g.user(end, *_RESHAPES)) is not None:
        end = step.output[0]
    if g.shapes.get(end) != shape:
        return None
    return _Attention(
        x, end, shape, seq_first, width // head, w_in, b_in, np.ascontiguousarray(w_out), b_out
    )


def _match_out_projection(
    g: _Graph, mixed: str, width: int
) -> tuple[np.ndarray, np.ndarray | None, str] | None:
    """The output projection after the heads' mix (past its reshapes): weight [D, D], the
    bias when there is one, and the tensor it ends in; None for anything else."""
    from onnx import helper

    merged = mixed
    while (step := g.user(merged, *_RESHAPES)) is not None:
        merged = step.output[0]
    out = g.user(merged, "Gemm", "MatMul")
    w_out = None if out is None else g.const(out.input[1])
    if out is None or w_out is None or w_out.shape != (width, width):
        return None
    b_out, end = None, out.output[0]
    if out.op_type == "Gemm":
        attrs = {a.name: helper.get_attribute_value(a) for a in out.attribute}
        if (
            attrs.get("transA", 0)
            or attrs.get("alpha", 1.0) != 1.0
            or attrs.get("beta", 1.0) != 1.0
        ):
            return None
        w_out = w_out.T if attrs.get("transB", 0) else w_out
        if len(out.input) > 2 and out.input[2]:
            b_out = g.const(out.input[2])
            if b_out is None or b_out.shape != (width,):
                return None
    elif (bias := g.user(end, "Add")) is not None:
        b_out = g.const(next(i for i in bias.input if i != end))
        if b_out is not None and b_out.shape == (width,):
            end = bias.output[0]
        else:
            b_out = None
    return w_out, b_out, end


def fuse_attention(model: onnx.ModelProto) -> int:
    """Replace each unmasked self-attention block (see ``_match_attention``) by q|k|v
    ``MatMul`` + ``Split`` + com.microsoft ``MultiHeadAttention`` + output ``MatMul``; returns
    how many. The exported block moves data between [N, L, D] and per-head layouts in about
    ten reshape and transpose nodes per layer; the fused op does that inside its kernel.

    The result must be checked against the original (``_same_outputs``): the match looks at
    the graph's structure and shapes, not at what the reshapes compute."""
    import onnx
    from onnx import helper, numpy_helper

    g = _Graph(model)
    blocks = [b for n in g.graph.node if n.op_type == "Softmax" if (b := _match_attention(g, n))]
    ends = {b.end for b in blocks}
    if not blocks or len(ends) != len(blocks):
        return 0
    nodes = list(g.graph.node)
    for k, b in enumerate(blocks):
        p = f"attention{k}"
        width = b.w_in.shape[0]
        consts = {
            f"{p}/w_in": b.w_in,
            f"{p}/b_in": b.b_in,
            f"{p}/w_out": b.w_out,
            f"{p}/split": np.array([width] * 3, np.int64),
        }
        if b.b_out is not None:
            consts[f"{p}/b_out"] = b.b_out
        g.graph.initializer.extend(numpy_helper.from_array(v, name) for name, v in consts.items())
        # MultiHeadAttention takes [N, L, D]: a sequence-first block is transposed in and out.
        x, end = (f"{p}/x", f"{p}/end") if b.seq_first else (b.x, b.end)
        projected = f"{p}/out" if b.b_out is not None else end
        new = [
            helper.make_node("MatMul", [x, f"{p}/w_in"], [f"{p}/qkv0"]),
            helper.make_node("Add", [f"{p}/qkv0", f"{p}/b_in"], [f"{p}/qkv"]),
            helper.make_node(
                "Split", [f"{p}/qkv", f"{p}/split"], [f"{p}/q", f"{p}/k", f"{p}/v"], axis=-1
            ),
            helper.make_node(
                "MultiHeadAttention",
                [f"{p}/q", f"{p}/k", f"{p}/v"],
                [f"{p}/mixed"],
                domain="com.microsoft",
                num_heads=b.heads,
            ),
            helper.make_node("MatMul", [f"{p}/mixed", f"{p}/w_out"], [projected]),
        ]
        if b.b_out is not None:
            new.append(helper.make_node("Add", [projected, f"{p}/b_out"], [end]))
        if b.seq_first:
            new.insert(0, helper.make_node("Transpose", [b.x], [x], perm=[1, 0, 2]))
            new.append(helper.make_node("Transpose", [end], [b.end], perm=[1, 0, 2]))
        # Shape inference knows nothing of com.microsoft ops; the quantiser needs the types.
        n, length, width = (b.shape[1], b.shape[0], b.shape[2]) if b.seq_first else b.shape
        g.graph.value_info.append(
            helper.make_tensor_value_info(f"{p}/mixed", onnx.TensorProto.FLOAT, [n, length, width])
        )
        old = g.producer[b.end]
        old.output[list(old.output).index(b.end)] = f"{p}/replaced"
        at = nodes.index(old) + 1
        nodes[at:at] = new
    _keep_live(model.graph, nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return len(blocks)


def _keep_live(graph: onnx.GraphProto, nodes: list[onnx.NodeProto]) -> None:
    """Set the graph's nodes to those of ``nodes`` (in order) that an output depends on, and
    drop initializers no node reads any more."""
    live = {o.name for o in graph.output}
    keep = []
    for node in reversed(nodes):
        if any(o in live for o in node.output):
            keep.append(node)
            live.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    dead = [t for t in graph.initializer if t.name not in live]
    for t in dead:
        graph.initializer.remove(t)


def _run_fp32(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    return session.run(None, feed)


def _same_outputs(want: list[np.ndarray], b: onnx.ModelProto, feed: dict[str, np.ndarray]) -> bool:
    """Whether graph ``b`` reproduces ``want`` on ``feed`` (every output row: cosine >=
    0.99999)."""
    try:
        got = _run_fp32(b, feed)
    except Exception as exc:  # a rewrite the runtime refuses is simply not used
        log.warning("rewritten graph does not run: %s", exc)
        return False
    for x, y in zip(want, got, strict=True):
        x, y = (
            np.asarray(x, np.float64).reshape(len(x), -1),
            np.asarray(y, np.float64).reshape(len(y), -1),
        )
        norms = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
        if x.shape != y.shape or np.any(np.sum(x * y, axis=1) < 0.99999 * norms):
            return False
    return True


def _rewritten(model: onnx.ModelProto, pixels: np.ndarray) -> onnx.ModelProto | None:
    """An image tower with its patch embedding and attention blocks rewritten for the
    quantiser, or None when nothing matched or a rewrite changed the outputs on ``pixels``
    (then the next smaller set of rewrites is tried)."""
    import onnx

    name = model.graph.input[0].name
    dims = _static_dims(model.graph, name) or [0]
    feed = {name: pixels[: dims[0]] if dims[0] else pixels}
    want: list[np.ndarray] | None = None  # the original's outputs, computed once
    for rewrites in ((patch_convs_to_matmul, fuse_attention), (patch_convs_to_matmul,)):
        candidate = onnx.ModelProto()
        candidate.CopyFrom(model)
        try:
            counts = [rewrite(candidate) for rewrite in rewrites]
        except Exception as exc:  # e.g. shape inference refuses a > 2 GB graph: quantise as is
            log.warning("graph rewrite failed, not used: %s", exc)
            continue
        if not any(counts):
            continue
        want = _run_fp32(model, feed) if want is None else want
        if _same_outputs(want, candidate, feed):
            done = {r.__name__: c for r, c in zip(rewrites, counts, strict=True)}
            log.info("rewrote the image tower before quantising: %s", done)
            return candidate
        log.warning("graph rewrite changed the outputs, not used: %s", rewrites[-1].__name__)
    return None


def _quantize_file(
    src: Path,
    dst: Path,
    op_types: Sequence[str],
    per_channel: bool,
    reduce_range: bool,
    pixels: np.ndarray | None = None,
) -> None:
    """Quantise one tower; an image tower (``pixels`` given) is rewritten first if it can be."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root, hint = logging.getLogger(), _NoPreprocessHint()
    root.addFilter(hint)
    rewritten = dst.with_name(f"{dst.stem}.rewritten.onnx")
    try:
        if pixels is not None and (model := _rewritten(onnx.load(str(src)), pixels)):
            onnx.save(model, str(rewritten))
            del model
            src = rewritten
        quantize_dynamic(
            src,
            dst,
            op_types_to_quantize=list(op_types),
            per_channel=per_channel,
            reduce_range=reduce_range,
            weight_type=QuantType.QInt8,
        )
    except Exception as exc:  # the quantiser raises whatever onnx / numpy raise
        raise BundleError(src, f"int8 quantisation failed: {exc}") from exc
    finally:
        root.removeFilter(hint)
        rewritten.unlink(missing_ok=True)


def quantize_bundle(
    src: Path,
    out_dir: Path,
    *,
    op_types: Sequence[str] = DEFAULT_OP_TYPES,
    per_channel: bool = True,
    reduce_range: bool = True,
    threads: int = 0,
) -> QuantizeReport:
    """Quantise both towers of the bundle at ``src`` (either layout) into a complete bundle of
    our layout at ``out_dir``; compare its vectors with the fp32 ones and report the cosines."""
    from core.models.embedder import OnnxEmbedder

    bundle = load_bundle(src)
    cfg = bundle.config
    if cfg.name.endswith(INT8_SUFFIX):
        raise BundleError(bundle.path / "config.json", f"{cfg.name} is already int8")
    out_dir = Path(out_dir)
    if out_dir.resolve() == bundle.path.resolve():
        raise ValueError("the int8 bundle must go to another directory")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tokenizer_file = bundle.tokenizer_path.name
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.", dir=out_dir.parent) as tmp:
        work = Path(tmp)
        pixels = synthetic_pixels(cfg, n=2, seed=1)
        _quantize_file(
            bundle.visual_path, work / VISUAL_FILE, op_types, per_channel, reduce_range, pixels
        )
        _quantize_file(
            bundle.textual_path, work / TEXTUAL_FILE, op_types, per_channel, reduce_range
        )
        shutil.copyfile(bundle.tokenizer_path, work / tokenizer_file)
        int8_cfg = _int8_config(cfg, tokenizer_file)
        (work / "config.json").write_text(int8_cfg.model_dump_json(indent=2) + "\n", "utf-8")

        fp32 = OnnxEmbedder(bundle, threads=threads)
        int8 = OnnxEmbedder(load_bundle(work), threads=threads)
        int8.validate()
        pixels = synthetic_pixels(cfg)
        visual = _tower_report(
            bundle.visual_path,
            work / VISUAL_FILE,
            fp32.encode_pixels(pixels),
            int8.encode_pixels(pixels),
        )
        textual = _tower_report(
            bundle.textual_path,
            work / TEXTUAL_FILE,
            fp32.encode_texts(SAMPLE_QUERIES),
            int8.encode_texts(SAMPLE_QUERIES),
        )
        out_dir.mkdir(exist_ok=True)
        for item in sorted(work.iterdir()):
            item.replace(out_dir / item.name)
    return QuantizeReport(out_dir, int8_cfg.model_id, visual, textual)


def _tower_report(fp32: Path, int8: Path, want: np.ndarray, got: np.ndarray) -> TowerReport:
    cos = _row_cosines(want, got)
    report = TowerReport(
        file=int8.name,
        bytes_fp32=_size(fp32),
        bytes_int8=_size(int8),
        cosine_min=float(cos.min()),
        cosine_mean=float(cos.mean()),
    )
    log.info("%s", report.line())
    return report


def _size(path: Path) -> int:
    """Bytes of an ONNX file plus any external-data files saved beside it."""
    total = path.stat().st_size
    for side in path.parent.glob(f"{path.name}.data"):
        total += side.stat().st_size
    return total
