"""One person's sessions in a simulation, resumable step by step (`eval.simulate.run` runs
every person): ingest a history session, or live turns of the real graph with the user
simulator's reactions and next messages, then the session's memory work, the inferred traits
beside the hidden ones, and the probes. Every step is journalled before the next begins."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from eval.offline.metrics import mentions_any
from eval.simulate.files import Journal, SimulationError, write_json
from eval.simulate.scenario import Person, Scenario, Session
from eval.simulate.summary import person_report
from eval.simulate.tables import transcript_markdown

if TYPE_CHECKING:
    from agent.context import Context
    from agent.runner import Agent
    from agent.settings import Settings
    from eval.simulate.user_sim import UserSimulator
    from memory.store import Turn

TURN_MINUTES = 3  # the simulated time between two turns of a session
PROBE_DELAY = timedelta(hours=1)  # probes come an hour after their session's last turn
LEAVES = "(you say goodbye and leave the conversation)"  # the next "message" after the last


@dataclass(frozen=True)
class Progress:
    """One step done: for a progress display."""

    person: str
    session: int
    sessions: int
    turns: int  # live turns done by this person so far (probes included)
    note: str = ""


def stable_id(*parts: object) -> str:
    """A short id derived from the parts: the same scenario gives the same ids every run."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()
    return f"sim-{digest[:20]}"


@dataclass
class SharedServices:
    """What every person's context shares: the models and plug-ins (loaded once)."""

    settings: Settings
    given: dict[str, Any] = field(default_factory=dict)

    def load(self) -> None:
        """Load the embedder and the plug-ins once for every person (the chat models share
        their llama.cpp contexts anyway, per role, across instances)."""
        from agent.services import Services

        base = Services(self.settings, **self.given)
        for name in ("embedder", "emotion", "safety"):
            self.given.setdefault(name, getattr(base, name))

    def context(self, clock: Any) -> Context:
        from agent.context import Context

        return Context(self.settings, clock=clock, **self.given)


class Host(Protocol):
    """What a person's run needs from the simulation running it (`eval.simulate.run`)."""

    scenario: Scenario
    shared: SharedServices
    last_reaction: bool
    on_progress: Callable[[Progress], None]

    def person_dir(self, person_id: str) -> Path: ...

    def simulator(self, person: Person) -> UserSimulator: ...


class PersonRun:
    """One person's sessions, resumable step by step."""

    def __init__(self, sim: Host, person: Person, journal: Journal) -> None:
        from memory.clock import SimulatedClock

        self.sim, self.person, self.journal = sim, person, journal
        self.start = sim.scenario.start
        self.clock = SimulatedClock(person.sessions[0].when(self.start))
        self._context: Context | None = None
        self._agent: Agent | None = None
        self._simulator: UserSimulator | None = None
        self._resumed = False  # whether turns a stop left pending were looked for
        self.turns_done = sum(1 for r in journal.records if r["type"] in ("turn", "probe"))

    @property
    def context(self) -> Context:
        if self._context is None:
            self._context = self.sim.shared.context(self.clock)
        return self._context

    @property
    def agent(self) -> Agent:
        if self._agent is None:
            from agent.runner import Agent

            self._agent = Agent(self.context)
        return self._agent

    @property
    def simulator(self) -> UserSimulator:
        if self._simulator is None:
            self._simulator = self.sim.simulator(self.person)
        return self._simulator

    def id(self, *parts: object) -> str:
        return stable_id(self.sim.scenario.name, self.person.id, *parts)

    def run(self) -> None:
        if self.journal.find("done", -1) is not None:
            return
        self.context.store.ensure_user(self.person.id)
        for index, session in enumerate(self.person.sessions):
            if self.journal.find("session_end", index) is None:
                if session.kind == "history":
                    self.ingest(index, session)
                else:
                    self.live(index, session)
            for number, _ in enumerate(session.probes):
                if self.journal.find("probe", index, number) is None:
                    self.probe(index, session, number)
        self.journal.append({"type": "done", "session": -1, "turn": None})
        self.report()

    def progress(self, session: int, note: str = "") -> None:
        self.sim.on_progress(
            Progress(self.person.id, session, len(self.person.sessions), self.turns_done, note)
        )

    # --- sessions ----------------------------------------------------------------------------
    def ingest(self, index: int, session: Session) -> None:
        from agent.ingest import HistoryMessage, ingest

        when = session.when(self.start)
        self.clock.set(when)
        assert session.history is not None
        messages = [
            HistoryMessage(
                role=line.role,
                text=line.text,
                session=f"session {index + 1}",
                time=line.at(when),
            )  # fmt: skip
            for line in session.history
        ]
        report = ingest(self.context, self.person.id, messages, source=self.id("history", index))
        self.end_session(index, session, None, {"ingested": vars_of(report)})

    def live(self, index: int, session: Session) -> None:
        from eval.simulate.user_sim import Emotion

        when = session.when(self.start)
        self.clock.set(when)
        session_id = self.context.store.new_session(
            self.person.id, f"{self.sim.scenario.name}: session {index + 1}",
            session_id=self.id("session", index),
        )  # fmt: skip
        emotion, conversation = Emotion(), []
        message = session.script[0] if session.script else session.simulate.opening  # type: ignore[union-attr]
        stored = self.context.store.get_turn(self.id("turn", index, 0))
        if message is None and stored is not None:  # a stop after the turn, before its journal
            message = stored.user_text
        if message is None and self.journal.find("turn", index, 0) is None:
            assert session.simulate is not None
            message, _ = self.simulator.open(
                goal=session.goal, situation=session.simulate.situation,
                emotion=emotion.score, today=when.date(),
            )  # fmt: skip
        budget = len(session.script) if session.script else session.simulate.turns  # type: ignore[union-attr]
        outcome: str | None = None
        for number in range(budget):
            done = self.journal.find("turn", index, number)
            if done is not None:  # journalled before a stop: replay it into the state
                conversation += [("user", done["message"]), ("assistant", done["reply"] or "")]
                if done.get("emotion") is not None:
                    emotion.apply(done["reaction"]["emotion_change"])
                message, outcome = done.get("next_message"), done.get("outcome")
                if outcome or message is None:
                    break
                continue
            self.clock.set(when + timedelta(minutes=TURN_MINUTES * number))
            assert message is not None  # an opening, a script line or the simulator's message
            turn, seconds = self.turn(self.id("turn", index, number), session_id, message)
            conversation += [("user", message), ("assistant", turn.reply or "")]
            last = number == budget - 1
            following = session.script[number + 1] if session.script and not last else None
            reaction: Any = None
            reacting = time.perf_counter()
            if turn.crisis:  # a false alarm: a simulated person leaves, a script goes on
                next_message = following
            elif last and not self.sim.last_reaction:
                next_message = None
            else:
                reaction, _ = self.simulator.react(
                    conversation, goal=session.goal,
                    situation=session.simulate.situation if session.simulate else None,
                    next_fixed=LEAVES if last else following,
                    emotion=emotion.score, today=self.clock.now().date(),
                )  # fmt: skip
                emotion.apply(reaction.emotion_change)
                outcome = emotion.outcome if session.simulate else None
                next_message = None if last or outcome else (following or reaction.message)
            self.record_turn(
                turn, index, number, message, seconds, kind=session.kind,
                reaction=reaction.model_dump() if reaction is not None else None,
                emotion=emotion.score if reaction is not None else None,
                simulator_seconds=round(time.perf_counter() - reacting, 3),
                next_message=next_message, outcome=outcome,
            )  # fmt: skip
            self.progress(index)
            if outcome or next_message is None:
                break
            message = next_message
        if session.crisis and self.journal.find("turn", index, budget) is None:
            self.clock.set(when + timedelta(minutes=TURN_MINUTES * budget))
            turn, seconds = self.turn(self.id("turn", index, budget), session_id, session.crisis)
            self.record_turn(
                turn, index, budget, session.crisis, seconds, kind="crisis", crisis_expected=True
            )
            self.progress(index)
        self.end_session(index, session, session_id, {"outcome": outcome})

    def turn(self, turn_id: str, session_id: str, message: str) -> tuple[Turn, float]:
        """Run a turn, or take it from the store if a stop came after it finished."""
        store = self.context.store
        started = time.perf_counter()
        if not self._resumed:  # a turn a stop left half-done is this one: the clock is set
            self._resumed = True
            self.agent.resume_pending(self.person.id)
        stored = store.get_turn(turn_id)
        if stored is None or stored.status != "done":
            result = self.agent.run_turn(self.person.id, session_id, message, turn_id=turn_id)
            if result.rejected:
                raise SimulationError(
                    f"{self.person.id}: the message {message[:60]!r} was rejected: "
                    f"{result.rejected}"
                )
            stored = store.get_turn(turn_id)
        assert stored is not None
        return stored, round(time.perf_counter() - started, 3)

    def record_turn(
        self, turn: Turn, session: int, number: int, message: str, seconds: float, *,
        kind: str, type_: str = "turn", crisis_expected: bool = False, **extra: Any,
    ) -> None:  # fmt: skip
        self.turns_done += 1
        self.journal.append({
            "type": type_, "session": session, "turn": number, "kind": kind,
            "at": turn.created_at, "turn_id": turn.id, "message": message, "reply": turn.reply,
            "crisis": turn.crisis, "crisis_expected": crisis_expected,
            "strategy": turn.trace.plan.strategy if turn.trace.plan else None,
            "lens": turn.trace.plan.lens if turn.trace.plan else None,
            "seconds": seconds, "leaks": self.leaks(turn),
            "trace": turn.trace.model_dump(mode="json"),
            "reaction": None,
            "emotion": None,
            "next_message": None,
            "outcome": None, **extra,
        })  # fmt: skip

    def leaks(self, turn: Turn) -> list[str]:
        """Memories this turn recalled that are not this person's (must always be empty)."""
        ids = [m.id for m in turn.trace.memories_used]
        if not ids:
            return []
        owners = owners_of(self.context, ids)
        return [i for i in ids if owners.get(i) != self.person.id]

    def end_session(
        self, index: int, session: Session, session_id: str | None, extra: dict[str, Any]
    ) -> None:
        """Run the person's memory work under their clock, then record the agent's view."""
        jobs = self.context.finish_memory_work(user_id=self.person.id)
        traits = {
            name: {"value": t.value, "confidence": t.confidence, "source": t.source}
            for name, t in self.context.traits.values(self.person.id).items()
        }
        self.journal.append({
            "type": "session_end", "session": index, "turn": None, "kind": session.kind,
            "at": session.when(self.start).isoformat(), "session_id": session_id,
            "memory_jobs": jobs, "traits": traits, "truth": self.person.truth(),
            "memories": len(self.context.memories.all(self.person.id)),
            "by_signal": self.context.traits.estimates_by_kind(self.person.id), **extra,
        })  # fmt: skip
        self.progress(index, "session done")
        self.report()

    def probe(self, index: int, session: Session, number: int) -> None:
        probe = session.probes[number]
        last_turn = TURN_MINUTES * session.turn_budget()
        self.clock.set(
            session.when(self.start) + timedelta(minutes=last_turn + number) + PROBE_DELAY
        )
        session_id = self.context.store.new_session(
            self.person.id, f"{self.sim.scenario.name}: probe after session {index + 1}",
            session_id=self.id("probe-session", index, number),
        )  # fmt: skip
        turn, seconds = self.turn(self.id("probe", index, number), session_id, probe.question)
        recalled = " ".join(m.text for m in turn.trace.memories_used)
        self.record_turn(
            turn, index, number, probe.question, seconds, kind="probe", type_="probe",
            expect_any=probe.expect_any, reference=probe.reference,
            reply_hit=mentions_any(turn.reply or "", probe.expect_any),
            memory_hit=mentions_any(recalled, probe.expect_any),
        )  # fmt: skip
        self.progress(index, "probe")

    def report(self) -> None:
        """Rewrite the person's readable transcript and per-person report from the journal."""
        folder = self.sim.person_dir(self.person.id)
        write_json(folder / "person.json", person_report(self.person, self.journal.records))
        (folder / "transcript.md").write_text(
            transcript_markdown(self.sim.scenario, self.person, self.journal.records),
            encoding="utf-8",
        )


def owners_of(context: Context, memory_ids: list[str]) -> dict[str, str]:
    """Who each memory belongs to, read from the store without a user filter (the check)."""
    marks = ",".join("?" * len(memory_ids))
    rows = context.store.db.execute(
        f"select id, user_id from memories where id in ({marks})", memory_ids
    ).fetchall()
    return {row[0]: row[1] for row in rows}


def vars_of(report: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(report).items() if isinstance(v, int | str | float)}
