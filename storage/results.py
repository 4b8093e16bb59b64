"""What the bot answered: result messages and search sessions, behind one owner-scoped object.

Get it with ``ResultStore(db, owner_id)``. As in :class:`~storage.repositories.OwnerStore`,
every statement is scoped by the owner id: a message id or a session id of another owner
matches nothing, so ids taken from replies or callback data can never reach someone else's
items. The tables are created by ``migrations/0003_result_messages.sql``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from storage.records import Media
from storage.sql import MEDIA_SELECT, fetch_all

if TYPE_CHECKING:
    from storage.db import Database

SessionKind = Literal["text", "photo", "item"]
SESSION_KINDS: tuple[str, ...] = ("text", "photo", "item")

# Buttons older than this say "expired" instead of paging: the query is kept no longer than that.
# The housekeeping purge (storage/housekeeping.py) uses the same ages, so there is one policy.
SESSION_TTL_S = 30 * 24 * 3600
# A reply to a result older than this still works through the file's unique id (see the bot).
RESULT_TTL_S = SESSION_TTL_S
# Session ids are random below 2**53 (16 digits in callback data, exact in JSON and SQLite).
_SESSION_ID_BITS = 53


@dataclass(frozen=True, slots=True)
class ResultMessage:
    """A message the bot sent that shows one item of the owner."""

    chat_id: int
    message_id: int
    media_id: int
    unit_id: int | None  # the matching photo or video frame, when the search said which
    created_at: int


@dataclass(frozen=True, slots=True)
class SearchSession:
    """One search answered with buttons: enough to run it again for another page."""

    id: int
    owner_id: int
    kind: SessionKind
    text: str | None  # what the user typed (exclusions included); a caption or /similar args
    file_id: str | None  # kind "photo": the query photo, fetched again for the next page
    media_id: int | None  # kind "item": the item searched from
    unit_id: int | None  # kind "item": its photo or frame, when known
    created_at: int


class ResultStore:
    """Result messages and search sessions of one owner (see the module docstring)."""

    def __init__(self, db: Database, owner_id: int) -> None:
        self._db = db
        self.owner_id = int(owner_id)

    def __repr__(self) -> str:
        return f"ResultStore(owner_id={self.owner_id})"

    # --- result messages ------------------------------------------------------------------------

    async def record(self, chat_id: int, messages: Iterable[tuple[int, int, int | None]]) -> int:
        """Remember ``(message_id, media_id, unit_id)`` rows sent to ``chat_id``; rows for items
        that are not (or no longer) the owner's are skipped. Returns how many were stored.

        Rows older than :data:`RESULT_TTL_S` are dropped on the way, so the table stays small.
        """
        rows = [(int(m), int(media), None if u is None else int(u)) for m, media, u in messages]
        if not rows:
            return 0
        now = self._db.now()
        stored = 0
        async with self._db.write() as conn:
            await conn.execute(
                "DELETE FROM result_messages WHERE owner_id = ? AND created_at < ?",
                (self.owner_id, now - RESULT_TTL_S),
            )
            for message_id, media_id, unit_id in rows:
                # INSERT ... SELECT: an item deleted meanwhile (or never the owner's) is skipped
                # instead of failing the foreign key.
                cur = await conn.execute(
                    """
                    INSERT INTO result_messages
                        (owner_id, chat_id, message_id, media_id, unit_id, created_at)
                    SELECT ?, ?, ?, id, ?, ? FROM media WHERE owner_id = ? AND id = ?
                    ON CONFLICT (owner_id, chat_id, message_id) DO UPDATE SET
                        media_id = excluded.media_id, unit_id = excluded.unit_id,
                        created_at = excluded.created_at
                    """,
                    (
                        self.owner_id,
                        int(chat_id),
                        message_id,
                        unit_id,
                        now,
                        self.owner_id,
                        media_id,
                    ),
                )
                stored += max(cur.rowcount, 0)
        return stored

    async def result(self, chat_id: int, message_id: int) -> ResultMessage | None:
        """The item a result message in this chat shows, if it is still the owner's."""
        async with self._db.read() as conn:
            rows = await fetch_all(
                conn,
                """
                SELECT chat_id, message_id, media_id, unit_id, created_at FROM result_messages
                WHERE owner_id = ? AND chat_id = ? AND message_id = ?
                """,
                (self.owner_id, int(chat_id), int(message_id)),
            )
        return ResultMessage(*rows[0]) if rows else None

    async def media_by_message(self, message_id: int) -> Media | None:
        """The owner's item saved from their message ``message_id`` (in the owner's chat)."""
        async with self._db.read() as conn:
            rows = await fetch_all(
                conn,
                f"{MEDIA_SELECT} WHERE m.owner_id = ? AND m.message_id = ? ORDER BY m.id LIMIT 1",
                (self.owner_id, int(message_id)),
            )
        return Media(*rows[0]) if rows else None

    # --- search sessions ------------------------------------------------------------------------

    async def create_session(
        self,
        kind: SessionKind,
        *,
        text: str | None = None,
        file_id: str | None = None,
        media_id: int | None = None,
        unit_id: int | None = None,
    ) -> SearchSession:
        """Store a search for its buttons; sessions older than :data:`SESSION_TTL_S` go."""
        if kind not in SESSION_KINDS:
            raise ValueError(f"unknown session kind {kind!r}; expected one of {SESSION_KINDS}")
        now = self._db.now()
        async with self._db.write() as conn:
            await conn.execute(
                "DELETE FROM search_sessions WHERE owner_id = ? AND created_at < ?",
                (self.owner_id, now - SESSION_TTL_S),
            )
            for _ in range(8):
                session_id = secrets.randbits(_SESSION_ID_BITS) or 1
                # A random id drawn twice inserts nothing and is drawn again. Only the id's
                # conflict is skipped: a CHECK or the owner's foreign key still raises (the
                # caller's mistake). No exception to catch, because on PostgreSQL a failed
                # statement would abort the whole transaction.
                rows = await conn.execute_fetchall(
                    """
                    INSERT INTO search_sessions
                        (id, owner_id, kind, text, file_id, media_id, unit_id, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO NOTHING
                    RETURNING id
                    """,
                    (session_id, self.owner_id, kind, text, file_id, media_id, unit_id, now),
                )
                if rows:
                    break
            else:  # pragma: no cover - 8 collisions in 2**53 ids
                raise RuntimeError("could not allocate a search session id")
        return SearchSession(session_id, self.owner_id, kind, text, file_id, media_id, unit_id, now)

    async def session(self, session_id: int) -> SearchSession | None:
        """The owner's session, or None (unknown, expired, or another owner's)."""
        async with self._db.read() as conn:
            rows = await fetch_all(
                conn,
                """
                SELECT id, owner_id, kind, text, file_id, media_id, unit_id, created_at
                FROM search_sessions WHERE owner_id = ? AND id = ? AND created_at >= ?
                """,
                (self.owner_id, int(session_id), self._db.now() - SESSION_TTL_S),
            )
        return SearchSession(*rows[0]) if rows else None
