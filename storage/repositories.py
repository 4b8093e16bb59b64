"""Everything one owner has, behind one object whose every query is scoped by that owner's id.

Get it with ``db.owner(owner_id)``; each concern is a small repository on it::

    store = db.owner(owner_id)
    await store.media.commit(NewMedia(...), [NewUnit.image()], {"clip@1": vectors})
    await store.vectors.snapshot("clip@1")
    await store.jobs.enqueue({...})

There is deliberately no method that takes a bare media, unit or job id without this owner: ids
of another owner simply match nothing (reads return nothing, deletes delete nothing, writes
raise). Every repository is built here from the same owner id, so one user's data is never
reachable through another user's object.
"""

from __future__ import annotations

from storage.active_models import ActiveModels
from storage.dbapi import Backend
from storage.local_files import LocalFiles
from storage.media_filters import OwnerMediaFilters
from storage.model_rows import vector_counts
from storage.near_duplicates import OwnerNearDuplicates
from storage.owner_jobs import OwnerJobs, job_counts
from storage.owner_media import OwnerMedia
from storage.owner_profile import OwnerProfile
from storage.owner_texts import OwnerTexts
from storage.owner_units import OwnerUnits
from storage.owner_vectors import OwnerVectors
from storage.records import OwnerStats
from storage.sql import fetch_all, scalar


class OwnerStore:
    """The repositories of one owner (see the module docstring):

    - ``profile``: the owner row, settings, forgetting the owner;
    - ``media``: items (commit, look up, page, delete, video seconds);
    - ``units``: the embeddable units search hits name;
    - ``vectors``: vectors per model and their index versions;
    - ``models``: which model answers in each slot;
    - ``jobs``: the owner's ingest jobs;
    - ``local_files``: indexed local paths (folder CLI);
    - ``texts``: the text index (captions, file names, origins, OCR) and its word search;
    - ``near_duplicates``: pairs of items that look alike, for /duplicates.
    - ``filters``: which items a search's date / kind / source filters allow, by date.
    """

    def __init__(
        self, conns: Backend, owner_id: int, *, max_attempts: int, worker: str | None = None
    ) -> None:
        self._conns = conns
        self.owner_id = int(owner_id)
        self.profile = OwnerProfile(conns, self.owner_id)
        self.media = OwnerMedia(conns, self.owner_id, worker=worker)
        self.units = OwnerUnits(conns, self.owner_id)
        self.vectors = OwnerVectors(conns, self.owner_id)
        self.models = ActiveModels(conns, self.owner_id)
        self.jobs = OwnerJobs(conns, self.owner_id, max_attempts=max_attempts, worker=worker)
        self.local_files = LocalFiles(conns, self.owner_id)
        self.near_duplicates = OwnerNearDuplicates(conns, self.owner_id)
        self.texts = OwnerTexts(conns, self.owner_id)
        self.filters = OwnerMediaFilters(conns, self.owner_id)

    def __repr__(self) -> str:
        return f"OwnerStore(owner_id={self.owner_id})"

    async def stats(self) -> OwnerStats:
        """Counts across every concern, read in one transaction so they agree."""
        async with self._conns.read(snapshot=True) as conn:
            by_kind = await fetch_all(
                conn,
                "SELECT kind, count(*) FROM media WHERE owner_id = ? GROUP BY kind",
                (self.owner_id,),
            )
            thumbs = await scalar(
                conn,
                "SELECT count(*) FROM media WHERE owner_id = ? AND status = 'thumbnail'",
                self.owner_id,
            )
            units = await scalar(
                conn, "SELECT count(*) FROM units WHERE owner_id = ?", self.owner_id
            )
            vectors = await vector_counts(conn, self.owner_id)
            jobs = await job_counts(conn, self.owner_id)
        return OwnerStats(dict(by_kind), thumbs, units, vectors, jobs)
