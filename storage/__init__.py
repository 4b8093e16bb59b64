"""The collection database (SQLite through aiosqlite, WAL): the source of truth for owners,
their media, embeddable units, vectors and ingest jobs.

    db = await Database.open(default_database_path(settings.data_dir))
    owner = await db.ensure_owner("user", telegram_user_id)
    store = db.owner(owner.id)          # every query below is scoped by this owner
    result = await store.commit_media(NewMedia("photo", unique_id, file_id=...),
                                      [NewUnit.image()], {"clip@1": vectors})
"""

from storage.db import Database, default_database_path
from storage.migrations import MIGRATIONS_DIR, migrate
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

__all__ = [
    "MIGRATIONS_DIR",
    "CommitResult",
    "Database",
    "DeleteResult",
    "Job",
    "JobState",
    "LocalFile",
    "Media",
    "MediaKind",
    "MissingVectors",
    "NewMedia",
    "NewUnit",
    "Owner",
    "OwnerKind",
    "OwnerStats",
    "OwnerStore",
    "PurgeResult",
    "Unit",
    "UnitKind",
    "VectorSnapshot",
    "default_database_path",
    "migrate",
]
