"""Who answers which Telegram album when several front ends share the database.

Behind a load balancer the items of one album reach different replicas; the album still gets
ONE answer. A row per ``(owner, chat, album)`` (migration 0009) names the replica that answers
it (``holder``) until ``lease_until``, which the holder renews while it works. An item arriving
anywhere moves the album's last item time (its quiet time starts again), reopens a finished
album (a straggler: the holder edits the answer it sent) and takes the album over when its
lease ran out; so does :meth:`AlbumAnswers.take_over`, a sweep any replica runs. The album's
items are its jobs (:meth:`AlbumAnswers.jobs`: whichever replica submitted them), plus the
items refused before they became jobs, kept in the row.

Times here are unix milliseconds: an album's quiet time is a second or two.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from storage.dbapi import Backend, Conn, Row
from storage.records import Job
from storage.sql import JOB_SELECT, fetch_all, job_from_row

AlbumKey = tuple[int, int, str]  # owner id, chat id, album id (media_group_id)

_COLUMNS = (
    "owner_id, chat_id, album_id, holder, lease_until, message_id, last_item_ms, lang, quiet, "
    "refused, done"
)
_KEY = "owner_id = ? AND chat_id = ? AND album_id = ?"


@dataclass(frozen=True, slots=True)
class AlbumAnswer:
    """One album's row: who answers it and how far the answer got."""

    owner_id: int
    chat_id: int
    album_id: str
    holder: str
    lease_until: int  # unix ms
    message_id: int | None  # the answer sent so far, if any
    last_item_ms: int
    lang: str
    quiet: bool
    refused: dict[int, tuple[str, str]]  # message id -> (reason code, kind)
    done: bool

    @property
    def key(self) -> AlbumKey:
        return (self.owner_id, self.chat_id, self.album_id)


def _answer(r: Row) -> AlbumAnswer:
    refused = {int(k): (str(v[0]), str(v[1])) for k, v in json.loads(r[9]).items()}
    return AlbumAnswer(
        int(r[0]), int(r[1]), str(r[2]), str(r[3]), int(r[4]),
        None if r[5] is None else int(r[5]), int(r[6]), str(r[7]), bool(r[8]), refused,
        bool(r[10]),
    )  # fmt: skip


class AlbumAnswers:
    """The album rows of a shared database; ``clock`` gives unix seconds (tests move it)."""

    def __init__(self, conns: Backend, *, clock: Callable[[], float] = time.time) -> None:
        self._conns = conns
        self._clock = clock

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def arrive(
        self,
        key: AlbumKey,
        holder: str,
        *,
        lease_ms: int,
        lang: str,
        quiet: bool,
        refused: tuple[int, str, str] | None = None,
    ) -> AlbumAnswer:
        """An item of the album reached ``holder`` (after its job is durable): the album's
        quiet time starts again, a finished album opens again, and ``holder`` answers it when
        nobody does (no row, or the lease ran out). ``refused``: (message id, reason, kind) of
        an item that never became a job. Returns the row as it is now."""
        now = self.now_ms()
        async with self._conns.write() as conn:
            rows = await fetch_all(
                conn,
                f"""
                INSERT INTO album_answers (owner_id, chat_id, album_id, holder, lease_until,
                                           last_item_ms, lang, quiet, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (owner_id, chat_id, album_id) DO UPDATE SET
                    holder = CASE WHEN album_answers.lease_until < excluded.last_item_ms
                                  THEN excluded.holder ELSE album_answers.holder END,
                    lease_until = CASE WHEN album_answers.lease_until < excluded.last_item_ms
                                       THEN excluded.lease_until
                                       ELSE album_answers.lease_until END,
                    last_item_ms = CASE WHEN album_answers.last_item_ms > excluded.last_item_ms
                                        THEN album_answers.last_item_ms
                                        ELSE excluded.last_item_ms END,
                    done = 0
                RETURNING {_COLUMNS}
                """,
                (*key, holder, now + lease_ms, now, lang, int(quiet), now // 1000),
            )
            answer = _answer(rows[0])
            if refused is not None:
                answer = await _add_refused(conn, answer, refused)
        return answer

    async def get(self, key: AlbumKey) -> AlbumAnswer | None:
        async with self._conns.read() as conn:
            rows = await fetch_all(conn, f"SELECT {_COLUMNS} FROM album_answers WHERE {_KEY}", key)
        return _answer(rows[0]) if rows else None

    async def renew(self, key: AlbumKey, holder: str, *, lease_ms: int) -> AlbumAnswer | None:
        """Extend ``holder``'s lease; None when it no longer answers the album (taken over)."""
        async with self._conns.write() as conn:
            rows = await fetch_all(
                conn,
                f"UPDATE album_answers SET lease_until = ? WHERE {_KEY} AND holder = ? "
                f"RETURNING {_COLUMNS}",
                (self.now_ms() + lease_ms, *key, holder),
            )
        return _answer(rows[0]) if rows else None

    async def set_message(self, key: AlbumKey, holder: str, message_id: int) -> bool:
        """The answer's message id (a replica taking over edits it); False when not holder."""
        async with self._conns.write() as conn:
            cur = await conn.execute(
                f"UPDATE album_answers SET message_id = ? WHERE {_KEY} AND holder = ?",
                (message_id, *key, holder),
            )
        return cur.rowcount > 0

    async def finish(self, key: AlbumKey, holder: str, *, last_item_ms: int) -> bool:
        """The final summary is shown: done, lease released (a straggler's replica answers it
        next). False when an item arrived since ``last_item_ms`` or another replica holds it."""
        async with self._conns.write() as conn:
            cur = await conn.execute(
                f"UPDATE album_answers SET done = 1, lease_until = 0 "
                f"WHERE {_KEY} AND holder = ? AND last_item_ms = ?",
                (*key, holder, last_item_ms),
            )
        return cur.rowcount > 0

    async def take_over(self, holder: str, *, lease_ms: int, limit: int = 100) -> list[AlbumAnswer]:
        """The sweep: unfinished albums whose holder stopped renewing now belong to ``holder``."""
        now = self.now_ms()
        async with self._conns.write() as conn:
            rows = await fetch_all(
                conn,
                f"""
                UPDATE album_answers SET holder = ?, lease_until = ?
                WHERE done = 0 AND lease_until < ? AND (owner_id, chat_id, album_id) IN (
                    SELECT owner_id, chat_id, album_id FROM album_answers
                    WHERE done = 0 AND lease_until < ? ORDER BY lease_until LIMIT ?
                )
                RETURNING {_COLUMNS}
                """,
                (holder, now + lease_ms, now, now, limit),
            )
        return [_answer(r) for r in rows]

    async def release(self, holder: str) -> int:
        """Shutdown: ``holder``'s unfinished albums may be taken over at once."""
        async with self._conns.write() as conn:
            cur = await conn.execute(
                "UPDATE album_answers SET lease_until = 0 WHERE holder = ? AND done = 0",
                (holder,),
            )
        return max(cur.rowcount, 0)

    async def jobs(self, owner_id: int, album_id: str) -> list[Job]:
        """The album's ingest jobs, whichever replica submitted them, oldest first."""
        if self._conns.dialect == "postgresql":
            match = "CAST(payload AS jsonb) ->> 'album_id' = ?"
        else:
            match = "json_extract(payload, '$.album_id') = ?"
        async with self._conns.read() as conn:
            rows = await conn.execute_fetchall(
                f"{JOB_SELECT} WHERE owner_id = ? AND {match} ORDER BY id", (owner_id, album_id)
            )
        return [job_from_row(r) for r in rows]

    async def purge(self, *, quiet_for_s: float) -> int:
        """Forget finished albums whose last item is older than ``quiet_for_s`` (a straggler
        after that gets an answer of its own)."""
        cutoff = self.now_ms() - int(quiet_for_s * 1000)
        async with self._conns.write() as conn:
            cur = await conn.execute(
                "DELETE FROM album_answers WHERE done = 1 AND last_item_ms < ?", (cutoff,)
            )
        return max(cur.rowcount, 0)


async def _add_refused(conn: Conn, answer: AlbumAnswer, item: tuple[int, str, str]) -> AlbumAnswer:
    """Record a refused item inside the caller's transaction (the upsert locked the row)."""
    message_id, reason, kind = item
    refused = {**answer.refused, message_id: (reason, kind)}
    encoded = json.dumps({str(k): list(v) for k, v in sorted(refused.items())})
    await conn.execute(f"UPDATE album_answers SET refused = ? WHERE {_KEY}", (encoded, *answer.key))
    return replace(answer, refused=refused)
