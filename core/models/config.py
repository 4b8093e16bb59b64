"""The ``config.json`` of a model bundle: everything the runtime needs to know about a model.

A bundle is a directory::

    config.json      this schema
    visual.onnx      image tower: input ``image`` float32 [N, 3, S, S] -> output [N, D]
    textual.onnx     text tower: input ``text`` int64 [N, L] -> output [N, D]
    tokenizer files  ``tokenizer.json`` (HF / CLIP BPE) or ``bpe.model`` (YouTokenToMe)

Immich's layout (``visual/model.onnx``, ``textual/model.onnx``, ...) is translated into this
schema by the loader, see :mod:`core.models.bundle`.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FORMAT: Final = "image-finder-bundle/1"

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

ResizeMode = Literal["shortest", "longest", "squash", "crop_resize"]
"""How an image becomes a square model input.

* ``shortest``: resize the shorter side to ``size`` then centre-crop (open_clip's default);
* ``longest``: resize the longer side to ``size`` then pad with ``fill`` (open_clip option);
* ``squash``: resize both sides to ``size`` ignoring the aspect ratio;
* ``crop_resize``: centre-crop the largest square first, then resize it (ruCLIP's
  ``RandomResizedCrop(scale=(1, 1), ratio=(1, 1))`` eval transform).
"""

Interpolation = Literal["bicubic", "bilinear", "nearest", "lanczos"]
TokenizerKind = Literal["clip", "yttm", "hf"]
"""``clip``: open_clip's byte-level BPE with ftfy cleaning, from ``tokenizer.json``;
``yttm``: ruCLIP's YouTokenToMe BPE from ``bpe.model``; ``hf``: any HF ``tokenizer.json``
used as-is (Immich's textual models, multilingual ones included)."""

TextClean = Literal["none", "whitespace", "lower", "canonicalize"]
"""What the ``hf`` kind does to a text before its ``tokenizer.json`` sees it (open_clip's
``tokenizer_kwargs.clean``; the clip and yttm kinds clean as open_clip / ruCLIP do instead):

* ``none``: nothing (the file's own normalizer only);
* ``whitespace``: ftfy, HTML unescape, whitespace collapsed (open_clip ``HFTokenizer``'s default);
* ``lower``: ``whitespace`` then lower case (open_clip ``SimpleTokenizer``'s default);
* ``canonicalize``: ftfy, HTML unescape, ``_`` to space, ASCII punctuation removed, lower case,
  whitespace collapsed (SigLIP's big_vision cleaning).
"""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageConfig(_Strict):
    size: int = Field(gt=0, le=4096)
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    resize_mode: ResizeMode = "shortest"
    interpolation: Interpolation = "bicubic"
    fill: int = Field(default=0, ge=0, le=255)

    @field_validator("std")
    @classmethod
    def _positive_std(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(s <= 0 for s in v):
            raise ValueError("std values must be positive")
        return v


class TextConfig(_Strict):
    context_length: int = Field(gt=1, le=4096)
    tokenizer: TokenizerKind
    tokenizer_file: str = "tokenizer.json"
    lowercase: bool = True  # the clip and yttm kinds; the hf kind follows ``clean``
    clean: TextClean = "none"
    # Pad every query to context_length: a tower without a causal mask (SigLIP) attends to the
    # padding too, so its vectors change with the number of positions fed. Defaults to true for
    # the hf kind (nothing known about its tower) and false for our causal clip / yttm exports.
    pad_to_context: bool = False
    pad_id: int = 0
    # Ids framing a sequence; None where the tokenizer file's own post-processor adds them.
    sot_id: int | None = None
    eot_id: int | None = None
    # Extra int64 input ``attention_mask`` (HF text encoders such as XLM-R / M-CLIP).
    attention_mask: bool = False

    @model_validator(mode="before")
    @classmethod
    def _default_padding(cls, data: object) -> object:
        """An hf-kind bundle that does not say otherwise is padded like a non-causal tower."""
        if isinstance(data, dict) and "pad_to_context" not in data:
            return {**data, "pad_to_context": data.get("tokenizer") == "hf"}
        return data

    @model_validator(mode="after")
    def _clean_is_for_hf(self) -> TextConfig:
        if self.clean != "none" and self.tokenizer != "hf":
            raise ValueError(
                f"clean applies to the hf tokenizer kind only; the {self.tokenizer} kind "
                "cleans text its own way (see lowercase)"
            )
        return self


class BundleConfig(_Strict):
    format: Literal["image-finder-bundle/1"] = FORMAT
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
    version: str = Field(min_length=1, max_length=50)
    embed_dim: int = Field(gt=0, le=8192)
    # ISO 639-1 codes the text tower understands, or ["*"] for a multilingual model.
    languages: tuple[str, ...] = Field(min_length=1)
    image: ImageConfig
    text: TextConfig
    # Cosine below which a text->image hit is noise for this model; used by the search service.
    relevance_floor: float = Field(default=0.2, ge=-1.0, le=1.0)
    visual_file: str = "visual.onnx"
    textual_file: str = "textual.onnx"
    source: str = ""  # free text: where the weights came from (e.g. "open_clip ViT-B-32 openai")

    @property
    def multilingual(self) -> bool:
        return "*" in self.languages

    @property
    def model_id(self) -> str:
        """What every stored vector is tagged with: a model change means a new id."""
        return f"{self.name}@{self.version}"
