"""The collection database (SQLite through aiosqlite, WAL): the source of truth for owners,
their media, embeddable units, vectors and ingest jobs.

    db = await Database.open(default_database_path(settings.data.dir))
    owner = await db.owners.ensure("user", telegram_user_id)
    store = db.owner(owner.id)          # every query below is scoped by this owner
    result = await store.media.commit(NewMedia("photo", unique_id, file_id=...),
                                      [NewUnit.image()], {"clip@1": vectors})
"""

from storage.active_models import ActiveModels
from storage.album_answers import AlbumAnswer, AlbumAnswers
from storage.connection import Connections
from storage.db import Database, default_database_path
from storage.job_queue import JobQueue
from storage.local_files import LocalFiles
from storage.migrations import MIGRATIONS_DIR, migrate
from storage.model_registry import ModelRegistry
from storage.owner_jobs import OwnerJobs
from storage.owner_media import OwnerMedia
from storage.owner_profile import OwnerProfile
from storage.owner_units import OwnerUnits
from storage.owner_vectors import OwnerVectors
from storage.owners import OwnerRegistry
from storage.records import (
    CommitResult,
    DeleteResult,
    Job,
    JobState,
    LocalFile,
    Media,
    MediaKind,
    MissingVectors,
    NewMedia,
    NewUnit,
    Owner,
    OwnerKind,
    OwnerStats,
    PurgeResult,
    Unit,
    UnitKind,
    VectorSnapshot,
)
from storage.repositories import OwnerStore
from storage.vector_source import VectorSource

__all__ = [
    "MIGRATIONS_DIR",
    "ActiveModels",
    "AlbumAnswer",
    "AlbumAnswers",
    "CommitResult",
    "Connections",
    "Database",
    "DeleteResult",
    "Job",
    "JobQueue",
    "JobState",
    "LocalFile",
    "LocalFiles",
    "Media",
    "MediaKind",
    "MissingVectors",
    "ModelRegistry",
    "NewMedia",
    "NewUnit",
    "Owner",
    "OwnerJobs",
    "OwnerKind",
    "OwnerMedia",
    "OwnerProfile",
    "OwnerRegistry",
    "OwnerStats",
    "OwnerStore",
    "OwnerUnits",
    "OwnerVectors",
    "PurgeResult",
    "Unit",
    "UnitKind",
    "VectorSnapshot",
    "VectorSource",
    "default_database_path",
    "migrate",
]
