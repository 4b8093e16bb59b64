"""The two command lines: runtime ``python -m core.models`` and offline ``python -m tools``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tools.__main__ as tools_cli
from core.models.__main__ import MOVED_TO_TOOLS
from core.models.__main__ import build_parser as models_parser
from core.models.__main__ import main as models_main

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("command", MOVED_TO_TOOLS)
def test_moved_commands_say_where_they_went(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert models_main([command, "--out", "x"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip().splitlines() == [
        f"error: {command} moved to `python -m tools {command}` (from a source checkout with "
        f"the export extra: .venv-export/bin/python -m tools {command} ...)"
    ]


def test_a_moved_command_after_an_option_is_explained_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert models_main(["-v", "export", "clip", "--out", "x"]) == 2
    assert "python -m tools export" in capsys.readouterr().err


def test_runtime_parser_keeps_pull_and_check_only() -> None:
    parser = models_parser()
    assert parser.parse_args(["check", "a", "b"]).bundles == [Path("a"), Path("b")]
    assert parser.parse_args(["pull", "clip-vit-b-32"]).name == "clip-vit-b-32"
    for command in MOVED_TO_TOOLS:
        with pytest.raises(SystemExit):
            parser.parse_args([command])


def test_tools_parser_takes_the_export_and_quantize_options() -> None:
    parser = tools_cli.build_parser()
    args = parser.parse_args(["export", "clip", "--out", "o", "--random-weights", "--seed", "3"])
    assert (args.kind, args.arch, args.pretrained, args.out) == (
        "clip",
        "ViT-B-32",
        "openai",
        Path("o"),
    )
    assert (args.random_weights, args.seed, args.opset) == (True, 3, 18)
    args = parser.parse_args(["export", "ruclip", "--out", "r", "--languages", "ru", "en"])
    assert (args.name, args.languages) == ("ruclip-vit-base-patch32-384", ["ru", "en"])
    args = parser.parse_args(["quantize", "src", "--out", "dst", "--per-tensor"])
    assert (args.src, args.out, args.per_tensor, args.full_range) == (
        Path("src"),
        Path("dst"),
        True,
        False,
    )


def test_train_fixture_hands_every_argument_to_the_trainer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(tools_cli, "train_fixture_main", lambda argv: seen.append(argv) or 0)
    assert tools_cli.main(["train-fixture", "--steps", "5", "--no-export"]) == 0
    assert seen == [["--steps", "5", "--no-export"]]


def test_export_without_torch_points_at_the_export_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_torch(*args: object, **kwargs: object) -> None:
        raise ModuleNotFoundError("No module named 'torch'")

    monkeypatch.setattr(tools_cli, "export_clip", no_torch)
    assert tools_cli.main(["export", "clip", "--out", "x"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: No module named 'torch'; {tools_cli.EXPORT_HINT}"


def test_python_m_tools_runs_from_the_checkout() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "export" in done.stdout and "train-fixture" in done.stdout
