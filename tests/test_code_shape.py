"""The runtime packages stay readable: no class a reader cannot hold in their head, no function
that does several things. Offline tooling and tests are not held to it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ("bot", "cli", "core", "storage")
MAX_CLASS_LINES = 300
MAX_FUNCTION_LINES = 80


def _definitions() -> list[tuple[str, ast.AST]]:
    found = []
    for package in RUNTIME:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            found += [(str(path.relative_to(ROOT)), node) for node in ast.walk(tree)]
    return found


def _lines(node: ast.AST) -> int:
    return int(getattr(node, "end_lineno", 0)) - int(getattr(node, "lineno", 0)) + 1


@pytest.fixture(scope="module")
def definitions() -> list[tuple[str, ast.AST]]:
    return _definitions()


def test_no_runtime_class_is_over_the_limit(definitions: list[tuple[str, ast.AST]]) -> None:
    big = [
        f"{path}:{node.lineno} {node.name} ({_lines(node)} lines)"
        for path, node in definitions
        if isinstance(node, ast.ClassDef) and _lines(node) > MAX_CLASS_LINES
    ]
    assert big == []


def test_no_runtime_function_is_over_the_limit(definitions: list[tuple[str, ast.AST]]) -> None:
    long = [
        f"{path}:{node.lineno} {node.name} ({_lines(node)} lines)"
        for path, node in definitions
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and _lines(node) > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_the_scan_sees_the_runtime(definitions: list[tuple[str, ast.AST]]) -> None:
    names = {node.name for _, node in definitions if isinstance(node, ast.ClassDef)}
    assert {"Engine", "IngestPipeline", "IndexManager", "SearchService", "Database"} <= names
