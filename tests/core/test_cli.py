"""The local CLI over a folder: incremental indexing and search with the fixture models."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from cli.__main__ import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "models"
MODELS = [FIXTURES / "clip-fixture", FIXTURES / "ruclip-fixture"]

pytestmark = pytest.mark.skipif(
    not all((m / "config.json").exists() for m in MODELS), reason="fixture bundles missing"
)

COLORS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 170, 60)}


def shape_jpeg(path: Path, color: str, shape: str, size: int = 256) -> Path:
    img = Image.new("RGB", (size, size), (235, 235, 230))
    d = ImageDraw.Draw(img)
    box = (size * 0.2, size * 0.2, size * 0.8, size * 0.8)
    if shape == "circle":
        d.ellipse(box, fill=COLORS[color])
    else:
        d.rectangle(box, fill=COLORS[color])
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "JPEG", quality=92)
    return path


def run(*argv: str, data: Path) -> str:
    out = io.StringIO()
    code = main(["--data-dir", str(data), "--models", ",".join(map(str, MODELS)), *argv], out)
    assert code == 0, out.getvalue()
    return out.getvalue()


def search(query: str, data: Path, *extra: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(run("search", query, "--json", *extra, data=data))
    return result


def test_index_is_incremental_and_search_finds_the_right_file(tmp_path: Path) -> None:
    photos, data = tmp_path / "photos", tmp_path / "data"
    blue = shape_jpeg(photos / "blue-square.jpg", "blue", "square")
    shape_jpeg(photos / "red-circle.jpg", "red", "circle")
    shape_jpeg(photos / "sub" / "green-circle.jpg", "green", "circle")
    (photos / "notes.txt").write_text("not a photo")

    assert "3 added, 0 unchanged, 0 removed" in run("index", str(photos), data=data)
    assert search("a blue square", data)["hits"][0]["path"] == str(blue.resolve())
    assert search("синий квадрат", data)["hits"][0]["path"] == str(blue.resolve())

    # Nothing changed: nothing is re-embedded.
    assert "0 added, 3 unchanged, 0 removed" in run("index", str(photos), data=data)

    # A copy at another path is a duplicate of the same content, not a new item.
    copy = photos / "copy.jpg"
    copy.write_bytes(blue.read_bytes())
    assert "1 duplicates" in run("index", str(photos), data=data)

    # A removed file disappears from results; a changed file is re-indexed.
    (photos / "red-circle.jpg").unlink()
    shape_jpeg(photos / "sub" / "green-circle.jpg", "red", "circle")  # now red
    st = (photos / "sub" / "green-circle.jpg").stat()
    os.utime(photos / "sub" / "green-circle.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    out = run("index", str(photos), data=data)
    assert "1 added" in out and "1 removed" in out
    top = search("a red circle", data)["hits"][0]["path"]
    assert top == str((photos / "sub" / "green-circle.jpg").resolve())


def test_search_by_image_and_clear_errors(tmp_path: Path) -> None:
    photos, data = tmp_path / "photos", tmp_path / "data"
    blue = shape_jpeg(photos / "blue.jpg", "blue", "square")
    shape_jpeg(photos / "red.jpg", "red", "circle")
    run("index", str(photos), data=data)
    query = shape_jpeg(tmp_path / "query.jpg", "blue", "square", size=600)
    hits = json.loads(run("search", "--image", str(query), "--json", data=data))["hits"]
    assert hits[0]["path"] == str(blue.resolve())

    out = io.StringIO()
    assert main(["--data-dir", str(data), "search"], out) == 2  # neither text nor image
    assert main(["--data-dir", str(data), "--models", str(tmp_path / "nope"), "stats"], out) == 1
