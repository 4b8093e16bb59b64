"""The one settings object. Sections are plain models; the root reads the environment and ``.env``.

Environment keys are flat and upper-case (``MODEL_DIRS``, ``EMBED_THREADS``) so that a user
configures the bot with a short ``.env`` file; see ``.env.example``.

Entry points call :func:`load_settings`: it picks the ``.env`` file (``--env-file``,
``IMAGE_FINDER_ENV_FILE`` or ``./.env``), refuses unknown keys in it, and resolves relative paths
against that file's folder, so the bot finds its data whatever directory it is started from.
"""

from __future__ import annotations

import difflib
import io
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from dotenv import dotenv_values
from dotenv.parser import Binding, parse_stream
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.errors import ImageFinderError

GraphOptimization = Literal["disable", "basic", "extended", "all"]

ENV_FILE_VAR = "IMAGE_FINDER_ENV_FILE"
DEFAULT_ENV_FILE = Path(".env")
# Keys other tools (huggingface_hub, HTTP clients, the C library) read from the environment: they
# may sit in .env, and are exported from it so those tools see them.
PASS_THROUGH_KEYS = frozenset(
    [
        "HF_TOKEN",
        "HF_ENDPOINT",
        "HF_HUB_OFFLINE",
        "HF_HOME",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "TZ",
    ]
)
PATH_FIELDS = ("data_dir", "model_dirs")


class SettingsError(ImageFinderError):
    """A configuration problem; the message is the one line the user sees."""

    code = "settings"


class Settings(BaseSettings):
    """Every setting of Image Finder. Missing or malformed values fail at start-up."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    data_dir: Path = Path("data")
    model_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=list)

    # Embedder
    embed_threads: int = Field(default=0, ge=0, le=256)  # 0 = onnxruntime's choice (all cores)
    embed_graph_optimization: GraphOptimization = "all"
    embed_batch_size: int = Field(default=16, ge=1, le=256)
    # Full image batches as this many runs side by side (0 = one per CPU: most images/s in
    # bulk); a lone photo always gets one run on every thread.
    embed_image_runs: int = Field(default=0, ge=0, le=256)
    # Memory image runs may use beyond the weights (MB): bounds images per run x runs at once.
    embed_memory_mb: int = Field(default=128, ge=0, le=1_000_000)  # 0 = no bound

    # Video frame sampling (core/media/video.py)
    video_min_gap_s: float = Field(default=1.0, ge=0.0, le=3600.0)  # never two frames closer
    video_max_gap_s: float = Field(default=10.0, gt=0.0, le=3600.0)  # at least one frame this often
    video_max_frames: int = Field(default=120, ge=1, le=10_000)  # cap per video
    video_scene_threshold: float = Field(default=0.10, gt=0.0, le=1.0)  # thumbnail difference 0..1
    # Kept frames this similar (cosine, every model) to the previous moment merge into it; 1 = off.
    video_merge_similarity: float = Field(default=0.97, ge=0.0, le=1.0)

    @field_validator("video_max_gap_s")
    @classmethod
    def _max_gap_not_below_min(cls, v: float, info: ValidationInfo) -> float:
        if v < info.data.get("video_min_gap_s", 0.0):
            raise ValueError("VIDEO_MAX_GAP_S must not be smaller than VIDEO_MIN_GAP_S")
        return v

    # Vector indexes (core/index/owner_index.py)
    index_memory_budget_mb: int = Field(default=1024, ge=1)  # loaded indexes, LRU beyond this
    index_approx_threshold: int = Field(default=200_000, ge=1)  # per owner and model: IVF above
    index_exact_kind: Literal["fp16", "fp32"] = "fp16"  # exact index codes: fp16 halves RAM

    # Search (core/search/service.py). Relevance margins are cosine distances below the best hit
    # that still count as relevant, per strictness; the model's relevance_floor applies on top.
    search_margin_strict: float = Field(default=0.03, ge=0.0, le=2.0)
    search_margin_normal: float = Field(default=0.06, ge=0.0, le=2.0)
    search_margin_loose: float = Field(default=0.12, ge=0.0, le=2.0)
    search_default_limit: int = Field(default=10, ge=1, le=100)  # results per page
    search_max_limit: int = Field(default=50, ge=1, le=1000)  # largest page a caller may ask for
    search_text_weight: float = Field(default=0.5, ge=0.0, le=1.0)  # text share of text + image

    @field_validator("search_margin_loose")
    @classmethod
    def _margins_ordered(cls, v: float, info: ValidationInfo) -> float:
        strict = info.data.get("search_margin_strict", 0.0)
        normal = info.data.get("search_margin_normal", strict)
        if not strict <= normal <= v:
            raise ValueError(
                "search margins must grow: SEARCH_MARGIN_STRICT <= SEARCH_MARGIN_NORMAL <= "
                "SEARCH_MARGIN_LOOSE"
            )
        return v

    # Ingest pipeline (core/ingest/pipeline.py) and background re-embedding (core/ingest/reembed.py)
    ingest_workers: int = Field(default=2, ge=1, le=64)  # items fetched and decoded at once
    ingest_queue_size: int = Field(default=64, ge=1, le=100_000)  # claimed jobs held in memory
    ingest_batch_size: int = Field(default=16, ge=1, le=1024)  # images per embedding batch
    ingest_max_attempts: int = Field(default=4, ge=1, le=100)  # tries of one download
    ingest_retry_backoff_s: float = Field(default=1.0, ge=0.0, le=600.0)  # first retry delay
    near_duplicate_threshold: float = Field(default=0.95, ge=0.0, le=1.0)  # cosine; 1 = off

    # Housekeeping (storage/housekeeping.py), run by the bot at start-up and then every interval:
    # done/failed jobs older than JOBS_RETENTION_DAYS, and result messages with their paging
    # sessions past the age their buttons expire at (storage/results.py), are deleted, at most
    # HOUSEKEEPING_CHUNK_ROWS rows per write transaction.
    housekeeping_interval_s: int = Field(default=6 * 3600, ge=60, le=7 * 24 * 3600)
    housekeeping_chunk_rows: int = Field(default=1000, ge=1, le=100_000)
    jobs_retention_days: int = Field(default=30, ge=1, le=3650)

    # Model downloads (core/models/pull.py): another Hugging Face-compatible hub or mirror.
    # A --base-url flag wins over it, and it wins over HF_ENDPOINT; unset = huggingface.co.
    model_hub_url: str | None = None

    # Telegram bot (bot/). The token is optional here so the local CLI runs without one; the
    # bot refuses to start without it. It is a SecretStr so it never shows in logs or reprs.
    bot_token: SecretStr | None = None
    telegram_api_base: str | None = None  # another Bot API server, e.g. a local telegram-bot-api
    telegram_api_local: bool = False  # that server runs with --local (files read from disk)
    allowed_users: Annotated[frozenset[int], NoDecode] = frozenset()  # empty = everyone
    quota_items_per_user: int = Field(default=100_000, ge=0)  # items per collection; 0 = none
    quota_video_seconds: int = Field(default=0, ge=0)  # total video length per collection; 0 = none
    album_wait_s: float = Field(default=1.5, ge=0.01, le=60.0)  # quiet time that ends an album
    # Long-polling wait per getUpdates; the health check calls the bot stale after three.
    polling_timeout_s: int = Field(default=10, ge=1, le=50)
    # Webhook mode instead of long polling when WEBHOOK_URL is set (the public https address
    # Telegram posts to); the bot listens on WEBHOOK_HOST:WEBHOOK_PORT at WEBHOOK_PATH.
    webhook_url: str | None = None
    webhook_path: str = "/telegram"
    webhook_host: str = "0.0.0.0"
    webhook_port: int = Field(default=8080, ge=1, le=65535)
    webhook_secret: SecretStr | None = None
    # Telegram's flood limits (bot/limits.py): about one message a second in a private chat
    # (short bursts are allowed; 0 = no pace), about 20 a minute in a group or channel, about 30
    # a second for the whole bot; an album counts each item. A 429 answer names how long to
    # wait. 5xx and network errors that surely did not deliver are retried with backoff.
    send_pace_per_chat_s: float = Field(default=1.0, ge=0.0, le=60.0)
    send_burst_per_chat: int = Field(default=11, ge=1, le=1000)  # one results page at once
    send_group_limit: int = Field(default=20, ge=0, le=1000)  # per SEND_GROUP_PERIOD_S; 0 = off
    send_group_period_s: float = Field(default=60.0, gt=0.0, le=3600.0)
    send_bot_limit: int = Field(default=30, ge=0, le=10_000)  # per SEND_BOT_PERIOD_S; 0 = off
    send_bot_period_s: float = Field(default=1.0, gt=0.0, le=60.0)
    telegram_retry_attempts: int = Field(default=5, ge=1, le=100)
    telegram_retry_backoff_s: float = Field(default=0.5, ge=0.0, le=60.0)
    telegram_retry_after_max_s: float = Field(default=300.0, ge=0.0)  # longer waits: give up
    # "sending photo…" while a search or a video ingest runs: Telegram shows an action for
    # 5 s, so it is repeated a little sooner while the work lasts.
    chat_action_interval_s: float = Field(default=4.5, gt=0.0, le=60.0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("bot_token", "webhook_secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("telegram_api_base", "webhook_url", "model_hub_url", mode="before")
    @classmethod
    def _url(cls, v: object) -> object:
        if isinstance(v, str):
            v = v.strip().rstrip("/")
            if not v:
                return None
            if not v.startswith(("http://", "https://")):
                raise ValueError(f"must start with http:// or https://, got {v!r}")
        return v

    @field_validator("webhook_path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"must start with '/', got {v!r}")
        return v

    @field_validator("allowed_users", mode="before")
    @classmethod
    def _split_ids(cls, v: object) -> object:
        if isinstance(v, int):
            return frozenset({v})
        if isinstance(v, str):
            ids = set()
            for part in v.replace(";", ",").split(","):
                part = part.strip()
                if not part:
                    continue
                try:
                    ids.add(int(part))
                except ValueError:
                    raise ValueError(
                        f"expected comma-separated numeric Telegram ids, got {part!r}"
                    ) from None
            return frozenset(ids)
        return v

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator("model_dirs", mode="before")
    @classmethod
    def _split_dirs(cls, v: object) -> object:
        if isinstance(v, str):
            return [Path(p.strip()) for p in v.split(",") if p.strip()]
        return v


def format_validation_error(exc: ValidationError) -> str:
    """One line for a pydantic ValidationError: ``MODEL_DIRS: <problem>; ...``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if not isinstance(p, int))
        name = loc.upper() or "settings"
        msg = str(err.get("msg", "invalid value"))
        msg = msg.removeprefix("Value error, ")
        parts.append(f"{name}: {msg}")
    return "; ".join(parts) or str(exc)


def find_env_file(env_file: Path | None = None) -> Path | None:
    """The .env file in use: the one asked for (which must exist), else ``./.env`` if present."""
    if env_file is not None:
        asked, source = env_file, "--env-file"
    elif os.environ.get(ENV_FILE_VAR, "").strip():
        asked, source = Path(os.environ[ENV_FILE_VAR].strip()), ENV_FILE_VAR
    else:
        return DEFAULT_ENV_FILE if DEFAULT_ENV_FILE.is_file() else None
    path = asked.expanduser()
    if not path.is_file():
        problem = "is not a file" if path.exists() else "does not exist"
        raise SettingsError(f"{source}: {asked} {problem}")
    return path


def _closest_key(key: str) -> str:
    """`` (did you mean X?)`` for a misspelt key, or nothing when no key is close."""
    known = [name.upper() for name in Settings.model_fields] + sorted(PASS_THROUGH_KEYS)
    match = difflib.get_close_matches(key.upper(), known, n=1)
    return f" (did you mean {match[0]}?)" if match else ""


def check_env_keys(path: Path) -> None:
    """Refuse a line of the .env file that does not parse or sets a key nobody reads: a typo
    would otherwise silently leave the setting at its default."""
    known = {name.upper() for name in Settings.model_fields} | PASS_THROUGH_KEYS
    problems = []
    for binding in parse_stream(io.StringIO(path.read_text(encoding="utf-8"))):
        where = f"{path} line {_line_of(binding)}"
        if binding.error:  # the line itself is not shown: it may hold a secret
            problems.append(f"{where}: cannot parse, expected KEY=value")
        elif binding.key is not None and binding.key.upper() not in known:
            problems.append(f"{where}: unknown key {binding.key}{_closest_key(binding.key)}")
    if problems:
        raise SettingsError("; ".join(problems))


def _line_of(binding: Binding) -> int:
    """The line a statement starts on: the parser counts blank lines before it as its own."""
    text = binding.original.string
    return binding.original.line + text[: len(text) - len(text.lstrip())].count("\n")


def export_pass_through(path: Path) -> None:
    """Put pass-through keys of the .env file into ``os.environ`` unless the process already
    has them (in any case), so huggingface_hub and HTTP clients see them."""
    present = {key.upper() for key in os.environ}
    for key, value in dotenv_values(path, encoding="utf-8").items():
        name = key.upper()
        if name in PASS_THROUGH_KEYS and name not in present and value and value.strip():
            os.environ[name] = value


def _resolved(path: Path, base: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path


def resolve_paths(settings: Settings, base: Path, cwd_fields: frozenset[str]) -> Settings:
    """A copy with ``DATA_DIR`` and ``MODEL_DIRS`` absolute: relative to ``base``, or to the
    current directory for the fields in ``cwd_fields`` (given on the command line)."""
    update: dict[str, object] = {}
    for field in PATH_FIELDS:
        at = Path.cwd() if field in cwd_fields else base
        value = getattr(settings, field)
        update[field] = (
            _resolved(value, at) if isinstance(value, Path) else [_resolved(p, at) for p in value]
        )
    return settings.model_copy(update=update)


def load_settings(env_file: Path | None = None, **overrides: object) -> Settings:
    """The settings every entry point uses. ``env_file`` as from ``--env-file`` (None: the
    ``IMAGE_FINDER_ENV_FILE`` variable, else ``./.env`` if present); ``overrides`` as from the
    command line. Relative paths resolve against the .env file's folder (the current directory
    when there is none); relative override paths against the current directory.
    Raises :class:`SettingsError` with one line naming the problem."""
    path = find_env_file(env_file)
    if path is not None:
        check_env_keys(path)
        export_pass_through(path)
    try:
        settings = Settings(_env_file=path, **overrides)  # type: ignore[call-arg, arg-type]
    except ValidationError as exc:
        raise SettingsError(format_validation_error(exc)) from None
    base = path.parent.resolve() if path is not None else Path.cwd()
    return resolve_paths(settings, base, frozenset(overrides))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
