"""Tokenizers of the text towers: CLIP byte-level BPE, ruCLIP's YouTokenToMe BPE, any HF file.

None of them needs torch, open_clip or youtokentome at run time.
"""

from core.models.text.clip_bpe import ClipTokenizer, write_clip_tokenizer_json
from core.models.text.tokenizer import HfTokenizer, Tokenizer, load_tokenizer, pad_batch
from core.models.text.yttm import YttmTokenizer

__all__ = [
    "ClipTokenizer",
    "HfTokenizer",
    "Tokenizer",
    "YttmTokenizer",
    "load_tokenizer",
    "pad_batch",
    "write_clip_tokenizer_json",
]
