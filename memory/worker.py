"""The off-critical-path job queue: memory extraction, trait updates and outcome scoring.

Exceptions: `WorkerError` (base) > `UnknownJobKindError` (a job kind with no handler).

`enqueue_turn` is all the reply path does (three idempotent inserts into the `jobs` table); the
work runs later, in a background thread (`start`/`stop`) or in one go (`drain`, for one-shot
commands). A job that raises is recorded (attempts, last error) and retried with exponential
backoff; after `max_attempts` it stays `failed` in the table (shown by `failed()`, re-queued by
`retry_failed()`), never dropped silently. A job left `running` by a killed process is put back
on the queue when the next worker starts. Handlers are safe to re-run (see memory.memories).

The background thread must not share a SQLite connection with the reply path: give `start` a
factory that opens its own `MemoryServices`. With one embedded model, an extraction call holds
the model while it runs, so the worker only claims a job when no turn is in progress (`busy()`)
and the user has been idle for `idle_seconds`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlite_utils import Database

from memory.memories import ExtractedFact, FactExtractor, MemoryStore, is_grounded
from memory.outcomes import Outcomes
from memory.store import ConversationStore, Turn, now
from memory.traits import TraitModel

Handler = Callable[[dict[str, Any]], None]
TURN_JOBS = ("outcome", "extract", "traits")
CONTEXT_TURNS = 2


log = logging.getLogger("empathos.memory")
MAX_RESTART_WAIT = 60.0


class WorkerError(Exception):
    """Base class for worker errors."""


class UnknownJobKindError(WorkerError, KeyError):
    """A job kind with no handler."""


@dataclass(frozen=True)
class Job:
    id: str
    user_id: str
    kind: str
    payload: dict[str, Any]
    attempts: int


@dataclass
class DrainReport:
    done: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class MemoryServices:
    """The memory system bound to one SQLite connection."""

    store: ConversationStore
    memories: MemoryStore
    traits: TraitModel
    outcomes: Outcomes
    extractor: FactExtractor

    @property
    def db(self) -> Database:
        return self.store.db

    def handlers(self) -> dict[str, Handler]:
        return {
            "outcome": self.score_outcome, "extract": self.extract, "traits": self.update_traits,
        }  # fmt: skip

    def _turn(self, payload: dict[str, Any]) -> Turn | None:
        turn = self.store.get_turn(payload["turn_id"])
        return turn if turn is not None and turn.user_id == payload["user_id"] else None

    def score_outcome(self, payload: dict[str, Any]) -> None:
        self.outcomes.score_previous(self.store, payload["user_id"], payload["turn_id"])

    def extract(self, payload: dict[str, Any]) -> None:
        """Extract facts from this message of the user's (never replies, never crisis turns).

        Earlier messages go along only to resolve "she" or "it"; a fact must be grounded in
        this message, or small models re-extract the context and credit it to this turn.
        """
        turn = self._turn(payload)
        if turn is None or turn.status != "done" or turn.crisis:
            return
        context = [t.user_text for t in self.store.turns(turn.user_id, turn.session_id)
                   if t.idx < turn.idx][-CONTEXT_TURNS:]  # fmt: skip
        facts = self.extractor.extract(turn.user_text, context)
        facts = [with_turn_feeling(f, turn) for f in facts
                 if is_grounded(f.text, [turn.user_text])]  # fmt: skip
        self.memories.remember(turn.user_id, facts, turn.id)

    def update_traits(self, payload: dict[str, Any]) -> None:
        turn = self._turn(payload)
        if turn is None or turn.status != "done":
            return
        self.traits.observe_turn(turn.user_id, turn)
        from_turn = self.memories.from_turn(turn.user_id, turn.id)
        self.traits.observe_memories(turn.user_id, from_turn, turn.session_id)
        self.traits.refresh(turn.user_id, turn.session_id)


def with_turn_feeling(fact: ExtractedFact, turn: Turn) -> ExtractedFact:
    """Give a fact without its own emotion the emotion the plug-in read in its turn."""
    emotion = turn.trace.get("emotion") or {}
    if fact.emotion or "label" not in emotion:
        return fact
    return fact.model_copy(update={"emotion": emotion["label"], "valence": emotion["valence"]})


def stamp_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


class JobQueue:
    """The persisted `jobs` table: enqueue, claim, finish, fail with backoff.

    Job times are operational (when to retry), so they follow the wall clock even when the
    stores run on a simulated one: a simulated clock that stands still must not stall retries.
    """

    def __init__(self, db: Database, max_attempts: int = 3, backoff_seconds: float = 5.0) -> None:
        self.db, self.max_attempts, self.backoff = db, max_attempts, backoff_seconds
        self._lock = threading.Lock()

    def enqueue(self, kinds: Sequence[str], user_id: str, payload: dict[str, Any]) -> list[str]:
        """Queue one job per kind for a turn, once per (kind, turn), in one transaction."""
        ids, stamp = [f"{kind}:{payload['turn_id']}" for kind in kinds], now()
        with self._lock, self.db.conn:
            seq = self.db.execute("select coalesce(max(seq), 0) + 1 from jobs").fetchone()[0]
            rows = [{"id": job_id, "seq": seq + i, "user_id": user_id, "kind": kind,
                     "payload": json.dumps(payload), "status": "pending", "attempts": 0,
                     "last_error": None, "run_after": stamp, "created_at": stamp,
                     "updated_at": stamp}
                    for i, (job_id, kind) in enumerate(zip(ids, kinds, strict=True))]  # fmt: skip
            self.db.table("jobs").insert_all(rows, pk="id", ignore=True)
        return ids

    def claim(self, ignore_backoff: bool = False) -> Job | None:
        """Take the oldest due pending job and mark it running (atomic across connections)."""
        due = "" if ignore_backoff else " and run_after <= ?"
        args = [] if ignore_backoff else [now()]
        with self._lock:
            rows = self.db.execute(
                f"select id, user_id, kind, payload, attempts from jobs where status = 'pending'"
                f"{due} order by seq limit 5",
                args,
            ).fetchall()
            for row in rows:
                with self.db.conn:
                    taken = self.db.execute(
                        "update jobs set status = 'running', updated_at = ? "
                        "where id = ? and status = 'pending'",
                        [now(), row[0]],
                    ).rowcount
                if taken == 1:
                    return Job(row[0], row[1], row[2], json.loads(row[3]), row[4])
        return None

    def finish(self, job: Job) -> None:
        with self._lock, self.db.conn:
            self._set(job.id, status="done", attempts=job.attempts + 1, last_error=None)

    def fail(self, job: Job, error: str) -> bool:
        """Record a failure; return True if the job will be retried."""
        attempts = job.attempts + 1
        retry = attempts < self.max_attempts
        with self._lock, self.db.conn:
            self._set(
                job.id, status="pending" if retry else "failed", attempts=attempts,
                last_error=error[:2000], run_after=stamp_in(self.backoff * 2 ** (attempts - 1)),
            )  # fmt: skip
        return retry

    def _set(self, job_id: str, **values: Any) -> None:
        self.db.table("jobs").update(job_id, {**values, "updated_at": now()})

    def recover(self) -> int:
        """Put jobs a killed process left running back on the queue (counted as an attempt)."""
        with self._lock, self.db.conn:
            cursor = self.db.execute(
                "update jobs set status = 'pending', attempts = attempts + 1, "
                "last_error = 'interrupted: the process stopped while this job ran', "
                "updated_at = ? where status = 'running'",
                [now()],
            )
        return cursor.rowcount

    def failed(self, user_id: str | None = None) -> list[dict[str, Any]]:
        where, args = ("status = 'failed'", []) if user_id is None else (
            "status = 'failed' and user_id = ?", [user_id])  # fmt: skip
        return list(self.db.table("jobs").rows_where(where, args, order_by="seq"))

    def retry_failed(self, user_id: str) -> int:
        with self._lock, self.db.conn:
            cursor = self.db.execute(
                "update jobs set status = 'pending', attempts = 0, run_after = ? "
                "where status = 'failed' and user_id = ?",
                [now(), user_id],
            )
        return cursor.rowcount

    def pending(self, user_id: str | None = None) -> int:
        where = "status in ('pending', 'running')" + ("" if user_id is None else " and user_id = ?")
        return int(self.db.execute(
            f"select count(*) from jobs where {where}", [] if user_id is None else [user_id]
        ).fetchone()[0])  # fmt: skip


def run_job(handlers: dict[str, Handler], queue: JobQueue, job: Job) -> str | None:
    """Run one claimed job; record the outcome; return the error text if it failed."""
    handler = handlers.get(job.kind)
    try:
        if handler is None:
            raise UnknownJobKindError(f"No handler for job kind {job.kind!r}.")
        handler(job.payload)
    except Exception as exc:  # recorded and retried: one bad job must not stop the others
        error = f"{type(exc).__name__}: {exc}"
        queue.fail(job, error)
        return error
    queue.finish(job)
    return None


class MemoryWorker:
    """Queue a finished turn's memory work and run it off the reply's critical path."""

    def __init__(
        self, services: MemoryServices, *, max_attempts: int = 3, backoff_seconds: float = 5.0,
        idle_seconds: float = 1.0, poll_seconds: float = 1.0,
    ) -> None:  # fmt: skip
        self.services = services
        self.queue = JobQueue(services.db, max_attempts, backoff_seconds)
        self.idle_seconds, self.poll_seconds = idle_seconds, poll_seconds
        self._wake, self._stop = threading.Event(), threading.Event()
        self._busy, self._last_activity = 0, 0.0
        self._state = threading.Lock()
        self._thread: threading.Thread | None = None
        self.restarts = 0
        self.problem: str | None = None  # what stopped the loop last, for the front ends

    def enqueue_turn(self, user_id: str, session_id: str, turn_id: str) -> list[str]:
        """Queue outcome scoring, extraction and trait update for a finished turn."""
        payload = {"user_id": user_id, "session_id": session_id, "turn_id": turn_id}
        ids = self.queue.enqueue(TURN_JOBS, user_id, payload)
        self.touch()
        self._wake.set()
        return ids

    def drain(self, max_jobs: int = 10_000, ignore_backoff: bool = True) -> DrainReport:
        """Run queued jobs in this thread until none is due (for one-shot commands and tests)."""
        report, handlers = DrainReport(), self.services.handlers()
        for _ in range(max_jobs):
            job = self.queue.claim(ignore_backoff)
            if job is None:
                break
            error = run_job(handlers, self.queue, job)
            if error is None:
                report.done += 1
                continue
            report.errors.append(f"{job.id}: {error}")
            report.failed += job.attempts + 1 >= self.queue.max_attempts
            report.retried += job.attempts + 1 < self.queue.max_attempts
        return report

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Hold background jobs while a turn runs (they share the model and the disk)."""
        with self._state:
            self._busy += 1
        try:
            yield
        finally:
            with self._state:
                self._busy -= 1
                self._last_activity = time.monotonic()

    def touch(self) -> None:
        with self._state:
            self._last_activity = time.monotonic()

    def _may_work(self) -> bool:
        with self._state:
            idle = time.monotonic() - self._last_activity >= self.idle_seconds
            return self._busy == 0 and idle

    def start(self, open_services: Callable[[], MemoryServices]) -> None:
        """Run jobs in a daemon thread with its own services (its own SQLite connection)."""
        if self._thread is not None:
            return
        self.queue.recover()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._supervise, args=(open_services,), name="empathos-memory", daemon=True
        )
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> bool:
        """Ask the thread to stop after its current job; return True if it has stopped."""
        if self._thread is None:
            return True
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        stopped = not self._thread.is_alive()
        self._thread = None if stopped else self._thread
        return stopped

    def _supervise(self, open_services: Callable[[], MemoryServices]) -> None:
        """Keep the loop alive: a crash (a locked database, a model that fails to load) is
        logged, kept in `problem` for the front ends, and the loop restarts with backoff."""
        while not self._stop.is_set():
            try:
                self._loop(open_services)
                return
            except Exception as exc:  # the thread must not die silently; it says why and retries
                self.restarts += 1
                self.problem = f"memory work stopped ({type(exc).__name__}: {exc}); retrying"
                log.exception("memory worker crashed (restart %d)", self.restarts)
                self._stop.wait(
                    min(MAX_RESTART_WAIT, self.queue.backoff * 2 ** (self.restarts - 1))
                )

    def _loop(self, open_services: Callable[[], MemoryServices]) -> None:
        services = open_services()
        queue = JobQueue(services.db, self.queue.max_attempts, self.queue.backoff)
        handlers = services.handlers()
        while not self._stop.is_set():
            job = queue.claim() if self._may_work() else None
            if job is None:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
                continue
            run_job(handlers, queue, job)
            self.problem = None  # a job went through: whatever stopped the loop has passed
