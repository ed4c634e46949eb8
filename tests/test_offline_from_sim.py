"""Benchmark items from a simulation run: reply and memory items from a run's transcripts."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from eval.offline.from_sim import CRISIS, items_from_run
from eval.offline.importers import SourceError
from eval.offline.items import (
    MemoryItem,
    ReplyItem,
    load_items,
    write_items,
)
from eval.simulate.scenario import Scenario
from tests.test_offline_items import jsonl

SCENARIO = {
    "name": "tiny", "start": "2026-03-02", "people": [{
        "id": "ana",
        "card": {
            "background": "Ana, 30, nurse.",
            "big_five": {"openness": 0.5, "conscientiousness": 0.6, "extraversion": 0.4,
                         "agreeableness": 0.7, "neuroticism": 0.8},
            "support": {"wants_to_be_heard": 0.9, "wants_advice": 0.1,
                        "preferred_strategies": ["Reflection of feelings"],
                        "disliked_strategies": ["Providing Suggestions"]},
        },
        "sessions": [
            {"day": 0, "history": [
                {"role": "user", "text": "my cat Biscuit is ill", "minute": 0},
                {"role": "assistant", "text": "I'm sorry Biscuit is ill.", "minute": 1}]},
            {"day": 7, "script": ["the vet called", "she has to stay in"],
             "crisis": "I want to end it all",
             "probes": [{"question": "what is my cat called?", "expect_any": ["Biscuit"]}]},
        ],
    }],
}  # fmt: skip


def turn(
    session: int, number: int, message: str, reply: str | None, **extra: Any
) -> dict[str, Any]:
    """A journal record as `PersonRun.record_turn` writes it (trace left out)."""
    minute = 3 * number
    return {
        "type": "turn", "session": session, "turn": number, "kind": "script",
        "at": f"2026-03-09T19:{minute:02d}:00.000+00:00", "turn_id": f"t{session}{number}",
        "message": message, "reply": reply, "crisis": False, "crisis_expected": False,
        "strategy": "Question", "lens": None, "seconds": 1.0, "leaks": [], "trace": {},
        "reaction": None, "emotion": None, "next_message": None, "outcome": None, **extra,
    }  # fmt: skip


def session_end(session: int, kind: str) -> dict[str, Any]:
    truth = Scenario.model_validate(SCENARIO).people[0].truth()
    return {
        "type": "session_end", "session": session, "turn": None, "kind": kind,
        "at": f"2026-03-0{2 + 7 * session}T19:00:00+00:00", "session_id": None,
        "memory_jobs": 0, "traits": {}, "truth": truth, "memories": 1,
    }  # fmt: skip


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-run"
    (folder / "people" / "ana").mkdir(parents=True)
    scenario = Scenario.model_validate(SCENARIO).model_dump(mode="json")
    (folder / "run.json").write_text(json.dumps({"format": 1, "scenario": scenario}))
    records = [
        session_end(0, "history"),
        turn(1, 0, "the vet called", "What did the vet say?"),
        turn(1, 1, "she has to stay in", "She has to stay in overnight."),
        turn(1, 2, "I want to end it all", "crisis reply", kind="crisis", crisis=True,
             crisis_expected=True),
        session_end(1, "script"),
        {**turn(1, 0, "what is my cat called?", "Biscuit."), "type": "probe", "kind": "probe",
         "at": "2026-03-09T20:00:00.000+00:00", "expect_any": ["Biscuit"],
         "reference": "", "reply_hit": True, "memory_hit": True},
        {"type": "done", "session": -1, "turn": None},
    ]  # fmt: skip
    jsonl(folder / "people" / "ana" / "transcript.jsonl", *records, "{torn")
    return folder


def test_items_from_a_run(run_dir: Path) -> None:
    converted = items_from_run(run_dir)
    by_id = {item.id: item for item in converted.items}
    assert set(by_id) == {"tiny-run-ana-s2-t1", "tiny-run-ana-s2-t2", "tiny-run-ana-s2-probe1"}
    assert converted.tally == {CRISIS: 1}
    assert converted.problems == [
        "ana/transcript.jsonl line 8: not valid JSON (Expecting "
        "property name enclosed in double quotes); skipped."
    ]
    first, second = by_id["tiny-run-ana-s2-t1"], by_id["tiny-run-ana-s2-t2"]
    assert isinstance(first, ReplyItem) and isinstance(second, ReplyItem)
    assert first.source == f"simulation {run_dir} (scenario tiny)"
    assert first.persona is not None
    assert first.persona.traits["neuroticism"] == 0.8
    assert first.persona.traits["wants_to_be_heard"] == 0.9
    assert first.gold.preferred == ["Reflection of feelings"]
    assert first.gold.disliked == ["Providing Suggestions"]
    assert [(line.role, line.text, line.session) for line in first.history] == [
        ("user", "my cat Biscuit is ill", "session 1"),
        ("assistant", "I'm sorry Biscuit is ill.", "session 1"),
    ]
    assert first.history[1].time == datetime.fromisoformat("2026-03-02T19:01:00+00:00")
    assert first.context == [] and first.message == "the vet called"
    assert [line.text for line in second.context] == ["the vet called", "What did the vet say?"]
    assert second.context[0].time == datetime.fromisoformat("2026-03-09T19:00:00+00:00")
    assert second.history == first.history
    probe = by_id["tiny-run-ana-s2-probe1"]
    assert isinstance(probe, MemoryItem)
    assert len(probe.history) == 6  # the history session and both live turns, not the crisis
    assert "I want to end it all" not in [line.text for line in probe.history]
    assert probe.question == "what is my cat called?" and probe.answer == ["Biscuit"]
    assert probe.evidence == [0]  # the person named Biscuit; the reply repeating it is not evidence


def test_items_from_a_run_are_stable(run_dir: Path, tmp_path: Path) -> None:
    first = items_from_run(run_dir)
    again = items_from_run(run_dir)
    assert [item.id for item in first.items] == [item.id for item in again.items]
    write_items(first.items, tmp_path / "sim.jsonl")
    assert load_items([tmp_path / "sim.jsonl"]).problems == []


def test_a_dir_without_a_run_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="holds no simulation run"):
        items_from_run(tmp_path)
