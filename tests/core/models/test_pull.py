"""``pull`` through huggingface_hub against the stand-in hub (tests/hub_standin.py)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import prepare_models
from core.errors import ModelDownloadError
from core.models.__main__ import build_parser, hub_url, main
from core.models.bundle import load_bundle
from core.models.pull import (
    DEFAULT_BASE_URL,
    RemoteFile,
    hub_endpoint,
    pull,
    resolve_repo,
    select_bundle_files,
)
from core.settings import DataSettings
from tests.core.onnx_builders import write_bundle, write_immich_bundle
from tests.hub_standin import HubStandin, read_tree, unused_port

REPO = "immich-app/Tiny-CLIP__test"
OURS = "someone/tiny-ours"
HUB_ENV = (
    "MODEL_HUB_URL",
    "HF_ENDPOINT",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
)
WANTED = {
    "config.json",
    "visual/model.onnx",
    "visual/preprocess_cfg.json",
    "textual/model.onnx",
    "textual/tokenizer.json",
    "textual/tokenizer_config.json",
    "textual/special_tokens_map.json",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No hub settings or .env of the machine running the tests."""
    for key in HUB_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def source_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A tiny Immich-layout model plus the extras a real repository holds."""
    files = read_tree(write_immich_bundle(tmp_path_factory.mktemp("immich") / "Tiny-CLIP__test"))
    files["README.md"] = b"# tiny\n"
    files[".gitattributes"] = b"*.onnx filter=lfs\n"
    files["visual/fp16/model.armnn"] = b"\x00" * 64  # another runtime's format: not wanted
    files["textual/rknpu/rk3588/model.rknn"] = b"\x01" * 64
    return files


@pytest.fixture(scope="module")
def our_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A bundle of our own layout, with files a bundle does not need."""
    files = read_tree(write_bundle(tmp_path_factory.mktemp("ours") / "tiny"))
    files["README.md"] = b"# ours\n"
    files["extras/other.onnx"] = b"\x02" * 32
    return files


@pytest.fixture
def hub(source_files: dict[str, bytes], our_files: dict[str, bytes]) -> Iterator[HubStandin]:
    with HubStandin(page_size=4) as standin:
        standin.add_repo(REPO, source_files)
        standin.add_repo(OURS, our_files)
        yield standin


@pytest.fixture
def tmp_dir(tmp_path: Path) -> Path:
    """An empty directory for destinations (tmp_path is the working directory)."""
    path = tmp_path / "out"
    path.mkdir()
    return path


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _quiet() -> io.StringIO:
    return io.StringIO()


def test_full_download_gives_a_loadable_bundle(hub: HubStandin, tmp_dir: Path) -> None:
    log = io.StringIO()
    dest = pull(REPO, tmp_dir / "models" / "tiny", base_url=hub.url, progress_stream=log)

    assert _tree(dest) == WANTED  # README, .gitattributes, ARM NN / RKNN files skipped
    for rel in WANTED:
        assert (dest / rel).read_bytes() == hub.state.repos[REPO].files[rel]
    assert load_bundle(dest).layout == "immich"
    assert [p.name for p in (tmp_dir / "models").iterdir()] == ["tiny"]  # no leftovers
    assert not [r for r in hub.requests if r.file is not None and r.file not in WANTED]
    listing_pages = {r.path for r in hub.requests if "/tree/" in r.path}
    assert len([r for r in hub.requests if "/tree/" in r.path]) > len(listing_pages)  # Link
    # Not a terminal: one line before, then a line per 10 % at most, never a redraw.
    text = log.getvalue()
    assert text.startswith(f"fetching {REPO} from {hub.url}: 7 files, ")
    assert text.rstrip().endswith("100%") and "\r" not in text
    assert len(text.splitlines()) <= 12


def test_our_layout_takes_the_top_level_files(hub: HubStandin, tmp_dir: Path) -> None:
    dest = pull(OURS, tmp_dir / "ours", base_url=hub.url, progress_stream=_quiet())
    assert _tree(dest) == {"config.json", "visual.onnx", "textual.onnx", "tokenizer.json"}
    assert load_bundle(dest).layout != "immich"


def test_interrupted_download_resumes_with_range(
    hub: HubStandin, tmp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    # Small chunks, so the half that arrived before the cut is written and kept (10 MiB else).
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64)
    hub.state.cut_once.add("textual/model.onnx")
    dest = pull(REPO, tmp_dir / "tiny", base_url=hub.url, progress_stream=_quiet())

    data = hub.state.repos[REPO].files["textual/model.onnx"]
    assert (dest / "textual/model.onnx").read_bytes() == data
    first, again = hub.file_gets("textual/model.onnx")
    assert first.range is None
    resumed_at = int(re.fullmatch(r"bytes=(\d+)-", again.range or "").group(1))  # type: ignore[union-attr]
    assert 0 < resumed_at <= len(data) // 2


def test_a_failed_run_is_resumed_by_running_it_again(hub: HubStandin, tmp_dir: Path) -> None:
    hub.state.fail_once.add("visual/model.onnx")
    with pytest.raises(ModelDownloadError, match=r"run the same command again to resume$"):
        pull(REPO, tmp_dir / "tiny", base_url=hub.url, progress_stream=_quiet())
    assert not (tmp_dir / "tiny").exists()  # nothing half-done where the bot looks
    kept = {f for f in _tree(tmp_dir / ".tiny.download") if f in WANTED}
    assert kept and "visual/model.onnx" not in kept

    log = io.StringIO()
    dest = pull(REPO, tmp_dir / "tiny", base_url=hub.url, progress_stream=log)
    assert _tree(dest) == WANTED
    assert f"1 files, 0.0 MB ({len(kept)} kept from an earlier run)" in log.getvalue()
    assert len(hub.file_gets("visual/model.onnx")) == 2
    for path in kept:  # finished by the first run: not fetched again
        assert len(hub.file_gets(path)) == 1, path
    assert [p.name for p in tmp_dir.iterdir()] == ["tiny"]


@pytest.mark.parametrize("bad", ["visual/model.onnx", "textual/tokenizer.json"])
def test_checksum_mismatch_installs_nothing(hub: HubStandin, tmp_dir: Path, bad: str) -> None:
    hub.state.corrupt.add(bad)  # LFS file (sha256) and plain file (git blob id)
    with pytest.raises(ModelDownloadError, match=re.escape(f"{REPO}: {bad} failed its checksum")):
        pull(REPO, tmp_dir / "tiny", base_url=hub.url, progress_stream=_quiet())
    assert list(tmp_dir.iterdir()) == []  # neither the bundle nor the download directory


def test_unreachable_hub_is_one_clear_error(tmp_dir: Path) -> None:
    base = f"http://127.0.0.1:{unused_port()}"
    with pytest.raises(ModelDownloadError) as info:
        pull(REPO, tmp_dir / "tiny", base_url=base, progress_stream=_quiet())
    message = str(info.value)
    assert message.startswith(f"could not download model {REPO} from {base} (")
    assert message.endswith(
        "): check the connection, HF_ENDPOINT/MODEL_HUB_URL and proxies, "
        f"or copy the bundle into {tmp_dir / 'tiny'}"
    )
    assert "\n" not in message and "cannot be downloaded" not in message
    assert list(tmp_dir.iterdir()) == []


def test_unknown_repository_is_a_clear_error(hub: HubStandin, tmp_dir: Path) -> None:
    with pytest.raises(ModelDownloadError) as info:
        pull("no-such/model", tmp_dir / "x", base_url=hub.url, progress_stream=_quiet())
    assert str(info.value).startswith(
        f"no-such/model: no such model repository at {hub.url} (HTTP 401): check the name"
    )
    assert "\n" not in str(info.value)
    assert list(tmp_dir.iterdir()) == []


def test_a_server_that_is_not_a_hub_is_a_clear_error(hub: HubStandin, tmp_dir: Path) -> None:
    with pytest.raises(ModelDownloadError) as info:
        pull(REPO, tmp_dir / "x", base_url=hub.cdn_url, progress_stream=_quiet())
    assert str(info.value) == (
        f"could not download model {REPO}: {hub.cdn_url} answered HTTP 404: "
        "check MODEL_HUB_URL/HF_ENDPOINT, then run the same command again"
    )


def test_unknown_revision_is_a_clear_error(hub: HubStandin, tmp_dir: Path) -> None:
    with pytest.raises(ModelDownloadError, match=rf"{REPO} has no revision 'v9' at "):
        pull(REPO, tmp_dir / "x", base_url=hub.url, revision="v9", progress_stream=_quiet())


def test_existing_destination_needs_force(hub: HubStandin, tmp_dir: Path) -> None:
    dest = tmp_dir / "tiny"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with pytest.raises(ModelDownloadError, match="already exists"):
        pull(REPO, dest, base_url=hub.url, progress_stream=_quiet())
    pull(REPO, dest, base_url=hub.url, force=True, progress_stream=_quiet())
    assert _tree(dest) == WANTED
    assert [p.name for p in tmp_dir.iterdir()] == ["tiny"]


def test_base_url_comes_from_the_environment(
    hub: HubStandin, tmp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_dir)  # no .env: the setting comes from the environment
    monkeypatch.setenv("MODEL_HUB_URL", hub.url + "/")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{unused_port()}")  # loses to it
    assert main(["pull", REPO, "--out", str(tmp_dir / "tiny")]) == 0
    dest = tmp_dir / "tiny"
    assert _tree(dest) == WANTED


def test_hf_endpoint_is_honoured(
    hub: HubStandin, tmp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    dest = pull(REPO, tmp_dir / "tiny", progress_stream=_quiet())
    assert _tree(dest) == WANTED


def test_endpoint_precedence(monkeypatch: pytest.MonkeyPatch, tmp_dir: Path) -> None:
    monkeypatch.chdir(tmp_dir)

    def endpoint(*argv: str) -> str:  # as `pull` resolves it from the command line
        return hub_endpoint(hub_url(build_parser().parse_args(["pull", "x", *argv])))

    assert endpoint() == DEFAULT_BASE_URL == "https://huggingface.co"
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.example/")
    assert endpoint() == "http://mirror.example"
    monkeypatch.setenv("MODEL_HUB_URL", "http://ours.example")
    assert endpoint() == "http://ours.example"
    assert endpoint("--base-url", "http://cli.example") == "http://cli.example"


def test_model_hub_url_setting_wins_over_hf_endpoint(
    hub: HubStandin, tmp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{unused_port()}")
    target = tmp_dir / "models" / "Tiny-CLIP__test"
    data = DataSettings(model_dirs=[target], model_hub_url=hub.url)
    assert prepare_models(data, say=lambda _: None) == [target]
    assert load_bundle(target).layout == "immich"


def test_hf_token_is_sent_to_the_hub_only(
    hub: HubStandin, tmp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_standin_secret")
    pull(REPO, tmp_dir / "tiny", base_url=hub.url, progress_stream=_quiet())
    to_hub = [r for r in hub.requests if r.origin == "hub"]
    to_cdn = [r for r in hub.requests if r.origin == "cdn"]
    assert to_hub and {r.authorization for r in to_hub} == {"Bearer hf_standin_secret"}
    assert to_cdn and {r.authorization for r in to_cdn} == {None}  # another origin: no token


def test_offline_mode_is_one_clear_error(
    hub: HubStandin, tmp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelDownloadError) as info:
        pull(REPO, tmp_dir / "tiny", base_url=hub.url, progress_stream=_quiet())
    assert str(info.value) == (
        f"could not download model {REPO}: offline mode is on (HF_HUB_OFFLINE): unset "
        f"HF_HUB_OFFLINE to download it, or copy the bundle into {tmp_dir / 'tiny'}"
    )
    assert hub.requests == [] and list(tmp_dir.iterdir()) == []


def test_cli_reports_errors_in_one_line(tmp_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = f"http://127.0.0.1:{unused_port()}"
    code = main(["pull", REPO, "--out", str(tmp_dir / "x"), "--base-url", base])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"error: could not download model {REPO} from {base} (")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_names_resolve_to_repositories() -> None:
    assert resolve_repo("immich-app/ViT-B-32__openai") == "immich-app/ViT-B-32__openai"
    assert resolve_repo("ViT-B-32__openai") == "immich-app/ViT-B-32__openai"
    assert resolve_repo("XLM-Roberta-Large-Vit-B-32") == "immich-app/XLM-Roberta-Large-Vit-B-32"
    assert resolve_repo("nllb-clip-base-siglip") == "immich-app/nllb-clip-base-siglip__v1"
    assert resolve_repo("vit-b-32-siglip2") == "immich-app/ViT-B-32-SigLIP2-256__webli"
    for bad in ("../etc", "a/b/c", "", "owner/", "a/b--c"):
        with pytest.raises(ModelDownloadError):
            resolve_repo(bad)


def test_selection_takes_our_layout_too() -> None:
    names = ("config.json", "visual.onnx", "textual.onnx", "bpe.model", "README.md", "x/y.onnx")
    chosen = {f.path for f in select_bundle_files("o/n", [RemoteFile(p, 1) for p in names])}
    assert chosen == {"config.json", "visual.onnx", "textual.onnx", "bpe.model"}
    with pytest.raises(ModelDownloadError, match="not a model bundle"):
        select_bundle_files("o/n", [RemoteFile("README.md", 1)])


def test_progress_draws_bars_on_a_terminal(hub: HubStandin, tmp_dir: Path) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    pull(REPO, tmp_dir / "tiny", base_url=hub.url, progress_stream=out)
    assert "\r" in out.getvalue()  # redrawn in place: huggingface_hub's bars
    assert "100%" in out.getvalue()


def test_huggingface_hub_is_imported_only_by_a_pull() -> None:
    code = (
        "import sys, bot.config, core.models.pull, core.models.__main__\n"
        "print('huggingface_hub' in sys.modules, 'tqdm' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]
