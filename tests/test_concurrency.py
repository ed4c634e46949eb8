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

The direct tests after it pit one transaction against another, on a connection each and (the
contrast) on the one shared connection of before; then come one deterministic test per race
found here; each failed before its fix and stays as a regression test.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import sqlite3
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from sqlite_utils import Database

from agent.context import Context
from agent.runner import Agent, checkpoint_serde
from agent.settings import Settings
from memory.database import open_database, transaction
from memory.memories import ExtractedFact, MemoryKind, MemoryStore
from memory.outcomes import Outcomes
from memory.privacy import user_tables
from memory.rules import RuleJudge
from memory.store import ConversationStore
from memory.trace import FORGOTTEN, TurnTrace
from memory.traits import TraitModel
from memory.vectors import CHROMA_SQLITE, VectorStore, chroma_settings, collection_name
from memory.worker import MemoryServices, MemoryWorker
from tests.conftest import fake_context
from tests.fakes import ANALYSIS, varied_reply
from tests.test_memory_fakes import SentenceExtractor, WordEmbedder, add_turn

USERS = ("ana", "bo", "cy", "dee", "eli", "fay")
SENTENCES = (
    "I love running in the park before work.",
    "I don't love running in the park anymore.",
    "My sister Maya moved to Berlin in March.",
    "I really miss my sister Maya in Berlin.",
    "Work has been really stressful this month.",
    "I never enjoy the long work meetings on Mondays.",
    "My dog Biscuit sleeps on my feet every night.",
    "The exam results come out next Friday morning.",
)
JOIN_TIMEOUT_S = 600.0
CHILD_TIMEOUT_S = 30.0
# An extraction that merges into (or supersedes) a memory the person forgets meanwhile fails
# on the vanished row; the worker records the job and runs it again (memory.worker), and the
# checks below require every job done in the end. Any other job error fails the test.
FORGOTTEN_MEANWHILE = re.compile(r"extract:\S+: NotFoundError\b")
EVIDENCE_AFTER_FORGETTING = (
    "the memory worker's trait job must read a turn's memories and record the evidence keyed "
    "by them in one transaction, or a memory forgotten in between leaves its evidence behind"
)
QUOTED_AFTER_FORGETTING = (
    "a turn must check its recalled memories (`remember` node) and store its trace in one "
    "transaction, or a memory forgotten in between keeps its words in that trace"
)


@dataclass(frozen=True)
class Plan:
    """How many operations each thread does."""

    turn_threads: int = 3
    turns: int = 30  # per turn thread
    ratings: int = 40
    forget_people: int = 3  # the first and every second one after come back
    forget_memories: int = 6


@dataclass
class Person:
    incarnation: int = 0
    retiring: bool = False
    in_flight: int = 0


@dataclass
class Ledger:
    """What the threads did, and who may be used now (the test's own bookkeeping)."""

    people: dict[str, Person] = field(default_factory=lambda: {u: Person() for u in USERS})
    finished: list[tuple[str, int, str]] = field(default_factory=list)  # user, incarnation, turn
    replies: dict[str, str] = field(default_factory=dict)
    ratings: dict[str, tuple[str, int]] = field(default_factory=dict)  # turn: (user, value)
    forgotten_turns: set[str] = field(default_factory=set)
    forgotten_memories: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)  # forgotten and not come back
    errors: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)  # memory jobs that met a forgotten memory
    stop: threading.Event = field(default_factory=threading.Event)
    cond: threading.Condition = field(default_factory=threading.Condition)

    @contextmanager
    def using(self, user: str) -> Iterator[int | None]:
        """Hold a person for one operation; yield their incarnation (None: being forgotten)."""
        with self.cond:
            person = self.people[user]
            held = not person.retiring
            person.in_flight += held
        try:
            yield person.incarnation if held else None
        finally:
            with self.cond:
                person.in_flight -= held
                self.cond.notify_all()

    @contextmanager
    def retiring(self, user: str) -> Iterator[Person]:
        """Stop new operations for a person and wait until theirs in flight are done."""
        with self.cond:
            person = self.people[user]
            person.retiring = True
            while person.in_flight and not self.stop.is_set():
                self.cond.wait(0.1)
        yield person

    def turn_done(self, user: str, incarnation: int, turn_id: str, reply: str | None) -> None:
        with self.cond:
            self.finished.append((user, incarnation, turn_id))
            self.replies[turn_id] = reply or ""
            self.cond.notify_all()

    def fail(self, name: str) -> None:
        self.errors.append(f"{name}:\n{traceback.format_exc()}")
        self.stop.set()


def chat_model() -> GenericFakeChatModel:
    """A fake serving turns forever: an analysis, then a reply (one thread's turns only)."""
    answers = (a for i in itertools.count() for a in (json.dumps(ANALYSIS), varied_reply(i)))
    return GenericFakeChatModel(messages=(AIMessage(content=a) for a in answers))


def vector_store(settings: Settings) -> VectorStore:
    """The process's one Chroma store of this data dir, as every context gets it."""
    return Context(settings, embedder=WordEmbedder()).memories.vectors


def memory_worker(settings: Settings) -> MemoryWorker:
    """The memory worker over its own `Database`, the contexts' Chroma store and fakes."""
    store = ConversationStore(open_database(settings.db_path))
    embedder = WordEmbedder()
    services = MemoryServices(
        store=store,
        memories=MemoryStore(store.db, vector_store(settings), embedder, RuleJudge()),
        traits=TraitModel(store.db, embedder),
        outcomes=Outcomes(store.db),
        extractor=SentenceExtractor(),
    )
    return MemoryWorker(services)


class Stress:
    """The threads of one stress run over one data dir."""

    def __init__(self, settings: Settings, plan: Plan, seed: int) -> None:
        self.settings, self.plan, self.seed = settings, plan, seed
        self.ledger = Ledger()
        self.worker = memory_worker(settings)
        self.shared = ConversationStore(open_database(settings.db_path))  # the app's Database
        self.gate = threading.Lock()  # held while the memory thread runs jobs (its stop/start)
        self.turns_done = threading.Semaphore(0)
        self.producers: list[threading.Thread] = []

    def context(self, store: ConversationStore) -> Context:
        return fake_context(
            self.settings,
            store,
            chat_model=chat_model(),
            embedder=WordEmbedder(),
            memory_worker=self.worker,
        )

    def run(self) -> Ledger:
        turn_threads = [
            self.start(f"turns-{i}", lambda i=i: self.turns(i))
            for i in range(self.plan.turn_threads)
        ]
        self.producers = [*turn_threads, self.start("ratings", self.rate)]
        others = [self.start("forget", self.forget), self.start("memory-jobs", self.drain)]
        for thread in self.producers + others:
            thread.join(JOIN_TIMEOUT_S)
            assert not thread.is_alive(), f"{thread.name} did not finish"
        return self.ledger

    def start(self, name: str, body: Callable[[], None]) -> threading.Thread:
        def guarded() -> None:
            try:
                body()
            except BaseException:  # every failure is collected and fails the test
                self.ledger.fail(name)

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        return thread

    def turns(self, index: int) -> None:
        rng = random.Random(self.seed * 100 + index)
        own = self.shared if index < 2 else ConversationStore(open_database(self.settings.db_path))
        agent = Agent(self.context(own))  # the real SQLite checkpointer, its own connection
        sessions: dict[tuple[str, int], str] = {}
        done = 0
        while done < self.plan.turns and not self.ledger.stop.is_set():
            user = rng.choice(USERS)
            with self.ledger.using(user) as incarnation:
                if incarnation is None:
                    continue
                if (user, incarnation) not in sessions:
                    sessions[user, incarnation] = own.new_session(user)
                text = " ".join(rng.sample(SENTENCES, rng.randint(1, 2)))
                result = agent.run_turn(user, sessions[user, incarnation], text)
                self.ledger.turn_done(user, incarnation, result.turn_id, result.reply)
            done += 1
            self.turns_done.release()

    def drain(self) -> None:
        producers_done = False
        while not self.ledger.stop.is_set():
            with self.gate:
                report = self.worker.drain(max_jobs=5)
            for error in report.errors:  # recorded and retried by the worker, or a failure
                retried = FORGOTTEN_MEANWHILE.match(error)
                (self.ledger.retried if retried else self.ledger.errors).append(error)
            if report.done == 0 and producers_done:
                return
            producers_done = producers_done or not any(t.is_alive() for t in self.producers)
            if report.done == 0:
                self.ledger.stop.wait(0.005)

    def rate(self) -> None:
        """Rate one of the latest replies now and then (spread over the run by turns done)."""
        rng, ledger, plan = random.Random(self.seed * 100 + 50), self.ledger, self.plan
        outcomes, done = Outcomes(self.shared.db), 0
        while done < plan.ratings and not ledger.stop.is_set():
            due = (done + 1) * plan.turn_threads * plan.turns // (plan.ratings + 1)
            with ledger.cond:
                if len(ledger.finished) < max(due, 1):
                    ledger.cond.wait(0.05)
                    continue
                user, incarnation, turn_id = rng.choice(ledger.finished[-10:])
            with ledger.using(user) as now:
                if now != incarnation:
                    continue  # forgotten since, or being forgotten
                up = rng.random() < 0.5
                outcomes.feedback(self.shared, user, up, turn_id)
                ledger.ratings[turn_id] = (user, 1 if up else -1)
            done += 1

    def forget(self) -> None:
        rng, plan = random.Random(self.seed * 100 + 60), self.plan
        context = self.context(self.shared)
        steps = [("person", i) for i in range(plan.forget_people)]
        steps += [("memory", i) for i in range(plan.forget_memories)]
        rng.shuffle(steps)
        every = plan.turn_threads * plan.turns // (len(steps) + 1)
        for what, i in steps:
            for _ in range(every):  # spread the forgetting over the run, by turns done
                while not self.turns_done.acquire(timeout=0.1):
                    if self.ledger.stop.is_set():
                        return
            if what == "memory":
                self.forget_a_memory(context, rng)
            else:
                self.forget_a_person(context, rng, come_back=i % 2 == 0)

    def forget_a_memory(self, context: Context, rng: random.Random) -> None:
        candidates = [(u, m.id) for u in USERS for m in context.memories.all(u)]
        if candidates:
            user, memory = rng.choice(candidates)
            self.ledger.forgotten_memories |= set(context.memories.forget(user, memory))

    def forget_a_person(self, context: Context, rng: random.Random, come_back: bool) -> None:
        ledger = self.ledger
        user = rng.choice([u for u in USERS if u not in ledger.gone])
        with ledger.retiring(user) as person, self.gate:
            context.forget_user(user)
        with ledger.cond:
            ledger.forgotten_turns |= {
                t for u, n, t in ledger.finished if u == user and n == person.incarnation
            }
            person.incarnation += 1
            person.retiring = not come_back
            if not come_back:
                ledger.gone.add(user)


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


# -- one transaction against another, directly ------------------------------------------------


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


def test_a_rating_given_while_the_worker_scores_the_reply_counts(mem):
    """The worker reads "no feedback yet", the person rates, the worker stores its outcome: the
    rating must not be lost from the outcome (it was, while the two read and wrote apart)."""
    session = mem.store.new_session("ana")
    first = add_turn(mem, "ana", session, "I failed my driving test again today.")
    second = add_turn(mem, "ana", session, "Thanks, that does help a little bit actually.")
    worker = MemoryWorker(mem)
    worker.enqueue_turn("ana", session, second)  # scoring `second` rates the reply in `first`
    reading, read, go_on = threading.Event(), threading.Event(), threading.Event()

    def pause_after_reading_feedback(sql: str) -> None:
        """Called as each statement starts: the one after the read of `feedback` waits."""
        if reading.is_set() and not read.is_set():
            read.set()
            go_on.wait(10)  # until the rating is stored, or waits for this transaction
        elif re.search(r"from\s+[\[\"]?feedback\b", sql, re.IGNORECASE):
            reading.set()

    def scoring() -> None:
        mem.db.conn.set_trace_callback(pause_after_reading_feedback)
        worker.drain()

    def rating() -> None:
        read.wait(10)
        mem.db.conn.set_trace_callback(
            lambda sql: go_on.set() if sql.upper().startswith("BEGIN IMMEDIATE") else None
        )
        mem.outcomes.feedback(mem.store, "ana", up=False, turn_id=first)  # thumbs down
        go_on.set()

    run_together(scoring, rating, timeout=60)
    [outcome] = rows(mem.db, "select feedback from outcomes where turn_id = ?", [first])
    assert outcome["feedback"] == -1


def test_a_memory_forgotten_while_a_turn_stores_its_trace_is_not_quoted(settings, store):
    """A person forgets a memory (another thread) just as a turn that recalled it finishes."""
    context = fake_context(settings, store, embedder=WordEmbedder())
    session = store.new_session("ana")
    store.begin_turn("seed", "ana", session, "seed")
    fact = ExtractedFact(kind=MemoryKind.LIFE_EVENT, text="my dog Biscuit died last spring")
    [written] = context.memories.remember("ana", [fact], "seed")
    store.complete_turn("seed", "ok", TurnTrace(), crisis=False)
    forgotten = threading.Event()

    def forget() -> None:
        context.memories.forget("ana", written.memory_id)
        forgotten.set()

    real_complete = store.complete_turn

    def complete_turn(*args: Any, **kwargs: Any) -> None:
        """The turn is about to store its trace: the person forgets the memory right now. The
        turn goes on once that is done, or at once if it holds a transaction (which the
        forgetting then waits for)."""
        threading.Thread(target=forget).start()
        if not store.db.conn.in_transaction:
            forgotten.wait(10)
        real_complete(*args, **kwargs)

    store.complete_turn = complete_turn  # type: ignore[method-assign]
    agent = Agent(context, InMemorySaver(serde=checkpoint_serde()))
    result = agent.run_turn("ana", session, "my dog Biscuit died last spring and I miss him")
    assert forgotten.wait(30)
    assert written.memory_id in [m.id for m in result.state["recall"].memories]
    used = store.get_turn(result.turn_id).trace.memories_used
    assert [m.text for m in used if m.id == written.memory_id] in ([], [FORGOTTEN])


def test_a_memory_forgotten_while_its_traits_are_inferred_leaves_no_evidence(mem):
    """The memory worker infers traits from a new memory as the person forgets it."""
    session = mem.store.new_session("ana")
    turn = add_turn(mem, "ana", session, "I love trying new things and exploring new places.")
    worker = MemoryWorker(mem)
    worker.enqueue_turn("ana", session, turn)
    forgotten: list[str] = []
    done = threading.Event()

    def forget(memory: str) -> None:
        forgotten.extend(mem.memories.forget("ana", memory))
        done.set()

    real_observe = mem.traits.observe_memories

    def observe_memories(user_id: str, memories: list[Any], session_id: str) -> int:
        """The worker has read the turn's memories: the person forgets them right now (the
        worker goes on once that is done, or at once if it holds a transaction)."""
        for memory in memories:
            done.clear()
            threading.Thread(target=forget, args=(memory.id,)).start()
            if not mem.db.conn.in_transaction:
                done.wait(10)
        return real_observe(user_id, memories, session_id)

    mem.traits.observe_memories = observe_memories  # type: ignore[method-assign]
    assert worker.drain().errors == []
    assert done.wait(30) and forgotten, "the turn gave no memory to forget"
    evidence = rows(mem.db, "select source_id, name from trait_evidence")
    assert [row for row in evidence if row["source_id"] in forgotten] == []


def drop_beside_another_user(folder: str) -> list[str]:
    """Drop one person's collection 10 times while another's vectors are written and read in a
    second thread; return what broke (run in a child process)."""
    vectors = VectorStore(Path(folder) / "chroma")
    stop, errors = threading.Event(), []

    def unit(rng: np.random.Generator, n: int) -> np.ndarray:
        v = rng.standard_normal((n, 384)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def broke(who: str, exc: Exception) -> None:
        errors.append(f"{who}: {type(exc).__name__}: {exc}")
        stop.set()  # a broken file can make the next call hang: stop at the first error

    def other_user() -> None:
        rng = np.random.default_rng(1)
        for i in itertools.count():
            if stop.is_set():
                return
            try:
                vectors.add("bo", [f"m{i}"], unit(rng, 1))
                vectors.query("bo", unit(rng, 1)[0], 3)
            except Exception as exc:  # collected: the test says what broke
                broke("bo", exc)

    thread = threading.Thread(target=other_user, daemon=True)
    thread.start()
    rng = np.random.default_rng(0)
    for n in range(10):
        if stop.is_set():
            break
        try:
            vectors.add("ana", [f"a{n}-{k}" for k in range(5)], unit(rng, 5))
            vectors.drop("ana")
        except Exception as exc:  # collected: the test says what broke
            broke("ana", exc)
    stop.set()
    thread.join(60)
    return sorted(set(errors))


def test_dropping_a_collection_beside_another_user_keeps_chroma_whole(tmp_path):
    """Forgetting one person while another person's vectors are in use, in one process.

    Dropping compacts Chroma's SQLite file; done from this process through Python's sqlite3
    (a second copy of SQLite beside the one in Chroma's Rust bindings) it corrupted the file
    and could hang Chroma holding the GIL, so the run is a child process with a time limit,
    and Chroma's file is checked from here, after the child is gone."""
    code = (
        "import json, sys; from tests.test_concurrency import drop_beside_another_user; "
        "print(json.dumps(drop_beside_another_user(sys.argv[1])))"
    )
    try:
        child = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], cwd=Path(__file__).parent.parent,
            capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("Chroma hung while a collection was dropped beside another user's writes")
    assert child.returncode == 0, child.stderr[-2000:]
    assert json.loads(child.stdout.splitlines()[-1]) == []
    check = sqlite3.connect(tmp_path / "chroma" / CHROMA_SQLITE)
    try:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        check.close()
