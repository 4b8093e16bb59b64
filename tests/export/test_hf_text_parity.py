"""The ``hf`` kind's text cleaning and padding against open_clip itself.

Cleaning: our ``clean`` modes equal open_clip's clean functions, and our padded id batches equal
open_clip's ``HFTokenizer`` output on a cased Gemma-shaped ``tokenizer.json`` (the real one comes
with the weights). Translation: for every model config open_clip ships, ``immich_config`` picks
the cleaning ``get_tokenizer`` would, and says a tower sees its padding exactly when a tiny
random-weight copy of that open_clip text tower gives other vectors for other padding lengths.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.errors import BundleError
from core.models.bundle import open_clip_clean, sees_padding
from core.models.text.tokenizer import HfTokenizer, clean_for_hf, pad_batch
from tests.core.onnx_builders import GEMMA_PAD_ID, write_gemma_like_tokenizer
from tests.core.text.make_goldens import CORPUS

pytestmark = pytest.mark.export

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")
pytest.importorskip("transformers")

MODES = ("whitespace", "lower", "canonicalize")
SIGLIP_CONTEXT = 64

# What SigLIP's canonicalize must handle: punctuation, underscores, capitals, Cyrillic (which
# string.punctuation does not touch), odd whitespace, HTML entities, mojibake.
HAND_WRITTEN = [
    "Cat on a sofa!",
    "cat on a sofa",
    "  CAT   on\ta\nSOFA?!  ",
    "dog_park at_night",
    "__init__ snake_case_name",
    "Кот на диване! КОТ, кот; «кот» — Кот…",
    "Фото_собаки в снегу (2024)",
    "Tom &amp;amp; Jerry &lt;3 &quot;quoted&quot;",
    "cafÃ© naÃ¯ve",  # mojibake ftfy repairs
    "e-mail: someone@example.com #tag $5 100% {braces} [brackets] a|b a\\b ~tilde^",
    "¡Hola! ¿Qué tal? 'single' \"double\" `back`",
    "!!!",
    "_",
    "a" * 300,
    "Кот " * 40,
]


def _fuzz(n: int, seed: int) -> list[str]:
    """Random mixes of the characters the cleaners treat specially."""
    rng = random.Random(seed)
    pieces = [
        *"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
        " ",
        "  ",
        "\t",
        "\n",
        "\u00a0",
        "\u3000",
        "&amp;",
        "&lt;",
        "Cat",
        "cat",
        "SOFA",
        "Кот",
        "диван",
        "ё",
        "İ",
        "ß",
        "é",
        "—",
        "«",
        "»",
        "…",
    ]
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 25))) for _ in range(n)]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    return [*HAND_WRITTEN, *corpus, *_fuzz(800, seed=3)]


@pytest.fixture(scope="module")
def gemma_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in tokenizer as a directory ``transformers.AutoTokenizer`` loads offline."""
    root = tmp_path_factory.mktemp("gemma")
    write_gemma_like_tokenizer(root / "tokenizer.json")
    tok_cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "pad_token": "<pad>",
        "eos_token": "<eos>",
    }
    (root / "tokenizer_config.json").write_text(json.dumps(tok_cfg), encoding="utf-8")
    return root


@pytest.mark.parametrize("mode", MODES)
def test_cleaning_equals_open_clip(texts: list[str], mode: str) -> None:
    from open_clip.tokenizer import get_clean_fn

    theirs = get_clean_fn(mode)
    bad = [t for t in texts if clean_for_hf(t, mode) != theirs(t)]  # type: ignore[arg-type]
    assert not bad, f"{len(bad)} of {len(texts)} differ, e.g. {bad[:5]!r}"


@pytest.mark.parametrize("context", [SIGLIP_CONTEXT, 8])
@pytest.mark.parametrize("mode", MODES)
def test_ids_equal_open_clip_hf_tokenizer(
    gemma_dir: Path, texts: list[str], mode: str, context: int
) -> None:
    """What the text tower is fed: our ids padded to the context equal open_clip's tensor."""
    from open_clip.tokenizer import HFTokenizer

    theirs = HFTokenizer(str(gemma_dir), context_length=context, clean=mode)(texts).numpy()
    ours = HfTokenizer(
        gemma_dir / "tokenizer.json", context_length=context, pad_id=GEMMA_PAD_ID, clean=mode
    )
    fed = pad_batch(ours.encode(texts), GEMMA_PAD_ID, context)
    bad = [t for t, a, b in zip(texts, fed, theirs, strict=True) if not np.array_equal(a, b)]
    assert not bad, f"{len(bad)} of {len(texts)} differ, e.g. {bad[:5]!r}"


def test_canonicalize_folds_case_and_punctuation(gemma_dir: Path) -> None:
    from open_clip.tokenizer import HFTokenizer

    ids = HFTokenizer(str(gemma_dir), context_length=16, clean="canonicalize")(
        ["Cat on a sofa!", "cat on a sofa"]
    )
    assert torch.equal(ids[0], ids[1])  # the premise of the runtime test, in open_clip itself


# --- immich_config's translation of open_clip's text_cfg ----------------------------------------


def _catalogue() -> list[tuple[str, dict[str, Any]]]:
    return [(n, open_clip.get_model_config(n)) for n in open_clip.list_models()]


def _is_siglip(name: str, cfg: dict[str, Any]) -> bool:
    return "init_logit_bias" in cfg or "siglip" in name.lower()


def test_cleaning_matches_open_clip_get_tokenizer(monkeypatch: pytest.MonkeyPatch) -> None:
    """For every shipped config, the clean mode open_clip's factory would construct with, or a
    refusal where it passes options we do not reproduce (CLIPA's ``strip_sep_token``)."""
    import open_clip.factory as factory

    built: list[tuple[str, dict[str, Any]]] = []

    def recorder(default: str) -> Any:
        def make(*args: Any, **kwargs: Any) -> None:
            built.append((kwargs.pop("clean", default), kwargs))

        return make

    monkeypatch.setattr(factory, "HFTokenizer", recorder("whitespace"))
    monkeypatch.setattr(factory, "SimpleTokenizer", recorder("lower"))
    monkeypatch.setattr(factory, "SigLipTokenizer", recorder("canonicalize"))
    refused = []
    for name, cfg in _catalogue():
        factory.get_tokenizer(name)
        clean, options = built.pop()
        text_cfg = dict(cfg.get("text_cfg", {}))
        extra = {k for k, v in options.items() if v and k not in ("context_length", "cache_dir")}
        try:
            ours = open_clip_clean(Path("config.json"), text_cfg, siglip=_is_siglip(name, cfg))
        except BundleError:
            refused.append(name)
            assert extra, f"{name}: refused though open_clip passes only clean={clean!r}"
            continue
        assert not extra and ours == clean, f"{name}: {ours!r} != {clean!r} {options}"
    assert len(refused) < 10  # only the CLIPA family (strip_sep_token) today


def _tiny_text_cfg(text_cfg: dict[str, Any]) -> dict[str, Any]:
    small = {
        k: v for k, v in text_cfg.items() if k not in ("hf_tokenizer_name", "tokenizer_kwargs")
    }
    return {**small, "width": 32, "heads": 2, "layers": 2, "vocab_size": 64}


def _padded(seq: list[int], pad_id: int, length: int) -> Any:
    return torch.tensor([seq + [pad_id] * (length - len(seq))])


def _run(tower: Any, ids: Any) -> Any:
    """The tower on ``ids`` of any length: open_clip's causal mask is built for the full context
    and only sliced when a pad mask is added, so slice it here as our exporter does."""
    full = getattr(tower, "attn_mask", None)
    sliced_by_open_clip = getattr(tower, "cls_emb", None) is not None or getattr(
        tower, "use_pad_mask", False
    )
    n = ids.shape[1]
    try:
        if full is not None and not sliced_by_open_clip and full.shape[0] != n:
            tower.attn_mask = full[:n, :n]
        with torch.no_grad():
            out = tower(ids)
    finally:
        if full is not None:
            tower.attn_mask = full
    return out[0] if isinstance(out, tuple) else out


def _padding_changes_output(tower: Any, seq: list[int], pad_id: int, context: int) -> bool:
    outs = [_run(tower, _padded(seq, pad_id, n)) for n in (len(seq), len(seq) + 3, context)]
    return any(float((o - outs[-1]).abs().max()) > 1e-4 for o in outs[:-1])


def test_sees_padding_matches_open_clip_text_towers() -> None:
    """One tiny tower per family of the catalogue (causal or not, pooling, CoCa class token),
    plus the poolings no shipped config combines with a causal mask yet."""
    from open_clip.model import _build_text_tower

    synthetic = [{"pool_type": "first"}, {"pool_type": "last"}]
    synthetic.append({"no_causal_mask": True, "pool_type": "first"})
    named = [*_catalogue(), *((f"synthetic-{i}", {"text_cfg": c}) for i, c in enumerate(synthetic))]
    families: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}
    for name, cfg in named:
        tc = cfg.get("text_cfg", {})
        if tc.get("hf_model_name"):
            continue  # HF encoders: test below
        key = (bool(tc.get("no_causal_mask")), tc.get("pool_type", "argmax"), tc.get("embed_cls"))
        families.setdefault(key, (name, tc))
    assert len(families) >= 7
    rng = random.Random(0)
    outcomes = set()
    for key, (name, tc) in sorted(families.items(), key=str):
        torch.manual_seed(0)
        tower = _build_text_tower(16, _tiny_text_cfg(tc)).eval()
        pad_id, eos_id, eot = int(tc.get("pad_id", 0)), int(tc.get("eos_id", 2)), 63
        body = [rng.randint(4, 60) for _ in range(5)]
        seq = [1, *body, eos_id if key[1] == "eos" else eot]
        changes = _padding_changes_output(tower, seq, pad_id, int(tc.get("context_length", 77)))
        assert changes == sees_padding(tc, siglip=False), f"{name} {key}: changes={changes}"
        outcomes.add(changes)
    assert outcomes == {True, False}
    for name, cfg in _catalogue():
        if _is_siglip(name, cfg) and not cfg["text_cfg"].get("hf_model_name"):
            assert sees_padding(cfg["text_cfg"], siglip=False), f"{name}: SigLIP, yet causal?"


@pytest.mark.parametrize("pooler", ["mean_pooler", "cls_pooler", "cls_last_hidden_state_pooler"])
def test_hf_text_encoder_ignores_padding(pooler: str) -> None:
    """XLM-R style towers (``hf_model_name``) mask the pad id, so padding to the longest query
    is exact: ``pad_to_context`` false, as ``sees_padding`` says."""
    import transformers
    from open_clip.hf_model import HFTextEncoder

    config = transformers.XLMRobertaConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=100,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    tower = HFTextEncoder(
        "xlm-roberta-base", 16, config=config, pooler_type=pooler, proj_type="mlp"
    ).eval()
    seq = [0, 17, 23, 5, 40, 2]
    assert not _padding_changes_output(tower, seq, pad_id=1, context=77)
    text_cfg = {"hf_model_name": "xlm-roberta-base", "hf_pooler_type": pooler}
    assert not sees_padding(text_cfg, siglip=False)


def test_siglip2_default_model_config_translates_to_canonicalize_and_full_padding() -> None:
    cfg = open_clip.get_model_config("ViT-B-32-SigLIP2-256")
    text_cfg = cfg["text_cfg"]
    assert open_clip_clean(Path("config.json"), text_cfg, siglip=True) == "canonicalize"
    assert sees_padding(text_cfg, siglip=False)  # from the text_cfg alone, not the name
    assert text_cfg["context_length"] == SIGLIP_CONTEXT
