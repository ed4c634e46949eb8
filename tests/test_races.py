"""One deterministic test per race the stress test of `test_concurrency.py` found (issue 8): each
failed before its fix and stays as a regression test. A rating given while the worker scores
the reply, a memory forgotten while a turn stores its trace or while its traits are inferred,
and one person's Chroma collection dropped while another's is in use.
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agent.runner import Agent, checkpoint_serde
from memory.memories import ExtractedFact, MemoryKind
from memory.trace import FORGOTTEN, TurnTrace
from memory.vectors import CHROMA_SQLITE, VectorStore
from memory.worker import MemoryWorker
from tests.conftest import fake_context
from tests.test_concurrency import rows, run_together
from tests.test_memory_fakes import WordEmbedder, add_turn

CHILD_TIMEOUT_S = 30.0


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
        "import json, sys; from tests.test_races import drop_beside_another_user; "
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
