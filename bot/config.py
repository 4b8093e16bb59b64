"""Start-up checks of bot-only settings, kept light so a bad ``.env`` fails in a blink.

Importing aiogram takes seconds (it builds hundreds of pydantic models), so nothing here does.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from core.settings import Settings

# What aiogram's validate_token accepts: digits, a colon, a secret without whitespace.
_TOKEN = re.compile(r"\d+:\S+")


class StartupError(Exception):
    """A problem that stops start-up; its message is the one line the user sees."""


def check_token(settings: Settings) -> str:
    """The bot token, or a :class:`StartupError` saying how to get one."""
    if settings.bot_token is None:
        raise StartupError("BOT_TOKEN is not set: get one from @BotFather and put it in .env")
    token = settings.bot_token.get_secret_value().strip()
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
    settings: Settings,
    *,
    pull: Callable[[str, Path], object] | None = None,
    say: Callable[[str], object] = print,
) -> list[Path]:
    """Download every configured bundle that is missing and can be downloaded; a
    :class:`StartupError` names the first one that cannot. Returns the directories fetched."""
    if not settings.model_dirs:
        raise StartupError(
            "MODEL_DIRS is not set: list model bundle directories in .env (copy .env.example; "
            "see README, section Models)"
        )
    if pull is None:
        pull = _real_pull(settings.model_hub_url)
    missing = [p for p in settings.model_dirs if not bundle_present(p)]
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
