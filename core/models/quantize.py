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
* a ViT's patch embedding (a ``Conv`` whose stride equals its kernel) is rewritten as
  reshape + ``MatMul`` first, so it is quantised like the other layers: the fp32 ``Conv`` was
  about 5% of an int8 ViT-B/32 image run, and the image cosine moves by 3e-5.

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


def _quantize_file(
    src: Path, dst: Path, op_types: Sequence[str], per_channel: bool, reduce_range: bool
) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root, hint = logging.getLogger(), _NoPreprocessHint()
    root.addFilter(hint)
    patched = dst.with_name(f"{dst.stem}.patched.onnx")
    try:
        model = onnx.load(str(src))
        if patch_convs_to_matmul(model):
            onnx.save(model, str(patched))
            src = patched
        del model
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
        patched.unlink(missing_ok=True)


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
    from core.embedder import OnnxEmbedder

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
        for src_path, file in (
            (bundle.visual_path, VISUAL_FILE),
            (bundle.textual_path, TEXTUAL_FILE),
        ):
            _quantize_file(src_path, work / file, op_types, per_channel, reduce_range)
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
