"""OnnxEmbedder and AsyncEmbedder on tiny ONNX towers built for the test."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, numpy_helper
from PIL import Image

from core.errors import BundleError, EmptyQueryError, ImageError
from core.models.bundle import Bundle, load_bundle
from core.models.config import BundleConfig
from core.models.embedder import (
    AsyncEmbedder,
    Embedder,
    ImageRunPlanner,
    OnnxEmbedder,
    l2_normalize,
    session_options,
)
from tests.core.onnx_builders import (
    EOT_ID,
    PAD_ID,
    bundle_config,
    open_clip_config,
    textual_model,
    use_image_runtime,
    use_text_runtime,
    visual_model,
    write_bundle,
    write_immich_bundle,
)

WAIT = 10.0  # seconds; only a safety net so a broken test fails instead of hanging

TEXTS = ["a cat", "a red car on the sea", "dog", "the blue house with a tree and the sky"]


@pytest.fixture(autouse=True)
def _runtimes(monkeypatch: pytest.MonkeyPatch) -> None:
    use_text_runtime(monkeypatch)
    use_image_runtime(monkeypatch)


class Recorder:
    """Counts sessions created and records the shapes every run is fed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.created: list[str] = []
        self.feeds: list[dict[str, tuple[tuple[int, ...], np.dtype]]] = []
        self._lock = threading.Lock()
        real = ort.InferenceSession
        recorder = self

        class Recording(real):  # type: ignore[misc, valid-type]
            def __init__(self, path: str, *args: Any, **kwargs: Any) -> None:
                with recorder._lock:
                    recorder.created.append(Path(path).name)
                super().__init__(path, *args, **kwargs)

            def run(self, output_names: Any, feed: dict[str, np.ndarray], *a: Any) -> Any:
                with recorder._lock:
                    recorder.feeds.append({k: (v.shape, v.dtype) for k, v in feed.items()})
                return super().run(output_names, feed, *a)

        monkeypatch.setattr(ort, "InferenceSession", Recording)


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    return Recorder(monkeypatch)


@pytest.fixture
def bundle(tmp_path: Path) -> Bundle:
    return load_bundle(write_bundle(tmp_path / "tiny"))


def _png(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def _noise_png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (24, 36, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _pixels(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


# --- sessions: lazy, once, thread-safe ----------------------------------------------------------


def test_sessions_are_created_lazily_once_per_tower(bundle: Bundle, rec: Recorder) -> None:
    emb = OnnxEmbedder(bundle)
    assert rec.created == [] and emb.loaded == (False, False)
    emb.encode_texts(["a cat"])
    assert rec.created == ["textual.onnx"] and emb.loaded == (False, True)
    emb.encode_texts(["a dog", "the sea"])
    emb.encode_pixels(_pixels(2))
    emb.encode_pixels(_pixels(3))
    assert sorted(rec.created) == ["textual.onnx", "visual.onnx"]


def test_sessions_are_created_once_across_threads(bundle: Bundle, rec: Recorder) -> None:
    emb = OnnxEmbedder(bundle)
    n = 8
    barrier = threading.Barrier(n)
    results: list[np.ndarray] = [np.empty(0)] * n
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait(WAIT)
            if i % 2:
                results[i] = emb.encode_texts(["a red car"])
            else:
                results[i] = emb.encode_pixels(_pixels(1))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not errors
    assert sorted(rec.created) == ["textual.onnx", "visual.onnx"]
    for i in range(2, n):
        np.testing.assert_array_equal(results[i], results[i % 2])


def test_session_options() -> None:
    opts = session_options(threads=2, graph_optimization="basic")
    assert opts.intra_op_num_threads == 2
    assert opts.inter_op_num_threads == 1
    assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    spin = session_options(config={"session.intra_op.allow_spinning": "1"})
    assert spin.get_session_config_entry("session.intra_op.allow_spinning") == "1"
    with pytest.raises(ValueError):
        session_options(graph_optimization="turbo")  # type: ignore[arg-type]


@pytest.mark.parametrize("level", ["disable", "basic", "extended", "all"])
def test_every_graph_optimization_level_gives_the_same_vectors(bundle: Bundle, level: str) -> None:
    ref = OnnxEmbedder(bundle, threads=1)
    emb = OnnxEmbedder(bundle, threads=1, graph_optimization=level)  # type: ignore[arg-type]
    np.testing.assert_allclose(emb.encode_texts(TEXTS), ref.encode_texts(TEXTS), atol=1e-6)


# --- vectors ------------------------------------------------------------------------------------


def test_outputs_are_unit_length_float32(bundle: Bundle) -> None:
    emb = OnnxEmbedder(bundle)
    for out in (emb.encode_texts(TEXTS), emb.encode_pixels(_pixels(5))):
        assert out.dtype == np.float32 and out.shape[1] == 8
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


def test_zero_vector_stays_zero_not_nan(bundle: Bundle) -> None:
    # The tiny image tower has no bias: an all-zero input gives an all-zero vector.
    out = OnnxEmbedder(bundle).encode_pixels(np.zeros((2, 3, 16, 16), np.float32))
    assert np.isfinite(out).all() and not out.any()
    assert not l2_normalize(np.zeros((1, 4))).any()


def test_empty_inputs_give_empty_arrays(bundle: Bundle) -> None:
    emb = OnnxEmbedder(bundle)
    assert emb.encode_texts([]).shape == (0, 8)
    assert emb.encode_images([]).shape == (0, 8)
    assert emb.encode_pixels(np.zeros((0, 3, 16, 16), np.float32)).shape == (0, 8)


def test_image_batching_does_not_change_vectors(bundle: Bundle, rec: Recorder) -> None:
    pixels = _pixels(7)
    many = OnnxEmbedder(bundle, batch_size=3, image_runs=1).encode_pixels(pixels)
    assert [f["image"][0][0] for f in rec.feeds] == [2, 2, 3]  # near-equal, <= batch_size
    one = np.concatenate(
        [OnnxEmbedder(bundle, batch_size=1).encode_pixels(p[None]) for p in pixels]
    )
    np.testing.assert_allclose(many, one, atol=1e-6)


@pytest.mark.parametrize(
    ("n", "batch_size", "runs", "sizes"),
    [
        (8, 32, 2, [4, 4]),  # one batch still uses every core
        (7, 3, 2, [1, 2, 2, 2]),  # an even number of near-equal runs, none above batch_size
        (1, 32, 2, [1]),
        (5, 16, 3, [1, 2, 2]),
        (6, 16, 1, [6]),
    ],
)
def test_image_batches_are_split_into_parallel_runs(
    bundle: Bundle, rec: Recorder, n: int, batch_size: int, runs: int, sizes: list[int]
) -> None:
    pixels = _pixels(n, seed=n)
    emb = OnnxEmbedder(bundle, batch_size=batch_size, image_runs=runs)
    out = emb.encode_pixels(pixels)
    assert sorted(f["image"][0][0] for f in rec.feeds) == sorted(sizes)
    ref = OnnxEmbedder(bundle, image_runs=1).encode_pixels(pixels)
    np.testing.assert_allclose(out, ref, atol=1e-6)  # in order, whatever run finished first


def test_image_session_has_a_thread_per_core_and_is_the_only_one(
    bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[tuple[str, int]] = []
    real = ort.InferenceSession

    def spy(path: str, sess_options: ort.SessionOptions, **kwargs: Any) -> ort.InferenceSession:
        created.append((Path(path).name, sess_options.intra_op_num_threads))
        return real(path, sess_options=sess_options, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", spy)
    emb = OnnxEmbedder(bundle, threads=2, image_runs=2)
    emb.validate()
    emb.encode_pixels(_pixels(1))
    emb.encode_pixels(_pixels(8))
    # A lone photo gets both cores; a full batch shares the same session, so the weights of
    # each tower are loaded once whatever the layout.
    assert created == [("textual.onnx", 2), ("visual.onnx", 2)]


def test_validate_loads_the_text_tower_first(bundle: Bundle, rec: Recorder) -> None:
    OnnxEmbedder(bundle).validate()
    assert rec.created == ["textual.onnx", "visual.onnx"]


class RunSpy:
    """Records which thread ran each image run, and makes runs meet at a barrier of
    ``parties`` (a timeout breaks it, so runs that do not overlap fail the test)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, parties: int) -> None:
        self.threads: list[str] = []
        self.barrier = threading.Barrier(parties, timeout=WAIT)
        spy = self
        real = ort.InferenceSession

        class Spying(real):  # type: ignore[misc, valid-type]
            def run(self, output_names: Any, feed: dict[str, np.ndarray], *a: Any) -> Any:
                if "image" in feed:
                    spy.threads.append(threading.current_thread().name)
                    if spy.barrier.parties > 1:
                        spy.barrier.wait()
                return super().run(output_names, feed, *a)

        monkeypatch.setattr(ort, "InferenceSession", Spying)


def test_lone_image_is_one_run_on_the_calling_thread(
    bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = RunSpy(monkeypatch, parties=1)
    OnnxEmbedder(bundle, threads=2, image_runs=2).encode_pixels(_pixels(1))
    assert spy.threads == [threading.current_thread().name]


def test_full_batch_goes_as_parallel_runs(bundle: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = RunSpy(monkeypatch, parties=2)
    emb = OnnxEmbedder(bundle, threads=2, image_runs=2, batch_size=16)
    emb.encode_pixels(_pixels(8))  # the two runs must be in flight together to pass the barrier
    assert len(spy.threads) == 2 and all(t.startswith("embed-run") for t in spy.threads)
    emb.close()


@pytest.mark.parametrize(
    ("n", "fixed", "memory_mb", "parallel", "sizes"),
    [
        (1, None, 0, 1, [1]),  # a lone photo: one run on every thread
        (1, 1, 0, 1, [1]),
        (2, None, 0, 2, [1, 1]),
        (32, None, 0, 2, [16, 16]),
        (5, 1, 0, 2, [1] * 5),  # a fixed batch-1 graph: items one per run, two at a time
        (32, None, 40, 2, [2] * 16),  # 4 images in flight: 2 runs of 2
        (32, None, 10, 1, [1] * 32),  # 1 image in flight: one run at a time
        (6, 4, 30, 1, [4, 2]),  # a run of the fixed 4 fits, two at once would not
    ],
)
def test_planner_chooses_the_layout_within_the_memory_budget(
    n: int, fixed: int | None, memory_mb: int, parallel: int, sizes: list[int]
) -> None:
    planner = ImageRunPlanner(runs=2, batch_size=16, memory_mb=memory_mb, item_mb=10.0)
    plan = planner.plan(n, fixed)
    assert plan.parallel == parallel
    assert [s.stop - s.start for s in plan.slices] == sizes
    if memory_mb and not fixed:  # a fixed batch axis cannot shrink below its size
        assert max(sizes) * plan.parallel <= max(1, memory_mb // 10)


def test_planner_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        ImageRunPlanner(runs=0, batch_size=16, memory_mb=0, item_mb=1.0)
    with pytest.raises(ValueError):
        ImageRunPlanner(runs=2, batch_size=16, memory_mb=-1, item_mb=1.0)


def test_memory_budget_bounds_images_in_flight(bundle: Bundle, rec: Recorder) -> None:
    emb = OnnxEmbedder(bundle, threads=2, image_runs=2, batch_size=32, memory_mb=1)
    budget = emb.planner.max_in_flight
    assert budget < 64
    out = emb.encode_pixels(_pixels(64))
    assert max(f["image"][0][0] for f in rec.feeds) * 2 <= budget
    ref = OnnxEmbedder(bundle, threads=2, image_runs=1, batch_size=64).encode_pixels(_pixels(64))
    np.testing.assert_allclose(out, ref, atol=1e-6)
    emb.close()


def test_every_layout_gives_the_same_vectors(bundle: Bundle) -> None:
    pixels = _pixels(9, seed=4)
    ours = OnnxEmbedder(bundle, threads=2, batch_size=4)
    layouts = {
        "one image at a time, every thread": OnnxEmbedder(
            bundle, threads=2, batch_size=1, image_runs=1
        ),
        "single-threaded parallel runs": OnnxEmbedder(bundle, threads=1, image_runs=2),
        "one batch run": OnnxEmbedder(bundle, threads=2, batch_size=16, image_runs=1),
    }
    want = ours.encode_pixels(pixels)
    np.testing.assert_allclose(ours.encode_pixels(pixels[:1]), want[:1], atol=1e-6)
    for name, emb in layouts.items():
        np.testing.assert_allclose(emb.encode_pixels(pixels), want, atol=1e-6, err_msg=name)


def test_text_batching_does_not_change_vectors(bundle: Bundle) -> None:
    many = OnnxEmbedder(bundle, batch_size=16).encode_texts(TEXTS)
    one = np.concatenate([OnnxEmbedder(bundle).encode_texts([t]) for t in TEXTS])
    np.testing.assert_allclose(many, one, atol=1e-6)


def test_text_is_fed_only_the_positions_the_batch_needs(bundle: Bundle, rec: Recorder) -> None:
    emb = OnnxEmbedder(bundle)
    lengths = [len(ids) for ids in bundle.tokenizer.encode(TEXTS)]
    out = emb.encode_texts(TEXTS)
    (shape, dtype) = rec.feeds[-1]["text"]
    assert shape == (4, max(lengths)) and max(lengths) < bundle.config.text.context_length
    assert dtype == np.int64
    # The same ids padded to the full context length give the same vectors.
    session = ort.InferenceSession(str(bundle.textual_path), providers=["CPUExecutionProvider"])
    full = np.full((4, bundle.config.text.context_length), PAD_ID, np.int64)
    for row, ids in enumerate(bundle.tokenizer.encode(TEXTS)):
        full[row, : len(ids)] = ids
    ref = l2_normalize(session.run(None, {"text": full})[0])
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_fixed_length_text_tower_is_padded_to_its_length(tmp_path: Path, rec: Recorder) -> None:
    dynamic = OnnxEmbedder(load_bundle(write_bundle(tmp_path / "dyn")))
    fixed = OnnxEmbedder(
        load_bundle(write_bundle(tmp_path / "fix", textual=textual_model(length=12)))
    )
    out = fixed.encode_texts(TEXTS)
    assert rec.feeds[-1]["text"][0] == (4, 12)
    np.testing.assert_allclose(out, dynamic.encode_texts(TEXTS), atol=1e-6)


def _full_and_shortest(bundle: Bundle, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of the bundle's text graph run directly on the ids padded to the context length,
    and padded only to the longest sequence."""
    session = ort.InferenceSession(str(bundle.textual_path), providers=["CPUExecutionProvider"])
    seqs = bundle.tokenizer.encode(list(texts))
    runs = []
    for length in (bundle.config.text.context_length, max(len(s) for s in seqs)):
        ids = np.full((len(seqs), length), PAD_ID, np.int64)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = seq
        runs.append(l2_normalize(session.run(None, {"text": ids})[0]))
    return runs[0], runs[1]


@pytest.mark.parametrize("declared", [True, False])
def test_tower_that_sees_its_padding_is_fed_the_full_context(
    tmp_path: Path, rec: Recorder, declared: bool
) -> None:
    """A non-causal tower (SigLIP) with a symbolic length axis gets every context position,
    whether the config says ``pad_to_context`` or leaves it to the hf kind's default."""
    cfg = bundle_config()
    if declared:
        cfg["text"]["pad_to_context"] = True
    else:
        del cfg["text"]["pad_to_context"]
    textual = textual_model(pooling="last")
    bundle = load_bundle(write_bundle(tmp_path / "b", config=cfg, textual=textual))
    out = OnnxEmbedder(bundle).encode_texts(TEXTS)
    assert rec.feeds[-1]["text"][0] == (4, 12)
    full, shortest = _full_and_shortest(bundle, TEXTS)
    np.testing.assert_allclose(out, full, atol=1e-6)
    assert np.abs(out - shortest).max() > 0.05  # the premise: fewer positions, other vectors


def test_causal_tower_is_fed_only_the_longest_sequence(tmp_path: Path, rec: Recorder) -> None:
    """The same symbolic-length graph shape, causal and declared so: the batch's longest."""
    bundle = load_bundle(write_bundle(tmp_path / "b"))  # pad_to_context false, EOT pooling
    out = OnnxEmbedder(bundle).encode_texts(TEXTS)
    full, shortest = _full_and_shortest(bundle, TEXTS)
    assert rec.feeds[-1]["text"][0] == (4, max(len(s) for s in bundle.tokenizer.encode(TEXTS)))
    np.testing.assert_allclose(out, shortest, atol=1e-6)
    np.testing.assert_allclose(out, full, atol=1e-6)


@pytest.mark.parametrize(
    ("text_cfg", "full"),
    [
        (  # ViT-B-32-SigLIP2-256's text_cfg, as Immich ships it
            {
                "hf_tokenizer_name": "timm/ViT-B-32-SigLIP2-256",
                "tokenizer_kwargs": {"clean": "canonicalize"},
                "no_causal_mask": True,
                "pool_type": "last",
            },
            True,
        ),
        ({}, False),  # open_clip's causal CLIP tower pooled at the EOT (ViT-B-32__openai)
    ],
)
def test_immich_text_padding_follows_the_tower(
    tmp_path: Path, rec: Recorder, text_cfg: dict[str, Any], full: bool
) -> None:
    """Immich's exports fix the length at the context; were one dynamic, a SigLIP tower would
    still get all of it and a causal one only what the query needs."""
    textual = textual_model(
        batch=1, length="L", input_dtype=TensorProto.INT32, pooling="last" if full else "eot"
    )
    root = write_immich_bundle(
        tmp_path / "m", model_config=open_clip_config(**text_cfg), textual=textual
    )
    emb = OnnxEmbedder(load_bundle(root))
    emb.encode_texts(["a cat"])
    assert rec.feeds[-1]["text"][0] == (1, 12 if full else len(emb.tokenize(["a cat"])[0]))


def test_long_text_is_truncated_and_keeps_working(bundle: Bundle) -> None:
    long = " ".join(["cat"] * 100)
    out = OnnxEmbedder(bundle).encode_texts([long, "cat"])
    assert out.shape == (2, 8) and np.isfinite(out).all()


def test_int32_text_input(tmp_path: Path, rec: Recorder) -> None:
    root = write_bundle(tmp_path / "b", textual=textual_model(input_dtype=TensorProto.INT32))
    ref = OnnxEmbedder(load_bundle(write_bundle(tmp_path / "ref"))).encode_texts(TEXTS)
    out = OnnxEmbedder(load_bundle(root)).encode_texts(TEXTS)
    assert rec.feeds[-1]["text"][1] == np.int32
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_attention_mask_is_fed_and_masks_padding(tmp_path: Path, rec: Recorder) -> None:
    model = textual_model(attention_mask=True, pooling="mean")
    root = write_bundle(tmp_path / "b", textual=model)
    bundle = load_bundle(root)
    out = OnnxEmbedder(bundle).encode_texts(TEXTS)
    assert set(rec.feeds[-1]) == {"text", "attention_mask"}
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    expected = []
    for ids in bundle.tokenizer.encode(TEXTS):  # mean over the real tokens only
        expected.append(inits["table"][ids].mean(axis=0) @ inits["proj"])
    np.testing.assert_allclose(out, l2_normalize(np.array(expected)), atol=1e-5)


def test_immich_openclip_bundle_runs_one_item_at_a_time(tmp_path: Path, rec: Recorder) -> None:
    ours = OnnxEmbedder(load_bundle(write_bundle(tmp_path / "ours")))
    immich = OnnxEmbedder(load_bundle(write_immich_bundle(tmp_path / "ViT-B-32__openai")))
    texts = immich.encode_texts(TEXTS)
    text_feeds = [f["text"] for f in rec.feeds if "text" in f]
    assert text_feeds and all(f == ((1, 12), np.int32) for f in text_feeds[-4:])
    pixels = _pixels(3)
    images = immich.encode_pixels(pixels)
    assert [f["image"][0] for f in rec.feeds[-3:]] == [(1, 3, 16, 16)] * 3
    np.testing.assert_allclose(texts, ours.encode_texts(TEXTS), atol=1e-6)
    np.testing.assert_allclose(images, ours.encode_pixels(pixels), atol=1e-6)


def test_immich_mclip_bundle_feeds_input_ids_and_mask(tmp_path: Path, rec: Recorder) -> None:
    root = write_immich_bundle(tmp_path / "XLM-Roberta-Large-Vit-B-32", style="mclip")
    emb = OnnxEmbedder(load_bundle(root))
    emb.validate()
    out = emb.encode_texts(TEXTS)
    assert out.shape == (4, 8)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    feed = rec.feeds[-1]
    assert feed == {"input_ids": ((1, 12), np.int32), "attention_mask": ((1, 12), np.int32)}


def test_fixed_batch_is_filled_and_trimmed(tmp_path: Path, rec: Recorder) -> None:
    root = write_bundle(tmp_path / "b", visual=visual_model(batch=4))
    ref = OnnxEmbedder(load_bundle(write_bundle(tmp_path / "ref")))
    pixels = _pixels(6)
    out = OnnxEmbedder(load_bundle(root), batch_size=16).encode_pixels(pixels)
    assert [f["image"][0][0] for f in rec.feeds] == [4, 4]
    np.testing.assert_allclose(out, ref.encode_pixels(pixels), atol=1e-6)


def test_wrong_output_width_at_run_time_is_a_bundle_error(tmp_path: Path) -> None:
    cfg = bundle_config(dim=8)
    visual = visual_model(dim=4, symbolic_dim=True)  # the graph hides its real width
    emb = OnnxEmbedder(load_bundle(write_bundle(tmp_path / "b", config=cfg, visual=visual)))
    with pytest.raises(BundleError, match="expected") as info:
        emb.encode_pixels(_pixels(1))
    assert info.value.path.endswith("visual.onnx")


def test_wrong_pixel_shape_is_refused(bundle: Bundle) -> None:
    with pytest.raises(ValueError, match="pixels must be"):
        OnnxEmbedder(bundle).encode_pixels(_pixels(1, size=8))


# --- texts: empty queries -----------------------------------------------------------------------


@pytest.mark.parametrize("texts", [[""], ["   "], ["cat", "\n\t "]])
def test_empty_query_is_rejected(bundle: Bundle, texts: list[str]) -> None:
    with pytest.raises(EmptyQueryError):
        OnnxEmbedder(bundle).encode_texts(texts)


def test_a_single_string_is_not_a_list_of_texts(bundle: Bundle) -> None:
    with pytest.raises(TypeError):
        OnnxEmbedder(bundle).encode_texts("cat")


# --- images -------------------------------------------------------------------------------------


def test_every_kind_of_image_source(bundle: Bundle, tmp_path: Path) -> None:
    from core.media.image import prepare_image, preprocess

    emb = OnnxEmbedder(bundle)
    cfg = bundle.config.image
    data = _noise_png(1)
    path = tmp_path / "x.png"
    path.write_bytes(data)
    img = Image.open(io.BytesIO(data)).convert("RGB")
    sources = [data, path, img, np.asarray(img), prepare_image(data, cfg)]
    out = emb.encode_images(sources)
    ref_bytes = emb.encode_pixels(prepare_image(data, cfg)[None])
    ref_pil = emb.encode_pixels(preprocess(img, cfg)[None])
    for row, ref in zip(out, [ref_bytes, ref_bytes, ref_pil, ref_pil, ref_bytes], strict=True):
        np.testing.assert_allclose(row, ref[0], atol=1e-6)


def test_encode_images_matches_batches_of_one(bundle: Bundle) -> None:
    sources = [_noise_png(i) for i in range(5)] + [_png((255, 0, 0)), _png((0, 0, 255))]
    many = OnnxEmbedder(bundle, batch_size=3).encode_images(sources)
    one = np.concatenate([OnnxEmbedder(bundle).encode_images([s]) for s in sources])
    np.testing.assert_allclose(many, one, atol=1e-6)
    assert not np.allclose(many[-1], many[-2])  # different colours, different vectors


def test_bad_image_raises_typed_error_with_index(bundle: Bundle) -> None:
    sources = [_png((1, 2, 3)), _png((4, 5, 6)), b"%PDF-1.4 not an image", _png((7, 8, 9))]
    with pytest.raises(ImageError, match=r"^image 2: ") as info:
        OnnxEmbedder(bundle).encode_images(sources)
    assert info.value.index == 2  # type: ignore[attr-defined]
    assert type(info.value) is not ImageError  # the specific subclass survives


def test_prepare_images_lets_ingest_skip_bad_items(bundle: Bundle) -> None:
    emb = OnnxEmbedder(bundle)
    prepared = emb.prepare_images([_png((1, 2, 3)), b"", _png((4, 5, 6))])
    assert isinstance(prepared[1], ImageError) and prepared[1].index == 1  # type: ignore[union-attr]
    good = np.stack([p for p in prepared if isinstance(p, np.ndarray)])
    assert emb.encode_pixels(good).shape == (2, 8)


def test_unsupported_array_is_refused(bundle: Bundle) -> None:
    with pytest.raises(TypeError, match="arrays must be"):
        OnnxEmbedder(bundle).encode_images([np.zeros((4, 4), np.float64)])


# --- async facade -------------------------------------------------------------------------------


class FakeEmbedder:
    """Protocol-conforming fake: vectors from lengths; image batches can be held open."""

    def __init__(self, name: str = "fake", dim: int = 4) -> None:
        self._config = BundleConfig.model_validate(bundle_config(name=name, dim=dim))
        self.image_started = threading.Event()
        self.release_images = threading.Event()
        self.release_images.set()
        self.image_batches: list[int] = []
        self.threads: dict[str, str] = {}
        self.bad: set[bytes] = set()

    @property
    def config(self) -> BundleConfig:
        return self._config

    @property
    def model_id(self) -> str:
        return self._config.model_id

    def _vec(self, n: int, value: float) -> np.ndarray:
        return np.full((n, self._config.embed_dim), value, np.float32)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.threads["text"] = threading.current_thread().name
        return np.stack([self._vec(1, len(t))[0] for t in texts])

    def encode_images(self, sources: Sequence[Any]) -> np.ndarray:
        self.threads["image"] = threading.current_thread().name
        self.image_batches.append(len(sources))
        for i, src in enumerate(sources):
            if src in self.bad:
                err = ImageError(f"image {i}: broken")
                err.index = i  # type: ignore[attr-defined]
                err.reason = "broken"  # type: ignore[attr-defined]
                raise err
        self.image_started.set()
        assert self.release_images.wait(WAIT), "test never released the image batch"
        return np.stack([self._vec(1, float(s[0]))[0] for s in sources])

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        return self._vec(len(pixels), 1.0)


def test_fake_and_real_embedders_satisfy_the_protocol(bundle: Bundle) -> None:
    assert isinstance(FakeEmbedder(), Embedder)
    assert isinstance(OnnxEmbedder(bundle), Embedder)


async def test_text_is_served_while_an_image_batch_is_running() -> None:
    fake = FakeEmbedder()
    fake.release_images.clear()
    async with AsyncEmbedder(fake) as ae:
        images = asyncio.create_task(ae.encode_images([b"\x05", b"\x06"]))
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, fake.image_started.wait, WAIT)
        # The image lane is busy (blocked inside a batch), yet a query completes...
        vec = await asyncio.wait_for(ae.encode_texts(["abc"]), WAIT)
        assert vec[0, 0] == 3.0
        assert not images.done()
        # ...and the event loop itself stays responsive.
        ticked = asyncio.Event()
        loop.call_soon(ticked.set)
        await asyncio.wait_for(ticked.wait(), WAIT)
        fake.release_images.set()
        out = await asyncio.wait_for(images, WAIT)
    assert out[:, 0].tolist() == [5.0, 6.0]
    assert fake.threads["text"].startswith("embed-text")
    assert fake.threads["image"].startswith("embed-image")
    assert threading.current_thread().name not in fake.threads.values()


async def test_images_are_split_into_batches_in_order() -> None:
    fake = FakeEmbedder()
    async with AsyncEmbedder(fake, image_batch_size=2) as ae:
        out = await ae.encode_images([bytes([i]) for i in range(1, 6)])
    assert fake.image_batches == [2, 2, 1]
    assert out[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


async def test_image_error_index_counts_from_the_whole_request() -> None:
    fake = FakeEmbedder()
    fake.bad = {b"\x04"}
    async with AsyncEmbedder(fake, image_batch_size=2) as ae:
        with pytest.raises(ImageError, match=r"^image 3: broken") as info:
            await ae.encode_images([bytes([i]) for i in range(1, 6)])
    assert info.value.index == 3  # type: ignore[attr-defined]


async def test_async_real_embedder_matches_sync(bundle: Bundle) -> None:
    emb = OnnxEmbedder(bundle)
    sources = [_noise_png(i) for i in range(5)]
    async with AsyncEmbedder(emb, image_batch_size=2) as ae:
        texts = await ae.encode_texts(TEXTS)
        images = await ae.encode_images(sources)
        pixels = await ae.encode_pixels(_pixels(3))
        with pytest.raises(ImageError, match=r"^image 4: "):
            await ae.encode_images([*sources[:4], b"junk"])
    np.testing.assert_allclose(texts, emb.encode_texts(TEXTS), atol=1e-6)
    np.testing.assert_allclose(images, emb.encode_images(sources), atol=1e-6)
    np.testing.assert_allclose(pixels, emb.encode_pixels(_pixels(3)), atol=1e-6)


async def test_several_models() -> None:
    en, ru = FakeEmbedder("en"), FakeEmbedder("ru")
    async with AsyncEmbedder([en, ru]) as ae:
        assert ae.model_ids == ("en@1", "ru@1")
        assert ae.get("ru@1") is ru
        with pytest.raises(ValueError, match="several models"):
            await ae.encode_texts(["x"])
        assert (await ae.encode_texts(["xy"], "ru@1"))[0, 0] == 2.0
        with pytest.raises(KeyError):
            ae.get("zz@1")
        assert (await ae.encode_images([], "en@1")).shape == (0, 4)
    with pytest.raises(ValueError, match="share model id"):
        AsyncEmbedder([en, FakeEmbedder("en")])
    with pytest.raises(ValueError):
        AsyncEmbedder([])


async def test_async_text_errors_propagate(bundle: Bundle) -> None:
    async with AsyncEmbedder(OnnxEmbedder(bundle)) as ae:
        with pytest.raises(EmptyQueryError):
            await ae.encode_texts([" "])
        with pytest.raises(TypeError):
            await ae.encode_texts("cat")


def test_onnx_models_are_tiny() -> None:
    # Keeps the suite fast: the builders must stay toy-sized.
    assert len(textual_model().SerializeToString()) < 10_000
    assert len(visual_model().SerializeToString()) < 10_000
    assert EOT_ID == 2 and onnx.__version__


def test_parallel_pipelined_decode_matches_serial_and_keeps_error_index(bundle: Bundle) -> None:
    """Decoding on several threads, one batch ahead, must not change vectors or error indexes."""
    images = [_noise_png(seed) for seed in range(7)]
    serial = OnnxEmbedder(bundle, batch_size=3, decode_threads=1)
    parallel = OnnxEmbedder(bundle, batch_size=3, decode_threads=4)
    try:
        np.testing.assert_allclose(
            parallel.encode_images(images), serial.encode_images(images), atol=1e-6
        )
        bad = [*images[:5], b"not an image", images[6]]
        with pytest.raises(ImageError) as info:
            parallel.encode_images(bad)
        assert info.value.index == 5  # type: ignore[attr-defined]
    finally:
        parallel.close()
        serial.close()
