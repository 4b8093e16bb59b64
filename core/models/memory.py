"""The C heap's habits, tuned for a process that holds a large model and decodes big files.

glibc keeps freed memory for reuse: one heap ("arena") per thread that allocated, and freed
blocks below a threshold that rises with every large allocation it has seen. With a model's
parsed copy freed after loading and decode buffers of many sizes from several threads, that
retained memory is what pushed ingest past weights + 300 MB. Both knobs are set once, early,
from the entry points; elsewhere (musl, macOS) every function here does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

_M_MMAP_THRESHOLD = -3  # mallopt parameters from glibc's malloc.h
_M_ARENA_MAX = -8
ARENA_MAX = 2  # heaps shared by all threads: fewer half-empty arenas, no measurable slowdown
MMAP_THRESHOLD = 1 << 20  # blocks from 1 MiB up are mapped and go back to the system when freed


@functools.cache
def _libc() -> Any | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def tune_allocator() -> bool:
    """Cap the arenas and fix the mmap threshold (call before threads start); True if applied."""
    libc = _libc()
    if libc is None:
        return False
    ok = bool(libc.mallopt(_M_ARENA_MAX, ARENA_MAX) == 1)  # ctypes: the C int, untyped
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1) and ok


def release_free_memory() -> None:
    """Hand memory the C heap holds but no longer uses back to the system: it would otherwise
    keep large freed blocks, such as a model's parsed copy, resident."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
