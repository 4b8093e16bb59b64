"""Turn images and texts into L2-normalised vectors with a bundle's two ONNX towers.

* :class:`OnnxEmbedder` is synchronous and thread-safe: one onnxruntime session per tower,
  created on first use (under a per-tower lock, so a text query never waits for the image
  tower to load) and reused; ``InferenceSession.run`` is itself thread-safe, which is what
  lets an image batch run as several runs at once on the one image session.
* :class:`ImageRunPlanner` picks, per image batch, between one run on every thread (a lone
  photo) and parallel runs (a full batch), within a memory budget.
* :class:`AsyncEmbedder` is the facade for asyncio code: inference runs in its own executors,
  never on the event loop, with texts on a dedicated lane so a query is never queued behind a
  bulk image batch.
* :class:`Embedder` is the protocol later layers depend on, so their tests can use fakes.

Images that cannot be read raise a typed :class:`~core.errors.ImageError` whose message starts
with the item's index (``image 3: ...``) and whose ``index`` attribute holds it. Ingest code
that wants to skip bad items instead calls :meth:`OnnxEmbedder.prepare_images`, which returns
one array or one error per item, then :meth:`OnnxEmbedder.encode_pixels` on the good ones.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import onnxruntime as ort
from PIL import Image

from core.errors import BundleError, EmptyQueryError, ImageError, TokenizerError
from core.models.bundle import (
    Bundle,
    TextualIO,
    VisualIO,
    check_dims,
    check_width,
    inspect_textual,
    inspect_visual,
)
from core.models.config import BundleConfig
from core.models.memory import release_free_memory
from core.settings import GraphOptimization

ImageSource = bytes | Path | np.ndarray | Image.Image
"""``bytes`` / ``Path``: an encoded image file; ``PIL.Image``: a decoded image;
``np.ndarray``: either model input already preprocessed (float32 [3, S, S]) or RGB pixels
(uint8 [H, W, 3], e.g. a video frame converted to RGB)."""

_GRAPH_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}

# Worker threads that spin while idle burn a core between runs; on a small CPU shared by a text
# lane, an image lane and image decoding that time is better spent on work.
DEFAULT_SESSION_CONFIG: Mapping[str, str] = {
    "session.intra_op.allow_spinning": "0",
    "session.inter_op.allow_spinning": "0",
}

_NORM_EPS = 1e-12

# Working memory one image needs inside a ViT run (activations, attention scores, the input),
# in multiples of its float32 input tensor: a rough upper estimate that holds from B/32 to B/16.
ITEM_MEMORY_FACTOR = 12

T = TypeVar("T")


@runtime_checkable
class Embedder(Protocol):
    """What the ingest and search layers need from an embedder (fakes implement this)."""

    @property
    def config(self) -> BundleConfig: ...

    @property
    def model_id(self) -> str: ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_images(self, sources: Sequence[ImageSource]) -> np.ndarray: ...

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray: ...


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; an all-zero row stays zero instead of becoming NaN."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit: np.ndarray = x / np.maximum(norms, _NORM_EPS)
    return unit


def session_options(
    threads: int = 0,
    graph_optimization: GraphOptimization = "all",
    config: Mapping[str, str] | None = None,
) -> ort.SessionOptions:
    """CPU session options: ``threads`` intra-op threads (0 = onnxruntime's choice), one
    inter-op thread and sequential execution (CLIP graphs are chains, parallel branches buy
    nothing), no idle spinning unless ``config`` overrides it."""
    if graph_optimization not in _GRAPH_LEVELS:
        raise ValueError(f"graph_optimization must be one of {sorted(_GRAPH_LEVELS)}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(0, threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = _GRAPH_LEVELS[graph_optimization]
    opts.log_severity_level = 3  # graph-cleanup warnings are noise to a bot operator
    for key, value in {**DEFAULT_SESSION_CONFIG, **(config or {})}.items():
        opts.add_session_config_entry(key, value)
    return opts


class _Tower:
    """One lazily created session and what its graph takes, guarded by its own lock."""

    def __init__(self, path: Path, inspect: Callable[[Any], Any]) -> None:
        self.path = path
        self._inspect = inspect
        self._lock = threading.Lock()
        self.session: ort.InferenceSession | None = None
        self.io: Any = None

    def get(self, options: Callable[[], ort.SessionOptions]) -> tuple[ort.InferenceSession, Any]:
        session = self.session
        if session is None:
            with self._lock:
                if self.session is None:
                    created = self._create(options())
                    self.io = self._inspect(created)
                    self.session = created
                    release_free_memory()  # loading leaves a second copy of the weights freed
                session = self.session
        return session, self.io

    def _create(self, options: ort.SessionOptions) -> ort.InferenceSession:
        try:
            return ort.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises several unrelated types
            raise BundleError(self.path, f"onnxruntime cannot load it: {exc}".strip()) from exc


@dataclass(frozen=True)
class RunPlan:
    """How one image batch goes through the image session: ``slices`` of it, ``parallel`` of
    them at a time (1: one after another, each op spread over every intra-op thread)."""

    slices: tuple[slice, ...]
    parallel: int


class ImageRunPlanner:
    """Chooses the thread layout of each image batch.

    onnxruntime fixes a session's intra-op thread count, and a second session would hold a
    second copy of the weights, so both layouts share one session with a thread per core.
    Fewer items than ``runs`` (a lone photo) go as one run whose ops use every thread; a larger
    batch goes as ``runs`` runs at once, where each run's caller does most of its own work and
    the threads meet far less often. ``memory_mb`` caps the images in flight (``item_mb``
    each): it bounds run size × runs at once.
    """

    def __init__(self, *, runs: int, batch_size: int, memory_mb: int, item_mb: float) -> None:
        if min(runs, batch_size) < 1 or memory_mb < 0 or item_mb <= 0:
            raise ValueError("runs and batch_size must be >= 1, memory_mb >= 0, item_mb > 0")
        self.runs = runs
        self.batch_size = batch_size
        self.memory_mb = memory_mb
        self.item_mb = item_mb

    @property
    def max_in_flight(self) -> int:
        """Images the budget lets run at once (at least one; 0 MB means no budget)."""
        if self.memory_mb == 0:
            return self.runs * self.batch_size
        return max(1, int(self.memory_mb // self.item_mb))

    def plan(self, n: int, fixed: int | None = None) -> RunPlan:
        """Slices of ``n`` items for a graph whose batch axis is ``fixed`` (or dynamic)."""
        parallel = 1 if n < self.runs else self.runs
        if fixed:
            parallel = max(1, min(parallel, self.max_in_flight // fixed))
            return RunPlan(tuple(_split(n, fixed, fixed, parallel)), parallel)
        parallel = min(parallel, self.max_in_flight)
        cap = max(1, min(self.batch_size, self.max_in_flight // parallel))
        return RunPlan(tuple(_split(n, None, cap, parallel)), parallel)


class OnnxEmbedder:
    """Both towers of one bundle on onnxruntime's CPU provider.

    ``batch_size`` caps how many items go through a tower in one run (memory bound); a graph
    whose batch axis is fixed (Immich exports batch 1) is fed exactly that many at a time.

    ``threads`` is the intra-op thread count of both sessions (0: onnxruntime's choice); the
    CPUs the process may use size image runs and decoding. Texts go through one run (a query
    is one short sequence). Image batches are laid out by :class:`ImageRunPlanner`: a lone
    photo as one run on every thread, a full batch as ``image_runs`` (default: one per CPU)
    runs at once, since in bulk runs with several threads each cost more CPU time per image
    (the threads meet at every one of the graph's few hundred ops).
    ``memory_mb`` bounds the images in flight in image runs (0: no bound).
    """

    def __init__(
        self,
        bundle: Bundle,
        *,
        threads: int = 0,
        graph_optimization: GraphOptimization = "all",
        batch_size: int = 16,
        session_config: Mapping[str, str] | None = None,
        decode_threads: int = 0,
        image_runs: int = 0,
        memory_mb: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if decode_threads < 0 or image_runs < 0:
            raise ValueError("decode_threads and image_runs must be >= 0")
        self.bundle = bundle
        self.batch_size = batch_size
        cores = threads or _cpu_count()
        # Pillow releases the GIL while decoding and resizing, so threads decode in parallel.
        self.decode_threads = decode_threads or cores
        self.image_runs = image_runs or cores
        size = bundle.config.image.size
        self.planner = ImageRunPlanner(
            runs=self.image_runs,
            batch_size=batch_size,
            memory_mb=memory_mb,
            item_mb=ITEM_MEMORY_FACTOR * 3 * size * size * 4 / 2**20,
        )
        self._decode_pool: ThreadPoolExecutor | None = None
        self._run_pool: ThreadPoolExecutor | None = None
        self._decode_pool_lock = threading.Lock()
        self._options = lambda: session_options(threads, graph_optimization, session_config)
        self._visual = _Tower(bundle.visual_path, lambda s: inspect_visual(s, bundle))
        self._textual = _Tower(bundle.textual_path, lambda s: inspect_textual(s, bundle))

    # --- identity ---------------------------------------------------------------------------

    @property
    def config(self) -> BundleConfig:
        return self.bundle.config

    @property
    def model_id(self) -> str:
        return self.bundle.config.model_id

    @property
    def dim(self) -> int:
        return self.bundle.config.embed_dim

    @property
    def loaded(self) -> tuple[bool, bool]:
        """Whether the (image, text) sessions exist yet."""
        return self._visual.session is not None, self._textual.session is not None

    # --- sessions -----------------------------------------------------------------------------

    def _visual_session(self) -> tuple[ort.InferenceSession, VisualIO]:
        session, io = self._visual.get(self._options)
        if io.dim is not None:
            check_width(self.bundle, "visual", io.dim)
        return session, io

    def _textual_session(self) -> tuple[ort.InferenceSession, TextualIO]:
        session, io = self._textual.get(self._options)
        if io.dim is not None:
            check_width(self.bundle, "textual", io.dim)
        return session, io

    def validate(self) -> None:
        """Create both sessions and prove the bundle is usable, or raise ``BundleError``.

        Checks input/output names, ranks, dtypes and static dims against the config, loads the
        tokenizer and runs one dummy inference per tower, which also measures an output width
        the graph leaves symbolic; the two widths must match each other and ``embed_dim``.
        The text tower loads first: loading holds the weights twice for a moment, and that
        moment costs less before the other tower is resident (the text tower is the larger).
        """
        textual, tio = self._textual.get(self._options)
        visual, vio = self._visual.get(self._options)
        try:
            ids = self.bundle.tokenizer.encode(["a photo"])
        except TokenizerError as exc:
            raise BundleError(self.bundle.tokenizer_path, str(exc)) from exc
        size = self.config.image.size
        pixels = np.zeros((1, 3, size, size), dtype=np.float32)
        vdim = self._probe(self.bundle.visual_path, lambda: self._run_visual(visual, vio, pixels))
        tdim = self._probe(self.bundle.textual_path, lambda: self._run_textual(textual, tio, ids))
        check_dims(self.bundle, vdim, tdim)

    @staticmethod
    def _probe(path: Path, run: Callable[[], np.ndarray]) -> int:
        """Width of one dummy inference's output (also proves the graph runs at all)."""
        try:
            out = run()
        except (BundleError, TokenizerError):
            raise
        except Exception as exc:  # onnxruntime's errors share no useful base class
            raise BundleError(path, f"dummy inference failed: {exc}") from exc
        if out.ndim != 2 or out.shape[0] != 1:
            raise BundleError(path, f"dummy inference returned shape {list(out.shape)}")
        return int(out.shape[1])

    # --- images -------------------------------------------------------------------------------

    def prepare_images(self, sources: Sequence[ImageSource]) -> list[np.ndarray | ImageError]:
        """Preprocess each source to float32 [3, S, S]; a bad one yields its ``ImageError``.

        Sources are decoded on ``decode_threads`` threads: decoding a 12 MP JPEG costs about as
        much as a ViT-B/32 forward pass, so doing it serially would leave cores idle."""
        if len(sources) <= 1 or self.decode_threads == 1:
            return [self._prepare_one(i, src) for i, src in enumerate(sources)]
        return list(self._pool().map(self._prepare_one, range(len(sources)), sources))

    def _pool(self) -> ThreadPoolExecutor:
        with self._decode_pool_lock:
            if self._decode_pool is None:
                self._decode_pool = ThreadPoolExecutor(
                    self.decode_threads, thread_name_prefix="decode"
                )
            return self._decode_pool

    def _runs(self) -> ThreadPoolExecutor:
        with self._decode_pool_lock:
            if self._run_pool is None:
                self._run_pool = ThreadPoolExecutor(self.image_runs, thread_name_prefix="embed-run")
            return self._run_pool

    def _prepare_one(self, index: int, src: ImageSource) -> np.ndarray | ImageError:
        from core.media.image import prepare_image, preprocess

        cfg = self.config.image
        try:
            if isinstance(src, np.ndarray):
                if src.ndim == 3 and src.shape[0] == 3 and src.dtype == np.float32:
                    arr = src
                elif src.ndim == 3 and src.shape[2] == 3 and src.dtype == np.uint8:
                    arr = preprocess(Image.fromarray(src, "RGB"), cfg)
                else:
                    raise TypeError(
                        f"arrays must be float32 [3, S, S] or uint8 [H, W, 3], "
                        f"got {src.dtype} {list(src.shape)}"
                    )
            elif isinstance(src, Image.Image):
                arr = preprocess(src, cfg)
            else:
                arr = prepare_image(src, cfg)
        except ImageError as exc:
            return _indexed(exc, index)
        if arr.shape != (3, cfg.size, cfg.size):
            raise ValueError(
                f"image {index}: model input must be [3, {cfg.size}, {cfg.size}], "
                f"got {list(arr.shape)}"
            )
        return arr

    def encode_images(self, sources: Sequence[ImageSource]) -> np.ndarray:
        """float32 [N, D]; raises the first unreadable item's ``ImageError`` (index in message).

        Pipelined: the next batch is decoded while the current one runs through the tower."""
        if not sources:
            return np.zeros((0, self.dim), dtype=np.float32)
        step = self.batch_size
        chunks = [sources[i : i + step] for i in range(0, len(sources), step)]
        try:
            if len(chunks) == 1:
                return self._encode_prepared(self.prepare_images(chunks[0]), 0)
            pool = self._pool()
            parts = []
            pending = pool.submit(self.prepare_images, chunks[0])
            for k in range(len(chunks)):
                prepared = pending.result()
                if k + 1 < len(chunks):
                    pending = pool.submit(self.prepare_images, chunks[k + 1])
                parts.append(self._encode_prepared(prepared, k * step))
            return np.concatenate(parts)
        finally:
            release_free_memory()  # decoded photos would otherwise stay resident between batches

    def _encode_prepared(self, prepared: list[np.ndarray | ImageError], offset: int) -> np.ndarray:
        for item in prepared:
            if isinstance(item, ImageError):
                raise _indexed(item, offset + getattr(item, "index", 0)) if offset else item
        return self.encode_pixels(np.stack(prepared))  # type: ignore[arg-type]

    def close(self) -> None:
        """Stop the decode and image-run threads (sessions are freed with the object)."""
        with self._decode_pool_lock:
            for pool in (self._decode_pool, self._run_pool):
                if pool is not None:
                    pool.shutdown(wait=False)
            self._decode_pool = self._run_pool = None

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Model-ready float32 [N, 3, S, S] to normalised float32 [N, D]."""
        size = self.config.image.size
        pixels = np.asarray(pixels, dtype=np.float32)
        if pixels.ndim != 4 or pixels.shape[1:] != (3, size, size):
            raise ValueError(f"pixels must be [N, 3, {size}, {size}], got {list(pixels.shape)}")
        if len(pixels) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        session, io = self._visual_session()
        plan = self.planner.plan(len(pixels), io.batch)
        chunks = [pixels[s] for s in plan.slices]

        def run(chunk: np.ndarray) -> np.ndarray:
            out = self._run_visual(session, io, chunk)
            return self._checked(out, len(chunk), self.bundle.visual_path)

        if plan.parallel == 1:
            parts = [run(chunk) for chunk in chunks]
        else:
            pool, step = self._runs(), plan.parallel
            parts = [
                part
                for i in range(0, len(chunks), step)
                for part in pool.map(run, chunks[i : i + step])
            ]
        return l2_normalize(np.concatenate(parts))

    def _run_visual(
        self, session: ort.InferenceSession, io: VisualIO, chunk: np.ndarray
    ) -> np.ndarray:
        n = len(chunk)
        feed = _fill_batch(np.ascontiguousarray(chunk), io.batch)
        out = session.run([io.output], {io.input: feed})[0]
        return np.asarray(out)[:n]

    # --- texts --------------------------------------------------------------------------------

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text (framed, truncated, not padded); empty text is ``EmptyQueryError``."""
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not one string")
        for index, text in enumerate(texts):
            if not text or not text.strip():
                raise EmptyQueryError(f"text {index} is empty")
        if not texts:
            return []
        return self.bundle.tokenizer.encode(list(texts))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [N, D], normalised. Each batch is padded only as far as the model needs: to
        the graph's fixed length, else to the context length for a tower that sees its padding
        (``text.pad_to_context``), else to the batch's longest sequence."""
        seqs = self.tokenize(texts)
        if not seqs:
            return np.zeros((0, self.dim), dtype=np.float32)
        session, io = self._textual_session()
        step = io.batch or self.batch_size
        parts = []
        for start in range(0, len(seqs), step):
            chunk = seqs[start : start + step]
            out = self._run_textual(session, io, chunk)
            parts.append(self._checked(out, len(chunk), self.bundle.textual_path))
        return l2_normalize(np.concatenate(parts))

    def _run_textual(
        self, session: ort.InferenceSession, io: TextualIO, seqs: Sequence[Sequence[int]]
    ) -> np.ndarray:
        n = len(seqs)
        longest = max(len(s) for s in seqs)
        text = self.bundle.config.text
        length = io.length or (text.context_length if text.pad_to_context else max(longest, 1))
        if longest > length:
            raise TokenizerError(
                f"tokenizer gave {longest} ids but {self.bundle.textual_path.name} takes {length}"
            )
        ids = np.full((n, length), text.pad_id, dtype=io.ids_dtype)
        mask = np.zeros((n, length), dtype=io.mask_dtype or np.int64)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        feed = {io.ids: _fill_batch(ids, io.batch)}
        if io.mask is not None:
            feed[io.mask] = _fill_batch(mask, io.batch)
        out = session.run([io.output], feed)[0]
        return np.asarray(out)[:n]

    def _checked(self, out: np.ndarray, n: int, path: Path) -> np.ndarray:
        if out.ndim != 2 or out.shape != (n, self.dim):
            raise BundleError(
                path, f"returned shape {list(out.shape)}, expected [{n}, {self.dim}] (embed_dim)"
            )
        return out.astype(np.float32, copy=False)


def _cpu_count() -> int:
    """CPUs this process may run on (a container's or taskset's limit, not the host's)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _split(n: int, fixed: int | None, cap: int, runs: int) -> list[slice]:
    """Slices of ``n`` items for runs that go ``runs`` at a time: exactly ``fixed`` items each
    for a graph with a fixed batch axis, else near-equal parts of at most ``cap`` items, a
    multiple of ``runs`` of them when there are enough items (so no run waits for a straggler).
    """
    if fixed:
        return [slice(i, min(i + fixed, n)) for i in range(0, n, fixed)]
    parts = min(n, runs * -(-n // (runs * cap)))
    bounds = [n * k // parts for k in range(parts + 1)]
    return [slice(a, b) for a, b in pairwise(bounds)]


def _fill_batch(arr: np.ndarray, batch: int | None) -> np.ndarray:
    """Pad a short batch up to a graph's fixed batch size by repeating its last row."""
    if batch is None or len(arr) == batch:
        return arr
    if len(arr) > batch:
        raise ValueError(f"batch of {len(arr)} exceeds the model's fixed batch of {batch}")
    filler = np.repeat(arr[-1:], batch - len(arr), axis=0)
    return np.concatenate([arr, filler])


def _indexed(exc: ImageError, index: int) -> ImageError:
    """The same error type with the item's index in front of the message and as ``.index``."""
    reason = getattr(exc, "reason", str(exc))
    try:
        err = type(exc)(f"image {index}: {reason}")
    except TypeError:  # a subclass with a different constructor: keep the original
        err = exc
    err.index = index  # type: ignore[attr-defined]
    err.reason = reason  # type: ignore[attr-defined]
    if err is not exc:
        err.__cause__ = exc
    return err


class AsyncEmbedder:
    """Asyncio facade over one or more embedders (one per bundle, keyed by ``model_id``).

    Two single-thread lanes: texts run on one, images on the other, so a text query is served
    while an image batch is still running. Image work is split into ``image_batch_size`` runs;
    cancelling the awaiting task stops it between runs.
    """

    def __init__(
        self, embedders: Embedder | Iterable[Embedder], *, image_batch_size: int = 16
    ) -> None:
        items = [embedders] if isinstance(embedders, Embedder) else list(embedders)
        if not items:
            raise ValueError("at least one embedder is needed")
        if image_batch_size < 1:
            raise ValueError("image_batch_size must be at least 1")
        self._embedders: dict[str, Embedder] = {}
        for emb in items:
            if emb.model_id in self._embedders:
                raise ValueError(f"two embedders share model id {emb.model_id!r}")
            self._embedders[emb.model_id] = emb
        self.image_batch_size = image_batch_size
        self._text_lane = ThreadPoolExecutor(1, thread_name_prefix="embed-text")
        self._image_lane = ThreadPoolExecutor(1, thread_name_prefix="embed-image")

    @property
    def model_ids(self) -> tuple[str, ...]:
        return tuple(self._embedders)

    def get(self, model_id: str | None = None) -> Embedder:
        """The embedder for ``model_id``; ``None`` is allowed when there is only one."""
        if model_id is None:
            if len(self._embedders) != 1:
                raise ValueError(f"several models loaded, name one of {self.model_ids}")
            return next(iter(self._embedders.values()))
        try:
            return self._embedders[model_id]
        except KeyError:
            raise KeyError(f"no embedder for model {model_id!r}") from None

    async def _on(self, lane: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(lane, fn, *args)

    async def encode_texts(self, texts: Sequence[str], model_id: str | None = None) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not one string")
        return await self._on(self._text_lane, self.get(model_id).encode_texts, list(texts))

    async def encode_images(
        self, sources: Sequence[ImageSource], model_id: str | None = None
    ) -> np.ndarray:
        emb = self.get(model_id)
        items = list(sources)
        parts = []
        for start in range(0, len(items), self.image_batch_size):
            chunk = items[start : start + self.image_batch_size]
            parts.append(await self._on(self._image_lane, _encode_chunk, emb, chunk, start))
        if not parts:
            return np.zeros((0, emb.config.embed_dim), dtype=np.float32)
        return np.concatenate(parts)

    async def encode_pixels(self, pixels: np.ndarray, model_id: str | None = None) -> np.ndarray:
        emb = self.get(model_id)
        parts = []
        for start in range(0, len(pixels), self.image_batch_size):
            chunk = pixels[start : start + self.image_batch_size]
            parts.append(await self._on(self._image_lane, emb.encode_pixels, chunk))
        if not parts:
            return np.zeros((0, emb.config.embed_dim), dtype=np.float32)
        return np.concatenate(parts)

    def close(self) -> None:
        """Stop both lanes (waits for the run in progress)."""
        self._text_lane.shutdown(wait=True, cancel_futures=True)
        self._image_lane.shutdown(wait=True, cancel_futures=True)
        for emb in self._embedders.values():
            close = getattr(emb, "close", None)
            if callable(close):
                close()

    async def __aenter__(self) -> AsyncEmbedder:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)


def _encode_chunk(emb: Embedder, chunk: list[ImageSource], offset: int) -> np.ndarray:
    """Encode one slice of a larger request; an error's index counts from the whole request."""
    try:
        return emb.encode_images(chunk)
    except ImageError as exc:
        index = getattr(exc, "index", None)
        if index is None or offset == 0:
            raise
        raise _indexed(exc, offset + index) from exc.__cause__ or exc
