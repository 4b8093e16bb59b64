"""The settings, in sections: one plain frozen model per concern, each owning its defaults.

Environment keys are flat and upper-case (``MODEL_DIRS``, ``EMBED_THREADS``) so that a user
configures the bot with a short ``.env`` file; see ``.env.example``. Each section maps its fields
to those keys (an env prefix per section, a few explicit names), and the root :class:`Settings`
reads each key into its section: ``VIDEO_MAX_FRAMES`` is ``settings.video.max_frames``. The
bot's own section lives with the bot (``bot.config``); a component is handed the one section it
works with, never the whole object.

Entry points call :func:`load_settings` (or ``Settings.load``): it picks the ``.env`` file
(``--env-file``, ``IMAGE_FINDER_ENV_FILE`` or ``./.env``), refuses unknown keys in it, and
resolves relative paths against that file's folder, so the bot finds its data whatever directory
it is started from.
"""

from __future__ import annotations

import difflib
import io
import os
from collections.abc import Collection, Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeVar

from dotenv import dotenv_values
from dotenv.parser import Binding, parse_stream
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from core.errors import ImageFinderError

GraphOptimization = Literal["disable", "basic", "extended", "all"]
T = TypeVar("T")

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


class SettingsError(ImageFinderError):
    """A configuration problem; the message is the one line the user sees."""

    code = "settings"


def given_or(value: T | None, default: T) -> T:
    """The one override rule: ``None`` means "not given"; any other value wins, 0 included
    (``value or default`` would silently turn an explicit 0 into the default)."""
    return default if value is None else value


def http_url(value: object) -> object:
    """A URL setting: blank is unset, a trailing slash is dropped, the scheme must be http(s)."""
    if isinstance(value, str):
        value = value.strip().rstrip("/")
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r}")
    return value


class Section(BaseModel):
    """One concern's settings. Field ``name`` reads the flat key ``env_prefix + NAME`` unless
    ``env_names`` names another; the defaults here are the only ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env_prefix: ClassVar[str] = ""
    env_names: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def env_keys(cls) -> dict[str, str]:
        """Field name -> the flat environment key that sets it."""
        return {
            name: cls.env_names.get(name, f"{cls.env_prefix}{name}".upper())
            for name in cls.model_fields
        }


class DataSettings(Section):
    """Where collections, indexes and downloaded models live, and which model bundles to load."""

    env_names: ClassVar[Mapping[str, str]] = {"dir": "DATA_DIR"}

    dir: Path = Path("data")
    model_dirs: list[Path] = Field(default_factory=list)
    # Model downloads (core/models/pull.py): another Hugging Face-compatible hub or mirror.
    # A --base-url flag wins over it, and it wins over HF_ENDPOINT; unset = huggingface.co.
    model_hub_url: str | None = None

    _url = field_validator("model_hub_url", mode="before")(http_url)

    @field_validator("model_dirs", mode="before")
    @classmethod
    def _split_dirs(cls, v: object) -> object:
        if isinstance(v, str):
            return [Path(p.strip()) for p in v.split(",") if p.strip()]
        return v


class DatabaseSettings(Section):
    """Where the collection database lives: SQLite in DATA_DIR (the default, one process), or a
    PostgreSQL server shared by front ends and inference workers (``postgresql://...``)."""

    env_prefix: ClassVar[str] = "DATABASE_"

    url: str | None = None  # DATABASE_URL; unset = SQLite file DATA_DIR/image-finder.db
    pool_size: int = Field(default=4, ge=1, le=256)  # PostgreSQL connections (reads) per process

    @field_validator("url", mode="before")
    @classmethod
    def _known_scheme(cls, v: object) -> object:
        if isinstance(v, str):
            v = v.strip() or None
        if isinstance(v, str) and not v.startswith(("postgresql://", "postgres://")):
            raise ValueError("DATABASE_URL must start with postgresql:// (unset = SQLite)")
        return v

    @property
    def shared(self) -> bool:
        """Several processes may use this database (PostgreSQL)."""
        return self.url is not None


class EmbedSettings(Section):
    """How the models run (core/models/embedder.py)."""

    env_prefix: ClassVar[str] = "EMBED_"

    threads: int = Field(default=0, ge=0, le=256)  # 0 = onnxruntime's choice (all cores)
    graph_optimization: GraphOptimization = "all"
    batch_size: int = Field(default=16, ge=1, le=256)
    # Full image batches as this many runs side by side (0 = one per CPU: most images/s in
    # bulk); a lone photo always gets one run on every thread.
    image_runs: int = Field(default=0, ge=0, le=256)
    # Memory image runs may use beyond the weights (MB): bounds images per run x runs at once.
    memory_mb: int = Field(default=128, ge=0, le=1_000_000)  # 0 = no bound


class VideoSettings(Section):
    """Video frame sampling (core/media/video.py) and merging of repeated moments."""

    env_prefix: ClassVar[str] = "VIDEO_"

    min_gap_s: float = Field(default=1.0, ge=0.0, le=3600.0)  # never two frames closer
    max_gap_s: float = Field(default=10.0, gt=0.0, le=3600.0)  # at least one frame this often
    max_frames: int = Field(default=120, ge=1, le=10_000)  # cap per video
    # Difference (0..1, core.media.shots.difference) of two 64x36 thumbnails that counts as a
    # new scene: a cut between two unrelated shots scores well above it, sensor noise and small
    # motion well below.
    scene_threshold: float = Field(default=0.10, gt=0.0, le=1.0)
    # Kept frames this similar (cosine, every model) to the previous moment merge into it; 1 = off.
    merge_similarity: float = Field(default=0.97, ge=0.0, le=1.0)

    @field_validator("max_gap_s")
    @classmethod
    def _max_gap_not_below_min(cls, v: float, info: ValidationInfo) -> float:
        if v < info.data.get("min_gap_s", 0.0):
            raise ValueError("VIDEO_MAX_GAP_S must not be smaller than VIDEO_MIN_GAP_S")
        return v


class IndexSettings(Section):
    """Vector indexes (core/index/)."""

    env_prefix: ClassVar[str] = "INDEX_"

    memory_budget_mb: int = Field(default=1024, ge=1)  # loaded indexes, LRU beyond this
    approx_threshold: int = Field(default=200_000, ge=1)  # per owner and model: IVF above
    exact_kind: Literal["fp16", "fp32"] = "fp16"  # exact index codes: fp16 halves RAM


class SearchSettings(Section):
    """Search (core/search/). Relevance margins are cosine distances below the best hit that
    still count as relevant, per strictness; the model's relevance_floor applies on top. Text
    matches are fused with the vector ranking by reciprocal rank fusion; a filter that leaves
    at most ``direct_max`` items has their stored vectors scored instead of walking the index."""

    env_prefix: ClassVar[str] = "SEARCH_"

    margin_strict: float = Field(default=0.03, ge=0.0, le=2.0)
    margin_normal: float = Field(default=0.06, ge=0.0, le=2.0)
    margin_loose: float = Field(default=0.12, ge=0.0, le=2.0)
    default_limit: int = Field(default=10, ge=1, le=100)  # results per page
    max_limit: int = Field(default=50, ge=1, le=1000)  # largest page a caller may ask for
    text_weight: float = Field(default=0.5, ge=0.0, le=1.0)  # text share of text + image
    rrf_k: int = Field(default=60, ge=1, le=10_000)  # reciprocal rank fusion's k
    # Fusion weight of a text match holding every query word (the pictures weigh 1); a match
    # holding fewer weighs less, by the share it holds. Matches must hold at least
    # text_min_share of the words (1 = all of them).
    text_match_weight: float = Field(default=2.0, ge=0.0, le=100.0)
    text_min_share: float = Field(default=0.5, gt=0.0, le=1.0)
    text_limit: int = Field(default=200, ge=1, le=10_000)  # text-index matches fused per query
    fusion_depth: int = Field(default=200, ge=1, le=10_000)  # vector ranks fused with text
    sort_depth: int = Field(default=1000, ge=1, le=100_000)  # relevant items sorted by date
    direct_max: int = Field(default=2000, ge=0, le=1_000_000)  # filtered items scored directly
    phrase_limit: int = Field(default=10_000, ge=1, le=1_000_000)  # items a phrase may allow

    @field_validator("margin_loose")
    @classmethod
    def _margins_ordered(cls, v: float, info: ValidationInfo) -> float:
        strict = info.data.get("margin_strict", 0.0)
        normal = info.data.get("margin_normal", strict)
        if not strict <= normal <= v:
            raise ValueError(
                "search margins must grow: SEARCH_MARGIN_STRICT <= SEARCH_MARGIN_NORMAL <= "
                "SEARCH_MARGIN_LOOSE"
            )
        return v


class IngestSettings(Section):
    """The ingest pipeline (core/ingest/pipeline.py) and background re-embedding
    (core/ingest/reembed.py)."""

    env_prefix: ClassVar[str] = "INGEST_"
    env_names: ClassVar[Mapping[str, str]] = {
        "near_duplicate_threshold": "NEAR_DUPLICATE_THRESHOLD"
    }

    workers: int = Field(default=2, ge=1, le=64)  # items fetched and decoded at once
    queue_size: int = Field(default=64, ge=1, le=100_000)  # claimed jobs held in memory
    batch_size: int = Field(default=16, ge=1, le=1024)  # images per embedding batch
    max_attempts: int = Field(default=4, ge=1, le=100)  # tries of one download
    retry_backoff_s: float = Field(default=1.0, ge=0.0, le=600.0)  # first retry delay
    near_duplicate_threshold: float = Field(default=0.95, ge=0.0, le=1.0)  # cosine; 1 = off
    # True: this process only enqueues; inference workers (``python -m bot worker``) embed.
    remote: bool = False
    lease_s: float = Field(default=60.0, ge=1.0, le=3600.0)  # a claimed job's hold, renewed


class HousekeepingSettings(Section):
    """Housekeeping (storage/housekeeping.py), run by the bot at start-up and then every
    interval: done/failed jobs older than JOBS_RETENTION_DAYS, and result messages with their
    paging sessions past the age their buttons expire at (storage/results.py), are deleted, at
    most HOUSEKEEPING_CHUNK_ROWS rows per write transaction."""

    env_prefix: ClassVar[str] = "HOUSEKEEPING_"
    env_names: ClassVar[Mapping[str, str]] = {"jobs_retention_days": "JOBS_RETENTION_DAYS"}

    interval_s: int = Field(default=6 * 3600, ge=60, le=7 * 24 * 3600)
    chunk_rows: int = Field(default=1000, ge=1, le=100_000)
    jobs_retention_days: int = Field(default=30, ge=1, le=3650)


class OcrSettings(Section):
    """Reading text off pictures (core/ocr/): a background stage after embedding. With no
    tesseract data for the languages, OCR is off and start-up says which packages to install."""

    env_prefix: ClassVar[str] = "OCR_"

    enabled: bool = True
    languages: str = Field(default="rus+eng", pattern=r"^[a-z_]+(\+[a-z_]+)*$")
    tessdata: Path | None = None  # None: found (TESSDATA_PREFIX, then the distribution's path)
    max_side: int = Field(default=1600, ge=320, le=10_000)  # pixels; larger pictures shrink
    threads: int = Field(default=1, ge=1, le=64)  # pictures read at once (one tesseract each)
    min_confidence: float = Field(default=60.0, ge=0.0, le=100.0)  # words below are dropped
    batch_size: int = Field(default=8, ge=1, le=1024)  # items claimed at a time
    max_attempts: int = Field(default=3, ge=1, le=100)  # claims of one item before 'failed'

    @field_validator("tessdata", mode="before")
    @classmethod
    def _blank_is_auto(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v


class FlatKeys(PydanticBaseSettingsSource):
    """The flat keys another source read (``VIDEO_MAX_FRAMES``), as section values
    (``{"video": {"max_frames": ...}}``); keys that are no setting are left alone."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        source: PydanticBaseSettingsSource,
        keys: Mapping[str, tuple[str, str]],
    ) -> None:
        super().__init__(settings_cls)
        variables = source.env_vars if isinstance(source, EnvSettingsSource) else {}
        self._variables: Mapping[str, str | None] = {k.lower(): v for k, v in variables.items()}
        self._keys = keys

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: :meth:`__call__` reads every key at once."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, dict[str, Any]] = {}
        for key, (section, name) in self._keys.items():
            value = self._variables.get(key.lower())
            if value is not None:
                values.setdefault(section, {})[name] = value
        return values


class Settings(BaseSettings):
    """Every engine setting, by section. Missing or malformed values fail at start-up.

    Keyword construction takes sections (``video=VideoSettings(...)``) or the flat names of
    their keys (``Settings(video_max_frames=5)``), which win over the environment."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="forbid", frozen=True
    )

    data: DataSettings = DataSettings()
    database: DatabaseSettings = DatabaseSettings()
    embed: EmbedSettings = EmbedSettings()
    video: VideoSettings = VideoSettings()
    index: IndexSettings = IndexSettings()
    search: SearchSettings = SearchSettings()
    ingest: IngestSettings = IngestSettings()
    housekeeping: HousekeepingSettings = HousekeepingSettings()
    ocr: OcrSettings = OcrSettings()

    @classmethod
    def sections(cls) -> dict[str, type[Section]]:
        """Attribute name -> section model, for every section of this settings class."""
        found: dict[str, type[Section]] = {}
        for name, field in cls.model_fields.items():
            kind = field.annotation
            if isinstance(kind, type) and issubclass(kind, Section):
                found[name] = kind
        return found

    @classmethod
    def env_keys(cls) -> dict[str, tuple[str, str]]:
        """Every flat environment key -> (section, field)."""
        return {
            key: (section, name)
            for section, model in cls.sections().items()
            for name, key in model.env_keys().items()
        }

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then the environment, then ``.env``: the last two by flat key."""
        keys = cls.env_keys()
        return (
            init_settings,
            FlatKeys(settings_cls, env_settings, keys),
            FlatKeys(settings_cls, dotenv_settings, keys),
        )

    @model_validator(mode="before")
    @classmethod
    def _flat_names_into_sections(cls, data: Any) -> Any:
        """``video_max_frames=5`` becomes ``video.max_frames``, over what the section had."""
        if not isinstance(data, dict):
            return data
        keys = {key.lower(): target for key, target in cls.env_keys().items()}
        values: dict[str, Any] = {}
        flat: list[tuple[str, str, Any]] = []
        for name, value in data.items():
            target = keys.get(name.lower()) if name not in cls.model_fields else None
            if target is None:
                values[name] = value
            else:
                flat.append((*target, value))
        for section, field, value in flat:
            current = values.get(section, {})
            merged = dict(current) if isinstance(current, BaseModel | Mapping) else {}
            merged[field] = value
            values[section] = merged
        return values

    @classmethod
    def load(
        cls,
        env_file: Path | None = None,
        *,
        shared_sections: Iterable[type[Section]] = (),
        check_keys: bool = True,
        **overrides: object,
    ) -> Self:
        """The settings an entry point uses. ``env_file`` as from ``--env-file`` (None: the
        ``IMAGE_FINDER_ENV_FILE`` variable, else ``./.env`` if present); ``overrides`` as from
        the command line, by flat name. ``shared_sections``: sections of another front end that
        reads the same file, whose keys are accepted there but not read. ``check_keys=False``
        skips the unknown-key check (a tool that cannot know every front end's keys).
        Relative paths resolve against the .env file's folder (the current directory when
        there is none); relative override paths against the current directory.
        Raises :class:`SettingsError` with one line naming the problem."""
        path = find_env_file(env_file)
        if path is not None:
            if check_keys:
                known = set(cls.env_keys()).union(*(s.env_keys().values() for s in shared_sections))
                check_env_keys(path, known)
            export_pass_through(path)
        try:
            settings = cls(_env_file=path, **overrides)  # type: ignore[call-arg, arg-type]
        except ValidationError as exc:
            raise SettingsError(format_validation_error(exc, cls)) from None
        base = path.parent.resolve() if path is not None else Path.cwd()
        return resolve_paths(settings, base, frozenset(k.lower() for k in overrides))


def format_validation_error(exc: ValidationError, settings_cls: type[Settings] = Settings) -> str:
    """One line for a pydantic ValidationError, naming flat keys: ``MODEL_DIRS: <problem>``."""
    sections = settings_cls.sections()
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
        section = sections.get(loc[0]) if loc else None
        if section is not None and len(loc) > 1 and loc[1] in section.model_fields:
            name = section.env_keys()[loc[1]]
        else:
            name = ".".join(loc).upper() or "settings"
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


def _closest_key(key: str, known: Collection[str]) -> str:
    """`` (did you mean X?)`` for a misspelt key, or nothing when no key is close."""
    match = difflib.get_close_matches(key.upper(), sorted(known), n=1)
    return f" (did you mean {match[0]}?)" if match else ""


def check_env_keys(path: Path, known: Collection[str] | None = None) -> None:
    """Refuse a line of the .env file that does not parse or sets a key nobody reads: a typo
    would otherwise silently leave the setting at its default. ``known``: the keys of every
    section read from the file (default: the engine's); pass-through keys are always known."""
    keys = {key.upper() for key in (Settings.env_keys() if known is None else known)}
    keys |= PASS_THROUGH_KEYS
    problems = []
    for binding in parse_stream(io.StringIO(path.read_text(encoding="utf-8"))):
        where = f"{path} line {_line_of(binding)}"
        if binding.error:  # the line itself is not shown: it may hold a secret
            problems.append(f"{where}: cannot parse, expected KEY=value")
        elif binding.key is not None and binding.key.upper() not in keys:
            problems.append(f"{where}: unknown key {binding.key}{_closest_key(binding.key, keys)}")
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


S = TypeVar("S", bound=Settings)


def resolve_paths(settings: S, base: Path, cwd_keys: frozenset[str]) -> S:
    """A copy with ``DATA_DIR``, ``MODEL_DIRS`` and ``OCR_TESSDATA`` absolute: relative to
    ``base``, or to the current directory for the keys in ``cwd_keys`` (flat names given on the
    command line)."""
    data, keys = settings.data, DataSettings.env_keys()

    def base_of(field: str) -> Path:
        return Path.cwd() if keys[field].lower() in cwd_keys or "data" in cwd_keys else base

    paths = {
        "dir": _resolved(data.dir, base_of("dir")),
        "model_dirs": [_resolved(p, base_of("model_dirs")) for p in data.model_dirs],
    }
    ocr = settings.ocr
    if ocr.tessdata is not None:
        cwd = OcrSettings.env_keys()["tessdata"].lower() in cwd_keys or "ocr" in cwd_keys
        ocr = ocr.model_copy(
            update={"tessdata": _resolved(ocr.tessdata, Path.cwd() if cwd else base)}
        )
    return settings.model_copy(update={"data": data.model_copy(update=paths), "ocr": ocr})


def load_settings(env_file: Path | None = None, **overrides: Any) -> Settings:
    """The engine's settings as an entry point loads them: see :meth:`Settings.load`."""
    return Settings.load(env_file, **overrides)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
