"""The model's per-message likelihood ratios (kind "likelihood"): weighing, centring, the worker."""

from __future__ import annotations

import pytest

from agent.trait_llm import ASKED, WEIGH_PREFIX, WEIGHED, LLMTraitRater
from memory import trait_rating
from memory.trait_rating import LIKELIHOOD_SPREAD, LIKELIHOOD_WEIGHT, Lean, likelihood_signals
from tests.test_memory_fakes import add_turn, build_services
from tests.test_trait_rating import DigitChat, logprobs


class ScoringChat(DigitChat):
    """Also scores texts, as the embedded model does: any text is 3 nats likelier after a high
    pole than after a low one (unit tests only)."""

    scored: list[tuple[str, str]] = []

    def text_logprob(self, prefix: str, text: str) -> float:
        self.scored.append((prefix, text))
        low = any(prefix == WEIGH_PREFIX.format(pole=low) for _, low in WEIGHED.values())
        return -8.0 if low else -5.0


@pytest.fixture
def mem(tmp_path):
    return build_services(tmp_path / "data")


def test_the_rater_weighs_each_weighed_trait_by_the_high_minus_low_log_probability():
    chat = ScoringChat(metadata_out={}, prompts=[], scored=[])
    rater = LLMTraitRater(chat)
    leans = rater.weigh("I planned the whole trip and booked it weeks ahead.")
    assert leans == [Lean(trait, 3.0) for trait in WEIGHED] and rater.calls == 2 * len(WEIGHED)
    high, low = WEIGHED["openness"]
    assert chat.scored[:2] == [
        (WEIGH_PREFIX.format(pole=high), "I planned the whole trip and booked it weeks ahead."),
        (WEIGH_PREFIX.format(pole=low), "I planned the whole trip and booked it weeks ahead."),
    ]
    assert rater.weigh("   ") == []  # nothing to weigh
    cannot = LLMTraitRater(DigitChat(metadata_out={}, prompts=[]))  # a chat endpoint: no scores
    assert cannot.weigh("I planned the whole trip.") == [] and cannot.calls == 0


def test_likelihood_signals_centre_on_real_seekers_single_messages(monkeypatch):
    monkeypatch.setattr(trait_rating, "centres_file", lambda: {"likelihood": {"m": {"traits": {
        "openness": {"median": -2.0, "spread": 1.0}}}}})  # fmt: skip
    leans = [Lean("openness", -1.0), Lean("conscientiousness", -2.0), Lean("not a trait", 9.0)]
    ours = {s.name: s for s in likelihood_signals(leans, "m")}
    assert set(ours) == {"openness", "conscientiousness"}
    assert ours["openness"].signal == pytest.approx(0.75)  # one spread above real seekers
    no_centre = 0.5 - 2.0 / (4 * LIKELIHOOD_SPREAD)
    assert ours["conscientiousness"].signal == pytest.approx(no_centre)
    assert {s.weight for s in ours.values()} == {LIKELIHOOD_WEIGHT}
    assert {s.kind for s in ours.values()} == {"likelihood"}
    assert "low in conscientiousness" in ours["conscientiousness"].why
    far = likelihood_signals([Lean("openness", 40.0)], "m")[0]
    assert far.signal == 1.0  # within [0, 1]


def test_the_worker_weighs_the_weighed_traits_and_asks_about_all_asked_ones(mem):
    chat = ScoringChat(metadata_out=logprobs(A=0.1, B=0.7, C=0.2), prompts=[], scored=[])
    mem.rater, mem.weigh = LLMTraitRater(chat), True
    session = mem.store.new_session("ana")
    turn = add_turn(mem, "ana", session, "I tried a new recipe. Please just listen to me.")
    for _ in range(2):  # the job run again (a retry) replaces its rows
        mem.update_traits({"turn_id": turn, "user_id": "ana"})
    assert {text for _, text in chat.scored} == {"I tried a new recipe."}  # no support request
    asked = [p[1].content for p in chat.prompts if "one letter" in p[1].content]
    assert len(asked) == 2 * len(ASKED) and set(WEIGHED) <= set(ASKED)
    for trait in ASKED:
        rows = mem.traits.evidence("ana", trait)
        kinds = sorted(r["kind"] for r in rows if r["kind"] in ("asked", "likelihood"))
        assert kinds == (["asked", "likelihood"] if trait in WEIGHED else ["asked"])
        for mine in (r for r in rows if r["kind"] == "likelihood"):
            assert mine["source_id"] == f"{turn}#likelihood" and mine["signal"] > 0.5
    assert mem.traits.estimates_by_kind("ana")["likelihood"]["openness"] > 0.5


def test_weighing_is_off_by_default_and_a_setting_turns_it_on(tmp_path, mem):
    from agent.services import Services
    from agent.settings import Settings

    default = Services(Settings(data_dir=tmp_path / "a")).memory_services
    assert default.rater is not None and default.ask and not default.weigh
    only = Services(Settings(data_dir=tmp_path / "b", llm_trait_asking=False,
                             llm_trait_weighing=True)).memory_services  # fmt: skip
    assert only.rater is not None and only.weigh and not only.ask
    chat = ScoringChat(metadata_out=logprobs(A=0.6, B=0.2, C=0.2), prompts=[], scored=[])
    mem.rater = LLMTraitRater(chat)
    turn = add_turn(mem, "ana", mem.store.new_session("ana"), "I tried a new recipe.")
    mem.update_traits({"turn_id": turn, "user_id": "ana"})
    assert chat.scored == [] and len(chat.prompts) == len(ASKED)  # asked, not weighed
    assert "likelihood" not in {r["kind"] for r in mem.traits.evidence("ana", "openness")}
