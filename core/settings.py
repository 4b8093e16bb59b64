"""The one settings object. Sections are plain models; the root reads the environment and ``.env``.

Environment keys are flat and upper-case (``MODEL_DIRS``, ``EMBED_THREADS``) so that a user
configures the bot with a short ``.env`` file; see ``.env.example``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

GraphOptimization = Literal["disable", "basic", "extended", "all"]


class Settings(BaseSettings):
    """Every setting of Image Finder. Missing or malformed values fail at start-up."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    data_dir: Path = Path("data")
    model_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=list)

    # Embedder
    embed_threads: int = Field(default=0, ge=0, le=256)  # 0 = onnxruntime's choice (all cores)
    embed_graph_optimization: GraphOptimization = "all"
    embed_batch_size: int = Field(default=16, ge=1, le=256)
    # Image batches as this many single-threaded runs side by side (0 = one per thread: most
    # images/s in bulk); 1 = one run on every thread (fastest for a lone photo).
    embed_image_runs: int = Field(default=0, ge=0, le=256)

    # Video frame sampling (core/video.py)
    video_min_gap_s: float = Field(default=1.0, ge=0.0, le=3600.0)  # never two frames closer
    video_max_gap_s: float = Field(default=10.0, gt=0.0, le=3600.0)  # at least one frame this often
    video_max_frames: int = Field(default=120, ge=1, le=10_000)  # cap per video
    video_scene_threshold: float = Field(default=0.10, gt=0.0, le=1.0)  # thumbnail difference 0..1

    @field_validator("video_max_gap_s")
    @classmethod
    def _max_gap_not_below_min(cls, v: float, info: ValidationInfo) -> float:
        if v < info.data.get("video_min_gap_s", 0.0):
            raise ValueError("VIDEO_MAX_GAP_S must not be smaller than VIDEO_MIN_GAP_S")
        return v

    # Vector indexes (core/index.py)
    index_memory_budget_mb: int = Field(default=1024, ge=1)  # loaded indexes, LRU beyond this
    index_approx_threshold: int = Field(default=200_000, ge=1)  # per owner and model: IVF above
    index_exact_kind: Literal["fp16", "fp32"] = "fp16"  # exact index codes: fp16 halves RAM

    # Search (core/search.py). Relevance margins are cosine distances below the best hit that
    # still count as relevant, per strictness; the model's relevance_floor applies on top.
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

    # Ingest pipeline (core/ingest.py) and background re-embedding (core/reembed.py)
    ingest_workers: int = Field(default=2, ge=1, le=64)  # items fetched and decoded at once
    ingest_queue_size: int = Field(default=64, ge=1, le=100_000)  # claimed jobs held in memory
    ingest_batch_size: int = Field(default=16, ge=1, le=1024)  # images per embedding batch
    ingest_max_attempts: int = Field(default=4, ge=1, le=100)  # tries of one download
    ingest_retry_backoff_s: float = Field(default=1.0, ge=0.0, le=600.0)  # first retry delay
    near_duplicate_threshold: float = Field(default=0.95, ge=0.0, le=1.0)  # cosine; 1 = off

    # Telegram bot (bot/). The token is optional here so the local CLI runs without one; the
    # bot refuses to start without it. It is a SecretStr so it never shows in logs or reprs.
    bot_token: SecretStr | None = None
    telegram_api_base: str | None = None  # another Bot API server, e.g. a local telegram-bot-api
    telegram_api_local: bool = False  # that server runs with --local (files read from disk)
    allowed_users: Annotated[frozenset[int], NoDecode] = frozenset()  # empty = everyone
    quota_items_per_user: int = Field(default=100_000, ge=0)  # items per collection; 0 = none
    quota_video_seconds: int = Field(default=0, ge=0)  # total video length per collection; 0 = none
    album_wait_s: float = Field(default=1.5, ge=0.01, le=60.0)  # quiet time that ends an album
    # Webhook mode instead of long polling when WEBHOOK_URL is set (the public https address
    # Telegram posts to); the bot listens on WEBHOOK_HOST:WEBHOOK_PORT at WEBHOOK_PATH.
    webhook_url: str | None = None
    webhook_path: str = "/telegram"
    webhook_host: str = "0.0.0.0"
    webhook_port: int = Field(default=8080, ge=1, le=65535)
    webhook_secret: SecretStr | None = None
    # Telegram's flood limits: about one message a second per chat (short bursts are allowed),
    # and a 429 answer names how long to wait. 5xx and network errors are retried with backoff.
    send_pace_per_chat_s: float = Field(default=1.0, ge=0.0, le=60.0)
    send_burst_per_chat: int = Field(default=20, ge=1, le=1000)
    telegram_retry_attempts: int = Field(default=5, ge=1, le=100)
    telegram_retry_backoff_s: float = Field(default=0.5, ge=0.0, le=60.0)
    telegram_retry_after_max_s: float = Field(default=300.0, ge=0.0)  # longer waits: give up
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("bot_token", "webhook_secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("telegram_api_base", "webhook_url", mode="before")
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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
