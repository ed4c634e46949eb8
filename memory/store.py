"""The structured store: users, sessions and turns (with their traces) in SQLite.

Exceptions: `StoreError` (base) > `InvalidUserIdError`, `UnknownSessionError`, `UnknownTurnError`.
Writes are idempotent upserts keyed by id, so a graph node that re-runs after a crash writes the
same row again instead of a second one. Front ends read and write through these methods, never
with SQL of their own.
Search by words is SQLite FTS5 (`memory.search`).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database
from sqlite_utils.db import NotFoundError

from memory.clock import SYSTEM_CLOCK, Clock, stamp
from memory.database import transaction
from memory.errors import MemoryLayerError
from memory.search import TurnHit, search_turns
from memory.trace import TraceError, TurnTrace

USER_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
TITLE_MAX = 80


class StoreError(MemoryLayerError):
    """Base class for store errors."""


class InvalidUserIdError(StoreError, ValueError):
    """A user name that cannot be used as an id."""


class UnknownSessionError(StoreError, LookupError):
    """No such session for this user."""


class UnknownTurnError(StoreError, LookupError):
    """No such turn."""


def now(clock: Clock = SYSTEM_CLOCK) -> str:
    """Return the clock's current UTC time as ISO-8601 (the wall clock by default)."""
    return stamp(clock)


def new_id() -> str:
    """Return a new random id."""
    return uuid.uuid4().hex[:16]


def check_user_id(user_id: str) -> str:
    """Return the user id if valid, else raise with what is allowed."""
    if not USER_ID_PATTERN.match(user_id):
        raise InvalidUserIdError(
            f"Invalid user name {user_id!r}: use 1-64 letters, digits, '_', '.', '@' or '-', "
            "starting with a letter or digit."
        )
    return user_id


@dataclass(frozen=True)
class Turn:
    id: str
    session_id: str
    user_id: str
    idx: int
    user_text: str
    reply: str | None
    status: str
    crisis: bool
    error: str | None
    trace: TurnTrace
    created_at: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Turn:
        return cls(
            id=row["id"],
            session_id=row["session_id"],
            user_id=row["user_id"],
            idx=row["idx"],
            user_text=row["user_text"],
            reply=row["reply"],
            status=row["status"],
            crisis=bool(row["crisis"]),
            error=row["error"],
            trace=TurnTrace.load(row["trace"]),
            created_at=row["created_at"],
        )


@dataclass(frozen=True)
class SessionSummary:
    """A session as a list shows it: its title, when it was last active and what it holds."""

    id: str
    title: str
    created_at: str
    updated_at: str
    turns: int
    first_text: str


SESSIONS_SQL = """
select s.id, coalesce(s.title, ''), coalesce(s.created_at, ''), coalesce(s.updated_at, ''),
  (select count(*) from turns t where t.session_id = s.id and t.user_id = s.user_id),
  coalesce((select t.user_text from turns t where t.session_id = s.id and t.user_id = s.user_id
            order by t.idx limit 1), '')
from sessions s where s.user_id = ? {extra} order by s.updated_at desc, s.rowid desc
"""


def summary(row: tuple[Any, ...]) -> SessionSummary:
    """Return a row of `SESSIONS_SQL` as a `SessionSummary`."""
    return SessionSummary(
        id=row[0], title=row[1], created_at=row[2], updated_at=row[3], turns=int(row[4]),
        first_text=row[5],
    )  # fmt: skip


class ConversationStore:
    """Users, sessions and turns; every query is scoped by user id."""

    def __init__(self, db: Database, clock: Clock = SYSTEM_CLOCK) -> None:
        self.db = db
        self.clock = clock

    def ensure_user(self, user_id: str) -> str:
        check_user_id(user_id)
        self.db.table("users").insert(
            {"id": user_id, "created_at": now(self.clock), "display_name": user_id}, ignore=True
        )
        return user_id

    def new_session(self, user_id: str, title: str = "", session_id: str | None = None) -> str:
        """Start a session and return its id. With `session_id` (a caller's stable id, e.g. an
        ingested history's) it is idempotent: a session of this user with that id is returned
        as it is; one of another user's raises `StoreError`."""
        self.ensure_user(user_id)
        at = now(self.clock)
        row = {"id": session_id or new_id(), "user_id": user_id, "title": title,
               "created_at": at, "updated_at": at}  # fmt: skip
        self.db.table("sessions").insert(row, ignore=session_id is not None)
        if session_id is not None:
            owner = self.db.execute(
                "select user_id from sessions where id = ?", [session_id]
            ).fetchone()[0]
            if owner != user_id:
                raise StoreError(
                    f"Session id {session_id!r} belongs to another user; use another id."
                )
        return str(row["id"])

    def latest_session(self, user_id: str) -> str | None:
        rows = self.db.table("sessions").rows_where(
            "user_id = ?", [user_id], order_by="updated_at desc", limit=1
        )
        return next((row["id"] for row in rows), None)

    def check_session(self, user_id: str, session_id: str) -> str:
        try:
            row = self.db.table("sessions").get(session_id)
        except NotFoundError:
            row = None
        if row is None or row["user_id"] != user_id:
            raise UnknownSessionError(
                f"No session {session_id!r} for user {user_id!r}: "
                "omit --session to start a new one."
            )
        return session_id

    def users(self) -> list[str]:
        """Return the ids of every stored user, most recently active first."""
        rows = self.db.execute(
            "select u.id from users u left join sessions s on s.user_id = u.id "
            "group by u.id order by max(coalesce(s.updated_at, u.created_at)) desc, u.id"
        ).fetchall()
        return [str(row[0]) for row in rows]

    def sessions(self, user_id: str) -> list[SessionSummary]:
        """Return the user's sessions, last active first, with turn counts and first messages."""
        rows = self.db.execute(SESSIONS_SQL.format(extra=""), [user_id]).fetchall()
        return [summary(row) for row in rows]

    def session(self, user_id: str, session_id: str) -> SessionSummary:
        """Return one of the user's sessions; raise `UnknownSessionError` if it is not theirs."""
        sql = SESSIONS_SQL.format(extra="and s.id = ?")
        row = self.db.execute(sql, [user_id, session_id]).fetchone()
        if row is None:
            raise UnknownSessionError(f"No session {session_id!r} for user {user_id!r}.")
        return summary(row)

    def rename_session(self, user_id: str, session_id: str, title: str) -> str:
        """Set the title of one of the user's sessions (spaces squeezed, at most `TITLE_MAX`
        characters); return the title stored. Raise `UnknownSessionError` if it is not theirs."""
        title = " ".join(title.split())[:TITLE_MAX]
        cursor = self.db.execute(
            "update sessions set title = ? where id = ? and user_id = ?",
            [title, session_id, user_id],
        )
        if cursor.rowcount != 1:
            raise UnknownSessionError(
                f"No session {session_id!r} for user {user_id!r}: nothing was renamed."
            )
        return title

    def begin_turn(self, turn_id: str, user_id: str, session_id: str, text: str) -> Turn:
        """Persist the user's message as a pending turn (idempotent for the same turn id)."""
        existing = self.get_turn(turn_id)
        if existing is not None:
            return existing
        with transaction(self.db):
            idx = self.next_index(session_id)
            self.db.table("turns").insert(
                {
                    "id": turn_id,
                    "session_id": session_id,
                    "user_id": user_id,
                    "idx": idx,
                    "user_text": text,
                    "reply": None,
                    "status": "pending",
                    "crisis": 0,
                    "error": None,
                    "trace": None,
                    "created_at": now(self.clock),
                    "completed_at": None,
                }
            )
            self.db.table("sessions").update(session_id, {"updated_at": now(self.clock)})
        turn = self.get_turn(turn_id)
        assert turn is not None
        return turn

    def complete_turn(self, turn_id: str, reply: str, trace: TurnTrace, crisis: bool) -> None:
        """Store the reply and its trace; the turn becomes done."""
        self._update(
            turn_id,
            {
                "reply": reply,
                "trace": trace.dump(),
                "crisis": int(crisis),
                "status": "done",
                "error": None,
                "completed_at": now(self.clock),
            },
        )

    def fail_turn(self, turn_id: str, error: str) -> None:
        """Mark a turn failed; the user's message stays stored."""
        self._update(turn_id, {"status": "failed", "error": error, "completed_at": now(self.clock)})

    def get_turn(self, turn_id: str) -> Turn | None:
        try:
            return Turn.from_row(self.db.table("turns").get(turn_id))
        except NotFoundError:
            return None

    def turns(self, user_id: str, session_id: str | None = None) -> list[Turn]:
        where, args = "user_id = ?", [user_id]
        if session_id is not None:
            where, args = where + " and session_id = ?", [user_id, session_id]
        rows = self.db.table("turns").rows_where(where, args, order_by="created_at, idx")
        return [Turn.from_row(row) for row in rows]

    def recent_turns(self, user_id: str, limit: int) -> list[Turn]:
        """The user's last `limit` finished, non-crisis turns, oldest first."""
        rows = self.db.table("turns").rows_where(
            "user_id = ? and status = 'done' and not crisis", [user_id],
            order_by="created_at desc, idx desc", limit=limit,
        )  # fmt: skip
        return [Turn.from_row(row) for row in rows][::-1]

    def pending_turns(self, user_id: str) -> list[Turn]:
        rows = self.db.table("turns").rows_where(
            "user_id = ? and status = 'pending'", [user_id], order_by="created_at"
        )
        return [Turn.from_row(row) for row in rows]

    def search_turns(self, user_id: str, query: str, limit: int = 30) -> list[TurnHit]:
        """Return the user's turns that have every word of `query` (see `memory.search`)."""
        return search_turns(self.db, user_id, query, limit)

    def history(
        self, user_id: str, session_id: str, limit: int, before_idx: int
    ) -> list[tuple[str, str]]:
        """Return the session's finished exchanges before a turn, (role, text), oldest first:
        at most the last `limit` turns, from a start that moves in steps of `limit // 2`.

        The window does not slide one turn at a time: it keeps its start for several turns, so
        the prompt the history begins is the same from one turn to the next and the model's
        cache of it stays valid (it shows between `limit - step + 1` and `limit` turns)."""
        step = max(1, limit // 2)
        start = -(-max(0, before_idx - limit) // step) * step  # rounded up to a step
        rows = list(
            self.db.table("turns").rows_where(
                "user_id = ? and session_id = ? and idx >= ? and idx < ? and status = 'done'",
                [user_id, session_id, start, before_idx],
                order_by="idx",
            )
        ) if limit > 0 else []  # fmt: skip
        pairs: list[tuple[str, str]] = []
        for row in rows:
            pairs += [("user", row["user_text"]), ("assistant", row["reply"] or "")]
        return pairs

    def next_index(self, session_id: str) -> int:
        """The index the session's next turn will get."""
        row = self.db.execute(
            "select coalesce(max(idx), -1) + 1 from turns where session_id = ?", [session_id]
        ).fetchone()
        return int(row[0])

    def _update(self, turn_id: str, values: dict[str, Any]) -> None:
        try:
            self.db.table("turns").update(turn_id, values)
        except NotFoundError as exc:
            raise UnknownTurnError(f"No turn {turn_id!r}.") from exc


def scrub_traces(db: Database, user_id: str, ids: set[str]) -> None:
    """Remove forgotten memories' words from the traces of the user's stored turns (inside the
    caller's transaction). A trace too damaged to scrub is replaced whole if it names one."""
    rows = db.execute(
        "select id, trace from turns where user_id = ? and trace is not null", [user_id]
    ).fetchall()
    for turn_id, raw in rows:
        try:
            trace = TurnTrace.parse(raw)
        except TraceError as exc:
            if not any(memory_id in raw for memory_id in ids):
                continue
            trace = TurnTrace(degraded=[f"{exc}; removed when a memory was forgotten"])
        else:
            if not any(m.id in ids for m in trace.memories_used):
                continue
            trace = trace.without_memories(ids)
        db.execute("update turns set trace = ? where id = ?", [trace.dump(), turn_id])
