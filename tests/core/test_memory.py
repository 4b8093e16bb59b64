"""The allocator tuning the entry points apply (glibc; CI and the Docker image run on it)."""

from __future__ import annotations

import platform

import pytest

import bot.__main__ as bot_entry
import cli.__main__ as cli_entry
from core.models import memory

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")


@glibc
def test_tuning_is_accepted_by_glibc() -> None:
    assert memory.tune_allocator() is True
    memory.release_free_memory()


def test_without_glibc_everything_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_libc", lambda: None)
    assert memory.tune_allocator() is False
    memory.release_free_memory()


def test_both_entry_points_tune_before_anything_else(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(memory, "tune_allocator", lambda: calls.append("tuned") or True)
    monkeypatch.setattr(cli_entry, "tune_allocator", memory.tune_allocator)
    monkeypatch.setenv("BOT_TOKEN", "123:secret")
    assert bot_entry.main(["check"]) == 0
    with pytest.raises(SystemExit):
        cli_entry.main(["--help"])
    assert calls == ["tuned", "tuned"]
    capsys.readouterr()
