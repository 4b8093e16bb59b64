"""Typed errors of the core, so callers can tell the user exactly what went wrong.

Every error carries a short machine-readable ``code`` the bot maps to a friendly reply.
"""

from __future__ import annotations


class ImageFinderError(Exception):
    """Base class of every error the core raises on purpose."""

    code = "error"


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
