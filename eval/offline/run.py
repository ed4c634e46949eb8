"""`empathos eval run`: benchmark items through several configurations of the graph, side by side.

    evaluation = Evaluation(loaded, settings, Path("report"), systems=["full", "no-memory"],
                            judge=judge, judge_name="qwen2.5-coder-0.5b")
    evaluation.run()          # records.jsonl grows item by item; then results.json, report.html

The systems are the pipeline variants of `agent.variants` (real configurations of the one
graph). For each item that needs a turn (`reply`, `strategy`, `memory`):

1. its past is prepared once: `history` sessions are ingested through `agent.ingest` one at a
   time into a base store (memories extracted, traits inferred; the traits after each session
   are the trait-error curve), then `context` lines become the current conversation (stored,
   not mined). The person is exported (`memory.privacy.export_user`) and the document cached;
2. each system imports that export into its own store (one data dir per system, one user per
   item, so what one system says never reaches another's context), and answers the message
   as one real turn (`agent.runner.Agent.run_turn`) under a simulated clock a minute after the
   last line;
3. the reply and its trace are journalled; the judge then rates each reply on each rubric, and
   with `pairwise` compares it with `full`'s reply (both orders).

`emotion` items go through the emotion plug-in the variants share (single-call reads no
emotion); `rating` items are rated by the judge to check it against humans.

Every step is appended to `records.jsonl` (fsynced) under a key of (item content, system,
model, seed) or (…, judge, rubric), so `resume` skips what is done and a changed item, model
or judge is recomputed, never mixed. A step that fails is journalled with its reason and
counted; the run goes on with the next item.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import AgentError
from eval.errors import EvalError
from eval.offline.items import (
    TASKS,
    AnyItem,
    EmotionItem,
    Line,
    Loaded,
    MemoryItem,
    RatingItem,
    ReplyItem,
    StrategyItem,
)
from eval.simulate.files import Journal, model_digests, versions, write_json
from eval.simulate.run import owners_of
from memory.errors import MemoryLayerError

if TYPE_CHECKING:
    from agent.context import Context
    from agent.runner import Agent
    from agent.settings import Settings
    from eval.offline.judge import Judge
    from memory.clock import SimulatedClock

RECORDS = "records.jsonl"
RUN_FILE = "run.json"
WORK_DIR = "work"
FORMAT = "empathos-eval/1"
START = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)  # the first history line when none is dated
SESSION_GAP = timedelta(days=1)
LINE_GAP = timedelta(minutes=1)
TURN_TASKS = ("reply", "strategy", "memory")
PLUGIN = "emotion-plugin"  # the "system" of emotion items: the classifier every variant shares


class EvaluationError(EvalError):
    """An evaluation that cannot start (a report dir in use, an unknown system)."""


@dataclass
class Progress:
    done: int
    total: int
    note: str = ""


def digest(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def item_digest(item: AnyItem) -> str:
    return digest(item.model_dump(mode="json"))


def user_of(item: AnyItem) -> str:
    """The store's user id for an item: one per item (items of one person may differ in their
    past), readable, within the store's name rules."""
    name = getattr(item, "user", "") or item.task
    safe = "".join(c if c.isalnum() or c in "_.-" else "-" for c in name)[:40].strip("-_.")
    return f"{safe or 'u'}-{item_digest(item)[:12]}"


@dataclass
class Timeline:
    """History and context lines with times (given or filled in) and session labels."""

    lines: list[tuple[Line, datetime, str]] = field(default_factory=list)

    @classmethod
    def of(cls, history: Sequence[Line], context: Sequence[Line]) -> Timeline:
        timeline = cls()
        at, label = START, None
        for n, line in enumerate([*history, *context]):
            current = "current" if n >= len(history) else (line.session or "past")
            if line.time is not None:
                at = line.time
            elif n and current != label:
                at = at + SESSION_GAP
            elif n:
                at = at + LINE_GAP
            label = current
            timeline.lines.append((line, at, current))
        return timeline

    @property
    def end(self) -> datetime:
        return self.lines[-1][1] if self.lines else START


class Evaluation:
    """One evaluation run into a report dir (see the module docstring)."""

    def __init__(
        self,
        loaded: Loaded,
        settings: Settings,
        report_dir: Path,
        *,
        systems: Sequence[str],
        judge: Judge | None = None,
        judge_name: str = "",
        rubrics: Sequence[str] = ("likert", "epitome", "personaemp"),
        pairwise: bool = False,
        limit: int | None = None,
        resume: bool = False,
        given: dict[str, Any] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        from agent.variants import variant_named

        if not systems:
            raise EvaluationError("Name at least one system (--systems full,no-memory,...).")
        for name in systems:
            variant_named(name)
        self.items = limited(loaded.items, limit, settings.seed)
        self.loaded, self.settings, self.dir = loaded, settings, report_dir
        self.systems = list(dict.fromkeys(systems))
        self.judge, self.judge_name, self.rubrics = judge, judge_name, list(rubrics)
        self.pairwise, self.resume, self.limit = pairwise, resume, limit
        self.given = dict(given or {})
        self.on_progress = on_progress or (lambda _: None)
        self._contexts: dict[str, Context] = {}
        self._agents: dict[str, Agent] = {}
        self._clocks: dict[str, SimulatedClock] = {}
        self.journal: Journal | None = None
        # A fresh work dir per run: Chroma keeps a client per path for the whole process, so a
        # path removed and reused would meet a client whose files are gone.
        self.work = self.dir / WORK_DIR / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.done: dict[str, dict[str, Any]] = {}

    # --- the report dir ----------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        models = model_digests(self.settings, self.judge_name)
        return {
            "format": FORMAT,
            "files": self.loaded.files,
            "items": len(self.items),
            "skipped_lines": self.loaded.problems,
            "systems": self.systems,
            "model": self.settings.model,
            "model_sha256": models.get(self.settings.model, {}).get("sha256"),
            "base_url": self.settings.base_url,
            "judge": self.judge_name or None,
            "judge_sha256": models.get(self.judge_name, {}).get("sha256")
            if self.judge_name
            else None,
            "rubrics": self.rubrics if self.judge else [],
            "pairwise": self.pairwise,
            "seed": self.settings.seed,
            "limit": self.limit,
            "temperature": self.settings.temperature,
            "started_at": datetime.now().astimezone().isoformat(timespec="seconds"),
            "versions": versions(),
        }

    def prepare(self) -> None:
        records = self.dir / RECORDS
        if records.exists() and not self.resume:
            raise EvaluationError(
                f"{self.dir} already holds an evaluation; pass --resume to continue it (finished "
                "steps are reused), or choose another --report dir."
            )
        if self.dir.exists() and any(self.dir.iterdir()) and not records.exists():
            raise EvaluationError(f"{self.dir} is not empty and holds no evaluation; choose "
                                  "another --report dir.")  # fmt: skip
        self.dir.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(records)
        self.done = {r["key"]: r for r in self.journal.records if "key" in r}
        write_json(self.dir / RUN_FILE, self.describe())

    # --- keys --------------------------------------------------------------------------------
    @property
    def model_key(self) -> str:
        return digest(self.settings.model, self.settings.base_url, self.settings.seed,
                      self.settings.temperature)  # fmt: skip

    def key(self, kind: str, item: AnyItem, *parts: object) -> str:
        return digest(kind, item_digest(item), self.model_key, *parts)

    def judge_key(self, item: AnyItem, system: str, rubric: str) -> str:
        return self.key("verdict", item, system, rubric, self.judge_name)

    def finished(self, key: str) -> dict[str, Any] | None:
        """The journalled result of a step, unless it failed (a failed step runs again)."""
        found = self.done.get(key)
        return None if found is None or "error" in found else found

    def record(self, record: dict[str, Any]) -> dict[str, Any]:
        assert self.journal is not None
        self.journal.append(record)
        self.done[record["key"]] = record
        return record

    # --- running -----------------------------------------------------------------------------
    def steps(self) -> int:
        turns = sum(item.task in TURN_TASKS for item in self.items) * len(self.systems)
        judged = sum(item.task == "reply" for item in self.items) * len(self.systems)
        rated = sum(item.task == "rating" for item in self.items)
        pairs = judged - sum(item.task == "reply" for item in self.items) if self.pairwise else 0
        extra = (judged + rated + pairs) if self.judge else 0
        emotions = sum(item.task == "emotion" for item in self.items)
        return turns + extra + emotions

    def run(self) -> dict[str, Any]:
        """Run every step not yet done, then write results.json and report.html; return the
        results."""
        from eval.offline.report import write_report

        self.prepare()
        total, done = self.steps(), 0

        def step(note: str) -> None:
            nonlocal done
            done += 1
            self.on_progress(Progress(done, total, note))

        self.on_progress(Progress(0, total, "starting"))
        for item in self.items:
            if isinstance(item, EmotionItem):
                self.emotion(item)
                step(item.id)
            elif isinstance(item, RatingItem):
                if self.judge:
                    self.rate(item)
                    step(item.id)
            else:
                for system in self.systems:
                    output = self.output(item, system)
                    step(f"{item.id} · {system}")
                    if isinstance(item, ReplyItem) and self.judge:
                        self.verdicts(item, system, output)
                        step(f"{item.id} · {system} · judged")
                if isinstance(item, ReplyItem) and self.judge and self.pairwise:
                    for system in self.systems:
                        if system != "full":
                            self.compare(item, system)
                            step(f"{item.id} · {system} vs full")
        self.close()
        assert self.journal is not None
        run = json.loads((self.dir / RUN_FILE).read_text(encoding="utf-8"))
        return write_report(
            self.dir, self.items, self.journal.records, self.systems,
            seed=self.settings.seed, run=run,
        )  # fmt: skip

    def close(self) -> None:
        shutil.rmtree(self.dir / WORK_DIR, ignore_errors=True)

    # --- the systems -------------------------------------------------------------------------
    def context(self, system: str) -> Context:
        if system not in self._contexts:
            from agent.context import Context
            from agent.services import Services
            from memory.clock import SimulatedClock

            if "embedder" not in self.given:  # load the shared models once for every system
                base = Services(self.settings, **self.given)
                for name in ("embedder", "emotion", "safety"):
                    self.given[name] = getattr(base, name)
            settings = self.settings.model_copy(update={
                "variant": "full" if system in ("base", PLUGIN) else system,
                "data_dir": self.work / system,
                "chroma_url": None,
            })  # fmt: skip
            clock = SimulatedClock(START)
            self._clocks[system] = clock
            self._contexts[system] = Context(settings, clock=clock, **self.given)
        return self._contexts[system]

    def agent(self, system: str) -> Agent:
        if system not in self._agents:
            from agent.runner import Agent

            self._agents[system] = Agent(self.context(system))
        return self._agents[system]

    # --- one item through one system ---------------------------------------------------------
    def output(self, item: ReplyItem | StrategyItem | MemoryItem, system: str) -> dict[str, Any]:
        key = self.key("output", item, system)
        if found := self.finished(key):
            return found
        started = time.perf_counter()
        try:
            past = self.past(item)
            record = self.answer(item, system, past)
        except (AgentError, MemoryLayerError, EvalError, OSError, ValueError) as exc:
            record = {"error": f"{type(exc).__name__}: {exc}"}
        return self.record({
            "type": "output", "key": key, "item": item.id, "task": item.task, "system": system,
            "seconds": round(time.perf_counter() - started, 3), **record,
        })  # fmt: skip

    def past(self, item: ReplyItem | StrategyItem | MemoryItem) -> dict[str, Any]:
        """Ingest the item's history and context once (base store), export the person, and
        journal the export with the traits after each history session."""
        key = self.key("past", item)
        if found := self.finished(key):
            return found
        from agent.ingest import HistoryMessage, ingest
        from memory.privacy import export_user

        context, user = self.context("base"), user_of(item)
        clock = self._clocks["base"]
        if context.store.db["users"].count_where("id = ?", [user]):
            context.forget_user(user)  # a half-done earlier attempt
        context.store.ensure_user(user)
        history = list(getattr(item, "history", []))
        timeline = Timeline.of(history, item.context if not isinstance(item, MemoryItem) else [])
        messages = [
            HistoryMessage(role=line.role, text=line.text, time=at, session=label)
            for line, at, label in timeline.lines
        ]
        curve: list[dict[str, Any]] = []
        source = f"eval-{item_digest(item)}"
        for n, label in enumerate(dict.fromkeys(m.session for m in messages[: len(history)])):
            session = [m for m in messages[: len(history)] if m.session == label]
            clock.set(session[-1].time)
            ingest(context, user, session, source=f"{source}-{n}")
            curve.append({"session": label, "traits": trait_values(context, user)})
        current = messages[len(history) :]
        if current:
            clock.set(current[-1].time)
            ingest(context, user, current, source=f"{source}-current", drain=False)
        evidence = evidence_memories(context, user, item) if isinstance(item, MemoryItem) else []
        return self.record({
            "type": "past", "key": key, "item": item.id, "user": user,
            "export": export_user(context.store.db, user), "traits_curve": curve,
            "evidence_memories": evidence, "end": timeline.end.isoformat(),
            "current_session": bool(current),
        })  # fmt: skip

    def answer(
        self, item: ReplyItem | StrategyItem | MemoryItem, system: str, past: dict[str, Any]
    ) -> dict[str, Any]:
        from memory.privacy import import_user

        context, user = self.context(system), past["user"]
        agent = self.agent(system)
        if context.store.db["users"].count_where("id = ?", [user]):
            context.forget_user(user)  # an interrupted attempt: start the item clean
        import_user(context.store.db, context.memories, past["export"])
        clock = self._clocks[system]
        clock.set(datetime.fromisoformat(past["end"]) + LINE_GAP)
        session = context.store.latest_session(user) if past["current_session"] else None
        session = session or context.store.new_session(user, f"eval {item.id}")
        message = item.question if isinstance(item, MemoryItem) else item.message
        result = agent.run_turn(user, session, message, turn_id=f"{user}-{system}")
        if result.rejected:
            return {"error": f"the message was rejected: {result.rejected}"}
        turn = context.store.get_turn(result.turn_id)
        assert turn is not None
        trace = turn.trace
        used = [m.id for m in trace.memories_used]
        owner = owners_of(context, used) if used else {}
        return {
            "user": user,
            "message": message,
            "reply": turn.reply,
            "crisis": turn.crisis,
            "emotion": trace.emotion.label if trace.emotion else None,
            "cause_span": trace.analysis.cause_span if trace.analysis else None,
            "strategy": trace.plan.strategy if trace.plan else None,
            "lens": trace.plan.lens if trace.plan else None,
            "memories": [{"id": m.id, "text": m.text} for m in trace.memories_used],
            "leaks": [i for i in used if owner.get(i) != user],
            "llm_calls": len(trace.llm_calls),
            "degraded": trace.degraded,
        }

    def emotion(self, item: EmotionItem) -> dict[str, Any]:
        key = self.key("output", item, PLUGIN)
        if found := self.finished(key):
            return found
        reading = self.context(PLUGIN).read_emotion(item.text)
        return self.record({
            "type": "output", "key": key, "item": item.id, "task": "emotion",
            "system": PLUGIN, "emotion": reading.label,
            "top": [s.label for s in reading.top[:3]],
        })  # fmt: skip

    # --- the judge ---------------------------------------------------------------------------
    def verdicts(self, item: ReplyItem, system: str, output: dict[str, Any]) -> None:
        assert self.judge is not None
        if not output.get("reply") or output.get("crisis"):
            return
        for rubric in self.rubrics:
            key = self.judge_key(item, system, rubric)
            if self.finished(key):
                continue
            try:
                verdict = self.judge.score(
                    rubric, context=judge_context(item), response=output["reply"],
                    persona=persona_notes(item),
                )  # fmt: skip
                found = {"scores": verdict.scores, "criteria": verdict.criteria}
            except EvalError as exc:
                found = {"error": str(exc)}
            self.record({"type": "verdict", "key": key, "item": item.id, "system": system,
                         "rubric": rubric, "judge": self.judge_name, **found})  # fmt: skip

    def compare(self, item: ReplyItem, system: str) -> None:
        assert self.judge is not None
        key = self.key("pair", item, system, self.judge_name)
        if self.finished(key):
            return
        mine = (self.finished(self.key("output", item, system)) or {}).get("reply")
        full = (self.finished(self.key("output", item, "full")) or {}).get("reply")
        if not mine or not full:
            return
        try:
            found = self.judge.compare(
                context=judge_context(item), first=mine, second=full, persona=persona_notes(item)
            )
            result: dict[str, Any] = {"outcome": found.outcome, "consistent": found.consistent}
        except EvalError as exc:
            result = {"error": str(exc)}
        self.record({"type": "pair", "key": key, "item": item.id, "system": system,
                     "against": "full", "judge": self.judge_name, **result})  # fmt: skip

    def rate(self, item: RatingItem) -> None:
        assert self.judge is not None
        key = self.key("rating", item, self.judge_name)
        if self.finished(key):
            return
        try:
            verdict = self.judge.score("epitome", context=item.context, response=item.response)
            found = {"scores": verdict.scores, "criteria": verdict.criteria}
        except EvalError as exc:
            found = {"error": str(exc)}
        human: dict[str, list[float]] = {}
        for rating in item.ratings:
            human.setdefault(rating.dimension, []).append(rating.value)
        self.record({
            "type": "rating", "key": key, "item": item.id, "judge": self.judge_name,
            "human": {d: sum(v) / len(v) for d, v in human.items()}, **found,
        })  # fmt: skip


def limited(items: list[AnyItem], limit: int | None, seed: int) -> list[AnyItem]:
    """At most `limit` items of each task, a reproducible random sample (so a small run still
    covers every task and does not take only the first conversations of a file), in file
    order."""
    if limit is None:
        return items
    if limit < 1:
        raise EvaluationError("--limit must be at least 1.")
    kept: set[int] = set()
    for task in TASKS:
        positions = [n for n, item in enumerate(items) if item.task == task]
        chosen = (
            positions if len(positions) <= limit else random.Random(seed).sample(positions, limit)
        )
        kept.update(chosen)
    return [item for n, item in enumerate(items) if n in kept]


def trait_values(context: Context, user: str) -> dict[str, float]:
    return {name: t.value for name, t in context.traits.values(user).items()}


def evidence_memories(context: Context, user: str, item: MemoryItem) -> list[list[str]]:
    """For each evidence line, the ids of the memories extracted from the turn that holds it."""
    turns = context.store.turns(user)
    found = []
    for index in item.evidence:
        text = " ".join(item.history[index].text.split())
        holders = [t for t in turns if text in " ".join(t.user_text.split())]
        found.append([m.id for t in holders for m in context.memories.from_turn(user, t.id)])
    return found


def judge_context(item: ReplyItem) -> str:
    """The conversation the judge sees: the last lines of this conversation and the message."""
    lines = [f"{'Person' if ln.role == 'user' else 'Companion'}: {ln.text}" for ln in item.context]
    return "\n".join([*lines[-4:], f"Person: {item.message}"])


def persona_notes(item: ReplyItem) -> str | None:
    """What the judge is told about the person (the hidden persona, never shown to systems)."""
    persona = item.persona
    if persona is None:
        return None
    parts = [persona.notes] if persona.notes else []
    if persona.traits:
        parts.append(
            "Traits (0..1): " + ", ".join(f"{k} {v:.2f}" for k, v in persona.traits.items())
        )
    if persona.preferred:
        parts.append("Likes replies that use: " + ", ".join(persona.preferred))
    if persona.disliked:
        parts.append("Dislikes replies that use: " + ", ".join(persona.disliked))
    return "\n".join(parts) or None
