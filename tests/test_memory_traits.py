"""The user model: traits converge on a scripted user, keep evidence and history, obey the user."""

from __future__ import annotations

import pytest

from memory.embeddings import Embedder, model_dir
from memory.stated import STATED_WEIGHT, stated_support
from memory.traits import TRAITS, TraitModel, TraitValueError, UnknownTraitError, estimate
from memory.worker import MemoryServices
from strategies.catalogue import load_policy
from tests.test_memory_fakes import add_turn, build_services


@pytest.fixture
def mem(tmp_path) -> MemoryServices:
    return build_services(tmp_path / "data")


def run_sessions(mem: MemoryServices, user: str, texts: list[str], sessions: int, **trace_kw):
    """Script a user over several sessions; traits refresh after each turn, like the worker."""
    turn_ids = []
    for _ in range(sessions):
        session = mem.store.new_session(user)
        for text in texts:
            turn_id = add_turn(mem, user, session, text, **trace_kw)
            mem.traits.observe_turn(user, mem.store.get_turn(turn_id))
            mem.traits.refresh(user, session)
            turn_ids.append(turn_id)
    return turn_ids


def test_trait_names_cover_the_policy():
    assert set(load_policy().traits) <= set(TRAITS)


def test_an_advice_seeker_converges_on_wants_advice(mem):
    texts = ["My landlord won't fix the heating, what should I do", "How do I ask for a raise"]
    turns = run_sessions(mem, "ana", texts, sessions=3, need="get_advice", valence=-0.2)
    traits = mem.traits.values("ana")
    assert traits["wants_advice"].value > 0.7 and traits["wants_advice"].confidence > 0.6
    assert traits["wants_to_be_heard"].value < 0.5
    assert set(traits["wants_advice"].evidence) <= set(turns) and traits["wants_advice"].evidence


def test_a_venter_converges_the_other_way(mem):
    run_sessions(
        mem,
        "bo",
        ["Today was awful and I just need to vent"],
        sessions=6,
        need="vent",
        valence=-0.8,
        intensity=0.9,
    )
    traits = mem.traits.values("bo")
    assert traits["wants_to_be_heard"].value > 0.7
    assert traits["wants_advice"].value < 0.35
    assert traits["neuroticism"].value > 0.55


def test_confidence_grows_with_evidence(mem):
    session = mem.store.new_session("cy")
    confidences = []
    for i in range(6):
        turn = mem.store.get_turn(
            add_turn(mem, "cy", session, f"what should I do {i}", need="get_advice")
        )
        mem.traits.observe_turn("cy", turn)
        confidences.append(mem.traits.refresh("cy", session)["wants_advice"].confidence)
    assert confidences == sorted(confidences) and confidences[-1] > confidences[0]


def test_observing_a_turn_twice_counts_once(mem):
    session = mem.store.new_session("ana")
    turn = mem.store.get_turn(add_turn(mem, "ana", session, "what now", need="get_advice"))
    mem.traits.observe_turn("ana", turn)
    once = mem.traits.refresh("ana", session)["wants_advice"]
    mem.traits.observe_turn("ana", turn)
    assert mem.traits.refresh("ana", session)["wants_advice"] == once


def test_user_set_values_win_over_inference(mem):
    mem.store.ensure_user("ana")
    mem.traits.set("ana", "wants_advice", 0.1)
    run_sessions(mem, "ana", ["tell me what to do"], sessions=2, need="get_advice")
    trait = mem.traits.values("ana")["wants_advice"]
    assert (trait.value, trait.confidence, trait.source) == (0.1, 1.0, "user")
    mem.traits.unset("ana", "wants_advice")
    assert mem.traits.values("ana")["wants_advice"].source == "inferred"
    assert mem.traits.values("ana")["wants_advice"].value > 0.6


def test_history_has_one_snapshot_per_session(mem):
    run_sessions(mem, "ana", ["what should I do"], sessions=3, need="get_advice")
    history = mem.traits.history("ana", "wants_advice")
    assert len({row["session_id"] for row in history}) == 3
    assert history[0]["value"] <= history[-1]["value"]


def test_bad_names_and_values_are_refused(mem):
    mem.store.ensure_user("ana")
    with pytest.raises(UnknownTraitError, match="wants_advice"):
        mem.traits.set("ana", "charisma", 0.5)
    with pytest.raises(TraitValueError):
        mem.traits.set("ana", "humour", 1.5)


def test_estimate_shrinks_to_neutral_without_evidence():
    assert estimate([]).value == 0.5 and estimate([]).confidence == 0.0
    strong = estimate([{"signal": 1.0, "weight": 5.0, "source_id": "t"}])
    assert strong.value > 0.7 and strong.evidence == ["t"]


@pytest.fixture(scope="module")
def real_embedder() -> Embedder:
    try:
        model_dir()
    except Exception as exc:  # the packaged model is part of the install; skip if absent
        pytest.skip(f"embedding model unavailable: {exc}")
    return Embedder()


def test_prototypes_read_traits_from_real_sentences(tmp_path, real_embedder):
    model = TraitModel(build_services(tmp_path / "d").db, real_embedder)

    def signal(text: str, name: str) -> float:
        found = {s.name: s for s in model.text_signals(real_embedder.embed([text])[0])}
        return found[name].signal

    assert (
        signal("I've been so anxious lately, I worry about every little thing.", "neuroticism")
        > 0.8
    )
    assert (
        signal("I don't want advice, I just need to get this off my chest.", "wants_advice") < 0.2
    )
    assert signal("I hate parties, I'd rather stay home with a book.", "extraversion") < 0.3
    assert signal("haha yeah, I guess I laugh about it to cope", "humour") > 0.8


@pytest.mark.parametrize(
    "text, expected",
    [
        ("My boss keeps piling work on me. What should I do?",
         {"wants_advice": 0.85, "wants_to_be_heard": 0.3}),
        ("I just need to vent, I don't want advice.", {"wants_to_be_heard": 0.9,
                                                       "wants_advice": 0.1}),
        ("Could we just have some easy, warm company tonight, not to be questioned?",
         {"wants_to_be_heard": 0.2, "wants_advice": 0.15}),
        ("My company laid off half the team and I keep replaying it.", {}),
        ("I listened to a podcast about concrete floors.", {}),
        ("Please don't give me advice.", {"wants_advice": 0.1}),
        ("I don't want any tips, I just need to vent.", {"wants_advice": 0.1,
                                                         "wants_to_be_heard": 0.9}),
        ("My therapist said I need a plan.", {}),
        ("So you think I just need to talk to them?", {}),
        ("The next steps of the project scare me.", {}),
        ("Nobody ever listened to me growing up.", {}),
        ("I got a cat for company.", {}),
    ],
)  # fmt: skip
def test_a_stated_support_preference_is_read(text, expected):
    assert {name: value for name, (value, _) in stated_support(text).items()} == expected


def test_a_preference_said_both_ways_in_one_message_settles_nothing():
    both = "I'm open to any suggestions, but I want to be heard without being told what to do."
    said = stated_support(both)
    assert said == {}
    assert stated_support("I want to be heard, not told what to do.")["wants_to_be_heard"][0] == 0.9


def test_one_stated_preference_outweighs_the_prior(mem):
    run_sessions(mem, "cy", ["Work is a mess again. Give me concrete steps, please."], 1,
                 need="vent")  # fmt: skip
    rows = mem.traits.evidence("cy", "wants_advice")
    assert any(r["kind"] == "marker" and r["weight"] == STATED_WEIGHT for r in rows)
    assert mem.traits.values("cy")["wants_advice"].value > 0.6


def test_one_stated_preference_carries_into_the_next_session_that_does_not_say_it(mem):
    """Said once ("concrete steps"), acted on next time without being said again, even though
    the analysis guesses "vent" for the new message (the guess counts `guessed_need`)."""
    from strategies.policy import Signals, select_plan

    run_sessions(mem, "di", ["I keep failing my driving test. Give me concrete steps."], 1,
                 need="vent", valence=-0.3, intensity=0.4)  # fmt: skip
    later = Signals(need="vent", emotion="sadness", emotion_probability=0.5, valence=-0.3,
                    intensity=0.4, turn_index=0)  # fmt: skip
    assert select_plan(later).strategy != "Providing Suggestions"  # without the person's history
    plan = select_plan(later, mem.traits.values("di"))
    assert plan.strategy == "Providing Suggestions" and "wants_advice" in plan.traits_used
    assert "lens: need 'vent' (+0.60)" in plan.why  # the analysis's guess, at guessed_need
