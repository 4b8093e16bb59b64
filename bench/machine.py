"""What a figure was measured on: the CPU's vector instruction sets and the machine's load,
printed beside every benchmark table (figures are only comparable on the same flags)."""

from __future__ import annotations

import os
from pathlib import Path

CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "amx_tile")


def cpu_flags() -> list[str]:
    """The flags of :data:`CPU_FLAGS` this CPU has."""
    path = Path("/proc/cpuinfo")
    words = set(path.read_text().split()) if path.exists() else set()
    return [f for f in CPU_FLAGS if f in words]


def cpu_label() -> str:
    """``avx2+avx512f`` style, ``none`` without any of them."""
    return "+".join(cpu_flags()) or "none"


def load_average() -> float:
    """The one-minute load average (0 where the platform has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return 0.0
