"""One transaction against another, on a connection each (issue 8), and the contrast: the one
shared connection every thread used before. A writes, B writes while A's transaction is open,
then A rolls back; what survives says whether the two shared a transaction. The stress test of
the whole app at once is in `test_concurrency.py`.
"""

from __future__ import annotations

import sqlite3
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from memory.database import open_database, transaction
from memory.store import ConversationStore
from tests.test_concurrency import run_together


@dataclass
class Steps:
    """A writes, B writes while A's transaction is open, then A rolls back."""

    a_wrote: threading.Event = field(default_factory=threading.Event)
    b_writing: threading.Event = field(default_factory=threading.Event)
    b_done: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)


class Rollback(Exception):
    """Thread A gives up its transaction."""


Write = Callable[[Database, str], None]


def interleave(db: Database, a_write: Write, b_commit: Callable[[Database], Any], wait: str) -> set:
    """Run A and B on `db`; return the probe rows that survived.

    A waits until B has begun (`"b_writing"`: with a connection each, B then waits for A's
    write lock) or has committed (`"b_done"`: only possible on a shared connection)."""
    steps = Steps()

    def thread_a() -> None:
        try:
            with transaction(db):
                a_write(db, "a1")
                steps.a_wrote.set()
                assert getattr(steps, wait).wait(30), f"B never reached {wait}"
                a_write(db, "a2")
                raise Rollback
        except Rollback:
            pass
        except BaseException:
            steps.errors.append(traceback.format_exc())

    def thread_b() -> None:
        try:
            assert steps.a_wrote.wait(30), "A never wrote"
            db.conn.set_trace_callback(
                lambda sql: steps.b_writing.set() if sql.upper().startswith("BEGIN") else None
            )
            with b_commit(db):
                db.table("probe").insert({"id": "b1"})
                db.execute("insert into probe (id) values ('b2')")
            steps.b_done.set()
        except BaseException:
            steps.errors.append(traceback.format_exc())
        finally:
            db.conn.set_trace_callback(None)

    run_together(thread_a, thread_b, timeout=60)
    assert steps.errors == [], "\n".join(steps.errors)
    return {row["id"] for row in db.query("select id from probe")}


def raw_insert(db: Database, key: str) -> None:
    db.conn.execute("insert into probe (id) values (?)", [key])


def table_insert(db: Database, key: str) -> None:
    db.table("probe").insert({"id": key})


def execute_insert(db: Database, key: str) -> None:
    db.execute("insert into probe (id) values (?)", [key])


def table_upsert_and_update(db: Database, key: str) -> None:
    db.table("probe").upsert({"id": key}, pk="id")
    db.table("probe").update(key, {"id": key})


def probe_database(path: Path) -> Database:
    db = open_database(path)
    db.table("probe").create({"id": str}, pk="id")
    return db


@pytest.mark.parametrize(
    "a_write", [raw_insert, table_insert, execute_insert, table_upsert_and_update]
)
def test_a_rollback_takes_only_its_own_threads_rows(tmp_path, a_write):
    db = probe_database(tmp_path / "empathos.db")
    assert interleave(db, a_write, transaction, "b_writing") == {"b1", "b2"}


def shared_connection(path: Path) -> Database:
    """The one connection every thread used before issue 8."""
    return Database(sqlite3.connect(path, check_same_thread=False))


def test_on_a_shared_connection_a_rollback_takes_another_threads_committed_rows(tmp_path):
    """The contrast: B's transaction is only a savepoint inside A's, so A's rollback removes
    the rows B was told were committed."""
    probe_database(tmp_path / "empathos.db")
    db = shared_connection(tmp_path / "empathos.db")
    assert interleave(db, table_insert, transaction, "b_done") == set()


def test_on_a_shared_connection_a_commit_takes_another_threads_rows_along(tmp_path):
    """The contrast as the code was (`with db.conn:`): B's commit commits A's first row, and
    A's rollback then removes only its second. A is half-committed."""
    probe_database(tmp_path / "empathos.db")
    db = shared_connection(tmp_path / "empathos.db")
    assert interleave(db, raw_insert, lambda db: db.conn, "b_done") == {"a1", "b1", "b2"}


def test_a_turn_waits_for_another_connections_write(settings):
    """B begins a turn while A holds the write lock: B waits for A's commit instead of failing
    at once with "database is locked" (as it did while FTS5 triggers sat on `turns`)."""
    store = ConversationStore(open_database(settings.db_path))
    session = store.new_session("ana")
    a_holds, b_finished, errors = threading.Event(), threading.Event(), []

    def thread_a() -> None:
        with transaction(store.db):
            store.db.execute("update users set display_name = 'Ana' where id = 'ana'")
            a_holds.set()
            b_finished.wait(2)  # B fails at once, or waits for this commit

    def thread_b() -> None:
        a_holds.wait(30)
        try:
            store.begin_turn("t1", "ana", session, "I love running in the park.")
        except sqlite3.OperationalError as exc:
            errors.append(str(exc))
        b_finished.set()

    run_together(thread_a, thread_b, timeout=60)
    assert errors == []
    assert store.get_turn("t1") is not None
