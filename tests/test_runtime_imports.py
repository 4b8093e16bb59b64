"""The runtime must start without PyTorch or the export tooling installed.

The layout guarantees most of it: the offline tooling lives in ``tools/`` and the fixture
trainer in ``tests/``, neither of them in the wheel. What is left to check is that no runtime
module names them, nor torch and its friends, in any import statement (read with ``ast``, so a
function-level import counts too), and that importing every runtime module really pulls none
of them in. ``tests/test_wheel.py`` runs the same scan over the built wheel.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the wheel ships (pyproject.toml, [tool.setuptools.packages.find]).
RUNTIME_PACKAGES = ("bot", "cli", "core", "storage", "migrations")
# onnx is the export and test tooling's (onnxruntime, which the runtime uses, is another name).
FORBIDDEN = ("torch", "torchvision", "open_clip", "ruclip", "youtokentome", "onnx")
NOT_SHIPPED = ("tools", "tests", "bench")


def imported_roots(source: str, filename: str = "<source>") -> set[str]:
    """The top-level name of every absolute import in ``source``, wherever it sits."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def banned_imports(sources: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """File name -> the forbidden or unshipped names it imports, for (name, source) pairs."""
    banned = set(FORBIDDEN) | set(NOT_SHIPPED)
    found = {name: sorted(imported_roots(text, name) & banned) for name, text in sources}
    return {name: names for name, names in found.items() if names}


def runtime_modules(root: Path = ROOT) -> list[str]:
    """Every module of the runtime packages, as found on disk."""
    names = []
    for package in RUNTIME_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_the_scan_sees_function_level_and_dotted_imports() -> None:
    source = "import onnxruntime\ndef f():\n    import torch.nn\n    from tools.export import x\n"
    assert banned_imports([("m.py", source)]) == {"m.py": ["tools", "torch"]}


def test_runtime_sources_name_no_torch_or_tooling() -> None:
    files = [p for pkg in RUNTIME_PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    assert banned_imports((str(p.relative_to(ROOT)), p.read_text("utf-8")) for p in files) == {}


def test_importing_every_runtime_module_pulls_in_no_torch() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {runtime_modules()!r}: importlib.import_module(m)\n"
        f"bad = [m for m in {[*FORBIDDEN, *NOT_SHIPPED]!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    assert out == "", f"runtime imported: {out}"


def test_only_storage_names_a_database_driver() -> None:
    """No SQL outside storage/: the front ends and the core reach the database through it."""
    drivers = {"sqlite3", "aiosqlite", "psycopg", "psycopg_pool"}
    files = [p for pkg in ("bot", "cli", "core") for p in sorted((ROOT / pkg).rglob("*.py"))]
    found = {
        str(p.relative_to(ROOT)): sorted(imported_roots(p.read_text("utf-8")) & drivers)
        for p in files
    }
    assert {name: names for name, names in found.items() if names} == {}
