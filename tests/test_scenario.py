"""Scenario files: the three examples (the errors a broken file gets are in
`tests/test_scenario_errors.py`).

The examples (examples/*.yaml) must load and keep the shape that makes them useful on a small
local model: one person each, 3-4 sessions, at most 4 live turns a session, 12-16 in all, probes
whose answer was really said in an earlier session, and one crisis that the screen catches.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from eval.simulate.scenario import (
    Scenario,
    Session,
    load_scenario,
    strategy_names,
)
from memory.traits import BIG_FIVE

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAMES = ("grief", "job_loss", "exam_anxiety")


@pytest.fixture(scope="module")
def examples() -> dict[str, Scenario]:
    return {name: load_scenario(EXAMPLES / f"{name}.yaml") for name in NAMES}


def said_by_person(session: Session) -> list[str]:
    """What the person says in a session (not the probes, not the crisis)."""
    if session.script is not None:
        return list(session.script)
    if session.simulate is not None:
        return [session.simulate.opening]
    return [line.text for line in session.history or [] if line.role == "user"]


# ------------------------------------------------------------------------------ the examples


@pytest.mark.parametrize("name", NAMES)
def test_example_loads_with_one_person_and_a_small_budget(examples, name: str) -> None:
    scenario = examples[name]
    assert scenario.name == name
    assert scenario.description
    assert EXAMPLES.joinpath(f"{name}.yaml").read_text().startswith("# ")  # the comment header
    [person] = scenario.people
    assert 3 <= len(person.sessions) <= 4
    for session in person.sessions:
        assert session.turn_budget() <= 4, session
        if session.simulate is not None:
            assert session.simulate.turns <= 4
    probes = sum(len(s.probes) for s in person.sessions)
    assert 1 <= probes <= 2
    live = sum(s.turn_budget() for s in person.sessions)
    assert scenario.turn_budget() == live + probes
    assert 12 <= scenario.turn_budget() <= 16


@pytest.mark.parametrize("name", NAMES)
def test_example_sessions_are_in_time_order(examples, name: str) -> None:
    scenario = examples[name]
    moments = [s.when(scenario.start) for s in scenario.people[0].sessions]
    assert all(m.tzinfo is not None for m in moments)
    assert moments == sorted(moments)
    assert len(set(moments)) == len(moments)  # no two sessions at the same moment


@pytest.mark.parametrize("name", NAMES)
def test_example_cards_are_complete(examples, name: str) -> None:
    person = examples[name].people[0]
    card = person.card
    sentences = re.findall(r"[.!?](?:\s|$)", card.background.strip())
    assert 3 <= len(sentences) <= 5, card.background
    assert card.style and card.values
    assert 2 <= len(card.people) <= 4
    assert all(p.notes for p in card.people)
    assert 2 <= len(card.events) <= 3
    traits = card.big_five.model_dump()
    assert set(traits) == set(BIG_FIVE)
    assert min(traits.values()) <= 0.35 and max(traits.values()) >= 0.7  # a person, not a mean
    assert all(s.goal for s in person.sessions)
    truth = person.truth()
    assert truth["wants_advice"] == card.support.wants_advice
    assert truth["neuroticism"] == card.big_five.neuroticism


def test_examples_are_three_different_people(examples) -> None:
    people = [s.people[0] for s in examples.values()]
    assert len({p.id for p in people}) == 3
    fives = [tuple(p.card.big_five.model_dump().values()) for p in people]
    assert len(set(fives)) == 3
    assert all(set(f) != {0.5} for f in fives)
    advice = sorted(p.card.support.wants_advice for p in people)
    assert advice[0] <= 0.1 and advice[-1] >= 0.8  # from hating advice to wanting it


def test_support_preferences_fit_each_person(examples) -> None:
    grief, job, exam = (examples[n].people[0].card.support for n in NAMES)
    assert grief.wants_to_be_heard >= 0.8 and grief.wants_advice <= 0.2
    assert {"Reflection of feelings", "Restatement or Paraphrasing"} <= set(
        grief.preferred_strategies
    )
    assert "Providing Suggestions" in grief.disliked_strategies
    assert job.humour >= 0.8 and job.directness >= 0.8 and job.wants_advice <= 0.1
    assert {"Providing Suggestions", "Information"} <= set(job.disliked_strategies)
    assert "Affirmation and Reassurance" in job.preferred_strategies
    assert exam.wants_advice >= 0.8
    assert {"Providing Suggestions", "Information"} <= set(exam.preferred_strategies)
    assert "Reflection of feelings" in exam.disliked_strategies
    for support in (grief, job, exam):
        named = set(support.preferred_strategies) | set(support.disliked_strategies)
        assert named <= strategy_names()


def test_session_kinds(examples) -> None:
    kinds = {n: [s.kind for s in examples[n].people[0].sessions] for n in NAMES}
    assert {"history", "script", "simulate"} <= set(kinds["grief"])
    assert kinds["job_loss"].count("simulate") > len(kinds["job_loss"]) / 2
    assert set(kinds["exam_anxiety"]) == {"script"}


def test_grief_history_is_a_short_past_conversation(examples) -> None:
    scenario = examples["grief"]
    [history] = [s for s in scenario.people[0].sessions if s.kind == "history"]
    assert history.when(scenario.start) <= scenario.start
    lines = history.history or []
    assert 6 <= len(lines) <= 8
    assert [line.role for line in lines] == ["user", "assistant"] * (len(lines) // 2)
    minutes = [line.minute for line in lines]
    assert None not in minutes and minutes == sorted(minutes)
    assert history.turn_budget() == 0


def test_only_exam_anxiety_has_a_crisis_and_it_ends_its_last_session(examples) -> None:
    crises = {n: [s.crisis for s in examples[n].people[0].sessions if s.crisis] for n in NAMES}
    assert crises["grief"] == crises["job_loss"] == []
    [crisis] = crises["exam_anxiety"]
    last = examples["exam_anxiety"].people[0].sessions[-1]
    assert last.crisis == crisis and last.kind == "script" and last.date is not None
    assert not last.probes


@pytest.mark.parametrize("name", NAMES)
def test_probes_ask_about_what_an_earlier_session_said(examples, name: str) -> None:
    sessions = examples[name].people[0].sessions
    found = 0
    for n, session in enumerate(sessions):
        earlier = " ".join(t for s in sessions[:n] for t in said_by_person(s)).lower()
        for probe in session.probes:
            found += 1
            assert 1 <= len(probe.expect_any) <= 3 and probe.reference
            words = [w.lower() for w in probe.expect_any]
            assert any(w in earlier for w in words), probe.question
            assert not any(w in probe.question.lower() for w in words), probe.question
    assert found >= 1


@pytest.fixture(scope="module")
def screen():
    from agent.safety import SafetyScreen

    return SafetyScreen.load()


def test_the_crisis_gets_the_crisis_reply_and_nothing_else_does(examples, screen) -> None:
    ordinary = [
        text
        for scenario in examples.values()
        for session in scenario.people[0].sessions
        for text in said_by_person(session) + [p.question for p in session.probes]
    ]
    assert len(ordinary) >= 20
    for text in ordinary:
        assert screen.screen(text).band != "crisis", text
    [crisis] = [s.crisis for s in examples["exam_anxiety"].people[0].sessions if s.crisis]
    explicit = [h for h in screen.patterns.match(crisis) if h.strength == "explicit"]
    assert explicit, "the crisis message must be explicit, not one the classifier may miss"
    assessment = screen.screen(crisis)
    assert assessment.crisis and assessment.category == "self_harm"
