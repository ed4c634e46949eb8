"""The generated population (issue 12): seeded cards, simulator-written messages, and the
user-model measures (per-trait Spearman, support side, calibration, replayed preference fit)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from eval.simulate.population import (
    ARCHETYPES,
    DETAILS,
    MARKED,
    dump_scenario,
    generate_population,
)
from eval.simulate.scenario import ScenarioError, load_scenario
from eval.simulate.user_model import (
    calibration,
    replay_rows,
    replayed,
    trait_bonus,
    user_model_summary,
)
from strategies.policy import Signals, select_plan
from tests.test_simulate import journal, simulation
from tui.cli import cli


def test_the_same_seed_gives_the_same_people_and_another_seed_others(tmp_path: Path) -> None:
    one, two = generate_population(seed=4), generate_population(seed=4)
    assert one == two
    other = generate_population(seed=5)
    assert [p.card.big_five for p in one.people] != [p.card.big_five for p in other.people]
    dump_scenario(one, tmp_path / "pop.yaml")
    assert load_scenario(tmp_path / "pop.yaml") == one


def test_cards_are_varied_and_preferences_follow_how_they_want_support() -> None:
    scenario = generate_population(people=21, sessions=5, seed=1)
    assert len(scenario.people) == 21 and len({p.id for p in scenario.people}) == 21
    kinds = Counter()
    for person in scenario.people:
        support = person.card.support
        kind = next(
            k for k, a in ARCHETYPES.items() if a["preferred"] == support.preferred_strategies
        )
        kinds[kind] += 1
        low, high = ARCHETYPES[kind]["wants_advice"]
        assert low <= support.wants_advice <= high
        assert len(person.sessions) == 5
        assert all(s.simulate and s.simulate.opening is None for s in person.sessions)
    assert kinds == {"heard": 7, "advice": 7, "company": 7}
    for trait in ("openness", "neuroticism"):
        values = [getattr(p.card.big_five, trait) for p in scenario.people]
        assert min(values) < 0.35 and max(values) > 0.65  # spread, not hand-picked


def test_a_days_details_show_only_marked_traits_and_on_their_side() -> None:
    """The simulator is given a few events of the day that show the person's marked traits
    (never the card's numbers or trait names); an average trait never shows."""
    scenario = generate_population(people=20, sessions=5, seed=2)
    shown: Counter[str] = Counter()
    for person in scenario.people:
        scores = person.card.big_five.model_dump()
        assert not person.card.values
        for session in person.sessions:
            assert session.simulate is not None
            details = session.simulate.situation.split("; also, ")[1:]
            assert len(details) <= 2
            for detail in details:
                trait, side = next(
                    (t, side) for t, sides in DETAILS.items() for side in (0, 1)
                    if detail in sides[side]
                )  # fmt: skip
                assert abs(scores[trait] - 0.5) > MARKED
                assert (scores[trait] > 0.5) == (side == 0), (trait, scores[trait], detail)
                shown[trait] += 1
    assert set(shown) == set(DETAILS)  # every trait shows for somebody


def test_bad_sizes_are_refused_with_the_limits() -> None:
    with pytest.raises(ScenarioError, match="--people must be between 1 and"):
        generate_population(people=0)
    with pytest.raises(ScenarioError, match="--sessions"):
        generate_population(sessions=99)


def test_the_cli_writes_a_scenario_and_never_overwrites_one(tmp_path: Path) -> None:
    out = tmp_path / "pop.yaml"
    args = [
        "simulate",
        "generate",
        "--people",
        "3",
        "--sessions",
        "2",
        "--seed",
        "7",
        "-o",
        str(out),
    ]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert len(load_scenario(out).people) == 3
    again = CliRunner().invoke(cli, args)
    assert again.exit_code != 0 and "exists" in again.output


def test_a_generated_population_runs_and_is_measured(tmp_path: Path) -> None:
    scenario = generate_population(people=3, sessions=2, turns=2, seed=2)
    dump_scenario(scenario, tmp_path / "pop.yaml")
    text = (tmp_path / "pop.yaml").read_text()
    assert simulation(tmp_path, text, last_reaction=False).run() == []
    first = journal(tmp_path, scenario.people[0].id)
    turns = [r for r in first if r["type"] == "turn"]
    assert turns[0]["message"].startswith("today i want to talk")  # the simulator opened
    assert turns[1]["message"].startswith("and another thing")
    assert turns[1]["reaction"] is None  # no reaction to a session's last reply
    ends = [r for r in first if r["type"] == "session_end"]
    assert ends[-1]["by_signal"]["recall"]  # the telling passages were read
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    model = summary["user_model"]
    assert [row["session"] for row in model["by_session"]] == [1, 2]
    fit = model["by_session"][0]["preference_fit"]
    assert fit["actual"]["n"] == fit["no_traits"]["n"] == 6
    assert set(model["by_signal"]) >= {"all", "per-turn", "recall", "prototype"}
    assert sum(b["n"] for b in model["calibration"]) > 0


def test_replay_recovers_the_choice_without_traits_and_with_the_hidden_ones() -> None:
    truth = {"wants_advice": 0.95, "wants_to_be_heard": 0.1}
    signals = Signals(need="vent", emotion="sadness", valence=-0.4, intensity=0.4, turn_index=1)

    class T:
        def __init__(self, value: float) -> None:
            self.value, self.confidence = value, 1.0

    chosen = select_plan(signals, {"wants_to_be_heard": T(0.9)})
    record = {"trace": {"plan": chosen.model_dump()}}
    again = replayed(record, truth)
    assert again["no_traits"] == select_plan(signals).strategy
    assert (
        again["true_traits"] == select_plan(signals, {k: T(v) for k, v in truth.items()}).strategy
    )
    assert trait_bonus(truth)["Providing Suggestions"] > 0
    assert replayed({"trace": {"plan": {"scores": {}}}}, truth) == {
        "no_traits": None,
        "true_traits": None,
    }


def test_calibration_bins_count_right_sides() -> None:
    report = {"sessions": [{"traits": {
        "openness": {"inferred": 0.8, "truth": 0.7, "confidence": 0.7},
        "humour": {"inferred": 0.6, "truth": 0.2, "confidence": 0.1},
        "directness": {"inferred": None, "truth": 0.2, "confidence": None},
    }}]}  # fmt: skip
    bins = {b["confidence"]: b for b in calibration([report])}
    assert bins["0.6-1.0"] == {"confidence": "0.6-1.0", "n": 1, "right_side": 1.0}
    assert bins["0.0-0.3"]["right_side"] == 0.0 and bins["0.3-0.6"]["n"] == 0


def test_with_confident_traits_the_policy_prefers_what_each_kind_of_person_wants() -> None:
    """The policy's trait weights and the population's preferences agree: with each kind's
    typical support values at confidence 0.7, over the needs such a person voices and a range
    of feelings, the chosen strategy is a preferred one most of the time."""

    class T:
        def __init__(self, value: float) -> None:
            self.value, self.confidence = value, 0.7

    needs = {"heard": ["vent", "be_validated"], "advice": ["get_advice", "information", "vent"],
             "company": ["vent", "distraction", "be_validated", "celebrate"]}  # fmt: skip
    shares = {}
    for kind, archetype in ARCHETYPES.items():
        traits = {t: T(sum(archetype[t]) / 2) for t in ("wants_to_be_heard", "wants_advice")}
        chosen = [
            select_plan(Signals(need=need, emotion="sadness", emotion_probability=0.5,
                                valence=valence, intensity=intensity, turn_index=turn), traits)
            .strategy
            for need in needs[kind] for turn in (0, 2)
            for valence, intensity in ((-0.6, 0.7), (-0.3, 0.4), (0.4, 0.4))
        ]  # fmt: skip
        preferred = sum(s in archetype["preferred"] for s in chosen) / len(chosen)
        disliked = sum(s in archetype["disliked"] for s in chosen) / len(chosen)
        shares[kind] = (preferred, disliked)
    assert all(p >= 0.7 for p, _ in shares.values()), shares
    assert all(d <= 0.15 for _, d in shares.values()), shares
    without = [select_plan(Signals(need="vent", emotion="sadness")).strategy]
    assert without[0] not in ARCHETYPES["advice"]["preferred"]  # the traits make the difference


def test_replay_breaks_ties_as_the_policy_does() -> None:
    class T:
        def __init__(self, value: float) -> None:
            self.value, self.confidence = value, 0.37

    tie = Signals(need="vent", emotion="sadness", turn_index=0)  # Reflection 1.0 = Restatement 1.0
    traits = {"wants_to_be_heard": T(0.83), "wants_advice": T(0.19), "directness": T(0.71)}
    record = {"trace": {"plan": select_plan(tie, traits).model_dump()}}
    assert replayed(record, {"wants_advice": 0.5})["no_traits"] == select_plan(tie).strategy


def test_turns_that_say_how_to_support_them_are_counted_apart() -> None:
    class T:
        def __init__(self, value: float) -> None:
            self.value, self.confidence = value, 0.8

    said = select_plan(Signals(need="get_advice", need_said=True, emotion="sadness"),
                       stated={"wants_advice": T(0.85)})  # fmt: skip
    guessed = select_plan(Signals(need="vent", emotion="sadness"), {"wants_advice": T(0.9)})
    records = [{"type": "turn", "session": 0, "kind": "simulate", "crisis": False,
                "strategy": plan.strategy, "trace": {"plan": plan.model_dump()}}
               for plan in (said, guessed)]  # fmt: skip
    rows = replay_rows(records, 0, {"wants_advice": 0.9, "wants_to_be_heard": 0.2})
    assert [row["stated"] for row in rows] == [True, False]
    report = {"preferred_strategies": ARCHETYPES["advice"]["preferred"],
              "disliked_strategies": ARCHETYPES["advice"]["disliked"],
              "truth": {"wants_advice": 0.9, "wants_to_be_heard": 0.2},
              "sessions": [{"replay": rows, "traits": {}}]}  # fmt: skip
    row = user_model_summary([report])["by_session"][0]
    assert row["stated_share"] == 0.5
    assert row["preference_fit"]["actual"]["n"] == 2
    unstated = row["preference_fit_unstated"]
    assert unstated["actual"]["n"] == 1
    assert unstated["actual"]["preferred"] == float(
        guessed.strategy in ARCHETYPES["advice"]["preferred"]
    )
