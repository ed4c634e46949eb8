"""The structured store: users, sessions and turns (with their traces) in SQLite.

Exceptions: `StoreError` (base) > `UnknownUserError`, `UnknownSessionError`, `UnknownTurnError`.
Writes are idempotent upserts keyed by id, so a graph node that re-runs after a crash writes the
same row again instead of a second one.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.db import NotFoundError

from memory.clock import SYSTEM_CLOCK, Clock, stamp
from memory.migrations import migrate

USER_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class StoreError(Exception):
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


def secure_dir(path: Path) -> Path:
    """Create a private (0700) directory."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def open_database(path: Path | str) -> Database:
    """Open (creating and migrating) the SQLite database at `path`, private and in WAL mode."""
    if str(path) == ":memory:":
        db = Database(memory=True)
    else:
        path = Path(path)
        secure_dir(path.parent)
        path.touch(mode=0o600, exist_ok=True)
        os.chmod(path, 0o600)
        db = Database(sqlite3.connect(str(path), check_same_thread=False))
        db.enable_wal()
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA secure_delete = ON")  # deleted text is overwritten, not left in free pages
    migrate(db)
    return db


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
    trace: dict[str, Any]
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
            trace=json.loads(row["trace"]) if row["trace"] else {},
            created_at=row["created_at"],
        )


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

    def new_session(self, user_id: str, title: str = "") -> str:
        self.ensure_user(user_id)
        session_id = new_id()
        at = now(self.clock)
        self.db.table("sessions").insert(
            {
                "id": session_id,
                "user_id": user_id,
                "title": title,
                "created_at": at,
                "updated_at": at,
            }
        )
        return session_id

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

    def sessions(self, user_id: str) -> list[dict[str, Any]]:
        return list(
            self.db.table("sessions").rows_where(
                "user_id = ?", [user_id], order_by="updated_at desc"
            )
        )

    def begin_turn(self, turn_id: str, user_id: str, session_id: str, text: str) -> Turn:
        """Persist the user's message as a pending turn (idempotent for the same turn id)."""
        existing = self.get_turn(turn_id)
        if existing is not None:
            return existing
        with self.db.conn:
            idx = self._next_index(session_id)
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

    def complete_turn(self, turn_id: str, reply: str, trace: dict[str, Any], crisis: bool) -> None:
        """Store the reply and its trace; the turn becomes done."""
        self._update(
            turn_id,
            {
                "reply": reply,
                "trace": json.dumps(trace, default=str),
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

    def pending_turns(self, user_id: str) -> list[Turn]:
        rows = self.db.table("turns").rows_where(
            "user_id = ? and status = 'pending'", [user_id], order_by="created_at"
        )
        return [Turn.from_row(row) for row in rows]

    def history(
        self, user_id: str, session_id: str, limit: int, before_idx: int
    ) -> list[tuple[str, str]]:
        """Return the last `limit` finished exchanges before a turn, (role, text), oldest first."""
        rows = list(
            self.db.table("turns").rows_where(
                "user_id = ? and session_id = ? and idx < ? and status = 'done'",
                [user_id, session_id, before_idx],
                order_by="idx desc",
                limit=limit,
            )
        )
        pairs: list[tuple[str, str]] = []
        for row in reversed(rows):
            pairs += [("user", row["user_text"]), ("assistant", row["reply"] or "")]
        return pairs

    def _next_index(self, session_id: str) -> int:
        row = self.db.execute(
            "select coalesce(max(idx), -1) + 1 from turns where session_id = ?", [session_id]
        ).fetchone()
        return int(row[0])

    def _update(self, turn_id: str, values: dict[str, Any]) -> None:
        try:
            self.db.table("turns").update(turn_id, values)
        except NotFoundError as exc:
            raise UnknownTurnError(f"No turn {turn_id!r}.") from exc
