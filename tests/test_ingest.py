"""`empathos memory ingest`: a person's past conversations become sessions, turns and memories,
stamped with the times the words were said, from their own words only, exactly once.

Here: the sessions and turns it stores. Reading and grouping the file are tested in
`tests/test_ingest_reading.py`, the memories it makes in `tests/test_ingest_memories.py` and the
command line in `tests/test_ingest_cli.py`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.ingest import (
    HistoryError,
    HistoryMessage,
    ingest,
)
from agent.services import vectors_for
from memory.memories import MemoryStore
from memory.outcomes import Outcomes
from memory.store import ConversationStore, StoreError
from memory.traits import TraitModel
from memory.worker import MemoryServices, MemoryWorker
from tests.conftest import fake_context
from tests.fakes import FakeSafety
from tests.test_memory_fakes import SentenceExtractor, WordEmbedder

T0 = datetime(2025, 3, 1, 18, 0, tzinfo=UTC)
MINUTE, DAY = timedelta(minutes=1), timedelta(days=1)
HINT = "2026-03-01T18:00:00+00:00"

# Two sessions (three days apart), three turns; the first message of all is an assistant's.
CONVERSATION = [
    ("assistant", "ASSISTANT-ONLY hello there, how was your week?", T0 - MINUTE),
    ("user", "My sister Maya moved to Berlin in March.", T0),
    ("user", "I miss her more than I expected.", T0 + MINUTE),
    ("assistant", "ASSISTANT-ONLY maybe try journaling about Berlin every night.", T0 + 2 * MINUTE),
    ("assistant", "ASSISTANT-ONLY what do you miss most?", T0 + 3 * MINUTE),
    ("user", "Her laugh at dinner, mostly.", T0 + 4 * MINUTE),
    ("user", "I started cello lessons on Tuesday.", T0 + 3 * DAY),
    ("assistant", "ASSISTANT-ONLY that sounds wonderful, keep journaling!", T0 + 3 * DAY + MINUTE),
]
FIRST_TURN = "My sister Maya moved to Berlin in March.\nI miss her more than I expected."
EXPECTED_MEMORIES = {
    "My sister Maya moved to Berlin in March",
    "I miss her more than I expected",
    "Her laugh at dinner, mostly",
    "I started cello lessons on Tuesday",
}


def jsonl(rows: list[tuple[str, str, datetime]], **extra: object) -> str:
    lines = [
        json.dumps({"role": r, "text": t, "time": at.isoformat(), **extra}) for r, t, at in rows
    ]
    return "\n".join(lines) + "\n"


def write_history(tmp_path: Path, text: str, name: str = "history.jsonl") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def messages(rows=CONVERSATION, **extra) -> list[HistoryMessage]:
    return [HistoryMessage(role=r, text=t, time=at, **extra) for r, t, at in rows]


def ingest_context(settings, store, extractor=None, **kw):
    """A context on real SQLite and Chroma whose memory worker extracts with `extractor`."""
    embedder = WordEmbedder()
    memories = MemoryStore(store.db, vectors_for(settings), embedder, clock=store.clock)
    traits, outcomes = TraitModel(store.db, embedder, store.clock), Outcomes(store.db)
    worker = MemoryWorker(
        MemoryServices(store, memories, traits, outcomes, extractor or SentenceExtractor())
    )
    return fake_context(
        settings, store, embedder=embedder, memories=memories, traits=traits,
        outcomes=outcomes, memory_worker=worker, **kw,
    )  # fmt: skip


def counts(store: ConversationStore) -> dict[str, int]:
    return {
        table: store.db.execute(f"select count(*) from {table}").fetchone()[0]
        for table in ("sessions", "turns", "memories", "memory_sources", "jobs")
    }


# Ingesting.


def test_ingest_stores_sessions_and_turns_with_the_files_times(settings, store):
    context = ingest_context(settings, store)
    report = ingest(context, "ana", messages(), source="history.jsonl", drain=False)
    assert (report.sessions, report.turns, report.messages) == (2, 3, 8)
    assert (report.already_there, report.skipped_assistant) == (0, 1)
    turns = store.turns("ana")
    assert [(t.user_text, t.reply, t.status, t.idx) for t in turns] == [
        (FIRST_TURN, "ASSISTANT-ONLY maybe try journaling about Berlin every night.\n"
                     "ASSISTANT-ONLY what do you miss most?", "done", 0),
        ("Her laugh at dinner, mostly.", "", "done", 1),
        ("I started cello lessons on Tuesday.",
         "ASSISTANT-ONLY that sounds wonderful, keep journaling!", "done", 0),
    ]  # fmt: skip
    said = [datetime.fromisoformat(t.created_at) for t in turns]
    assert said == [T0, T0 + 4 * MINUTE, T0 + 3 * DAY]
    done = [store.db.table("turns").get(t.id)["completed_at"] for t in turns]
    assert [datetime.fromisoformat(d) for d in done] == [
        T0 + 3 * MINUTE,
        T0 + 4 * MINUTE,
        T0 + 3 * DAY + MINUTE,
    ]
    sessions = sorted(store.sessions("ana"), key=lambda s: s.created_at)
    assert [s.title for s in sessions] == ["imported: history.jsonl"] * 2
    assert [datetime.fromisoformat(s.created_at) for s in sessions] == [T0, T0 + 3 * DAY]
    assert datetime.fromisoformat(sessions[0].updated_at) == T0 + 4 * MINUTE
    trace = turns[0].trace
    assert (trace.model_extra["origin"], trace.model_extra["source"]) == (
        "ingested",
        "history.jsonl",
    )
    assert trace.emotion.label == "sadness" and trace.plan is None and trace.llm_calls == []
    kinds = {row["kind"] for row in store.db.table("jobs").rows}
    assert kinds == {"extract", "traits"}  # nothing empathos chose, so no outcome to score
    assert context.memory_worker.queue.pending("ana") == 6


def test_session_labels_become_titles(settings, store):
    rows = [("user", "I passed the exam today.", T0), ("assistant", "Well done!", T0 + MINUTE)]
    ingest(ingest_context(settings, store), "ana", messages(rows, session="exam week"),
           source="chat.jsonl", drain=False)  # fmt: skip
    assert [s.title for s in store.sessions("ana")] == ["exam week"]


def test_ingesting_again_adds_nothing(settings, store):
    context = ingest_context(settings, store)
    first = ingest(context, "ana", messages(), source="history.jsonl")
    before = counts(store)
    again = ingest(context, "ana", messages(), source="history.jsonl")
    assert (again.turns, again.already_there, again.memories) == (3, 3, first.memories)
    assert counts(store) == before and before["turns"] == 3 and before["memories"] == 4


def test_an_ingest_killed_half_way_completes_without_duplicates(settings, store, monkeypatch):
    real = ConversationStore.complete_turn
    calls = {"n": 0}

    def dies_on_the_second_turn(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process stops between writing a turn and finishing it
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ConversationStore, "complete_turn", dies_on_the_second_turn)
    with pytest.raises(KeyboardInterrupt):
        ingest(ingest_context(settings, store), "ana", messages(), source="history.jsonl")
    assert [t.user_text for t in store.turns("ana")] == [FIRST_TURN]
    assert store.pending_turns("ana") == []  # never a half-stored turn a chat would answer
    monkeypatch.setattr(ConversationStore, "complete_turn", real)
    report = ingest(ingest_context(settings, store), "ana", messages(), source="history.jsonl")
    assert (report.turns, report.already_there) == (3, 1)
    assert [t.idx for t in store.turns("ana")] == [0, 1, 0]
    assert counts(store)["turns"] == 3 and counts(store)["sessions"] == 2
    assert {
        m.text for m in ingest_context(settings, store).memories.all("ana")
    } == EXPECTED_MEMORIES


def test_other_words_under_a_source_already_used_are_refused_before_any_write(settings, store):
    context = ingest_context(settings, store)
    ingest(context, "ana", messages(), source="history.jsonl", drain=False)
    before = counts(store)
    changed = [("user", "Something else entirely happened.", T0), *CONVERSATION[2:]]
    with pytest.raises(HistoryError, match="another source name"):
        ingest(context, "ana", messages(changed), source="history.jsonl", drain=False)
    assert counts(store) == before
    report = ingest(context, "ana", messages(changed), source="other.jsonl", drain=False)
    assert report.already_there == 0 and counts(store)["sessions"] == 4


def test_crisis_turns_are_stored_as_crisis_and_never_mined(settings, store):
    rows = [("user", "CRISIS I cannot go on like this anymore.", T0),
            ("assistant", "I am here with you.", T0 + MINUTE),
            ("user", "Later I went for a long walk.", T0 + 2 * MINUTE)]  # fmt: skip
    context = ingest_context(settings, store, safety=FakeSafety())
    ingest(context, "ana", messages(rows), source="history.jsonl")
    crisis, calm = store.turns("ana")
    assert (crisis.crisis, crisis.trace.safety.band, calm.crisis) == (True, "crisis", False)
    assert {m.source_turn_id for m in context.memories.all("ana")} == {calm.id}


def test_progress_counts_turns_stored_then_remembered(settings, store):
    heard: list[tuple[int, int]] = []
    ingest(ingest_context(settings, store), "ana", messages(), source="history.jsonl",
           drain=False, on_progress=lambda d, t: heard.append((d, t)))  # fmt: skip
    assert heard == [(0, 3), (1, 3), (2, 3), (3, 3)]
    heard.clear()
    ingest(ingest_context(settings, store), "bo", messages(), source="history.jsonl",
           on_progress=lambda d, t: heard.append((d, t)))  # fmt: skip
    assert heard[0] == (0, 3) and heard[-1] == (3, 3)
    assert [d for d, _ in heard] == sorted(d for d, _ in heard)


def test_a_session_id_is_idempotent_for_its_user_and_refused_for_another(store):
    first = store.new_session("ana", "imported", session_id="ingest-abc")
    again = store.new_session("ana", "other title", session_id="ingest-abc")
    assert first == again == "ingest-abc"
    assert [s.title for s in store.sessions("ana")] == ["imported"]
    with pytest.raises(StoreError, match="another user"):
        store.new_session("bo", session_id="ingest-abc")
    assert store.sessions("bo") == []


def test_messages_given_out_of_order_are_refused_before_anything_is_written(settings, store):
    backwards = messages([("user", "later", T0 + DAY), ("user", "earlier", T0)])
    with pytest.raises(HistoryError, match="Message 2 .* earlier than the one before"):
        ingest(ingest_context(settings, store), "ana", backwards, source="sim", drain=False)
    assert counts(store)["turns"] == 0


def test_a_bad_user_name_is_refused_before_anything_is_written(settings, store):
    with pytest.raises(StoreError, match="Invalid user name"):
        ingest(ingest_context(settings, store), "no spaces", messages(), source="h.jsonl")
    assert counts(store)["turns"] == 0
