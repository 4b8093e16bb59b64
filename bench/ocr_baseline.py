"""The default model's per-picture embedding cost without torch or the model hub: a
random-weight ViT image tower with SigLIP 2 B/32-256's shapes (256 px input, 32 px patches ->
64 tokens, width 768, 12 layers, 12 heads, MLP 3072), written with ``onnx.helper`` and run on
ONNX Runtime with the engine's thread count. Cost does not depend on weight values; the
attention-pooling head is replaced by mean pooling and one projection (a few per cent of the
work). bench/ocr.py sets OCR's time against this, since the fixture models cost next to nothing.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

SIDE, PATCH, WIDTH, LAYERS, HEADS, MLP = 256, 32, 768, 12, 12, 3072
TOKENS = (SIDE // PATCH) ** 2


class _Graph:
    """Collects nodes and random initialisers."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}_{self.n}"

    def weight(self, *shape: int, scale: float = 0.02) -> str:
        name = self.name("w")
        data = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        self.inits.append(numpy_helper.from_array(data, name))
        return name

    def const(self, values: list[int]) -> str:
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(np.array(values, np.int64), name))
        return name

    def op(self, kind: str, *inputs: str, **attrs: Any) -> str:
        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def linear(self, x: str, d_in: int, d_out: int) -> str:
        return self.op("Add", self.op("MatMul", x, self.weight(d_in, d_out)), self.weight(d_out))

    def norm(self, x: str) -> str:
        ones = self.name("g")
        self.inits.append(numpy_helper.from_array(np.ones(WIDTH, np.float32), ones))
        return self.op("LayerNormalization", x, ones, self.weight(WIDTH), axis=-1)

    def gelu(self, x: str) -> str:
        half = self.op("Mul", x, self.scalar(0.5))
        erf = self.op("Erf", self.op("Mul", x, self.scalar(1 / np.sqrt(2))))
        return self.op("Mul", half, self.op("Add", erf, self.scalar(1.0)))

    def scalar(self, v: float) -> str:
        name = self.name("s")
        self.inits.append(numpy_helper.from_array(np.array(v, np.float32), name))
        return name

    def attention(self, x: str) -> str:
        head = WIDTH // HEADS
        qkv = self.linear(x, WIDTH, 3 * WIDTH)
        split = self.const([WIDTH, WIDTH, WIDTH])
        q, k, v = (self.name(t) for t in "qkv")
        self.nodes.append(helper.make_node("Split", [qkv, split], [q, k, v], axis=-1))
        shape = self.const([1, TOKENS, HEADS, head])
        heads = [
            self.op("Transpose", self.op("Reshape", t, shape), perm=[0, 2, 1, 3]) for t in (q, k, v)
        ]
        kt = self.op("Transpose", heads[1], perm=[0, 1, 3, 2])
        scores = self.op("Mul", self.op("MatMul", heads[0], kt), self.scalar(head**-0.5))
        mixed = self.op("MatMul", self.op("Softmax", scores, axis=-1), heads[2])
        back = self.op(
            "Reshape",
            self.op("Transpose", mixed, perm=[0, 2, 1, 3]),
            self.const([1, TOKENS, WIDTH]),
        )
        return self.linear(back, WIDTH, WIDTH)

    def block(self, x: str) -> str:
        x = self.op("Add", x, self.attention(self.norm(x)))
        hidden = self.gelu(self.linear(self.norm(x), WIDTH, MLP))
        return self.op("Add", x, self.linear(hidden, MLP, WIDTH))


def build() -> bytes:
    """The serialised stand-in: ``image`` float32 [1, 3, 256, 256] -> ``embedding`` [1, 768]."""
    g = _Graph()
    patches = g.op(
        "Conv", "image", g.weight(WIDTH, 3, PATCH, PATCH), g.weight(WIDTH), strides=[PATCH, PATCH]
    )
    tokens = g.op(
        "Transpose", g.op("Reshape", patches, g.const([1, WIDTH, TOKENS])), perm=[0, 2, 1]
    )
    x = g.op("Add", tokens, g.weight(1, TOKENS, WIDTH))
    for _ in range(LAYERS):
        x = g.block(x)
    pooled = g.op("ReduceMean", g.norm(x), g.const([1]), keepdims=0)
    out = g.linear(pooled, WIDTH, WIDTH)
    graph = helper.make_graph(
        g.nodes,
        "siglip2_b32_256_standin",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, SIDE, SIDE])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, WIDTH])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    return bytes(model.SerializeToString())


def siglip2_b32_256_ms(threads: int | None = None, n: int = 16) -> float:
    """Median milliseconds of one picture through the stand-in tower (batch 1)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    session = ort.InferenceSession(build(), opts, providers=["CPUExecutionProvider"])
    image = np.random.default_rng(1).standard_normal((1, 3, SIDE, SIDE)).astype(np.float32)
    for _ in range(3):
        session.run(None, {"image": image})
    times = []
    for _ in range(n):
        t = time.perf_counter()
        session.run(None, {"image": image})
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))


if __name__ == "__main__":
    print(f"{siglip2_b32_256_ms():.1f} ms per picture")
