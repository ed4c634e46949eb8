"""The threads of the stress test in `test_concurrency.py` (issue 8) and their bookkeeping: the
plan of how many operations each thread does, the ledger of what they did and who may be used
now, and the run itself over one data dir (turns, memory jobs, ratings, forgetting at once)."""

from __future__ import annotations

import itertools
import json
import random
import re
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from agent.context import Context
from agent.runner import Agent
from agent.settings import Settings
from memory.database import open_database
from memory.memories import MemoryStore
from memory.outcomes import Outcomes
from memory.rules import RuleJudge
from memory.store import ConversationStore
from memory.traits import TraitModel
from memory.vectors import VectorStore
from memory.worker import MemoryServices, MemoryWorker
from tests.conftest import fake_context
from tests.fakes import ANALYSIS, varied_reply
from tests.test_memory_fakes import SentenceExtractor, WordEmbedder

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
# An extraction that merges into (or supersedes) a memory the person forgets meanwhile fails
# on the vanished row; the worker records the job and runs it again (memory.worker), and the
# checks in `test_concurrency.py` require every job done in the end. Any other job error fails
# the test.
FORGOTTEN_MEANWHILE = re.compile(r"extract:\S+: NotFoundError\b")


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
