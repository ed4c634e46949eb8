"""Simulations stopped and resumed: a stop mid-run, a torn or damaged journal, a turn stored but
not journalled, junk from the user simulator, another scenario refused, and kill -9 mid-run;
every step is journalled once and every turn stored once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eval.simulate.files import SimulationError, read_journal
from memory.database import open_database
from tests.sim_fakes import SchemaRouterModel
from tests.test_simulate import THREE, journal, simulation


def test_resume_after_a_stop_mid_run_duplicates_nothing(tmp_path: Path) -> None:
    class StopsOnce(SchemaRouterModel):
        replies: int = 0

        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None,
                      **kwargs: Any) -> Any:  # fmt: skip
            if not kwargs.get("response_format"):
                self.replies += 1
                if self.replies == 3:  # the first turn of session 2: as if Ctrl+C
                    raise KeyboardInterrupt
            return super()._generate(messages, stop, run_manager, **kwargs)

    with pytest.raises(KeyboardInterrupt):
        simulation(tmp_path, model=StopsOnce()).run()
    before = journal(tmp_path)
    assert [r["type"] for r in before].count("turn") == 2
    # a kill -9 mid-write leaves a torn line; the journal is cut back to whole records
    path = tmp_path / "run" / "people" / "ana" / "transcript.jsonl"
    with path.open("a") as handle:
        handle.write('{"type": "turn", "sess')
    with pytest.raises(SimulationError, match="already holds a run"):
        simulation(tmp_path).run()
    assert simulation(tmp_path, resume=True).run() == []
    records = journal(tmp_path)
    ids = [r["turn_id"] for r in records if r["type"] in ("turn", "probe")]
    assert len(ids) == len(set(ids)) == 6
    db = open_database(tmp_path / "data" / "empathos.db")
    stored = [r["id"] for r in db.table("turns").rows_where("user_id = 'ana'")]
    assert sorted(stored) == sorted(ids)  # one row per turn: nothing ran twice
    assert [r["type"] for r in records].count("session_end") == 2
    stopped = next(r for r in records if r["session"] == 1 and r["turn"] == 0)
    row = db.table("turns").get(stopped["turn_id"])  # finished under its own session's clock
    assert row["created_at"].startswith("2026-03-09") and row["completed_at"].startswith(
        "2026-03-09"
    )


def test_the_journal_keeps_whole_records_and_refuses_damage(tmp_path: Path) -> None:
    from eval.simulate.files import Journal

    path = tmp_path / "j.jsonl"
    path.write_text('{"type": "turn", "session": 0}\n{"type": "done", "session": -1}')
    journal = Journal(path)  # whole last record, only its newline lost: kept, newline added
    assert [r["type"] for r in journal.records] == ["turn", "done"]
    journal.append({"type": "error", "session": -1})
    assert [r["type"] for r in read_journal(path)] == ["turn", "done", "error"]
    path.write_text('{"type": "turn", "session": 0}\n{"type": "tu\n{"type": "done"}\n')
    with pytest.raises(SimulationError, match="line 2 is not JSON"):
        read_journal(path)


def test_a_turn_finished_but_not_journalled_is_taken_from_the_store(tmp_path: Path) -> None:
    simulation(tmp_path).run()
    path = tmp_path / "run" / "people" / "ana" / "transcript.jsonl"
    records = read_journal(path)
    kept = records[: next(i for i, r in enumerate(records) if r["type"] == "session_end")]
    lost = kept.pop()  # the second turn: in the store, not in the journal
    path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    model = SchemaRouterModel()
    assert simulation(tmp_path, model=model, resume=True).run() == []
    again = next(r for r in journal(tmp_path) if r["type"] == "turn" and r["turn"] == 1)
    assert again["turn_id"] == lost["turn_id"] and again["reply"] == lost["reply"]
    # every turn was already in the store: none ran again, only the simulator reacted anew
    assert "reply" not in model.calls and "CauseAnalysis" not in model.calls
    assert model.calls["FixedReaction"] >= 1
    after = [r["reply"] for r in journal(tmp_path) if r["type"] in ("turn", "probe")]
    assert after == [r["reply"] for r in records if r["type"] in ("turn", "probe")]


def test_junk_from_the_simulator_stops_the_person_clearly_and_resume_finishes(
    tmp_path: Path,
) -> None:
    junk = SchemaRouterModel(junk_for=frozenset({"Reaction", "FixedReaction"}))
    assert simulation(tmp_path, model=junk).run() == ["ana"]
    records = journal(tmp_path)
    assert records[-1]["type"] == "error" and "simulator" in records[-1]["error"]
    assert "Stopped" in (tmp_path / "run" / "people" / "ana" / "transcript.md").read_text()
    assert [r["type"] for r in records].count("turn") == 0  # nothing half-recorded
    assert simulation(tmp_path, resume=True).run() == []
    records = journal(tmp_path)
    assert records[-1]["type"] == "done"
    first = next(r for r in records if r["type"] == "session_end")
    assert first["memory_jobs"] > 0 and first["memories"] >= 1 and first["traits"]


def test_resume_refuses_another_scenario(tmp_path: Path) -> None:
    simulation(tmp_path).run()
    with pytest.raises(SimulationError, match="scenario_sha256"):
        simulation(tmp_path, THREE, resume=True).run()


def test_kill_9_mid_run_then_resume_duplicates_nothing(tmp_path: Path) -> None:
    """SIGKILL the run three times at random moments; resume each time; then check that every
    step is journalled once and every turn stored once."""
    import random
    import signal
    import subprocess
    import sys
    import time

    rng, killed = random.Random(7), 0
    root = Path(__file__).parents[1]
    for _ in range(3):
        child = subprocess.Popen([sys.executable, "-m", "tests.sim_child", str(tmp_path)], cwd=root)
        first = tmp_path / "run" / "people" / "ana" / "transcript.jsonl"
        deadline = time.monotonic() + 60
        while not first.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the child is starting up: kill it once it is running turns
        time.sleep(rng.uniform(0.0, 1.5))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            killed += 1
        child.wait(timeout=60)
    assert killed >= 1
    assert simulation(tmp_path, THREE, resume=True).run() == []
    db = open_database(tmp_path / "data" / "empathos.db")
    for who in ("ana", "bo", "cy"):
        records = journal(tmp_path, who)
        ids = [r["turn_id"] for r in records if r["type"] in ("turn", "probe")]
        assert len(ids) == len(set(ids)) == 6
        assert [r["type"] for r in records].count("session_end") == 2
        stored = [r["id"] for r in db.table("turns").rows_where("user_id = ?", [who])]
        assert sorted(stored) == sorted(ids)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["finished"] == 3
