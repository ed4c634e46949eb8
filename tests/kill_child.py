"""A process for tests/test_kill9.py to kill: a random mix of operations on a real data dir.

`python -m tests.kill_child DATA_DIR JOURNAL RUN SEED` opens the data dir the way the app does
(real SQLite, Chroma under DATA_DIR/chroma, the LangGraph SQLite checkpointer; fake models from
tests/fakes.py, slowed a little so a kill lands mid-turn), starts up as the app does (memory
jobs a killed process left running go back on the queue, unfinished turns are resumed or marked
failed), then loops: turns, draining memory jobs (an extractor that writes memories), forgetting
a memory or a user, and importing a user's export over their data (`memory import --replace`).

Every operation is written to JOURNAL (JSON lines, fsynced) before it starts and when it ends,
so the parent knows what was sent and what was cut short. A message is journaled before it is
sent; "stored" follows once the guard node has persisted it. A command the kill cut short
(forget, import) is run again at the next start, as a person would run it again; what the data
dir looked like before that is journaled too (the doctor's findings).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.context import Context
from agent.runner import Agent, TurnError
from agent.services import vectors_for
from agent.settings import Settings
from memory import doctor
from memory.database import open_database
from memory.memories import MemoryStore, UnknownMemoryError
from memory.outcomes import Outcomes
from memory.privacy import UnknownUserError, export_user
from memory.store import ConversationStore, new_id
from memory.traits import TraitModel
from memory.worker import MemoryServices, MemoryWorker
from tests.fakes import FakeEmotion, FakeSafety
from tests.faulty_model import FaultSchedule, FaultyChatModel
from tests.test_memory_fakes import SentenceExtractor, WordEmbedder

USERS = ("ana", "bo", "cy")
FORGETTABLE = "cy"  # forgetting only cy keeps ana's and bo's every message to check
FACTS = (
    "I love running in the park", "I don't love running in the park anymore",
    "My sister Maya lives in Lisbon", "My sister Maya moved back to Porto",
    "Work has been rough and I feel stuck", "I failed my driving test again",
    "My dog Biscuit is getting old", "I never liked my job at the bank",
    "I like my job at the bank", "My exam went badly and I feel stupid",
)  # fmt: skip
COMMANDS = ("forget_memory", "forget_user", "import")
FAULT_RATE = 0.08  # some turns fail on their own (a timeout, a 503), resumed ones too


class Journal:
    """Append-only JSON lines, each fsynced before the call returns."""

    def __init__(self, path: Path, run: int) -> None:
        self.run = run
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def write(self, **event: Any) -> None:
        os.write(self.fd, (json.dumps({"run": self.run, **event}) + "\n").encode())
        os.fsync(self.fd)


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Return the journal's events; a line torn by the kill (only ever the last) is dropped."""
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def interrupted(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Return the last operation begun and never ended, if the journal ends inside one."""
    ended = {e["id"] for e in events if e["ev"] == "end"}
    begun = [e for e in events if e["ev"] == "begin"]
    return begun[-1] if begun and begun[-1]["id"] not in ended else None


class SlowModel(FaultyChatModel):
    """The fault-injecting fake, taking a model's time: a kill lands mid-call."""

    delay: float = 0.05

    def _generate(self, *args: Any, **kw: Any) -> Any:
        time.sleep(self.delay * 4)
        return super()._generate(*args, **kw)

    def _stream(self, *args: Any, **kw: Any) -> Any:
        for chunk in super()._stream(*args, **kw):
            time.sleep(self.delay / 2)
            yield chunk


class SlowEmbedder(WordEmbedder):
    """Bag-of-words vectors at a model's pace (memory writes and reindexing take time)."""

    def embed(self, texts: Any) -> Any:
        time.sleep(0.002 * len(texts))
        return super().embed(texts)


class SlowExtractor(SentenceExtractor):
    """Each sentence of three or more words becomes a fact, after an extraction's pause."""

    def extract(self, user_text: str, context: list[str]) -> list[Any]:
        time.sleep(0.03)
        return super().extract(user_text, context)


@dataclass
class App:
    context: Context
    agent: Agent
    worker: MemoryWorker
    journal: Journal
    data_dir: Path

    @property
    def db(self) -> Any:
        return self.context.store.db

    def users(self) -> list[str]:
        return [row[0] for row in self.db.execute("select id from users order by id")]


def open_app(data_dir: Path, journal: Path, run: int, seed: int) -> App:
    """Open the data dir with fakes for the models, as `empathos chat` opens it."""
    settings = Settings(data_dir=data_dir, cache_dir=data_dir.parent / "cache")
    store = ConversationStore(open_database(settings.db_path))
    embedder, vectors = SlowEmbedder(), vectors_for(settings)
    memory = MemoryServices(
        store=store, memories=MemoryStore(store.db, vectors, embedder),
        traits=TraitModel(store.db, embedder), outcomes=Outcomes(store.db),
        extractor=SlowExtractor(),
    )  # fmt: skip
    worker = MemoryWorker(memory)
    context = Context(
        settings, store, chat_model=SlowModel(schedule=FaultSchedule(seed, FAULT_RATE)),
        structured_method="json_schema_text", embedder=embedder, emotion=FakeEmotion(),
        safety=FakeSafety(), vectors=vectors, memories=memory.memories, traits=memory.traits,
        outcomes=memory.outcomes, memory_worker=worker,
    )  # fmt: skip
    return App(context, Agent(context), worker, Journal(journal, run), data_dir)


def start_up(app: App, events: list[dict[str, Any]]) -> None:
    """Finish what a kill cut short: a command is run again, jobs a dead process left running
    go back on the queue (`MemoryWorker.recover`, as a start or a drain does), unfinished turns
    are resumed."""
    cut = interrupted(events)
    findings = [f.__dict__ for f in doctor.check(app.context.memories) if not f.ok]
    app.journal.write(ev="doctor", findings=findings, interrupted=cut)
    if cut is not None and cut["op"] in COMMANDS:
        run_op(app, cut["op"], rerun=cut, **{k: cut[k] for k in ("user", "memory") if k in cut})
    app.journal.write(ev="recovered", jobs=app.worker.recover())  # and vectors put in step
    for user in app.users():
        pending = {t.id for t in app.context.store.pending_turns(user)}
        app.agent.resume_pending(user)  # finishes each, or marks it failed with the reason
        for turn_id in sorted(pending):
            turn = app.context.store.get_turn(turn_id)
            status = turn.status if turn else "gone"
            app.journal.write(ev="resumed", turn=turn_id, status=status)


def run_op(app: App, op: str, rerun: dict[str, Any] | None = None, **args: Any) -> None:
    """Journal the operation, run it, journal its result."""
    op_id = new_id()
    app.journal.write(ev="begin", id=op_id, op=op, rerun=rerun is not None, **args)
    result = OPERATIONS[op](app, rerun=rerun, **args)
    app.journal.write(ev="end", id=op_id, op=op, **result)


def send(app: App, *, user: str, session: str, turn: str, text: str, **_: Any) -> dict[str, Any]:
    def stored(node: str) -> None:
        if node == "guard":
            app.journal.write(ev="stored", turn=turn)

    try:
        app.agent.run_turn(user, session, text, turn_id=turn, on_stage=stored)
    except TurnError as exc:
        return {"status": "failed", "error": str(exc)}
    return {"status": "done"}


def drain(app: App, *, jobs: int, **_: Any) -> dict[str, Any]:
    report = app.worker.drain(max_jobs=jobs)
    return {"done": report.done, "failed": report.failed, "errors": report.errors[:3]}


def forget_memory(app: App, *, user: str, memory: str, **_: Any) -> dict[str, Any]:
    try:
        return {"removed": len(app.context.memories.forget(user, memory))}
    except UnknownMemoryError:  # a rerun of a forget that had finished
        return {"removed": 0}


def forget_user(app: App, *, user: str, **_: Any) -> dict[str, Any]:
    try:
        report = app.context.forget_user(user)
    except UnknownUserError:  # a rerun of a forget that had finished
        return {"removed": 0}
    assert not report.left_behind, report.left_behind
    return {"removed": report.total}


def replace_from_export(
    app: App, *, user: str, rerun: dict[str, Any] | None = None, **_: Any
) -> dict[str, Any]:
    """`memory export`, then `memory import --replace` of that file (`Context.import_user`:
    the rows swapped in one transaction, then the vectors re-embedded and the checkpoints
    removed). A rerun imports the file if it was written."""
    path = app.data_dir.parent / "exports" / f"{user}.json"
    if rerun is None or not path.exists():
        path.parent.mkdir(exist_ok=True)
        temporary = path.with_suffix(".tmp")
        with temporary.open("w") as handle:
            json.dump(export_user(app.db, user), handle)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)  # a torn export is never taken for a whole one
        app.journal.write(ev="exported", user=user)
    doc = json.loads(path.read_text())
    counts, _ = app.context.import_user(doc, replace=True)
    path.unlink()
    return {"turns": counts.get("turns", 0), "memories": counts.get("memories", 0)}


OPERATIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "turn": send, "drain": drain, "forget_memory": forget_memory, "forget_user": forget_user,
    "import": replace_from_export,
}  # fmt: skip


def next_op(app: App, rng: random.Random, count: int) -> tuple[str, dict[str, Any]]:
    """Draw the next operation and its arguments."""
    op = rng.choices(["turn", "drain", "forget_memory", "forget_user", "import"],
                     weights=[10, 4, 3, 0.5, 2])[0]  # fmt: skip
    user, store = rng.choice(USERS), app.context.store
    user = FORGETTABLE if op == "forget_user" else user
    if op == "drain":
        return op, {"jobs": rng.randint(1, 12)}
    if op == "forget_memory":
        current = [m.id for m in app.context.memories.all(user)]
        return (op, {"user": user, "memory": rng.choice(current)}) if current else ("drain", {
            "jobs": 3})  # fmt: skip
    if op in ("forget_user", "import"):
        return (op, {"user": user}) if user in app.users() else ("drain", {"jobs": 3})
    session = store.latest_session(user)
    session = store.new_session(user) if session is None or rng.random() < 0.1 else session
    facts = rng.sample(FACTS, rng.randint(1, 2))
    text = ". ".join(facts) + f". (m{app.journal.run}x{count})"
    return op, {"user": user, "session": session, "turn": new_id(), "text": text}


def main(data_dir: str, journal: str, run: str, seed: str, max_ops: str = "400") -> None:
    print("ready", flush=True)  # imports done: the parent's clock for the kill starts now
    app = open_app(Path(data_dir), Path(journal), int(run), int(seed))
    app.journal.write(ev="start")
    start_up(app, read_journal(Path(journal)))
    app.journal.write(ev="up")
    rng = random.Random(int(seed))
    for count in range(int(max_ops)):
        op, args = next_op(app, rng, count)
        run_op(app, op, **args)
    app.journal.write(ev="finished")


if __name__ == "__main__":
    main(*sys.argv[1:])
