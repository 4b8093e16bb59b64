"""Typed errors of the collection database, and the root of every deliberate Image Finder error.

The root class lives here, at the bottom layer, because Python's ``except`` matches by real
inheritance only (an ABC ``register`` is not enough): for ``except ImageFinderError`` in core,
bot and cli to catch a storage error, the storage error must derive from it, and storage must
not import core. :mod:`core.errors` re-exports every name below, so callers keep importing
errors from one place. Each error keeps a short machine-readable ``code`` the bot maps to a
friendly reply.
"""

from __future__ import annotations


class ImageFinderError(Exception):
    """Base class of every error the core raises on purpose."""

    code = "error"


class StorageError(ImageFinderError):
    """The collection database refused an operation; the message says which and why."""

    code = "storage"


class MigrationError(StorageError):
    """The schema cannot be brought up to date (an applied file was edited or removed, bad SQL)."""

    code = "migration"


class VectorError(StorageError):
    """Vectors given to storage have the wrong shape, a dimension the model does not have, or
    values float16 cannot hold."""

    code = "vector"


class UnknownOwnerError(StorageError):
    """A write names an owner that does not exist (or was deleted meanwhile)."""

    code = "owner_unknown"


class UnknownUnitError(StorageError):
    """Unit ids given for a write are not this owner's (or no longer exist)."""

    code = "unit_unknown"


class JobStateError(StorageError):
    """A job cannot move to the requested state: it is not running, or it was cancelled
    (deleted with everything its owner had) while a worker held it."""

    code = "job_state"


class IncompleteModelError(StorageError):
    """An owner cannot switch to a model that still lacks vectors for some of its units."""

    code = "model_incomplete"

    def __init__(self, model_id: str, missing: int) -> None:
        self.model_id = model_id
        self.missing = missing
        super().__init__(f"{model_id} has no vectors for {missing} unit(s) yet")


class UnknownMediaError(StorageError):
    """A media id given for a write is not this owner's (or no longer exists)."""

    code = "media_unknown"
