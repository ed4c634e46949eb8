"""`empathos memory ingest`, the memories it makes: from the person's own words only, stamped
with the time the words were said (as live turns are), an older statement never replacing a
newer one, and only that person's memory jobs drained."""

from __future__ import annotations

from datetime import datetime

import pytest

from agent.ingest import ingest
from memory.memories import MemoryStoreError
from memory.worker import MemoryWorker
from tests.test_ingest import (
    DAY,
    EXPECTED_MEMORIES,
    FIRST_TURN,
    T0,
    ingest_context,
    messages,
)
from tests.test_memory_fakes import SentenceExtractor, add_turn, build_services, fact


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
