"""Loading settings: which .env is read, what it may hold, and what relative paths mean."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

import cli.__main__ as cli
from bot.config import BotAppSettings, BotSettings
from core.ingest.limits import IngestLimits
from core.settings import (
    ENV_FILE_VAR,
    PASS_THROUGH_KEYS,
    DataSettings,
    IngestSettings,
    Section,
    Settings,
    SettingsError,
    VideoSettings,
    check_env_keys,
    get_settings,
    given_or,
)

ROOT = Path(__file__).resolve().parents[2]


def load_settings(env_file: Path | None = None, **overrides: object) -> Settings:
    """The engine's settings from a .env shared with the bot, as the local CLI loads them."""
    return Settings.load(env_file, shared_sections=(BotSettings,), **overrides)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Run in an empty directory with none of our keys set; undo whatever a test exports."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    with mock.patch.dict(os.environ):
        for key in [*BotAppSettings.env_keys(), *PASS_THROUGH_KEYS]:
            os.environ.pop(key, None)
            os.environ.pop(key.lower(), None)
        os.environ.pop(ENV_FILE_VAR, None)
        yield
    get_settings.cache_clear()


def env_file(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".env"
    path.write_text(text)
    return path


def test_unknown_key_names_line_and_closest_key(tmp_path: Path) -> None:
    path = env_file(tmp_path / "srv", "# settings\n\nDATA_DIRS=data\nBOT_TOKEN=1:x\nQUOTA=5\n")
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    assert str(info.value) == (
        f"{path} line 3: unknown key DATA_DIRS (did you mean DATA_DIR?); "
        f"{path} line 5: unknown key QUOTA"
    )


def test_default_env_file_is_named_as_dot_env() -> None:
    env_file(Path.cwd(), "export BOT_TOKN=1:x\n")
    with pytest.raises(SettingsError, match=r"^\.env line 1: unknown key BOT_TOKN \(did you "):
        load_settings()
    with pytest.raises(SettingsError, match="BOT_TOKN"):
        get_settings()


def test_unparsable_line_is_an_error_that_does_not_show_the_line() -> None:
    env_file(Path.cwd(), "BOT_TOKEN=1:x\nBOT TOKEN=123:very-secret\n")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert str(info.value) == ".env line 2: cannot parse, expected KEY=value"


def test_keys_are_case_insensitive() -> None:
    env_file(Path.cwd(), "log_level=debug\nembed_threads=3\n")
    settings = BotAppSettings.load()
    assert settings.bot.log_level == "DEBUG" and settings.embed.threads == 3


def test_unrelated_process_environment_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKN", "1:x")
    monkeypatch.setenv("DATA_DIRS", "elsewhere")
    env_file(Path.cwd(), "DATA_DIR=data\n")
    assert load_settings().data.dir == Path.cwd() / "data"


def test_pass_through_keys_are_accepted_and_exported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", "/from/process")
    env_file(
        Path.cwd(),
        "HF_ENDPOINT=https://mirror.example\nhttps_proxy=http://127.0.0.1:3128\nTZ=UTC\n"
        "HF_HOME=/from/dotenv\nHF_TOKEN=\nhf_hub_offline=1\n",
    )
    load_settings()
    assert os.environ["HF_ENDPOINT"] == "https://mirror.example"
    assert os.environ["HTTPS_PROXY"] == "http://127.0.0.1:3128"
    assert os.environ["TZ"] == "UTC" and os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["HF_HOME"] == "/from/process"  # the process environment wins
    assert "HF_TOKEN" not in os.environ  # blank is unset


def test_process_proxy_in_other_case_is_not_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:1")
    env_file(Path.cwd(), "HTTP_PROXY=http://127.0.0.1:2\n")
    load_settings()
    assert "HTTP_PROXY" not in os.environ and os.environ["http_proxy"] == "http://127.0.0.1:1"


def test_model_hub_url_is_read_from_dotenv() -> None:
    env_file(Path.cwd(), "MODEL_HUB_URL=https://hub.example/\n")
    assert load_settings().data.model_hub_url == "https://hub.example"
    env_file(Path.cwd(), "MODEL_HUB_URL= \n")
    assert load_settings().data.model_hub_url is None
    env_file(Path.cwd(), "MODEL_HUB_URL=hub.example\n")
    with pytest.raises(SettingsError, match=r"^MODEL_HUB_URL: must start with http://"):
        load_settings()


def test_relative_paths_resolve_against_the_env_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, srv = tmp_path / "home", tmp_path / "srv"
    monkeypatch.setenv("HOME", str(home))
    path = env_file(srv, f"DATA_DIR=data\nMODEL_DIRS=models/a, {tmp_path}/b ,~/c\n")
    settings = load_settings(path)
    assert settings.data.dir == srv / "data"
    assert settings.data.model_dirs == [srv / "models" / "a", tmp_path / "b", home / "c"]


def test_one_base_for_defaults_and_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = env_file(tmp_path / "srv", "LOG_LEVEL=INFO\n")
    assert load_settings(path).data.dir == tmp_path / "srv" / "data"  # the default, too
    monkeypatch.setenv("MODEL_DIRS", "models/x")
    assert load_settings(path).data.model_dirs == [tmp_path / "srv" / "models" / "x"]


def test_a_relative_env_file_is_relative_to_the_current_directory(tmp_path: Path) -> None:
    env_file(tmp_path / "srv", "DATA_DIR=data\n")
    assert load_settings(Path("../srv/.env")).data.dir == tmp_path / "srv" / "data"


def test_env_file_from_the_variable_and_the_argument_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_var = env_file(tmp_path / "by-var", "DATA_DIR=data\n")
    by_arg = env_file(tmp_path / "by-arg", "DATA_DIR=data\n")
    env_file(Path.cwd(), "DATA_DIR=data\n")
    monkeypatch.setenv(ENV_FILE_VAR, str(by_var))
    assert load_settings().data.dir == tmp_path / "by-var" / "data"
    assert load_settings(by_arg).data.dir == tmp_path / "by-arg" / "data"


def test_an_explicit_missing_env_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file(Path.cwd(), "DATA_DIR=data\n")  # never a silent fallback to ./.env
    with pytest.raises(SettingsError, match=r"^--env-file: missing\.env does not exist$"):
        load_settings(Path("missing.env"))
    with pytest.raises(SettingsError, match=r"--env-file: \.\. is not a file$"):
        load_settings(Path(".."))
    monkeypatch.setenv(ENV_FILE_VAR, str(tmp_path / "gone.env"))
    with pytest.raises(SettingsError, match=f"^{ENV_FILE_VAR}: .*gone.env does not exist$"):
        load_settings()


def test_no_env_file_means_the_current_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().data.dir == Path.cwd() / "data"
    monkeypatch.setenv("MODEL_DIRS", "models/x")
    assert load_settings().data.model_dirs == [Path.cwd() / "models" / "x"]


def test_command_line_overrides_resolve_against_the_current_directory(tmp_path: Path) -> None:
    path = env_file(tmp_path / "srv", "DATA_DIR=data\nMODEL_DIRS=models/a\n")
    args = cli.build_parser().parse_args(
        ["--env-file", str(path), "--data-dir", "d", "--models", "m1,/abs/m2", "stats"]
    )
    settings = cli.settings_from(args)
    assert settings.data.dir == Path.cwd() / "d"
    assert settings.data.model_dirs == [Path.cwd() / "m1", Path("/abs/m2")]
    only_env = cli.settings_from(cli.build_parser().parse_args(["--env-file", str(path), "stats"]))
    assert only_env.data.dir == tmp_path / "srv" / "data"


def test_local_cli_reports_a_configuration_error_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = env_file(tmp_path / "srv", "EMBED_THREAD=2\n")
    assert cli.main(["--env-file", str(path), "stats"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"error: {path} line 1: unknown key EMBED_THREAD (did you mean EMBED_THREADS?)"
    ]


def test_env_example_holds_only_known_keys() -> None:
    check_env_keys(ROOT / ".env.example", BotAppSettings.env_keys())
    settings = BotAppSettings.load(ROOT / ".env.example")
    assert settings.data.dir == ROOT / "data"
    assert all(p.is_absolute() and p.is_relative_to(ROOT) for p in settings.data.model_dirs)


def test_housekeeping_settings_have_defaults_and_are_validated(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.housekeeping.interval_s == 6 * 3600
    assert settings.housekeeping.jobs_retention_days == 30
    assert settings.housekeeping.chunk_rows == 1000
    path = env_file(tmp_path / "a", "JOBS_RETENTION_DAYS=7\nHOUSEKEEPING_INTERVAL_S=3600\n")
    settings = load_settings(path)
    assert (settings.housekeeping.jobs_retention_days, settings.housekeeping.interval_s) == (
        7,
        3600,
    )
    for line in ("JOBS_RETENTION_DAYS=0", "HOUSEKEEPING_INTERVAL_S=5", "JOBS_RETENTION_DAYS=x"):
        with pytest.raises(SettingsError, match=line.split("=")[0]):
            load_settings(env_file(tmp_path / line[:5], line + "\n"))


# --- sections, flat keys, the override rule ---------------------------------------------------


def test_every_key_belongs_to_one_section_field() -> None:
    keys = BotAppSettings.env_keys()
    per_section = [k for s in BotAppSettings.sections().values() for k in s.env_keys().values()]
    assert len(per_section) == len(set(per_section)) == len(keys)
    assert keys["VIDEO_MAX_FRAMES"] == ("video", "max_frames")
    assert keys["NEAR_DUPLICATE_THRESHOLD"] == ("ingest", "near_duplicate_threshold")
    assert keys["DATA_DIR"] == ("data", "dir") and keys["BOT_TOKEN"] == ("bot", "token")
    assert "BOT_TOKEN" not in Settings.env_keys()  # the bot's section is the bot's


def test_env_example_documents_every_key() -> None:
    text = (ROOT / ".env.example").read_text()
    assert [k for k in BotAppSettings.env_keys() if f"\n{k}=" not in text] == []


def test_flat_names_and_sections_construct_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEO_MIN_GAP_S", "2")
    by_name = Settings(_env_file=None, video_max_frames=5)  # type: ignore[call-arg]
    assert by_name.video == VideoSettings(min_gap_s=2.0, max_frames=5)  # the keyword wins
    by_section = Settings(_env_file=None, video=VideoSettings(max_frames=5))  # type: ignore[call-arg]
    assert by_section.video.max_frames == 5 and by_section.video.min_gap_s == 1.0
    with pytest.raises(ValueError, match="album_wait_s"):
        Settings(_env_file=None, album_wait_s=1.0)  # type: ignore[call-arg]
    assert BotAppSettings(_env_file=None, album_wait_s=3).bot.album_wait_s == 3.0  # type: ignore[call-arg]


def test_an_error_in_a_section_names_the_flat_key(tmp_path: Path) -> None:
    path = env_file(tmp_path / "a", "VIDEO_MAX_FRAMES=0\nNEAR_DUPLICATE_THRESHOLD=2\nDATA_DIR=d\n")
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    assert str(info.value).startswith("VIDEO_MAX_FRAMES: Input should be greater than")
    assert "; NEAR_DUPLICATE_THRESHOLD: Input should be less than" in str(info.value)


def test_the_bot_keys_are_known_but_not_read_by_the_engine(tmp_path: Path) -> None:
    path = env_file(tmp_path / "a", "BOT_TOKEN=1:x\nWEBHOOK_PORT=99999\n")
    assert not hasattr(load_settings(path), "bot")  # the CLI accepts the bot's keys
    with pytest.raises(SettingsError, match="unknown key BOT_TOKEN"):
        Settings.load(path)  # nobody said the file is shared
    Settings.load(path, check_keys=False)  # the models tool, which cannot know the bot's keys
    with pytest.raises(SettingsError, match=r"^WEBHOOK_PORT: "):
        BotAppSettings.load(path)


def test_an_override_of_zero_wins() -> None:
    assert given_or(0, 5) == 0 and given_or(0.0, 1.5) == 0.0 and given_or(None, 5) == 5
    limits = IngestLimits.resolve(
        IngestSettings(), VideoSettings(), retry_backoff_s=0.0, near_duplicate_threshold=0
    )
    assert (limits.retry_backoff_s, limits.near_duplicate_threshold) == (0.0, 0)
    assert limits.workers == IngestSettings().workers  # None: the section's
    with pytest.raises(ValueError, match=">= 1"):
        IngestLimits.resolve(IngestSettings(), VideoSettings(), workers=0)  # not "the default"


def test_sections_are_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        DataSettings().model_hub_url = "https://x"  # type: ignore[misc]
    assert issubclass(BotSettings, Section)
