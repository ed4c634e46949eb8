"""Learning what works: outcome scores, feedback, Beta statistics and Thompson sampling."""

from __future__ import annotations

import random

import pytest

from memory.outcomes import NothingToRateError, combine
from memory.trace import TurnTrace
from memory.worker import MemoryServices
from strategies.policy import Signals, select_plan
from tests.test_memory_fakes import add_turn, build_services


@pytest.fixture
def mem(tmp_path) -> MemoryServices:
    return build_services(tmp_path / "data")


def test_a_better_mood_and_a_longer_answer_score_high(mem):
    session = mem.store.new_session("ana")
    add_turn(
        mem,
        "ana",
        session,
        "I feel awful about the exam",
        valence=-0.7,
        strategy="Question",
        lens="CBT",
    )
    answer = add_turn(
        mem,
        "ana",
        session,
        "Thanks, talking about it helps, actually I think I prepared better than I feared",
        valence=0.3,
    )
    outcome = mem.outcomes.score_previous(mem.store, "ana", answer)
    assert outcome is not None and (outcome.strategy, outcome.lens) == ("Question", "CBT")
    assert outcome.emotion_shift == 1.0 and outcome.reward > 0.8


def test_a_worse_mood_and_a_curt_answer_score_low(mem):
    session = mem.store.new_session("ana")
    add_turn(mem, "ana", session, "I feel a bit low about my sister moving away", valence=-0.2)
    answer = add_turn(mem, "ana", session, "whatever", valence=-0.8)
    outcome = mem.outcomes.score_previous(mem.store, "ana", answer)
    assert outcome is not None and outcome.reward < 0.25


def test_first_turns_crisis_replies_and_other_users_are_not_scored(mem):
    session = mem.store.new_session("ana")
    first = add_turn(mem, "ana", session, "hello there")
    assert mem.outcomes.score_previous(mem.store, "ana", first) is None
    assert mem.outcomes.score_previous(mem.store, "bo", first) is None
    crisis = mem.store.new_session("ana")
    add_turn(mem, "ana", crisis, "a crisis message", crisis=True)
    mem.store.complete_turn(
        mem.store.turns("ana", crisis)[0].id, "resources", TurnTrace(), crisis=True
    )
    after = add_turn(mem, "ana", crisis, "thanks")
    assert mem.outcomes.score_previous(mem.store, "ana", after) is None


def test_scoring_twice_counts_once(mem):
    session = mem.store.new_session("ana")
    add_turn(mem, "ana", session, "one two three", valence=-0.5)
    answer = add_turn(mem, "ana", session, "four five six", valence=0.0)
    mem.outcomes.score_previous(mem.store, "ana", answer)
    mem.outcomes.score_previous(mem.store, "ana", answer)
    assert mem.outcomes.stats("ana")["Reflection of feelings"].n == 1


def test_feedback_dominates_and_defaults_to_the_latest_reply(mem):
    session = mem.store.new_session("ana")
    add_turn(mem, "ana", session, "first message here", valence=-0.5)
    latest = add_turn(
        mem, "ana", session, "second message here", valence=0.5, strategy="Providing Suggestions"
    )
    down = mem.outcomes.feedback(mem.store, "ana", up=False)
    assert (down.turn_id, down.strategy, down.reward, down.feedback) == (
        latest,
        "Providing Suggestions",
        0.0,
        -1,
    )
    scored = mem.outcomes.score_previous(
        mem.store, "ana", add_turn(mem, "ana", session, "third one", valence=0.9)
    )
    assert scored is not None and scored.feedback == -1 and scored.reward < 0.5
    assert combine(None, 1) == 1.0 and combine(0.2, 1) == pytest.approx(0.76)


def test_feedback_needs_a_reply_of_that_user(mem):
    with pytest.raises(NothingToRateError, match="chat first"):
        mem.outcomes.feedback(mem.store, "nobody", up=True)
    session = mem.store.new_session("ana")
    mine = add_turn(mem, "ana", session, "hello there you")
    with pytest.raises(NothingToRateError, match="omit --turn"):
        mem.outcomes.feedback(mem.store, "bo", up=True, turn_id=mine)


def test_evidence_bonuses_follow_the_beta_means(mem):
    session = mem.store.new_session("ana")
    for i in range(4):
        add_turn(
            mem, "ana", session, f"message number {i}", valence=-0.5 + 0.3 * i, strategy="Question"
        )
        mem.outcomes.score_previous(mem.store, "ana", mem.store.turns("ana", session)[-1].id)
    mean = mem.outcomes.evidence("ana", sample=False)
    assert mean["Question"] > 0 and set(mean) == {"Question", "Person-centred"}
    assert mem.outcomes.evidence("nobody") == {}


SIGNALS = dict(
    need="be_validated", emotion="sadness", emotion_probability=0.7, valence=-0.6, intensity=0.5
)


def simulate(mem: MemoryServices, user: str, liked: str, turns: int, seed: int) -> list[str]:
    """A scripted user whose mood lifts after `liked` and sinks after anything else."""
    rng, session, valence, chosen = random.Random(seed), mem.store.new_session(user), -0.6, []
    for index in range(turns):
        evidence = mem.outcomes.evidence(user, rng=rng)
        plan = select_plan(Signals(**SIGNALS, turn_index=index), {}, evidence)
        words = "so " * (12 if chosen and chosen[-1] == liked else 3)
        turn = add_turn(
            mem,
            user,
            session,
            f"{words}okay",
            valence=valence,
            strategy=plan.strategy,
            lens=plan.lens,
        )
        mem.outcomes.score_previous(mem.store, user, turn)
        chosen.append(plan.strategy)
        valence = max(-1.0, min(1.0, valence + (0.35 if plan.strategy == liked else -0.25)))
        valence = -0.6 if valence > 0.6 else valence  # new troubles keep coming
    return chosen


@pytest.mark.parametrize("seed", range(5))
def test_a_user_who_responds_to_one_strategy_shifts_the_choice(mem, seed):
    chosen = simulate(mem, "ana", liked="Reflection of feelings", turns=16, seed=seed)
    assert chosen[0] == "Affirmation and Reassurance"  # the trait-free prior
    assert "Reflection of feelings" in chosen[:7]  # found within a few turns
    assert chosen[-8:].count("Reflection of feelings") >= 6  # and kept


def test_a_user_who_likes_the_prior_keeps_it(mem):
    chosen = simulate(mem, "bo", liked="Affirmation and Reassurance", turns=12, seed=3)
    assert chosen[-8:].count("Affirmation and Reassurance") >= 7
