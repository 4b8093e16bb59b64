"""The bot's own settings section, and start-up checks of it, kept light so a bad ``.env``
fails in a blink.

Importing aiogram takes seconds (it builds hundreds of pydantic models), so nothing here does.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from core.settings import DataSettings, Section, Settings, http_url
from storage.records import OwnerKind

# The owners the bot serves: Telegram users and chats (the local CLI's are "local"); its OCR
# stage reads their items only, as only their files can be fetched from Telegram.
BOT_OWNER_KINDS: tuple[OwnerKind, ...] = ("user", "chat")

# What aiogram's validate_token accepts: digits, a colon, a secret without whitespace.
_TOKEN = re.compile(r"\d+:\S+")


class BotSettings(Section):
    """The Telegram bot's settings (bot/): keys as the fields' names, upper-case (``BOT_TOKEN``
    for ``token``). The token is optional here so ``python -m bot health`` and the tests run
    without one; the bot refuses to start without it. It is a SecretStr so it never shows in
    logs or reprs."""

    env_names: ClassVar[Mapping[str, str]] = {
        "token": "BOT_TOKEN",
        "standby_retry_s": "BOT_STANDBY_RETRY_S",
    }

    token: SecretStr | None = None
    telegram_api_base: str | None = None  # another Bot API server, e.g. a local telegram-bot-api
    telegram_api_local: bool = False  # that server runs with --local (files read from disk)
    allowed_users: frozenset[int] = frozenset()  # empty = everyone
    # Quotas are the bot's: it checks them before it queues an item (bot/services.py).
    quota_items_per_user: int = Field(default=100_000, ge=0)  # items per collection; 0 = none
    quota_video_seconds: int = Field(default=0, ge=0)  # total video length per collection; 0 = none
    album_wait_s: float = Field(default=1.5, ge=0.01, le=60.0)  # quiet time that ends an album
    # Front ends sharing a database: the replica answering an album holds it this long,
    # renewed while it works; another one takes over once it runs out (bot/shared_albums.py).
    album_lease_s: float = Field(default=10.0, ge=0.5, le=600.0)
    # Long-polling wait per getUpdates; the health check calls the bot stale after three.
    polling_timeout_s: int = Field(default=10, ge=1, le=50)
    # Webhook mode instead of long polling when WEBHOOK_URL is set (the public https address
    # Telegram posts to); the bot listens on WEBHOOK_HOST:WEBHOOK_PORT at WEBHOOK_PATH.
    webhook_url: str | None = None
    webhook_path: str = "/telegram"
    webhook_host: str = "0.0.0.0"
    webhook_port: int = Field(default=8080, ge=1, le=65535)
    webhook_secret: SecretStr | None = None
    # Several front ends on one PostgreSQL database (DATABASE_URL): polling replicas take turns
    # on a lock (one polls, the others wait as hot standbys and try again every
    # BOT_STANDBY_RETRY_S; the active one checks it still holds it as often); webhook replicas
    # are all active and share album answers (bot/shared_albums.py).
    standby_retry_s: float = Field(default=1.0, gt=0.0, le=60.0)
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

    _urls = field_validator("telegram_api_base", "webhook_url", mode="before")(http_url)

    @field_validator("token", "webhook_secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

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


class BotAppSettings(Settings):
    """What the bot process runs with: the engine's sections and the bot's own (``.bot``)."""

    bot: BotSettings = BotSettings()


class StartupError(Exception):
    """A problem that stops start-up; its message is the one line the user sees."""


def check_token(bot: BotSettings) -> str:
    """The bot token, or a :class:`StartupError` saying how to get one."""
    if bot.token is None:
        raise StartupError("BOT_TOKEN is not set: get one from @BotFather and put it in .env")
    token = bot.token.get_secret_value().strip()
    if not _TOKEN.fullmatch(token):
        raise StartupError(
            "BOT_TOKEN is malformed: expected digits, a colon and a secret, as @BotFather gives it"
        )
    return token


# Bundle directory names that `python -m core.models pull` can fetch, by the alias to pull.
# Other names that are pull aliases themselves (or Immich model names) are pulled as they are.
PULL_NAMES: dict[str, str] = {
    "clip-vit-b-32-openai": "clip-vit-b-32",
    "vit-b-32__openai": "clip-vit-b-32",
    "clip-vit-b-16-openai": "clip-vit-b-16",
}
RUCLIP_DEFAULT = "ruclip-vit-base-patch32-384"
_RUCLIP_NAME = re.compile(r"ruclip-vit-(?:base|large)-patch\d+-\d+")


def bundle_present(path: Path) -> bool:
    """A directory with a bundle in it (ours: config.json; Immich's: config.json too)."""
    return (path / "config.json").is_file()


def pull_name_for(path: Path) -> str | None:
    """What to pull for a missing bundle directory, or None when it cannot be downloaded
    (ruCLIP has no published ONNX export: it is made with ``tools export ruclip``)."""
    from core.models.pull import ALIASES

    name = path.name.lower()
    if name.startswith("ruclip"):
        return None
    if name in PULL_NAMES:
        return PULL_NAMES[name]
    if name in ALIASES:
        return name
    if "__" in path.name:  # an Immich model name such as ViT-B-16__openai
        return path.name
    return None


def ruclip_commands(path: Path) -> str:
    """The README's commands that build the ruCLIP bundle ``path`` (an ``-int8`` one quantized
    from the plain export next to it)."""
    int8 = path.name.lower().endswith("-int8")
    plain = path.with_name(path.name[: -len("-int8")]) if int8 else path
    match = _RUCLIP_NAME.search(plain.name.lower())
    checkpoint = match.group(0) if match else RUCLIP_DEFAULT
    commands = [
        "make install-export",
        f".venv-export/bin/python -m tools export ruclip --name {checkpoint} --out {plain}",
    ]
    if int8:
        commands.append(f".venv-export/bin/python -m tools quantize {plain} --out {path}")
    return "; ".join(commands)


def cannot_download(path: Path) -> StartupError:
    """Why a missing bundle directory is not fetched, and how to make it."""
    if path.name.lower().startswith("ruclip"):
        return StartupError(
            f"MODEL_DIRS: {path} is missing and cannot be downloaded (ruCLIP has no published "
            f"ONNX export); build it on a machine with internet: {ruclip_commands(path)} "
            "(or remove it from MODEL_DIRS)"
        )
    return StartupError(
        f"MODEL_DIRS: {path} is missing and cannot be downloaded; build it with "
        "`python -m tools export` (see README, section Models) or remove it from MODEL_DIRS"
    )


def prepare_models(
    data: DataSettings,
    *,
    pull: Callable[[str, Path], object] | None = None,
    say: Callable[[str], object] = print,
) -> list[Path]:
    """Download every configured bundle that is missing and can be downloaded; a
    :class:`StartupError` names the first one that cannot. Returns the directories fetched."""
    if not data.model_dirs:
        raise StartupError(
            "MODEL_DIRS is not set: list model bundle directories in .env (copy .env.example; "
            "see README, section Models)"
        )
    if pull is None:
        pull = _real_pull(data.model_hub_url)
    missing = [p for p in data.model_dirs if not bundle_present(p)]
    plan = []
    for path in missing:  # everything checked before anything is downloaded
        name = pull_name_for(path)
        if name is None:
            raise cannot_download(path)
        plan.append((name, path))
    from core.errors import ModelDownloadError

    for name, path in plan:
        say(f"fetching model {name} into {path} ...")
        try:
            pull(name, path)
        except ModelDownloadError as exc:
            raise StartupError(f"{exc} (see README, section Models)") from None
    return [path for _, path in plan]


def _real_pull(hub_url: str | None) -> Callable[[str, Path], object]:
    """``core.models.pull.pull`` from the configured hub (MODEL_HUB_URL), progress on stderr."""

    def pull(name: str, out: Path) -> object:
        from core.models.pull import pull as real_pull

        return real_pull(name, out, base_url=hub_url, progress_stream=sys.stderr)

    return pull
