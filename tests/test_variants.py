"""Pipeline variants are configurations of one graph: each runs for real, with the safety
screen always in front (real graph, real SQLite store, fake models)."""

from __future__ import annotations

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import ValidationError

from agent.graph import build
from agent.runner import Agent, checkpoint_serde
from agent.settings import Settings
from agent.variants import VARIANTS, UnknownVariantError, variant_named
from memory.recall import Recall
from memory.trace import MemoryRef, TraitValue
from tests.conftest import fake_context
from tests.fakes import ANALYSIS, REPLY, scripted_model

MESSAGE = "I failed my driving test again and my dad laughed at me"


class RecallWithEverything:
    """A recall source that always finds a memory and a trait."""

    def recall(self, user_id, session_id, text, turn_index, emotion=None, valence=None,
               vector=None) -> Recall:  # fmt: skip
        memory = MemoryRef(id="m1", text="The user's sister Maya moved to Berlin.", relevance=0.5)
        trait = TraitValue(value=0.9, confidence=0.8)
        return Recall(memories=[memory], traits={"wants_advice": trait})

    def verify_memory(self, user_id: str, memory_id: str) -> bool:
        return True


def run(settings, store, variant: str, model, message: str = MESSAGE):
    context = fake_context(
        settings.model_copy(update={"variant": variant}), store, chat_model=model,
        recall=RecallWithEverything(),
    )  # fmt: skip
    agent = Agent(context, InMemorySaver(serde=checkpoint_serde()))
    session = store.new_session("ana")
    return agent.run_turn("ana", session, message), store


def nodes_of(variant: str) -> set[str]:
    return set(build(variant_named(variant)).compile().get_graph().nodes) - {"__start__", "__end__"}


def test_each_variant_wires_only_the_nodes_it_needs():
    core = {"guard", "safety_screen", "recall", "crisis_reply", "remember"}
    reasoned = core | {"recognize_emotion", "generate_reply"}
    assert nodes_of("full") == reasoned | {"analyze_cause", "select_strategy"}
    assert nodes_of("no-memory") == nodes_of("no-traits") == nodes_of("full")
    assert nodes_of("no-ebg") == reasoned | {"assume_cause", "select_strategy"}
    assert nodes_of("no-coe") == reasoned | {"analyze_cause"}
    assert nodes_of("single-call") == core | {"plain_reply"}


def test_single_call_is_one_plain_call_after_the_screen(settings, store):
    result, _ = run(settings, store, "single-call", scripted_model(REPLY))
    assert result.reply == REPLY
    assert [c.node for c in result.state["llm_calls"]] == ["plain_reply"]
    assert "analysis" not in result.state and "plan" not in result.state


def test_single_call_still_answers_a_crisis_with_the_crisis_reply(settings, store):
    result, _ = run(settings, store, "single-call", scripted_model(), "CRISIS I have the pills")
    assert result.crisis and "trained for exactly this" in result.reply


def test_no_ebg_plans_without_the_analysis_call(settings, store):
    result, _ = run(settings, store, "no-ebg", scripted_model(REPLY))
    assert [c.node for c in result.state["llm_calls"]] == ["generate_reply"]
    assert "no cause analysis" in result.state["analysis"].situation
    assert result.state["plan"].strategy


def test_no_coe_replies_after_the_analysis_without_a_plan(settings, store):
    result, store = run(settings, store, "no-coe", scripted_model(ANALYSIS, REPLY))
    assert [c.node for c in result.state["llm_calls"]] == ["analyze_cause", "generate_reply"]
    assert "plan" not in result.state
    assert store.get_turn(result.turn_id).trace.plan is None


def test_no_memory_recalls_and_writes_nothing(settings, store):
    result, store = run(settings, store, "no-memory", scripted_model(ANALYSIS, REPLY))
    assert result.state["recall"].memories == [] and result.state["recall"].traits == {}
    assert store.db["jobs"].count == 0  # no extraction, no trait update, no outcome scoring


def test_no_traits_keeps_memories_but_not_traits(settings, store):
    result, _ = run(settings, store, "no-traits", scripted_model(ANALYSIS, REPLY))
    assert [m.id for m in result.state["recall"].memories] == ["m1"]
    assert result.state["recall"].traits == {}
    assert result.state["plan"].traits_used == []


def test_full_keeps_memories_and_traits(settings, store):
    result, store = run(settings, store, "full", scripted_model(ANALYSIS, REPLY))
    assert result.state["recall"].traits and result.state["recall"].memories
    assert store.db["jobs"].count == 3  # outcome, extraction, traits: queued off the critical path


def test_unknown_variant_is_a_clear_error(tmp_path):
    with pytest.raises(UnknownVariantError, match="choose one of: full, no-memory"):
        variant_named("no-safety")
    with pytest.raises(ValidationError, match="No variant 'fast'"):
        Settings(data_dir=tmp_path, variant="fast")
    assert set(VARIANTS) == {"full", "no-memory", "no-traits", "no-ebg", "no-coe", "single-call"}
