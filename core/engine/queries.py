"""Searching as the front ends see it: answer a :class:`~core.search.query.Query` for an
owner, and keep what a chat front end needs to page through results later (stored search
sessions, and which message showed which item).

Result records live in storage (:class:`~storage.results.ResultStore`) so buttons and replies
keep working after a restart; the front end gets them from here instead of building storage
objects itself.
"""

from __future__ import annotations

from core.search.query import Query
from core.search.results import SearchResult
from core.search.service import SearchService
from storage import Database
from storage.results import ResultStore


class Queries:
    """Search and result bookkeeping, scoped per owner."""

    def __init__(self, db: Database, search: SearchService) -> None:
        self._db = db
        self._search = search

    async def search(self, owner_id: int, query: Query) -> SearchResult:
        """Answer ``query`` (text, photo, similar-to-item, exclusions); raises what
        :meth:`SearchService.search` raises (empty query, unknown item, bad photo)."""
        return await self._search.search(owner_id, query)

    def results(self, owner_id: int) -> ResultStore:
        """The owner's stored search sessions and sent-result records."""
        return ResultStore(self._db, owner_id)
