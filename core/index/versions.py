"""Which storage versions an index reflects: the freshness half of the version contract.

Version contract with storage (what makes a cached index trustworthy):

* every transaction that changes the vectors of (owner, model) bumps its ``index_version`` by
  exactly one, and the caller passes that new version to :meth:`IndexManager.add` /
  :meth:`IndexManager.remove` after the commit;
* an operation whose version the index already reflects is skipped (the index may have been
  rebuilt from SQLite after the commit), out-of-order operations are applied and the version
  advances only over a contiguous run, so a file never claims a version it does not fully
  reflect;
* on a shared database other processes bump versions too: an index behind storage (seen
  before a search, or as a gap before a local operation) is caught up from a snapshot and then
  reflects exactly that snapshot's version (see :mod:`core.index.loading`).
"""

from __future__ import annotations

from collections.abc import Iterable

# Out-of-order operations waiting for a gap to fill; past this the version contract is broken
# (e.g. bumps of more than one) and the index is rebuilt from SQLite.
MAX_AHEAD = 64


class VersionTracker:
    """The contiguous version reflected, versions applied ahead of it, and the window
    ``(version, uncertain_upto]`` whose operations may already be in the index.

    That window exists when a commit slipped between reading the vectors and reading the
    version during a rebuild; operations in it are applied idempotently. Not thread-safe: the
    owning index holds its lock around every call.
    """

    def __init__(
        self, version: int, *, ahead: Iterable[int] = (), uncertain_upto: int | None = None
    ) -> None:
        self.version = int(version)
        self._ahead: set[int] = {int(v) for v in ahead}
        self.uncertain_upto = self.version if uncertain_upto is None else int(uncertain_upto)

    @property
    def ahead(self) -> frozenset[int]:
        """Versions applied out of order, waiting for an earlier one."""
        return frozenset(self._ahead)

    @property
    def broken(self) -> bool:
        """Too many versions wait for a gap: the contract was broken, rebuild from storage."""
        return len(self._ahead) > MAX_AHEAD

    def copy(self) -> VersionTracker:
        return VersionTracker(self.version, ahead=self._ahead, uncertain_upto=self.uncertain_upto)

    def accept(self, version: int | None) -> tuple[bool, bool]:
        """(apply?, deduplicate first?) for an operation carrying ``version``."""
        if version is None:
            return True, False
        if version <= self.version or version in self._ahead:
            return False, False
        return True, version <= self.uncertain_upto

    def advance(self, version: int | None) -> None:
        """Record ``version`` as applied; move the contiguous version over any closed gap."""
        if version is None:
            return
        self._ahead.add(version)
        while self.version + 1 in self._ahead:
            self.version += 1
            self._ahead.discard(self.version)
