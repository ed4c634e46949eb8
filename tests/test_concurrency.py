"""Threads never share a transaction (issue 8): turns, memory jobs, feedback and forgetting at once.

Every thread reaches SQLite through its own connection (`memory.database.ThreadLocalDatabase`),
so one thread's commit or rollback never takes another thread's half-written rows with it. The
stress test runs on one real data dir (SQLite, Chroma, the LangGraph checkpointer):

- turn threads, each with its own `Agent` and fake chat model (a scripted fake answers in order,
  so one model cannot serve two threads); two share one `Database` object and one opens its own,
  as the app's turn thread and an `empathos chat` beside it would;
- one thread draining memory jobs with a sentence extractor (memories merge and supersede);
- one thread giving thumbs up or down on finished replies;
- one thread forgetting single memories of people who are chatting (the memory screen does so
  beside the running memory worker), and forgetting people entirely, some of whom come back.

The legitimate races are excluded the way the app excludes them: a person is forgotten only
once no turn or rating of theirs is in flight, with the memory thread held (the app holds its
turn lock, `Context.forget_user` stops the memory thread), and their old sessions and turns are
never used again. Everything else runs freely. Each thread does a fixed number of operations;
the checks run after all of them joined.

One deterministic test per race found here is in `test_races.py` (each failed before its fix
and stays as a regression test). The direct tests of one transaction against another, on a
connection each and on the one shared connection of before, are in `test_transactions.py`.
The threads and their bookkeeping (`Plan`, `Ledger`, `Stress`) are in `concurrency_stress.py`
(not a test module); the checks of what must hold once they joined are here.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import chromadb
import pytest
from sqlite_utils import Database

from agent.settings import Settings
from memory.database import open_database
from memory.privacy import user_tables
from memory.trace import FORGOTTEN, TurnTrace
from memory.vectors import VectorStore, chroma_settings, collection_name
from tests.concurrency_stress import USERS, Ledger, Plan, Stress, vector_store

EVIDENCE_AFTER_FORGETTING = (
    "the memory worker's trait job must read a turn's memories and record the evidence keyed "
    "by them in one transaction, or a memory forgotten in between leaves its evidence behind"
)
QUOTED_AFTER_FORGETTING = (
    "a turn must check its recalled memories (`remember` node) and store its trace in one "
    "transaction, or a memory forgotten in between keeps its words in that trace"
)


# -- what must hold once every thread has joined ----------------------------------------------


def rows(db: Database, sql: str, args: list[Any] | None = None) -> list[dict[str, Any]]:
    return list(db.query(sql, args or []))


def has_rows(db: Database, table: str, user: str) -> bool:
    column = "id" if table == "users" else "user_id"
    return bool(db.execute(f"select 1 from [{table}] where {column} = ?", [user]).fetchone())


def check_turns(db: Database, ledger: Ledger) -> None:
    """Every turn is whole: done with its reply and a readable trace, or failed with a reason."""
    stored = {r["id"]: r for r in rows(db, "select * from turns")}
    for row in stored.values():
        assert row["status"] in ("done", "failed"), f"half-written turn {row}"
        if row["status"] == "done":
            assert row["reply"] and row["completed_at"], row
            TurnTrace.parse(row["trace"])
        else:
            assert row["error"], row
    for _, _, turn_id in ledger.finished:
        if turn_id in ledger.forgotten_turns:
            assert turn_id not in stored, "a forgotten turn is back"
        else:
            assert stored[turn_id]["status"] == "done", stored[turn_id]
            assert stored[turn_id]["reply"] == ledger.replies[turn_id]


def check_memories(db: Database, vectors: VectorStore, ledger: Ledger) -> None:
    """Every current memory has its vector (and no other vector is there) and a source link."""
    for user in USERS:
        current = rows(
            db, "select id from memories where user_id = ? and status = 'current'", [user]
        )
        assert set(vectors.ids(user)) == {r["id"] for r in current}, f"{user}: vectors"
    unsourced = rows(
        db,
        "select id from memories m where not exists (select 1 from "
        "memory_sources s where s.memory_id = m.id and s.user_id = m.user_id)",
    )
    assert unsourced == [], "memories without a source link"
    dangling = rows(
        db,
        "select s.* from memory_sources s left join memories m on m.id = "
        "s.memory_id and m.user_id = s.user_id where m.id is null",
    )
    assert dangling == [], "source links to no memory"
    for table, column in [("memory_sources", "turn_id"), ("memories", "source_turn_id")]:
        stray = rows(
            db,
            f"select * from {table} r where not exists (select 1 from turns t "
            f"where t.id = r.{column} and t.user_id = r.user_id)",
        )
        assert stray == [], f"{table} pointing at no turn of the same user"
    back = ledger.forgotten_memories & {r["id"] for r in rows(db, "select id from memories")}
    assert back == set(), "forgotten memories are back"


def check_ratings(db: Database, ledger: Ledger) -> None:
    """Feedback and outcomes point at turns of the same user; each rating is stored."""
    for table in ("feedback", "outcomes"):
        stray = rows(
            db,
            f"select r.* from {table} r left join turns t on t.id = r.turn_id and "
            "t.user_id = r.user_id where t.id is null",
        )
        assert stray == [], f"{table} rows pointing at no turn of the same user"
    stored = {r["turn_id"]: r for r in rows(db, "select * from feedback")}
    for turn_id, (user, _) in ledger.ratings.items():
        if turn_id not in ledger.forgotten_turns:
            assert stored[turn_id]["user_id"] == user
    lost = rows(
        db,
        "select f.turn_id, f.value, o.feedback from feedback f join outcomes o "
        "on o.turn_id = f.turn_id where o.feedback is not f.value",
    )
    assert lost == [], "outcomes that lost the rating given on their turn"


def check_forgotten(db: Database, settings: Settings, ledger: Ledger) -> None:
    """Nothing of a forgotten person is left (rows, collection, checkpoints), and no finished
    turn left a checkpoint behind."""
    client = chromadb.PersistentClient(str(settings.data_dir / "chroma"), chroma_settings())
    collections = {c.name for c in client.list_collections()}
    checkpoints = sqlite3.connect(settings.checkpoint_path)
    try:
        for user in ledger.gone:
            assert [t for t in user_tables(db) if has_rows(db, t, user)] == [], user
            assert collection_name(user) not in collections, f"{user} still has vectors"
            left = checkpoints.execute(
                "select count(*) from checkpoints where thread_id like ?", [f"{user}:%"]
            ).fetchone()[0]
            assert left == 0, f"{user} still has checkpoints"
        assert checkpoints.execute("select count(*) from checkpoints").fetchone()[0] == 0
    finally:
        checkpoints.close()


def quoting_forgotten(db: Database, ledger: Ledger) -> list[str]:
    """Return the turns whose trace still quotes a forgotten memory."""
    found = []
    for turn_id, raw in db.execute("select id, trace from turns").fetchall():
        used = TurnTrace.parse(raw).memories_used
        if any(m.id in ledger.forgotten_memories and m.text != FORGOTTEN for m in used):
            found.append(turn_id)
    return found


def check_database(db: Database) -> None:
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    undone = rows(db, "select id, status, last_error from jobs where status != 'done'")
    assert undone == [], "memory jobs left undone"


def check_all(settings: Settings, plan: Plan, seed: int) -> None:
    ledger = Stress(settings, plan, seed).run()
    assert ledger.errors == [], "\n".join(ledger.errors)
    db = open_database(settings.db_path)
    assert len(ledger.finished) == plan.turn_threads * plan.turns
    check_turns(db, ledger)
    check_memories(db, vector_store(settings), ledger)
    check_ratings(db, ledger)
    check_forgotten(db, settings, ledger)
    check_database(db)
    assert rows(db, "select count(*) as n from memories")[0]["n"] > 0
    assert ledger.forgotten_turns and ledger.forgotten_memories and ledger.ratings
    evidence = {r["source_id"] for r in rows(db, "select source_id from trait_evidence")}
    assert not quoting_forgotten(db, ledger), QUOTED_AFTER_FORGETTING
    assert not evidence & ledger.forgotten_memories, EVIDENCE_AFTER_FORGETTING


def run_together(*targets: Callable[[], None], timeout: float = 60) -> None:
    """Start each target in a thread of its own, then wait for all of them."""
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)


def test_turns_jobs_ratings_and_forgetting_at_once_write_whole_rows(settings):
    check_all(settings, Plan(), seed=1)


@pytest.mark.soak
def test_ten_times_as_many_operations_at_once(settings):
    """`pytest -m soak`: ten times the operations of the fast version."""
    plan = Plan(turns=300, ratings=400, forget_people=5, forget_memories=60)
    check_all(settings, plan, seed=2)
