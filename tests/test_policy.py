from dataclasses import dataclass

import pytest

from strategies.catalogue import load_catalogue, load_policy
from strategies.policy import Signals, select_plan


@dataclass
class T:
    value: float
    confidence: float = 1.0


def signals(**kw) -> Signals:
    base = dict(
        need="vent",
        emotion="sadness",
        emotion_probability=0.6,
        valence=-0.5,
        intensity=0.5,
        turn_index=2,
    )
    return Signals(**{**base, **kw})


def test_catalogue_has_esconv_strategies_and_four_lenses():
    catalogue = load_catalogue()
    names = {s.name for s in catalogue.strategy}
    assert {
        "Question",
        "Restatement or Paraphrasing",
        "Reflection of feelings",
        "Self-disclosure",
        "Affirmation and Reassurance",
        "Providing Suggestions",
        "Information",
        "Others",
        "Personal Analogy",
    } == names
    assert {lens.name for lens in catalogue.lens} == {"CBT", "DBT", "Person-centred", "Reality"}
    assert load_policy().analogy_bonus > 0


@pytest.mark.parametrize(
    ("need", "expected"),
    [
        ("vent", "Reflection of feelings"),
        ("get_advice", "Providing Suggestions"),
        ("information", "Information"),
        ("be_validated", "Affirmation and Reassurance"),
    ],
)
def test_need_drives_the_strategy(need, expected):
    assert select_plan(signals(need=need)).strategy == expected


def test_same_message_different_people_get_different_plans():
    advice_seeker = {"wants_advice": T(0.95, 0.9), "directness": T(0.9, 0.8)}
    listener = {"wants_to_be_heard": T(0.95, 0.9)}
    a = select_plan(signals(need="vent", intensity=0.3), advice_seeker)
    b = select_plan(signals(need="vent", intensity=0.3), listener)
    assert (a.strategy, a.lens) != (b.strategy, b.lens)
    assert a.traits_used and any("wants_advice" in reason for reason in a.why)


def test_analogy_only_with_a_grounding_memory():
    without = select_plan(signals(), {"openness": T(1.0)})
    assert "Personal Analogy" not in without.scores
    with_memory = select_plan(
        signals(grounding_memory_id="m1", need="be_validated", intensity=0.2), {"openness": T(1.0)}
    )
    assert with_memory.strategy == "Personal Analogy"
    assert with_memory.grounding_memory_id == "m1"


def test_low_confidence_traits_barely_move_the_choice():
    weak = {"wants_advice": T(1.0, 0.05)}
    assert select_plan(signals(), weak).strategy == select_plan(signals()).strategy


def test_evidence_can_overturn_the_prior():
    plan = select_plan(signals(), evidence={"Question": 2.0})
    assert plan.strategy == "Question"
    assert any("worked for this person" in reason for reason in plan.why)


def test_trait_scores_replay_the_choice_without_traits():
    people = {"wants_advice": T(0.95, 0.9), "wants_to_be_heard": T(0.1, 0.9)}
    for need in ("vent", "get_advice", "be_validated", "information"):
        with_traits = select_plan(signals(need=need), people)
        alone = select_plan(signals(need=need))
        strategies = {s.name for s in load_catalogue().strategy}
        base = {n: with_traits.scores[n] - with_traits.trait_scores[n] for n in strategies
                if n in with_traits.scores}
        assert max(base, key=lambda n: (base[n], n)) == alone.strategy
        assert alone.trait_scores and not any(alone.trait_scores.values())
    assert any(select_plan(signals(need="vent"), people).trait_scores.values())
