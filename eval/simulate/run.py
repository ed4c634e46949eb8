"""Run a scenario: live weeks with each person on a simulated clock, and write what happened.

`Simulation(scenario, settings, out).run()` takes every person of the scenario (or a shard of
them) through their sessions in order, all in one shared data dir (as the users of one install
share it), each on their own `SimulatedClock`:
- `history` sessions are ingested into memory (`agent.ingest`, the path of `empathos memory
  ingest`) at the session's date;
- `script` and `simulate` sessions are real turns of the real graph; after each reply the user
  simulator (`eval.simulate.user_sim`) gives its reaction and SAGE emotion change, and, in a
  simulated session, writes the person's next message;
- a session's crisis moment is sent last and must get the crisis reply;
- at the end of a session the person's memory jobs run (under their clock) and the agent's
  inferred traits are recorded beside the hidden truth; then the probes are asked.

Every finished step is appended to the person's `transcript.jsonl` (flushed and synced) before
the next begins; ids of sessions and turns are derived from the scenario, person and position,
so `resume` skips what is written, reuses a turn the store finished but the journal missed (a
kill between the two), and never duplicates one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import AgentError
from eval.errors import EvalError
from eval.simulate.files import (
    PEOPLE_DIR,
    RUN_FILE,
    Journal,
    SimulationError,
    model_digests,
    scenario_digest,
    versions,
    write_json,
)
from eval.simulate.person_run import PersonRun, Progress, SharedServices
from eval.simulate.scenario import Person, Scenario
from eval.simulate.summary import summarize_run
from memory.errors import MemoryLayerError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agent.llm import StructuredMethod
    from agent.settings import Settings
    from eval.simulate.user_sim import UserSimulator

FORMAT = 1


@dataclass(frozen=True)
class Shard:
    """The I-th of N deterministic shares of the people (1-based): person k goes to shard
    k mod N + 1, in the scenario's order."""

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise SimulationError(f"--shard {text!r}: write I/N, e.g. 2/4.") from None
        if not 1 <= index <= count:
            raise SimulationError(f"--shard {text!r}: I must be between 1 and N.")
        return cls(index, count)

    def people(self, scenario: Scenario) -> list[Person]:
        return [p for k, p in enumerate(scenario.people) if k % self.count == self.index - 1]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class Simulation:
    """A scenario run into a run dir (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        settings: Settings,
        out: Path,
        *,
        scenario_file: Path | None = None,
        user_model: tuple[BaseChatModel, StructuredMethod] | None = None,
        user_model_name: str = "",
        concurrency: int = 1,
        shard: Shard = Shard(),
        resume: bool = False,
        last_reaction: bool = True,
        given: dict[str, Any] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise SimulationError("--concurrency must be at least 1.")
        self.scenario, self.out, self.shard = scenario, out, shard
        self.settings = settings
        self.scenario_file, self.concurrency, self.resume = scenario_file, concurrency, resume
        self.user_model, self.user_model_name = user_model, user_model_name
        self.last_reaction = last_reaction  # False: no SAGE reaction to a session's last reply
        self.shared = SharedServices(self.settings, dict(given or {}))
        self.on_progress = on_progress or (lambda _: None)
        self._lock = threading.Lock()

    # --- the run dir -------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """What run.json says about this run (compared on resume, kept by merge)."""
        return {
            "format": FORMAT,
            "scenario": self.scenario.model_dump(mode="json"),
            "scenario_sha256": scenario_digest(self.scenario),
            "scenario_file": str(self.scenario_file) if self.scenario_file else None,
            "seed": self.settings.seed,
            "shard": str(self.shard),
            "people": [p.id for p in self.shard.people(self.scenario)],
            "settings": {
                "model": self.settings.model,
                "base_url": self.settings.base_url,
                "variant": self.settings.variant,
                "analysis": self.settings.analysis,
                "temperature": self.settings.temperature,
                "max_tokens": self.settings.max_tokens,
                "user_model": self.user_model_name or self.settings.model,
                "data_dir": str(self.settings.data_dir),
                "chroma_url": self.settings.chroma_url,
            },  # fmt: skip
        }

    def prepare(self) -> None:
        """Create the run dir, or check that `resume` continues the same run."""
        run_file = self.out / RUN_FILE
        described = self.describe()
        if run_file.exists():
            if not self.resume:
                raise SimulationError(
                    f"{self.out} already holds a run; pass --resume to continue it, or choose "
                    "another --out."
                )
            before = json.loads(run_file.read_text(encoding="utf-8"))
            for key in ("scenario_sha256", "seed", "shard"):
                if before.get(key) != described[key]:
                    raise SimulationError(
                        f"{self.out} was started with a different {key} ({before.get(key)} vs "
                        f"{described[key]}); resume with the same scenario and options, or use "
                        "a new --out."
                    )
            for key in ("model", "base_url", "variant", "user_model", "data_dir", "chroma_url"):
                if before["settings"].get(key) != described["settings"][key]:
                    raise SimulationError(
                        f"{self.out} was started with {key} {before['settings'].get(key)!r}, "
                        f"not {described['settings'][key]!r}: resume with the same models."
                    )
            return
        if self.out.exists() and any(self.out.iterdir()) and not self.resume:
            raise SimulationError(
                f"{self.out} is not empty and holds no run; choose another --out."
            )
        (self.out / PEOPLE_DIR).mkdir(parents=True, exist_ok=True)
        described |= {
            "started_at": datetime.now().astimezone().isoformat(timespec="seconds"),
            "models": model_digests(self.settings, self.user_model_name),
            "versions": versions(),
        }
        write_json(run_file, described)

    # --- running -----------------------------------------------------------------------------
    def run(self) -> list[str]:
        """Run every person of the shard; return the ids of people who could not finish
        (each with the reason in their journal). Raises only for a run that cannot start."""
        self.prepare()
        self.shared.load()
        people = self.shard.people(self.scenario)
        failed: list[str] = []
        if self.concurrency == 1 or len(people) == 1:
            failed = [p.id for p in people if not self._person_safely(p)]
        else:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="empathos-sim") as pool:
                futures = {pool.submit(self._person_safely, p): p.id for p in people}
                failed = sorted(futures[f] for f in as_completed(futures) if not f.result())
        summarize_run(self.out)
        return failed

    def _person_safely(self, person: Person) -> bool:
        journal = Journal(self.person_dir(person.id) / "transcript.jsonl")
        runner = PersonRun(self, person, journal)
        try:
            runner.run()
            return True
        except (EvalError, AgentError, MemoryLayerError, OSError, ValueError) as exc:
            journal.append({"type": "error", "session": -1, "turn": None, "error": str(exc)})
            runner.report()
            self.on_progress(Progress(person.id, -1, len(person.sessions), 0, f"stopped: {exc}"))
            return False

    def person_dir(self, person_id: str) -> Path:
        path = self.out / PEOPLE_DIR / person_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def simulator(self, person: Person) -> UserSimulator:
        from eval.simulate.user_sim import UserSimulator, build_user_model

        with self._lock:
            if self.user_model is None:
                self.user_model = build_user_model(self.settings)
            model, method = self.user_model
        return UserSimulator(model, person.card, method=method, name=person.id)
