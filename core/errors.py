"""Typed errors of the core, so callers can tell the user exactly what went wrong.

Every error carries a short machine-readable ``code`` the bot maps to a friendly reply.
"""

from __future__ import annotations

# Storage's errors, and the root ImageFinderError, are defined in storage.errors (storage cannot
# import core, and ``except ImageFinderError`` only honours real inheritance); re-exported here so
# callers import every error from one place.
from storage.errors import (  # noqa: F401 - re-exported
    ImageFinderError,
    IncompleteModelError,
    JobStateError,
    MigrationError,
    StorageError,
    UnknownMediaError,
    UnknownOwnerError,
    UnknownUnitError,
    VectorError,
)

# --- input images -------------------------------------------------------------------------------


class ImageError(ImageFinderError):
    """The bytes given as an image cannot be turned into model input."""

    code = "image"


class EmptyImageError(ImageError):
    """Zero bytes were given."""

    code = "image_empty"


class UnsupportedImageError(ImageError):
    """The bytes are not an image format we can read (a PDF, a text file, ...)."""

    code = "image_unsupported"


class TruncatedImageError(ImageError):
    """The file starts like an image but ends early or is corrupt."""

    code = "image_truncated"


class ImageTooLargeError(ImageError):
    """The image declares more pixels than we accept (a decompression bomb)."""

    code = "image_too_large"


class ImageTooComplexError(ImageError):
    """The image would take too long to decode: thousands of progressive scans or file
    structures, more than any encoder writes (a denial-of-service file, or badly damaged)."""

    code = "image_too_complex"


# --- model bundles ------------------------------------------------------------------------------


class BundleError(ImageFinderError):
    """A model bundle is missing a file or is inconsistent; the message names the file."""

    code = "bundle"

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ModelDownloadError(ImageFinderError):
    """A bundle could not be downloaded (offline, bad checksum, server error)."""

    code = "model_download"


# --- text ---------------------------------------------------------------------------------------


class TokenizerError(ImageFinderError):
    """A tokenizer file cannot be read."""

    code = "tokenizer"


class EmptyQueryError(ImageFinderError):
    """A text query has nothing searchable in it (empty or whitespace only)."""

    code = "query_empty"


# --- videos and animations ----------------------------------------------------------------------


class VideoError(ImageFinderError):
    """A video, animation or video note cannot be turned into frames."""

    code = "video"


class EmptyVideoError(VideoError):
    """Zero bytes were given, or the container holds no video frame."""

    code = "video_empty"


class UnreadableVideoError(VideoError):
    """Not a video format we can decode, or damaged before its first frame."""

    code = "video_unreadable"


class VideoTooLargeError(VideoError):
    """A video or animation declares frames larger than we decode (a decompression bomb)."""

    code = "video_too_large"


class VideoTooComplexError(VideoError):
    """An animation would take too long to decode (millions of blocks, or damaged)."""

    code = "video_too_complex"


# --- vector indexes -----------------------------------------------------------------------------


class VectorIndexError(ImageFinderError):
    """Vectors or a query do not fit an index (wrong shape or dimension)."""

    code = "vector_index"


class IndexFileError(VectorIndexError):
    """An index file cannot be used (truncated, corrupt, foreign); it is rebuilt from SQLite."""

    code = "index_file"

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


# --- search -------------------------------------------------------------------------------------


class OnlyExclusionsError(EmptyQueryError):
    """A text query says only what to leave out ("-cat -dog") and nothing to look for."""

    code = "query_only_exclusions"


class NotFoundError(ImageFinderError):
    """An item or unit named by a request is not the owner's: deleted meanwhile, never existed,
    or another owner's (indistinguishable on purpose, so ids of others leak nothing)."""

    code = "not_found"


class ItemNotReadyError(NotFoundError):
    """The item is the owner's but has no vector for the loaded models yet (re-embedding is
    bringing it up to date): worth asking again later, unlike an item that is gone."""

    code = "item_not_ready"


# --- ingest -------------------------------------------------------------------------------------


class IngestError(ImageFinderError):
    """An item could not be ingested for a reason that is neither its content nor storage."""

    code = "ingest"


class FetchError(IngestError):
    """The bytes of an item could not be fetched. ``retryable`` (the default) means a later try
    may succeed (network, timeout), so the pipeline tries again with a growing delay."""

    code = "fetch"

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        self.retryable = retryable
        super().__init__(message)


class FileTooLargeError(FetchError):
    """The file is larger than can be downloaded (Telegram's Bot API limit); a video with a
    thumbnail is then indexed from the thumbnail instead."""

    code = "file_too_large"

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class FileGoneError(FetchError):
    """The file no longer exists (a local file removed, a Telegram file no longer served)."""

    code = "file_gone"

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class UnreadableThumbnailError(IngestError):
    """A file too large to download has a thumbnail that does not decode either: the user is
    told it is the cover, not their file, that could not be read."""

    code = "thumbnail_unreadable"


class IngestInterruptedError(IngestError):
    """The pipeline stopped before the job finished. The job is kept in the database and
    resumes at the next start; only this process's waiting caller is told."""

    code = "ingest_interrupted"


# --- text in pictures (OCR) ---------------------------------------------------------------------


class OcrError(ImageFinderError):
    """Text could not be read off a picture for a reason other than the picture itself."""

    code = "ocr"


class OcrUnavailableError(OcrError):
    """The OCR engine cannot run here: no tesseract language data for the configured
    languages (Debian: ``apt-get install tesseract-ocr-rus tesseract-ocr-eng``)."""

    code = "ocr_unavailable"
