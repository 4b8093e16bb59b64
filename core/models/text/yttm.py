"""ruCLIP's YouTokenToMe BPE, read and applied without the ``youtokentome`` package.

youtokentome is a C++ extension that needs Cython to build and is unmaintained; ruCLIP only needs
its encoder, which is small. This module reimplements ``BaseEncoder::encode_sentence`` of
youtokentome 1.0.6 step by step (same word splitting, same unknown-character handling, same
merge queue order), so ids are identical; the tests compare it with youtokentome itself.

``bpe.model`` is a text file::

    <n_chars> <n_rules>
    <code point> <id>          x n_chars
    <left id> <right id> <merged id>   x n_rules (earlier rule = higher priority)
    <unk id> <pad id> <bos id> <eos id>
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Sequence
from pathlib import Path

from core.errors import TokenizerError

SPACE_CHAR = "\u2581"  # "▁": youtokentome's word-start marker, also treated as a space
# youtokentome's is_space(): C isspace() in the "C" locale, or the word-start marker.
_WORDS = re.compile(f"[^\t\n\x0b\x0c\r {SPACE_CHAR}]+")
_UNKNOWN = -1  # a run of characters outside the alphabet; never part of a merge rule
_CACHE_LIMIT = 50_000


class YttmModel:
    """The contents of a ``bpe.model`` file and the encoder over them."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            fields = self.path.read_text(encoding="ascii").split()
            numbers = [int(f) for f in fields]
        except FileNotFoundError as exc:
            raise TokenizerError(f"{path}: tokenizer file is missing") from exc
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise TokenizerError(f"{path}: not a YouTokenToMe model ({exc})") from exc
        if len(numbers) < 2:
            raise TokenizerError(f"{path}: not a YouTokenToMe model (empty header)")
        n_chars, n_rules = numbers[0], numbers[1]
        expected = 2 + 2 * n_chars + 3 * n_rules + 4
        if n_chars <= 0 or n_rules < 0 or len(numbers) != expected:
            raise TokenizerError(
                f"{path}: not a YouTokenToMe model ({len(numbers)} numbers, header says {expected})"
            )
        chars = numbers[2 : 2 + 2 * n_chars]
        try:
            self.char2id = {chr(cp): tid for cp, tid in zip(chars[::2], chars[1::2], strict=True)}
        except (ValueError, OverflowError) as exc:
            raise TokenizerError(f"{path}: invalid code point in the alphabet") from exc
        rules = numbers[2 + 2 * n_chars : 2 + 2 * n_chars + 3 * n_rules]
        # pair -> (rule index, merged id); on a duplicate pair the later rule wins, as in C++.
        self.rules: dict[tuple[int, int], tuple[int, int]] = {}
        for i in range(n_rules):
            x, y, z = rules[3 * i : 3 * i + 3]
            self.rules[(x, y)] = (i, z)
        self.unk_id, self.pad_id, self.bos_id, self.eos_id = numbers[-4:]
        if SPACE_CHAR not in self.char2id:
            raise TokenizerError(f"{path}: alphabet lacks the word-start marker {SPACE_CHAR!r}")
        self.vocab_size = n_chars + n_rules + sum(i != -1 for i in numbers[-4:])
        self._cache: dict[str, list[int]] = {}

    def encode(self, text: str) -> list[int]:
        """Ids of one sentence (no BOS/EOS), as ``youtokentome.BPE.encode([text])[0]``."""
        ids: list[int] = []
        for word in _WORDS.findall(text):
            ids.extend(self.encode_word(word))
        return ids

    def encode_word(self, word: str) -> list[int]:
        """One whitespace-free word, prefixed with "▁", merged by rule priority."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        ids = self._merge(self._symbols(word))
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[word] = ids
        return ids

    def _symbols(self, word: str) -> list[int]:
        char2id = self.char2id
        symbols = [char2id[SPACE_CHAR]]
        for ch in word:
            tid = char2id.get(ch)
            if tid is not None:
                symbols.append(tid)
            elif symbols[-1] != _UNKNOWN:  # a run of unknown characters is one token
                symbols.append(_UNKNOWN)
        return symbols

    def _merge(self, val: list[int]) -> list[int]:
        # A doubly linked list over positions and a heap of (rule index, left position): the
        # highest-priority applicable rule, leftmost first. Stale entries are skipped on pop.
        rules = self.rules
        n = len(val)
        prev = list(range(-1, n - 1))
        nxt = [*range(1, n), -1]
        heap = [(rules[p][0], i) for i, p in enumerate(itertools.pairwise(val)) if p in rules]
        heapq.heapify(heap)
        alive = [True] * n
        while heap:
            rule_id, p1 = heapq.heappop(heap)
            p2 = nxt[p1]
            if not alive[p1] or p2 == -1:
                continue
            rule = rules.get((val[p1], val[p2]))
            if rule is None or rule[0] != rule_id:
                continue
            p0, p3 = prev[p1], nxt[p2]
            alive[p2] = False
            val[p1] = rule[1]
            nxt[p1] = p3
            if p3 != -1:
                prev[p3] = p1
                r = rules.get((val[p1], val[p3]))
                if r is not None:
                    heapq.heappush(heap, (r[0], p1))
            if p0 != -1:
                r = rules.get((val[p0], val[p1]))
                if r is not None:
                    heapq.heappush(heap, (r[0], p0))
        unk = self.unk_id
        return [unk if v == _UNKNOWN else v for v, a in zip(val, alive, strict=True) if a]


class YttmTokenizer:
    """ruCLIP's text processing: lowercase, YTTM ids, ``[bos] + ids[:L-2] + [eos]``."""

    def __init__(
        self,
        path: Path,
        *,
        context_length: int,
        pad_id: int = 0,
        sot_id: int | None = None,
        eot_id: int | None = None,
        lowercase: bool = True,
    ) -> None:
        self.model = YttmModel(path)
        self.sot_id = self.model.bos_id if sot_id is None else sot_id
        self.eot_id = self.model.eos_id if eot_id is None else eot_id
        if self.sot_id < 0 or self.eot_id < 0:
            raise TokenizerError(f"{path}: model has no BOS/EOS ids and the config gives none")
        self.context_length = context_length
        self.pad_id = pad_id
        self.lowercase = lowercase

    def encode_unframed(self, text: str) -> list[int]:
        return self.model.encode(text.lower() if self.lowercase else text)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        keep = self.context_length - 2
        return [[self.sot_id, *self.encode_unframed(t)[:keep], self.eot_id] for t in texts]
