"""The off-critical-path worker: jobs persisted, retried, recorded; user words only; crashes."""

from __future__ import annotations

import sqlite3
import time

import pytest

from memory.database import open_database
from memory.jobs import JobQueue
from memory.worker import MemoryServices, MemoryWorker
from tests.test_memory_fakes import SentenceExtractor, add_turn, build_services

REPLY = "ASSISTANT-WORDS: maybe try journaling every night"


@pytest.fixture
def mem(tmp_path) -> MemoryServices:
    return build_services(tmp_path / "data")


def finished_turns(mem: MemoryServices, worker: MemoryWorker, texts: list[str], **kw) -> list[str]:
    session = mem.store.new_session("ana")
    ids = []
    for text in texts:
        ids.append(add_turn(mem, "ana", session, text, reply=REPLY, **kw))
        worker.enqueue_turn("ana", session, ids[-1])
    return ids


def test_a_turn_becomes_memories_traits_and_an_outcome(mem):
    worker = MemoryWorker(mem)
    turns = finished_turns(
        mem,
        worker,
        ["My sister Maya moved to Berlin in March.", "I really miss her a lot these days."],
        need="vent",
    )
    report = worker.drain()
    assert (report.done, report.failed, report.errors) == (6, 0, [])
    texts = {m.text for m in mem.memories.all("ana")}
    assert texts == {
        "My sister Maya moved to Berlin in March",
        "I really miss her a lot these days",
    }
    assert mem.memories.get("ana", next(iter(mem.memories.all("ana"))).id).emotion == "sadness"
    assert mem.traits.values("ana")["wants_to_be_heard"].value > 0.5
    assert [row["turn_id"] for row in mem.outcomes.history("ana")] == [turns[0]]
    assert worker.queue.pending() == 0


def test_only_the_users_own_words_reach_the_extractor(mem):
    extractor = SentenceExtractor()
    mem.extractor = extractor
    worker = MemoryWorker(mem)
    finished_turns(mem, worker, ["First I lost my keys today.", "Then the bus never came."])
    worker.drain()
    seen = " ".join(text + " " + " ".join(context) for text, context in extractor.seen)
    assert "ASSISTANT-WORDS" not in seen and "journaling" not in seen
    assert extractor.seen[1] == ("Then the bus never came.", ["First I lost my keys today."])
    assert all("journaling" not in m.text for m in mem.memories.all("ana"))


def test_crisis_turns_are_not_mined_for_memories(mem):
    worker = MemoryWorker(mem)
    finished_turns(mem, worker, ["Everything is falling apart around me."], crisis=True)
    worker.drain()
    assert mem.memories.all("ana") == []


def test_enqueueing_a_turn_twice_queues_its_jobs_once(mem):
    worker = MemoryWorker(mem)
    session = mem.store.new_session("ana")
    turn = add_turn(mem, "ana", session, "A sentence worth keeping here.")
    assert worker.enqueue_turn("ana", session, turn) == worker.enqueue_turn("ana", session, turn)
    assert worker.queue.pending("ana") == 3


def test_a_failing_extraction_is_recorded_and_retried(mem):
    mem.extractor = SentenceExtractor(fail_times=1)
    worker = MemoryWorker(mem, max_attempts=3)
    finished_turns(mem, worker, ["I adopted a cat named Pixel."])
    report = worker.drain()
    assert report.retried == 1 and "crashed mid-extraction" in report.errors[0]
    assert [m.text for m in mem.memories.all("ana")] == ["I adopted a cat named Pixel"]
    row = mem.db.table("jobs").get(f"extract:{mem.store.turns('ana')[0].id}")
    assert (row["status"], row["attempts"]) == ("done", 2)


def test_a_job_that_keeps_failing_stays_recorded_as_failed(mem):
    mem.extractor = SentenceExtractor(fail_times=10)
    worker = MemoryWorker(mem, max_attempts=2)
    finished_turns(mem, worker, ["I adopted a cat named Pixel."])
    report = worker.drain()
    assert report.failed == 1
    [failed] = worker.queue.failed("ana")
    assert failed["kind"] == "extract" and "RuntimeError" in failed["last_error"]
    mem.extractor.fail_times = 0
    assert worker.queue.retry_failed("ana") == 1
    assert worker.drain().done == 1 and len(mem.memories.all("ana")) == 1


def test_a_crash_mid_job_is_recovered_without_duplicates(mem, tmp_path):
    worker = MemoryWorker(mem)
    finished_turns(mem, worker, ["I started a new job at the library."])
    job = worker.queue.claim()
    assert job is not None and job.kind == "outcome"
    worker.queue.finish(job)
    job = worker.queue.claim()  # extraction starts, writes one fact, then the process dies
    assert job is not None and job.kind == "extract"
    mem.extract(job.payload)
    fresh = build_services(tmp_path / "data")  # the next process, same files
    restarted = MemoryWorker(fresh)
    assert restarted.queue.recover() == 1
    assert restarted.drain().failed == 0
    [only] = fresh.memories.all("ana")
    assert fresh.memories.sources("ana", only.id) == [job.payload["turn_id"]]


def test_the_background_thread_does_the_work_off_the_reply_path(mem, tmp_path):
    worker = MemoryWorker(mem, idle_seconds=0.0, poll_seconds=0.05)
    worker.start(lambda: build_services(tmp_path / "data"))
    try:
        work_through_a_turn(mem, worker)
    finally:
        assert worker.stop()
    assert [m.text for m in mem.memories.all("ana")] == ["My best friend Jonas got married in June"]


def work_through_a_turn(mem, worker):
    """Finish one turn and wait (up to a minute) until the background thread has done its jobs."""
    finished_turns(mem, worker, ["My best friend Jonas got married in June."])
    deadline = time.monotonic() + 60
    while worker.queue.pending() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_busy_holds_background_jobs(mem, tmp_path):
    worker = MemoryWorker(mem, idle_seconds=0.0, poll_seconds=0.05)
    with worker.busy():
        assert not worker._may_work()
    assert worker._may_work()


def test_queue_order_is_first_in_first_out(tmp_path):
    queue = JobQueue(open_database(tmp_path / "q.db"))
    for turn in ("a", "b", "c"):
        queue.enqueue(["outcome"], "ana", {"turn_id": turn, "user_id": "ana"})
    claimed = [queue.claim(), queue.claim(), queue.claim(), queue.claim()]
    assert [j.payload["turn_id"] if j else None for j in claimed] == ["a", "b", "c", None]


class EchoContextExtractor(SentenceExtractor):
    """A careless model that also re-extracts the earlier messages it was shown."""

    def extract(self, user_text, context):
        return super().extract(" ".join([*context, user_text]), [])


def test_facts_from_the_context_are_not_credited_to_this_turn(mem):
    mem.extractor = EchoContextExtractor()
    worker = MemoryWorker(mem)
    first, second = finished_turns(
        mem, worker, ["I started cello lessons last month.", "Work has been crushing me lately."]
    )
    worker.drain()
    sources = {m.text: mem.memories.sources("ana", m.id) for m in mem.memories.all("ana")}
    assert sources == {
        "I started cello lessons last month": [first],
        "Work has been crushing me lately": [second],
    }


class Records:
    """Stands in for the worker's logger (other tests' threads may disable logging globally
    for a moment while a model loads)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def exception(self, message: str, *args: object) -> None:
        self.messages.append(message % args)


def test_a_crashing_worker_says_why_restarts_and_then_does_the_work(mem, tmp_path, monkeypatch):
    """The first two attempts to open the worker's services fail (a locked database, a model
    that fails to load); the loop is logged, reports the problem, restarts, then works."""
    attempts = []

    def flaky_services():
        attempts.append(1)
        if len(attempts) <= 2:
            raise sqlite3.OperationalError("database is locked")
        return build_services(tmp_path / "data")

    records = Records()
    monkeypatch.setattr("memory.worker.log", records)
    worker = MemoryWorker(mem, idle_seconds=0.0, poll_seconds=0.05, backoff_seconds=0.01)
    worker.start(flaky_services)
    try:
        deadline = time.monotonic() + 10
        while worker.restarts < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.restarts == 2 and worker.running
        assert "database is locked" in (worker.problem or "")
        work_through_a_turn(mem, worker)
    finally:
        assert worker.stop()
    assert [m.text for m in mem.memories.all("ana")] == ["My best friend Jonas got married in June"]
    assert worker.problem is None  # cleared once a job went through
    assert records.messages[:2] == [f"memory worker crashed (restart {n})" for n in (1, 2)]
