"""The runtime must start without PyTorch or the export tooling installed."""

from __future__ import annotations

import subprocess
import sys

RUNTIME_MODULES = [
    "core.settings",
    "core.errors",
    "core.models.config",
    "core.models.bundle",
    "core.models.__main__",
    "core.models.text",
    "core.media.image",
    "core.models.embedder",
    "core.models.routing",
    "core.media.video",
    "core.index.owner_index",
    "core.ingest.pipeline",
    "core.ingest.reembed",
    "storage",
    "storage.db",
]
FORBIDDEN = ["torch", "open_clip", "ruclip", "youtokentome", "torchvision", "onnx"]


def test_runtime_never_imports_torch_or_export_tooling() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {RUNTIME_MODULES!r}: importlib.import_module(m)\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"runtime imported: {out}"
