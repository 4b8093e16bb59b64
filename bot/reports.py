"""What the user is told about the items they sent: one item, an album, or work finished after a
restart. Texts only, no Telegram calls, so every wording is easy to test and to translate.

Every item ends as an :class:`ItemResult`: from the pipeline's
:class:`~core.ingest.pipeline.IngestOutcome`, or refused before it reached the pipeline (quota, a
file we cannot use at all). Failures carry the error ``code`` of :mod:`core.errors`, mapped here to
a short phrase (album lists) and a full sentence (a single item).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from bot.i18n import catalog, t
from core.ingest.request import VIDEO_KINDS, IngestOutcome

Status = Literal["saved", "duplicate", "failed"]


def reason_key(code: str | None) -> str | None:
    """The text id of an error code's short phrase ("image_truncated" ->
    "reports-reason-image-truncated"; its full sentence adds "-sentence"), None if unknown."""
    key = f"reports-reason-{(code or '').replace('_', '-')}"
    return key if code and catalog.has(key) else None


def has_reason(code: str | None) -> bool:
    """Whether an error code has its own phrases (else users read the generic ones)."""
    return reason_key(code) is not None


def reason_text(code: str | None, lang: str, *, short: bool) -> str:
    """The user-facing phrase for an error code (codes are "image_truncated", "fetch", ...)."""
    key = reason_key(code) or "reports-reason-default"
    return t(key if short else f"{key}-sentence", lang)


@dataclass(frozen=True, slots=True)
class ItemResult:
    """How one item ended, as the user hears it."""

    status: Status
    kind: str = "photo"
    frames: int = 0
    near_duplicate: bool = False
    thumbnail_only: bool = False
    reason: str | None = None  # error code when failed
    media_id: int | None = None
    note: str | None = None  # the whole answer when this item is answered alone
    owner_id: int | None = None
    still: bool = False  # sent as a video, but its file was a still picture: kept as a photo

    @classmethod
    def from_outcome(cls, outcome: IngestOutcome) -> ItemResult:
        return cls(
            outcome.status,
            kind=outcome.request.kind,
            still=outcome.stored_as_picture,
            frames=len(outcome.unit_ids),
            near_duplicate=outcome.near_duplicate_of is not None,
            thumbnail_only=outcome.thumbnail_only,
            reason=outcome.reason,
            media_id=outcome.media_id,
            owner_id=outcome.request.owner_id,
        )

    @classmethod
    def refused(cls, reason: str, kind: str = "photo", *, note: str | None = None) -> ItemResult:
        """An item that never reached the pipeline; ``note`` replaces the generic answer."""
        return cls("failed", kind=kind, reason=reason, note=note)

    @property
    def is_video(self) -> bool:
        return self.kind in VIDEO_KINDS


def item_text(result: ItemResult, lang: str, *, is_video: bool | None = None) -> str:
    """The reply to one item (not part of an album). ``is_video`` says the message was sampled
    as a video; what was actually kept (:attr:`ItemResult.still`) decides the wording."""
    if result.note is not None:
        return result.note
    video = not result.still and (result.is_video if is_video is None else is_video)
    if result.status == "duplicate":
        return t("reports-duplicate", lang)
    if result.status == "failed":
        return t("reports-failed", lang, reason=reason_text(result.reason, lang, short=False))
    if result.thumbnail_only:
        text = t("reports-saved-thumbnail", lang)
    elif video:
        key = {"animation": "reports-saved-animation", "video_note": "reports-saved-video-note"}
        text = t(key.get(result.kind, "reports-saved-video"), lang, frames=result.frames)
    else:
        text = t("reports-saved-photo", lang)
    if result.near_duplicate:
        text += "\n" + t("reports-near-duplicate", lang)
    return text


def detail_lines(results: Iterable[ItemResult], lang: str, *, with_saved: bool) -> list[str]:
    """Bullet lines counting each way items ended (failures grouped by reason)."""
    items = list(results)
    saved = [r for r in items if r.status == "saved"]
    lines: list[str] = []
    if with_saved and saved:
        lines.append(t("reports-line-saved", lang, n=len(saved)))
    duplicates = sum(r.status == "duplicate" for r in items)
    if duplicates:
        lines.append(t("reports-line-duplicate", lang, n=duplicates))
    near = sum(r.near_duplicate for r in saved)
    if near:
        lines.append(t("reports-line-near", lang, n=near))
    thumbs = sum(r.thumbnail_only for r in saved)
    if thumbs:
        lines.append(t("reports-line-thumbnail", lang, n=thumbs))
    failures = Counter(
        reason_text(r.reason, lang, short=True) for r in items if r.status == "failed"
    )
    for reason, n in failures.items():
        lines.append(t("reports-line-failed", lang, reason=reason, n=n))
    return lines


def _footnotes(results: list[ItemResult], lang: str) -> list[str]:
    notes = []
    if any(r.status == "saved" and r.near_duplicate for r in results):
        notes.append(t("reports-near-duplicate", lang))
    too_large = any(
        (r.status == "saved" and r.thumbnail_only)
        or (r.status == "failed" and r.reason == "file_too_large")
        for r in results
    )
    if too_large:
        notes.append(t("reports-local-server-hint", lang))
    return notes


def _compose(head: str, results: list[ItemResult], lang: str) -> str:
    lines = [head, *detail_lines(results, lang, with_saved=False)]
    notes = _footnotes(results, lang)
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def album_text(results: list[ItemResult], total: int, lang: str, *, burst: bool = False) -> str:
    """The answer to an album (or, with ``burst``, to several items sent one by one): progress
    while items are pending, then the summary."""
    prefix = "batch" if burst else "album"
    done = len(results)
    if done < total:
        return t(f"reports-{prefix}-progress", lang, done=done, total=total)
    saved = sum(r.status == "saved" for r in results)
    if total and all(r.status == "duplicate" for r in results):
        return t(f"reports-{prefix}-all-duplicates", lang, total=total)
    if saved == total:
        head = t(f"reports-{prefix}-saved-all", lang, total=total)
    else:
        head = t(f"reports-{prefix}-saved-some", lang, saved=saved, total=total)
    return _compose(head, results, lang)


def resumed_text(results: list[ItemResult], lang: str) -> str:
    """Work finished after a restart, for items whose acknowledgement the old process owed."""
    total = len(results)
    saved = sum(r.status == "saved" for r in results)
    head = t("reports-resumed-header", lang, saved=saved, total=total)
    return _compose(head, results, lang)


def worth_saying(results: Iterable[ItemResult | None]) -> bool:
    """In a group chat only problems and half-successes get an answer (None: still running)."""
    return any(
        r is not None and (r.status == "failed" or r.near_duplicate or r.thumbnail_only)
        for r in results
    )
