"""The off-critical-path job queue: memory extraction, trait updates and outcome scoring.

Exceptions: `WorkerError` (base) > `UnknownJobKindError` (a job kind with no handler).

`enqueue_turn` is all the reply path does (three idempotent inserts into the `jobs` table); the
work runs later, in a background thread (`start`/`stop`) or in one go (`drain`, for one-shot
commands). A job that raises is recorded (attempts, last error) and retried with exponential
backoff; after `max_attempts` it stays `failed` in the table (shown by `failed()`, re-queued by
`retry_failed()`), never dropped silently. A job left `running` by a killed process is put back
on the queue by the next start or drain (`recover`, which also brings the vectors in step with
the rows). Handlers are safe to re-run (see memory.memories). The queue is `memory.jobs`.

The background thread never shares a SQLite connection with the reply path (the database
gives each thread its own, `memory.database`). With one embedded model, an extraction call holds
the model while it runs, so the worker only claims a job when no turn is in progress (`busy()`)
and the user has been idle for `idle_seconds`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlite_utils import Database

from memory.database import transaction
from memory.errors import JobPreempted, MemoryLayerError
from memory.jobs import Job, JobQueue
from memory.memories import ExtractedFact, FactExtractor, MemoryStore
from memory.outcomes import Outcomes
from memory.rules import is_grounded
from memory.store import ConversationStore, Turn
from memory.trait_rating import TraitRater, ask_traits, rate_traits, should_rate
from memory.traits import TraitModel

Handler = Callable[[dict[str, Any]], None]
TURN_JOBS = ("outcome", "extract", "traits")
PAST_TURN_JOBS = ("extract", "traits")  # an ingested turn: empathos chose no reply to score
CONTEXT_TURNS = 2


log = logging.getLogger("empathos.memory")

MAX_RESTART_WAIT = 60.0


class WorkerError(MemoryLayerError):
    """Base class for worker errors."""


class UnknownJobKindError(WorkerError, KeyError):
    """A job kind with no handler."""


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
    rater: TraitRater | None = None  # the language model's readings (optional)
    ask: bool = True  # with a rater: ask it about each message (`ask_traits`)
    weigh: bool = False  # with a rater: weigh each message too (`ask_traits`)
    rate_passages: bool = False  # with a rater: let it rate the telling passages (`rate_traits`)

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
        self.memories.remember(turn.user_id, facts, turn.id, at=turn.created_at)

    def update_traits(self, payload: dict[str, Any]) -> None:
        turn = self._turn(payload)
        if turn is None or turn.status != "done":
            return
        self.traits.observe_turn(turn.user_id, turn)
        if self.rater is not None and not turn.crisis:  # what the model reads
            ask_traits(self.traits, self.rater, turn.user_id, turn, self.ask, self.weigh)
        with transaction(self.db):  # a memory forgotten meanwhile leaves no evidence behind
            from_turn = self.memories.from_turn(turn.user_id, turn.id)
            self.traits.observe_memories(turn.user_id, from_turn, turn.session_id)
        if should_rate(turn.idx):  # read the telling passages every few turns (no LLM)
            rater = self.rater if self.rate_passages else None
            rate_traits(self.traits, self.memories, self.store, rater, turn.user_id,
                        turn.session_id)  # fmt: skip
        self.traits.refresh(turn.user_id, turn.session_id)


def with_turn_feeling(fact: ExtractedFact, turn: Turn) -> ExtractedFact:
    """Give a fact without its own emotion the emotion the plug-in read in its turn."""
    emotion = turn.trace.emotion
    if fact.emotion or emotion is None:
        return fact
    return fact.model_copy(update={"emotion": emotion.label, "valence": emotion.valence})


def run_job(handlers: dict[str, Handler], queue: JobQueue, job: Job) -> str | None:
    """Run one claimed job; record the outcome; return the error text if it failed."""
    handler = handlers.get(job.kind)
    try:
        if handler is None:
            raise UnknownJobKindError(f"No handler for job kind {job.kind!r}.")
        handler(job.payload)
    except JobPreempted:  # a turn needed the machine: the job runs again later, as it was
        queue.release(job)
        return None
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

    def enqueue_turn(
        self, user_id: str, session_id: str, turn_id: str, kinds: Sequence[str] = TURN_JOBS
    ) -> list[str]:
        """Queue a finished turn's memory work: outcome scoring, extraction and trait update
        (`kinds`: fewer, e.g. `PAST_TURN_JOBS` for a turn from an ingested history)."""
        payload = {"user_id": user_id, "session_id": session_id, "turn_id": turn_id}
        ids = self.queue.enqueue(kinds, user_id, payload)
        self.touch()
        self._wake.set()
        return ids

    def drain(
        self, max_jobs: int = 10_000, ignore_backoff: bool = True, user_id: str | None = None,
        on_job: Callable[[Job], None] | None = None,
    ) -> DrainReport:  # fmt: skip
        """Run queued jobs in this thread until none is due (for one-shot commands and tests),
        after repairing what a killed process left (see `recover`).

        With `user_id`, only that user's jobs (repairs included): a simulation runs several
        people at once, each on its own clock, and one must never run another's jobs.
        `on_job` hears of each job once it has run (whatever came of it)."""
        self.recover(user_id=user_id)
        report, handlers = DrainReport(), self.services.handlers()
        for _ in range(max_jobs):
            job = self.queue.claim(ignore_backoff, user_id)
            if job is None:
                break
            error = run_job(handlers, self.queue, job)
            if on_job is not None:
                on_job(job)
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

    def start(self, open_services: Callable[[], MemoryServices] | None = None) -> None:
        """Run jobs in a daemon thread (on its own SQLite connection: connections are per
        thread). `open_services` builds the services in the thread (default: this worker's)."""
        if self._thread is not None:
            return
        if open_services is None:
            open_services = lambda: self.services  # noqa: E731
        self._stop.clear()  # the thread's loop recovers first (`recover`), off the caller's thread
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

    def recover(self, services: MemoryServices | None = None, user_id: str | None = None) -> int:
        """Repair what a killed process left: jobs it was running go back on the queue, and
        the vectors are brought in step with the rows (`MemoryStore.reconcile`; with `user_id`,
        that user's jobs and vectors only). Returns how many jobs were put back."""
        requeued = self.queue.recover(user_id)
        memories = (services or self.services).memories
        if user_id is None:
            changed = memories.reconcile()
        else:
            changed = {user_id: n} if (n := memories.reindex(user_id, only_missing=True)) else {}
        if changed:
            log.warning("vectors brought in step after an interruption: %s", changed)
        return requeued

    def _loop(self, open_services: Callable[[], MemoryServices]) -> None:
        services = open_services()
        self.recover(services)
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
