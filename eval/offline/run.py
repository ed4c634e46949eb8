"""`empathos eval run`: benchmark items through several configurations of the graph, side by side.

    evaluation = Evaluation(loaded, settings, Path("report"), systems=["full", "no-memory"],
                            judge=judge, judge_name="qwen2.5-coder-0.5b")
    evaluation.run()          # records.jsonl grows item by item; then results.json, report.html

The systems are the pipeline variants of `agent.variants` (real configurations of the one
graph). For each item that needs a turn (`reply`, `strategy`, `memory`; `eval.offline.turns`):

1. the person's past is prepared once per (person, history): `history` sessions are ingested
   through `agent.ingest` one at a time into a base store (memories extracted, traits
   inferred; the traits after each session are the trait-error curve, each history line's
   memories the evidence for recall@k), and the person is exported
   (`memory.privacy.export_user`) into the journal;
2. each system imports that export into its own store (one data dir per system; one user per
   person and history, so what one system says never reaches another's context), stores the
   earlier lines of this conversation (not mined), and answers the message as one real turn
   (`agent.runner.Agent.run_turn`) under a simulated clock a minute after the last line;
3. the reply and a summary of its trace are journalled; the judge then rates each reply on
   each rubric, and with `pairwise` compares it with `full`'s reply, both orders
   (`eval.offline.judging`).

`emotion` items go through the emotion plug-in the variants share (single-call reads no
emotion); `rating` items are rated by the judge to check it against humans.

Every step is appended to `records.jsonl` (fsynced) under a key of what it was given
(`eval.offline.inputs`: an output's key is the item's inputs, the system, the model and
sampling; a verdict's adds the persona notes, rubric and judge), so `resume` skips what is
done, a changed input, model or judge runs again, and corrected gold only re-scores. A step
that fails is journalled with its reason and retried on resume; the run goes on meanwhile.
The report is built from this run's steps only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import AgentError
from eval.errors import EvalError
from eval.offline.inputs import (
    START,
    EvaluationError,
    digest,
    input_digest,
    limited,
    past_digest,
)
from eval.offline.items import (
    AnyItem,
    EmotionItem,
    Loaded,
    MemoryItem,
    RatingItem,
    ReplyItem,
    StrategyItem,
)
from eval.offline.judging import JudgeSteps
from eval.offline.turns import answer_item, ingest_past
from eval.simulate.files import Journal, model_digests, versions, write_json
from memory.errors import MemoryLayerError
from memory.jobs import process_alive
from memory.privacy import remove_tree

if TYPE_CHECKING:
    from agent.context import Context
    from agent.runner import Agent
    from agent.settings import Settings
    from eval.offline.judge import Judge
    from memory.clock import SimulatedClock

log = logging.getLogger(__name__)
RECORDS = "records.jsonl"
RUN_FILE = "run.json"
WORK_DIR = "work"
FORMAT = "empathos-eval/1"
TURN_TASKS = ("reply", "strategy", "memory")
PLUGIN = "emotion-plugin"  # the "system" of emotion items: the classifier every variant shares


@dataclass
class Progress:
    done: int
    total: int
    note: str = ""


class Evaluation(JudgeSteps):
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
        judge_sha: str = "",
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
        self.judge_sha = judge_sha
        if pairwise and "full" not in systems:
            raise EvaluationError("--pairwise compares each system with full: add full to "
                                  "--systems.")  # fmt: skip
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
        self.used: list[tuple[str, str]] = []  # (key, item id) of this run's steps, in order

    # --- the report dir ----------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        models = model_digests(self.settings, "")
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
            "judge_sha256": self.judge_sha or None,
            "judge_is_agent": bool(self.judge_sha)
            and self.judge_sha == models.get(self.settings.model, {}).get("sha256"),
            "rubrics": self.rubrics if self.judge else [],
            "pairwise": self.pairwise,
            "seed": self.settings.seed,
            "limit": self.limit,
            "temperature": self.settings.temperature,
            "started_at": datetime.now().astimezone().isoformat(timespec="seconds"),
            "versions": versions(),
        }

    def prepare(self) -> None:
        """Create the report dir, or check that `resume` continues one made with the same
        model and judge files."""
        records, run_file = self.dir / RECORDS, self.dir / RUN_FILE
        started = records.exists() or run_file.exists()
        if started and not self.resume:
            raise EvaluationError(
                f"{self.dir} already holds an evaluation; pass --resume to continue it (finished "
                "steps are reused), or choose another --report dir."
            )
        if self.dir.exists() and any(self.dir.iterdir()) and not started:
            raise EvaluationError(f"{self.dir} is not empty and holds no evaluation; choose "
                                  "another --report dir.")  # fmt: skip
        described = self.describe()
        if run_file.exists():
            before = json.loads(run_file.read_text(encoding="utf-8"))
            for key, what in (("model_sha256", "model"), ("judge_sha256", "judge")):
                known = before.get(key) and described[key]  # an endpoint's weights are unknown
                if before.get(what) == described[what] and known and before[key] != described[key]:
                    raise EvaluationError(
                        f"{self.dir} was made with another file for the {what} "
                        f"{described[what]!r} (sha256 {before.get(key)} vs {described[key]}); "
                        "use another --report dir."
                    )
        self.dir.mkdir(parents=True, exist_ok=True)
        remove_stale_work(self.dir / WORK_DIR)
        self.journal = Journal(records)
        self.done = {r["key"]: r for r in self.journal.records if "key" in r}
        write_json(run_file, described)

    # --- keys --------------------------------------------------------------------------------
    @property
    def model_key(self) -> str:
        """The agent's model and sampling (run.json keeps the file's sha256; resuming with
        another file under the same name is refused)."""
        return digest(self.settings.model, self.settings.base_url, self.settings.seed,
                      self.settings.temperature, self.settings.max_tokens)  # fmt: skip

    def output_key(self, item: AnyItem, system: str) -> str:
        return digest("output", input_digest(item), self.model_key, system)

    def past_key(self, item: AnyItem) -> str:
        return digest("past", past_digest(item), self.model_key)

    def emotion_key(self, item: EmotionItem) -> str:
        return digest("emotion", item.text)

    def finished(self, key: str, item: str | None = None) -> dict[str, Any] | None:
        """The journalled result of a step, unless it failed (a failed step runs again); with
        `item`, the step is one of this run's (the report reads only those)."""
        if item is not None:
            self.used.append((key, item))
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
        run = json.loads((self.dir / RUN_FILE).read_text(encoding="utf-8"))
        return write_report(self.dir, self.items, self.current(), self.systems,
                            seed=self.settings.seed, run=run)  # fmt: skip

    def current(self) -> list[dict[str, Any]]:
        """This run's records, each under the item it was used for (a record shared by items
        with the same inputs appears once per item); stale records of changed items, other
        models or judges stay in the journal but out of the report."""
        seen: set[tuple[str, str]] = set()
        found = []
        for key, item in self.used:
            if (key, item) not in seen and key in self.done:
                seen.add((key, item))
                found.append({**self.done[key], "item": item})
        return found

    def close(self) -> None:
        warn_left(remove_tree(self.work))
        with contextlib.suppress(OSError):  # only if no other run works here
            (self.dir / WORK_DIR).rmdir()

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
        key = self.output_key(item, system)
        self.finished(self.past_key(item), item.id)  # its past's traits are this run's too
        if found := self.finished(key, item.id):
            return found
        try:
            past, context = self.past(item), self.context(system)
            record = answer_item(context, self.agent(system), self._clocks[system], item, past)
        except (AgentError, MemoryLayerError, EvalError, OSError, ValueError) as exc:
            record = {"error": f"{type(exc).__name__}: {exc}"}
        return self.record({"type": "output", "key": key, "item": item.id, "task": item.task,
                            "system": system, **record})  # fmt: skip

    def past(self, item: ReplyItem | StrategyItem | MemoryItem) -> dict[str, Any]:
        """The person's past (`eval.offline.turns.ingest_past`), prepared once per history."""
        key = self.past_key(item)
        if found := self.finished(key, item.id):
            return found
        found = ingest_past(self.context("base"), self._clocks["base"], item)
        return self.record({"type": "past", "key": key, "item": item.id, **found})

    def emotion(self, item: EmotionItem) -> dict[str, Any]:
        key = self.emotion_key(item)
        if found := self.finished(key, item.id):
            return found
        try:
            reading = self.context(PLUGIN).read_emotion(item.text)
            found = {"emotion": reading.label, "top": [s.label for s in reading.top[:3]]}
        except (AgentError, OSError, ValueError) as exc:
            found = {"error": f"{type(exc).__name__}: {exc}"}
        return self.record({"type": "output", "key": key, "item": item.id, "task": "emotion",
                            "system": PLUGIN, **found})  # fmt: skip


def remove_stale_work(folder: Path) -> None:
    """Remove the work dirs of runs whose process is gone (a kill leaves its stores behind;
    everything they held is in the journal)."""
    if not folder.is_dir():
        return
    for work in folder.iterdir():
        pid = work.name.split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            warn_left(remove_tree(work))


def warn_left(failures: list[str]) -> None:
    """Say what of a work dir could not be removed (its contents are in the journal)."""
    for failure in failures:
        log.warning("could not remove %s", failure)
