"""core.media.image.preprocess against the transforms the models were trained with.

open_clip's ``image_transform(..., is_train=False)`` and ruCLIP's ``RuCLIPProcessor`` transform
run on the same decoded images; the outputs must agree within 1e-3 (in practice they are equal,
because both sides make the same Pillow calls).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.media.image import decode_image, preprocess
from core.models.config import ImageConfig
from tests.core.image_samples import encode, photo_like

pytestmark = pytest.mark.export

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

TOLERANCE = 1e-3

# Sizes chosen to hit every rounding branch: square, odd excess, x.5 crop offsets, long
# panoramas, images smaller than the model input, and typical camera aspects.
SIZES = [
    (224, 224),
    (300, 199),
    (199, 300),
    (225, 448),
    (448, 225),
    (640, 480),
    (480, 640),
    (1023, 767),
    (1000, 250),
    (250, 1000),
    (120, 90),
    (97, 203),
    (384, 384),
    (1536, 1024),
    (389, 384),
]


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    """Photo-like images, round-tripped through JPEG like real uploads."""
    out = []
    for i, (w, h) in enumerate(SIZES):
        data = encode(photo_like(w, h, seed=100 + i), "JPEG", quality=90)
        out.append(decode_image(data))
    return out


def _load_ruclip_processor():
    """ruclip/processor.py without ruclip/__init__.py, which imports names that newer
    huggingface_hub releases no longer have; the processor itself needs only torchvision."""
    spec = importlib.util.find_spec("ruclip")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("ruclip is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "processor.py"
    mod_spec = importlib.util.spec_from_file_location("_ruclip_processor", path)
    assert mod_spec is not None and mod_spec.loader is not None
    module = importlib.util.module_from_spec(mod_spec)
    sys.modules.setdefault("_ruclip_processor", module)
    mod_spec.loader.exec_module(module)
    return module


def _compare(ours: np.ndarray, reference: torch.Tensor) -> float:
    ref = reference.detach().cpu().numpy()
    assert ours.shape == ref.shape
    assert ours.dtype == np.float32
    return float(np.abs(ours - ref).max())


def test_open_clip_vit_b_32(images: list[Image.Image]) -> None:
    """ViT-B-32's own preprocessing config (224, shortest side, bicubic, OpenAI mean/std)."""
    from open_clip.transform import PreprocessCfg, image_transform_v2

    vision = open_clip.get_model_config("ViT-B-32")["vision_cfg"]
    pp = PreprocessCfg(size=vision["image_size"])
    reference = image_transform_v2(pp, is_train=False)
    cfg = ImageConfig(
        size=vision["image_size"],
        mean=tuple(pp.mean),
        std=tuple(pp.std),
        resize_mode=pp.resize_mode,
        interpolation=pp.interpolation,
    )
    worst = max(_compare(preprocess(img, cfg), reference(img)) for img in images)
    assert worst <= TOLERANCE


@pytest.mark.parametrize(
    ("resize_mode", "interpolation", "fill"),
    [
        ("shortest", "bilinear", 0),
        ("longest", "bicubic", 0),
        ("longest", "bilinear", 128),
        ("squash", "bicubic", 0),
        ("squash", "bilinear", 0),
    ],
)
def test_open_clip_other_modes(
    images: list[Image.Image], resize_mode: str, interpolation: str, fill: int
) -> None:
    reference = open_clip.image_transform(
        224,
        is_train=False,
        resize_mode=resize_mode,
        interpolation=interpolation,
        fill_color=fill,
    )
    cfg = ImageConfig(size=224, resize_mode=resize_mode, interpolation=interpolation, fill=fill)
    worst = max(_compare(preprocess(img, cfg), reference(img)) for img in images)
    assert worst <= TOLERANCE


def test_ruclip_384(images: list[Image.Image], monkeypatch: pytest.MonkeyPatch) -> None:
    processor = _load_ruclip_processor()
    # The transform does not use the tokenizer; avoid needing a bpe.model file.
    monkeypatch.setattr(processor.yttm, "BPE", lambda path: None)
    ruclip = processor.RuCLIPProcessor("unused", image_size=384)
    cfg = ImageConfig(size=384, resize_mode="crop_resize", interpolation="bilinear")
    worst = 0.0
    for img in images:
        w, h = img.size
        if abs(w - h) == 1:
            continue  # the reference picks a random 0/1 offset there (see core.media.image)
        reference = ruclip(images=[img])["pixel_values"][0]
        worst = max(worst, _compare(preprocess(img, cfg), reference))
    assert worst <= TOLERANCE


def test_ruclip_near_square_matches_one_of_the_random_offsets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    processor = _load_ruclip_processor()
    monkeypatch.setattr(processor.yttm, "BPE", lambda path: None)
    ruclip = processor.RuCLIPProcessor("unused", image_size=64)
    cfg = ImageConfig(size=64, resize_mode="crop_resize", interpolation="bilinear")
    img = photo_like(101, 100, seed=7)
    ours = preprocess(img, cfg)
    torch.manual_seed(0)
    diffs = {round(_compare(ours, ruclip(images=[img])["pixel_values"][0]), 6) for _ in range(20)}
    assert min(diffs) <= TOLERANCE
