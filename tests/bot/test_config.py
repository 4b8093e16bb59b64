"""Start-up configuration: every problem ends in one clear line and exit code 2."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from unittest import mock

import pytest

import bot.__main__ as entry
from bot.config import (
    BotAppSettings,
    BotSettings,
    StartupError,
    check_token,
    prepare_models,
    pull_name_for,
)
from core.engine.engine import ConfigurationError
from core.errors import ModelDownloadError
from core.settings import ENV_FILE_VAR, DataSettings

BOT_KEYS = (
    "BOT_TOKEN",
    "TELEGRAM_API_BASE",
    "TELEGRAM_API_LOCAL",
    "ALLOWED_USERS",
    "EMBED_THREADS",
    "MODEL_DIRS",
    "WEBHOOK_URL",
    "WEBHOOK_PATH",
    "SEARCH_MARGIN_LOOSE",
    "LOG_LEVEL",
    "DATA_DIR",
    ENV_FILE_VAR,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No stray .env or environment from the machine running the tests; whatever a test's .env
    exports (HF_ENDPOINT, ...) is undone."""
    monkeypatch.chdir(tmp_path)
    for key in BOT_KEYS:
        monkeypatch.delenv(key, raising=False)
    with mock.patch.dict(os.environ):
        yield


def run_main(capsys: pytest.CaptureFixture[str], argv: Sequence[str] = ()) -> tuple[int, list[str]]:
    code = entry.main(list(argv))
    captured = capsys.readouterr()
    return code, [line for line in (captured.out + captured.err).splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "error: BOT_TOKEN is not set: get one from @BotFather and put it in .env"),
        ({"BOT_TOKEN": "   "}, "error: BOT_TOKEN is not set"),
        ({"BOT_TOKEN": "not-a-token"}, "error: BOT_TOKEN is malformed"),
        ({"BOT_TOKEN": "123:abc def"}, "error: BOT_TOKEN is malformed"),
        ({"EMBED_THREADS": "many"}, "error: EMBED_THREADS: Input should be a valid integer"),
        ({"ALLOWED_USERS": "12, alice"}, "error: ALLOWED_USERS: expected comma-separated"),
        ({"TELEGRAM_API_BASE": "localhost:8081"}, "error: TELEGRAM_API_BASE: must start with"),
        ({"TELEGRAM_API_LOCAL": "perhaps"}, "error: TELEGRAM_API_LOCAL: Input should be"),
        ({"WEBHOOK_PATH": "hook"}, "error: WEBHOOK_PATH: must start with '/'"),
        ({"SEARCH_MARGIN_LOOSE": "0.01"}, "error: SEARCH_MARGIN_LOOSE: search margins must grow"),
        ({"LOG_LEVEL": "chatty"}, "error: LOG_LEVEL: Input should be"),
    ],
)
def test_bad_setting_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    expected: str,
) -> None:
    if "BOT_TOKEN" not in env and env:
        monkeypatch.setenv("BOT_TOKEN", "123:secret")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, lines = run_main(capsys)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith(expected), lines


def test_several_bad_settings_still_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EMBED_THREADS", "x")
    monkeypatch.setenv("WEBHOOK_PORT", "99999")
    code, lines = run_main(capsys)
    assert code == 2 and len(lines) == 1
    assert "EMBED_THREADS" in lines[0] and "WEBHOOK_PORT" in lines[0]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            ConfigurationError("MODEL_DIRS", "no model bundle is configured (see README)"),
            "error: MODEL_DIRS: no model bundle is configured (see README)",
        ),
        (
            StartupError("BOT_TOKEN was rejected by Telegram (401 Unauthorized)"),
            "error: BOT_TOKEN was rejected by Telegram (401 Unauthorized)",
        ),
    ],
)
def test_start_up_failures_are_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: Exception,
    expected: str,
) -> None:
    import bot.app

    async def failing_run(settings: BotAppSettings) -> None:
        raise error

    monkeypatch.setenv("BOT_TOKEN", "123:secret")
    monkeypatch.setattr(bot.app, "run", failing_run)
    code, lines = run_main(capsys)
    assert code == 2
    assert lines == [expected]


def test_token_is_read_from_dotenv_and_never_shown(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "BOT_TOKEN=123456:very-secret\nALLOWED_USERS=1, 2;3\nTELEGRAM_API_BASE=http://x:8081/\n"
    )
    settings = BotAppSettings()
    assert check_token(settings.bot) == "123456:very-secret"
    assert "very-secret" not in repr(settings) and "very-secret" not in str(settings.bot.token)
    assert settings.bot.allowed_users == frozenset({1, 2, 3})
    assert settings.bot.telegram_api_base == "http://x:8081"


def test_cli_settings_need_no_token() -> None:
    bot = BotAppSettings(_env_file=None).bot  # type: ignore[call-arg]
    assert bot.token is None
    assert bot.allowed_users == frozenset()
    assert bot.webhook_url is None and bot.album_wait_s == 1.5
    assert BotSettings(token=" ").token is None  # blank is unset


def test_prepare_models_fetches_only_missing_downloadable_bundles(tmp_path: Path) -> None:
    present = tmp_path / "models" / "mine"
    present.mkdir(parents=True)
    (present / "config.json").write_text("{}")
    missing = tmp_path / "models" / "clip-vit-b-32-openai"
    settings = DataSettings(model_dirs=[present, missing])
    pulled: list[tuple[str, Path]] = []
    said: list[str] = []
    fetched = prepare_models(
        settings, pull=lambda name, out: pulled.append((name, out)), say=said.append
    )
    assert fetched == [missing] and pulled == [("clip-vit-b-32", missing)]
    assert said == [f"fetching model clip-vit-b-32 into {missing} ..."]


def test_prepare_models_refuses_before_downloading_anything(tmp_path: Path) -> None:
    dirs = [tmp_path / "clip-vit-b-32", tmp_path / "ruclip-vit-base-patch32-384"]
    settings = DataSettings(model_dirs=dirs)
    pulled: list[str] = []
    with pytest.raises(StartupError, match="ruclip-vit-base-patch32-384 is missing and cannot"):
        prepare_models(settings, pull=lambda name, out: pulled.append(name), say=print)
    assert pulled == []
    with pytest.raises(StartupError, match="MODEL_DIRS is not set"):
        prepare_models(DataSettings(), pull=lambda n, o: None)


def test_prepare_models_turns_a_download_error_into_one_line(tmp_path: Path) -> None:
    settings = DataSettings(model_dirs=[tmp_path / "clip-vit-b-32"])

    def offline(name: str, out: Path) -> None:
        raise ModelDownloadError("cannot reach https://huggingface.co (no network)")

    with pytest.raises(StartupError) as info:
        prepare_models(settings, pull=offline, say=lambda _: None)
    assert str(info.value) == (
        "cannot reach https://huggingface.co (no network) (see README, section Models)"
    )


def test_pull_names() -> None:
    assert pull_name_for(Path("models/clip-vit-b-32")) == "clip-vit-b-32"
    assert pull_name_for(Path("models/ViT-B-16__openai")) == "ViT-B-16__openai"
    assert pull_name_for(Path("models/ruclip-vit-base-patch32-384")) is None
    assert pull_name_for(Path("models/my-own-export")) is None


def test_check_command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BOT_TOKEN", "123:secret")
    assert entry.main(["check"]) == 0
    assert capsys.readouterr().out.strip() == "configuration ok"


@pytest.mark.parametrize("argv", [[], ["check"], ["prepare"]])
def test_unknown_dotenv_key_is_one_line_with_a_suggestion_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    Path(".env").write_text("# my bot\nBOT_TOKEN=123:secret\nBOT_TOKN=123:secret\n")
    code, lines = run_main(capsys, argv)
    assert code == 2
    assert lines == ["error: .env line 3: unknown key BOT_TOKN (did you mean BOT_TOKEN?)"]


def test_pass_through_keys_in_dotenv_are_fine(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    Path(".env").write_text("BOT_TOKEN=123:secret\nHF_ENDPOINT=https://mirror.example\n")
    assert run_main(capsys, ["check"]) == (0, ["configuration ok"])
    assert os.environ["HF_ENDPOINT"] == "https://mirror.example"


def test_env_file_option_reads_paths_relative_to_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A service manager starts the bot in another directory with --env-file."""
    import bot.app

    srv = tmp_path / "srv" / "image-finder"
    srv.mkdir(parents=True)
    (srv / ".env").write_text("BOT_TOKEN=123:secret\nDATA_DIR=data\nMODEL_DIRS=models/clip\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    started: list[BotAppSettings] = []

    async def fake_run(settings: BotAppSettings) -> None:
        started.append(settings)

    monkeypatch.setattr(bot.app, "run", fake_run)
    code, lines = run_main(capsys, ["--env-file", str(srv / ".env")])
    assert (code, lines) == (0, [])
    assert started[0].data.dir == srv / "data"
    assert started[0].data.model_dirs == [srv / "models" / "clip"]


def test_env_file_variable_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "conf" / "bot.env"
    path.parent.mkdir()
    path.write_text("BOT_TOKEN=123:secret\nLOG_LEVL=DEBUG\n")
    Path(".env").write_text("BOT_TOKEN=123:secret\n")
    monkeypatch.setenv(ENV_FILE_VAR, str(path))
    code, lines = run_main(capsys, ["check"])
    assert code == 2
    assert lines == [f"error: {path} line 2: unknown key LOG_LEVL (did you mean LOG_LEVEL?)"]


def test_missing_env_file_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    Path(".env").write_text("BOT_TOKEN=123:secret\n")
    code, lines = run_main(capsys, ["check", "--env-file", "/nonexistent/bot.env"])
    assert code == 2
    assert lines == ["error: --env-file: /nonexistent/bot.env does not exist"]


def test_help_lists_the_ocr_maintenance_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        entry.parse_args(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "python -m bot ocr --again --owner" in out and "--owner TELEGRAM_ID" in out


def test_ocr_options_belong_to_the_ocr_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        entry.parse_args(["--again"])
    assert info.value.code == 2
    assert "--again and --owner go with the ocr command" in capsys.readouterr().err
    args = entry.parse_args(["ocr", "--again", "--owner", "-1001234"])
    assert (args.command, args.again, args.owner) == ("ocr", True, -1001234)


def test_ocr_without_a_database_is_one_line_and_needs_no_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path(".env").write_text(f"DATA_DIR={tmp_path / 'nothing'}\n")
    code, lines = run_main(capsys, ["ocr", "--again"])
    assert code == 2
    assert lines == [
        f"error: no database at {tmp_path / 'nothing' / 'image-finder.db'}: check DATA_DIR"
    ]
