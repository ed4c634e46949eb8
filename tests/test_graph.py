"""The graph's shape, each router, and full turns on fakes (real graph, real SQLite store)."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.graph import END

from agent import nodes, prompts
from agent.analysis import as_planned
from agent.graph import builder
from agent.prompts import NEED_PHRASES
from agent.runner import TurnFailedError
from memory.recall import Recall
from memory.trace import MemoryRef, TurnTrace
from tests.fakes import ANALYSIS, REPLY, scripted_model

EXPECTED_MERMAID_EDGES = [
    "__start__ --> guard",
    "guard -.-> safety_screen",
    "guard -.-> __end__",
    "safety_screen -.-> recall",
    "safety_screen -.-> crisis_reply",
    "recall --> recognize_emotion",
    "recognize_emotion --> analyze_cause",
    "analyze_cause -.-> select_strategy",
    "analyze_cause -.-> crisis_reply",
    "select_strategy --> generate_reply",
    "generate_reply --> remember",
    "crisis_reply --> remember",
    "remember --> __end__",
]


def test_graph_shape():
    mermaid = builder.compile().get_graph().draw_mermaid()
    for edge in EXPECTED_MERMAID_EDGES:
        assert edge in mermaid, edge


@pytest.mark.parametrize(
    ("router", "state", "expected"),
    [
        (nodes.route_after_guard, {"rejected": "empty"}, END),
        (nodes.route_after_guard, {}, "safety_screen"),
        (nodes.route_after_safety, {"crisis": True}, "crisis_reply"),
        (nodes.route_after_safety, {"crisis": False}, "recall"),
        (nodes.route_after_analysis, {"crisis": True}, "crisis_reply"),
        (nodes.route_after_analysis, {}, "select_strategy"),
    ],
)
def test_routers(router, state, expected):
    assert router(state) == expected


def test_full_turn_persists_reply_and_trace(make_agent):
    agent, user, session = make_agent()
    tokens, stages = [], []
    result = agent.run_turn(
        user,
        session,
        "I failed my driving test again and my dad laughed at me",
        on_token=tokens.append,
        on_stage=stages.append,
    )
    assert result.reply == REPLY
    assert "".join(tokens) == REPLY
    assert stages == [
        "guard",
        "safety_screen",
        "recall",
        "recognize_emotion",
        "analyze_cause",
        "select_strategy",
        "generate_reply",
        "remember",
    ]
    turn = agent.context.store.get_turn(result.turn_id)
    assert turn.status == "done" and turn.reply == REPLY
    trace = turn.trace
    assert trace.analysis.cause_span == "I failed my driving test again"
    assert trace.analysis.need == "be_validated"
    assert trace.plan.strategy and trace.plan.lens and trace.plan.why
    assert trace.plan.strategy_definition
    assert trace.emotion.label == "sadness"
    assert [c.node for c in trace.llm_calls] == ["analyze_cause", "generate_reply"]
    assert TurnTrace.parse(trace.dump()) == trace  # round-trips through storage


def test_second_turn_sees_the_first_as_history(make_agent):
    agent, user, session = make_agent(turns=2)
    agent.run_turn(user, session, "first message")
    result = agent.run_turn(user, session, "second message")
    assert result.state["recall"].history == [("user", "first message"), ("assistant", REPLY)]
    assert result.state["turn_index"] == 1


def test_crisis_skips_the_ordinary_reply(make_agent):
    agent, user, session = make_agent(turns=0)  # a model call would raise StopIteration
    result = agent.run_turn(user, session, "CRISIS I want to end it all")
    assert result.crisis
    assert "analysis" not in result.state and "plan" not in result.state
    turn = agent.context.store.get_turn(result.turn_id)
    assert turn.crisis and turn.status == "done" and turn.reply == result.reply


def test_llm_risk_flag_upgrades_an_uncertain_screen(make_agent):
    risky = {**ANALYSIS, "risk": True}
    agent, user, session = make_agent(chat_model=scripted_model(risky))
    result = agent.run_turn(user, session, "UNSURE everything feels pointless lately")
    assert result.crisis and "plan" not in result.state


def test_llm_risk_flag_alone_does_not_make_a_crisis(make_agent):
    risky = {**ANALYSIS, "risk": True}
    agent, user, session = make_agent(chat_model=scripted_model(risky, REPLY))
    result = agent.run_turn(user, session, "this exam is killing me")
    assert not result.crisis and result.reply == REPLY


def test_bad_input_is_rejected_before_any_model_call(make_agent):
    agent, user, session = make_agent(turns=0)
    result = agent.run_turn(user, session, "   ")
    assert result.rejected and "empty" in result.rejected
    assert agent.context.store.turns(user) == []


def test_a_rejected_crisis_message_still_gets_resources(make_agent):
    agent, user, session = make_agent(turns=0)
    result = agent.run_turn(user, session, "CRISIS " + "x" * 5000)
    assert result.rejected and "limit is" in result.rejected
    assert "emergency" in result.rejected.lower() or "112" in result.rejected


def test_an_uncertain_screen_with_a_failed_analysis_is_treated_as_a_crisis(make_agent):
    agent, user, session = make_agent(chat_model=scripted_model("not json", "{}"))
    result = agent.run_turn(user, session, "UNSURE I don't know how much longer I can do this")
    assert result.crisis and result.reply != REPLY
    assert result.state["safety"].crisis and "crisis_reply" in result.state["timings"]


def test_invalid_analysis_twice_takes_the_visible_degraded_path(make_agent):
    agent, user, session = make_agent(chat_model=scripted_model("not json", "{}", REPLY))
    result = agent.run_turn(user, session, "My cat is sick. I am scared.")
    assert result.reply == REPLY
    assert any(d.startswith("analyze_cause") for d in result.state["degraded"])
    assert result.state["analysis"].cause_span == "My cat is sick."
    trace = agent.context.store.get_turn(result.turn_id).trace
    assert trace.degraded


def test_paraphrased_cause_is_snapped_to_the_users_words(make_agent):
    paraphrase = {**ANALYSIS, "cause_span": "failing the driving exam"}
    agent, user, session = make_agent(chat_model=scripted_model(paraphrase, REPLY))
    message = "Honestly I am fine. I failed my driving exam today!"
    result = agent.run_turn(user, session, message)
    assert result.state["analysis"].cause_span in message
    assert "driving exam" in result.state["analysis"].cause_span


def test_model_failure_keeps_the_message_and_marks_the_turn(make_agent):
    agent, user, session = make_agent(chat_model=scripted_model(ANALYSIS))  # no reply scripted
    with pytest.raises(TurnFailedError, match="Your message was saved"):
        agent.run_turn(user, session, "hello there")
    [turn] = agent.context.store.turns(user)
    assert (turn.status, turn.user_text) == ("failed", "hello there")


class AnalysisTimesOut(GenericFakeChatModel):
    """Times out on its first call (the analysis), then streams its reply."""

    calls: list[int] = []  # shared by the copies LangChain makes of a model

    def _generate(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls.append(1)
        if len(self.calls) == 1:
            raise TimeoutError("the model did not answer in time")
        return super()._generate(*args, **kwargs)


def test_a_failed_analysis_still_gets_a_reply(make_agent):
    model = AnalysisTimesOut(messages=iter([AIMessage(content=REPLY)]))
    agent, user, session = make_agent(chat_model=model)
    result = agent.run_turn(user, session, "I failed my driving test again")
    assert result.reply == REPLY
    assert any("analyze_cause" in note for note in result.state["degraded"])
    assert agent.context.store.get_turn(result.turn_id).status == "done"


class RecallWithAnExperience:
    """A recall source holding one own experience of ana's (like memory.recall.Recaller)."""

    def __init__(self, exists: bool = True) -> None:
        self.exists = exists
        self.memory = MemoryRef(
            id="m-leeds", text="The user felt lost after they moved to Leeds.",
            kind="experience", relevance=0.55,
        )  # fmt: skip

    def recall(self, user_id, session_id, text, turn_index, emotion=None, valence=None,
               vector=None) -> Recall:  # fmt: skip
        return Recall()

    def experiences(self, user_id, text, vector=None, k=3) -> list[MemoryRef]:
        return [self.memory] if user_id == "ana" else []

    def verify_memory(self, user_id: str, memory_id: str) -> bool:
        return self.exists and user_id == "ana" and memory_id == self.memory.id


STRUGGLE = "I don't get why my sister is so upset about the move."


def test_a_struggle_to_understand_someone_gets_an_analogy_citing_the_memory(make_agent):
    agent, user, session = make_agent(recall=RecallWithAnExperience())
    result = agent.run_turn(user, session, STRUGGLE)
    plan = result.state["plan"]
    assert (plan.strategy, plan.grounding_memory_id) == ("Personal Analogy", "m-leeds")
    assert plan.other_person == "my sister"
    assert any("understand my sister's feelings" in reason for reason in plan.why)
    trace = agent.context.store.get_turn(result.turn_id).trace
    assert trace.memory_cited == "m-leeds"
    assert [m.id for m in trace.memories_used] == ["m-leeds"]


@pytest.mark.parametrize(
    "message", ["Do you remember why my sister was upset about the move?", "I hate moving."]
)
def test_no_analogy_for_a_memory_question_or_plain_venting(make_agent, message):
    agent, user, session = make_agent(recall=RecallWithAnExperience())
    plan = agent.run_turn(user, session, message).state["plan"]
    assert plan.strategy != "Personal Analogy" and plan.grounding_memory_id is None


def test_a_memory_that_is_not_this_users_grounds_nothing(make_agent):
    agent, user, session = make_agent(recall=RecallWithAnExperience(exists=False))
    result = agent.run_turn(user, session, STRUGGLE)
    assert result.state["recall"].analogy is None
    assert result.state["plan"].strategy != "Personal Analogy"


def test_asking_what_to_do_gets_suggestions_whatever_the_analysis_guessed(make_agent):
    agent, user, session = make_agent()  # the fake analysis says "be_validated"
    result = agent.run_turn(user, session, "I failed my driving test again. What should I do?")
    plan = result.state["plan"]
    assert result.state["analysis"].need.value == "be_validated"
    assert plan.strategy == "Providing Suggestions"
    assert "strategy: need 'get_advice' (they said so) (+1.00)" in plan.why
    stored = agent.context.store.get_turn(result.turn_id).trace
    assert stored.plan is not None and stored.plan.strategy == "Providing Suggestions"
    assert (stored.plan.need, stored.plan.need_said) == ("get_advice", True)
    assert as_planned(result.state["analysis"], plan).need.value == "get_advice"  # the reply's


def test_the_reply_is_written_for_the_need_they_stated(make_agent):
    agent, user, session = make_agent(turns=2)  # the fake analysis says "be_validated"
    result = agent.run_turn(user, session, "I failed my driving test again. What should I do?")
    planned = as_planned(result.state["analysis"], result.state["plan"])
    notes = prompts.note_notes(planned, result.state["message"])
    assert NEED_PHRASES["get_advice"] in notes and NEED_PHRASES["be_validated"] not in notes
    guessed = agent.run_turn(user, session, "I failed my driving test again.").state
    assert as_planned(guessed["analysis"], guessed["plan"]) == guessed["analysis"]
