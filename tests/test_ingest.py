"""`empathos memory ingest`: a person's past conversations become sessions, turns and memories,
stamped with the times the words were said, from their own words only, exactly once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.ingest import (
    HistoryError,
    HistoryMessage,
    group_sessions,
    ingest,
    read_history,
)
from agent.services import vectors_for
from memory.database import open_database
from memory.memories import MemoryStore, MemoryStoreError
from memory.outcomes import Outcomes
from memory.store import ConversationStore, StoreError
from memory.traits import TraitModel
from memory.worker import MemoryServices, MemoryWorker
from tests.conftest import fake_context
from tests.fakes import FakeSafety
from tests.test_memory_fakes import SentenceExtractor, WordEmbedder, add_turn, build_services, fact
from tui.commands import memory as memory_commands

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


# Reading: every problem names the file, the line and the field.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"role": "user", "text": "hi", "time": "2026-03-01T18:00:00+00:00"}\n{"role": "user",',
         ["line 2", "not valid JSON"]),
        ('\n\n{"role": "user", "text": "hi", "time": "2026-03-01T18:00:00"}\n',
         ["line 3", "field 'time'", HINT]),
        ('{"role": "bot", "text": "hi", "time": "2026-03-01T18:00:00Z"}',
         ["line 1", "field 'role'", "'user' or 'assistant'"]),
        ('{"role": "user", "text": "hi", "time": "2026-03-01T18:00:00Z", "mood": "ok"}',
         ["line 1", "field 'mood'", "unknown field", "role, text, time, session"]),
        ('{"role": "user", "text": "   ", "time": "2026-03-01T18:00:00Z"}',
         ["line 1", "field 'text'", "not empty"]),
        ('{"role": "user", "time": "2026-03-01T18:00:00Z"}',
         ["line 1", "field 'text'", "missing"]),
        ('{"role": "user", "text": "a \\u001b[2J b", "time": "2026-03-01T18:00:00Z"}',
         ["line 1", "field 'text'", "U+001B"]),
        ('["user", "hi"]', ["line 1", "an array is not a message"]),
        ('{"role": "user", "text": "hi", "time": "2026-03-02T18:00:00Z"}\n'
         '{"role": "assistant", "text": "ok", "time": "2026-03-01T18:00:00Z"}',
         ["line 2", "field 'time'", "earlier than line 1", "in the order"]),
        ("\n  \n", ["holds no messages"]),
    ],
)  # fmt: skip
def test_read_errors_name_the_line_and_the_field(tmp_path, text, expected):
    path = write_history(tmp_path, text)
    with pytest.raises(HistoryError) as caught:
        read_history(path)
    message = str(caught.value)
    assert str(path) in message
    for part in expected:
        assert part in message, message


def test_a_missing_or_undecodable_file_is_a_clear_error(tmp_path):
    with pytest.raises(HistoryError, match="no such file"):
        read_history(tmp_path / "nope.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"role": "user", "text": "\xff", "time": "2026-03-01T18:00:00Z"}')
    with pytest.raises(HistoryError, match="not UTF-8"):
        read_history(bad)


def test_a_valid_file_reads_in_order_with_zones_kept_and_text_stripped(tmp_path):
    text = (
        '\ufeff{"role": "user", "text": "  one\u2028two  ", "time": "2026-03-01T19:00:00+01:00"}'
        '\r\n\n{"role": "assistant", "text": "ok", "time": "2026-03-01T18:00Z", "session": "a"}\n'
    )
    read = read_history(write_history(tmp_path, text))
    assert [(m.role, m.text, m.session) for m in read] == [
        ("user", "one\u2028two", None),
        ("assistant", "ok", "a"),
    ]
    assert read[0].time == read[1].time == datetime(2026, 3, 1, 18, tzinfo=UTC)


# Grouping into sessions.


def test_sessions_follow_labels_whatever_the_gap():
    rows = [("user", "a", T0), ("assistant", "b", T0 + 2 * DAY), ("user", "c", T0 + 3 * DAY)]
    labelled = messages(rows[:2], session="week one") + messages(rows[2:], session="week two")
    assert [[m.text for m in s] for s in group_sessions(labelled)] == [["a", "b"], ["c"]]


def test_unlabelled_sessions_split_at_a_gap_of_six_hours():
    rows = [("user", "a", T0), ("user", "b", T0 + timedelta(hours=5, minutes=59)),
            ("user", "c", T0 + timedelta(hours=11, minutes=59)),
            ("user", "d", T0 + timedelta(hours=17, minutes=59))]  # fmt: skip
    assert [[m.text for m in s] for s in group_sessions(messages(rows))] == [
        ["a", "b"],
        ["c"],
        ["d"],
    ]
    assert len(group_sessions(messages(rows), gap=timedelta(days=1))) == 1


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


def test_only_the_persons_words_become_memories(settings, store):
    extractor = SentenceExtractor()
    context = ingest_context(settings, store, extractor)
    report = ingest(context, "ana", messages(), source="history.jsonl")
    seen = [text for said, earlier in extractor.seen for text in [said, *earlier]]
    assert seen and not [text for text in seen if "ASSISTANT" in text or "journaling" in text]
    assert ("Her laugh at dinner, mostly.", [FIRST_TURN]) in extractor.seen
    remembered = context.memories.all("ana")
    assert {m.text for m in remembered} == EXPECTED_MEMORIES and report.memories == 4
    assert not [m for m in remembered if "journaling" in m.text or "wonderful" in m.text]


def test_memories_carry_the_time_the_words_were_said(settings, store):
    context = ingest_context(settings, store)
    ingest(context, "ana", messages(), source="history.jsonl")
    turns = {t.id: datetime.fromisoformat(t.created_at) for t in store.turns("ana")}
    by_text = {m.text: m for m in context.memories.all("ana")}
    cello = by_text["I started cello lessons on Tuesday"]
    assert datetime.fromisoformat(cello.created_at) == T0 + 3 * DAY
    for memory in by_text.values():
        said = turns[memory.source_turn_id]
        assert datetime.fromisoformat(memory.created_at) == said
        assert datetime.fromisoformat(memory.last_seen_at) == said
        [(source_row)] = store.db.table("memory_sources").rows_where("memory_id = ?", [memory.id])
        assert datetime.fromisoformat(source_row["created_at"]) == said


def test_live_turns_remember_with_their_own_time_too(tmp_path):
    from memory.clock import SimulatedClock

    clock = SimulatedClock(T0)
    services = build_services(tmp_path / "data", clock=clock)
    worker = MemoryWorker(services)
    session = services.store.new_session("ana")
    turn = add_turn(services, "ana", session, "I adopted a cat named Pixel.")
    worker.enqueue_turn("ana", session, turn)
    clock.advance(2 * DAY)  # the job runs later than the words were said
    assert worker.drain().failed == 0
    [memory] = services.memories.all("ana")
    assert datetime.fromisoformat(memory.created_at) == T0


def test_an_older_statement_ingested_later_does_not_replace_a_newer_one(mem):
    newer = "2026-01-10T09:00:00.000+00:00"
    [now_true] = mem.memories.remember(
        "ana", [fact("I love running every morning")], "t2", at=newer
    )
    [old] = mem.memories.remember(
        "ana", [fact("I don't love running every morning anymore")], "t1",
        at="2025-01-10T09:00:00.000+00:00",
    )  # fmt: skip
    assert [m.id for m in mem.memories.all("ana")] == [now_true.memory_id]
    assert mem.memories.get("ana", old.memory_id).superseded_by == now_true.memory_id


def test_remember_keeps_times_in_one_form_and_refuses_a_time_without_a_zone(mem):
    [added] = mem.memories.remember("ana", [fact("I moved to Lisbon")], "t1",
                                    at="2025-06-01T20:00:00+02:00")  # fmt: skip
    assert mem.memories.get("ana", added.memory_id).created_at == "2025-06-01T18:00:00.000+00:00"
    with pytest.raises(MemoryStoreError, match="no time zone"):
        mem.memories.remember("ana", [fact("I moved to Porto")], "t2", at="2025-06-01T20:00:00")


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


def test_ingest_drains_only_its_own_persons_jobs(settings, store):
    context = ingest_context(settings, store)
    bo_session = store.new_session("bo")
    bo_turn = add_turn(context.memory_worker.services, "bo", bo_session, "Bo hiked all weekend.")
    context.memory_worker.enqueue_turn("bo", bo_session, bo_turn)
    ingest(context, "ana", messages(), source="history.jsonl")
    assert context.memory_worker.queue.pending("ana") == 0
    assert context.memory_worker.queue.pending("bo") == 3
    assert context.memories.all("bo") == []


def test_drain_for_one_user_leaves_the_others_jobs_alone(mem):
    worker = MemoryWorker(mem)
    for user in ("ana", "bo"):
        session = mem.store.new_session(user)
        worker.enqueue_turn(user, session, add_turn(mem, user, session, f"{user} went hiking."))
    claimed = worker.queue.claim(ignore_backoff=True, user_id="bo")  # bo's thread is on it
    assert claimed is not None and claimed.user_id == "bo"
    report = worker.drain(user_id="ana")
    assert report.done == 3 and worker.queue.pending("ana") == 0
    bo_turn = mem.store.turns("bo")[0].id
    assert worker.queue.statuses([f"{kind}:{bo_turn}" for kind in ("outcome", "extract")]) == {
        f"outcome:{bo_turn}": "running",  # not taken back from bo's thread by ana's repairs
        f"extract:{bo_turn}": "pending",
    }
    assert mem.memories.all("bo") == []


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


# The command line.


@pytest.fixture
def cli_context(monkeypatch):
    """Make `empathos memory ingest` build its context over fakes (no model, no download)."""
    from tui.options import settings_from

    def build(**options):
        settings = settings_from(**options)
        return ingest_context(settings, ConversationStore(open_database(settings.db_path)))

    monkeypatch.setattr(memory_commands, "ingest_context", build)


def run_ingest(path: Path, data_dir: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        memory_commands.memory,
        ["ingest", str(path), "--user", "ana", "--data-dir", str(data_dir), *extra],
    )
    return result.exit_code, result.stdout, result.stderr


def test_the_command_ingests_a_file_once(tmp_path, cli_context):
    path, data = write_history(tmp_path, jsonl(CONVERSATION)), tmp_path / "data"
    code, out, err = run_ingest(path, data)
    assert code == 0, out + err
    assert out.strip() == (
        "ingested 8 messages as 3 turns in 2 sessions (0 already there); 4 memories"
    )
    assert "1 assistant message(s)" in err and "Traceback" not in err
    code, out, _ = run_ingest(path, data)
    assert code == 0 and "(3 already there); 4 memories" in out
    store = ConversationStore(open_database(data / "empathos.db"))
    assert len(store.turns("ana")) == 3


def test_the_command_reports_a_bad_file_and_writes_nothing(tmp_path, cli_context):
    text = jsonl(CONVERSATION[:3]) + '{"role": "user", "text": "hi", "time": "2025-03-02T10:00"}\n'
    path, data = write_history(tmp_path, text), tmp_path / "data"
    code, out, err = run_ingest(path, data)
    assert code == 1 and "Traceback" not in err
    assert "line 4, field 'time'" in err and HINT in err
    assert not (data / "empathos.db").exists()
    code, _, err = run_ingest(tmp_path / "missing.jsonl", data)
    assert code == 1 and "no such file" in err


def test_the_command_refuses_a_bad_user_name(tmp_path, cli_context):
    path = write_history(tmp_path, jsonl(CONVERSATION))
    result = CliRunner().invoke(
        memory_commands.memory,
        ["ingest", str(path), "--user", "bad name", "--data-dir", str(tmp_path / "data")],
    )
    assert result.exit_code == 1 and "Invalid user name" in result.stderr
