"""The reply check: each way a small model breaks a reply is caught (or repaired), through the
real graph on fake models; good replies pass untouched."""

from __future__ import annotations

import json

import pytest

from agent.reply import Gate, split_sentences
from agent.reply_check import Problem, check_reply, repair_opener
from tests.fakes import ANALYSIS, REPLY, scripted_model, varied_reply

EXEMPLAR = "It sounds like you felt really alone when that happened."


def problems_of(reply: str, message: str = "My boss yelled at me in front of everyone.", **kw):
    return {f.problem for f in check_reply(reply, message=message, **kw)}


@pytest.mark.parametrize(
    ("reply", "problem", "kw"),
    [
        ("", Problem.EMPTY, {}),
        (" ...  ", Problem.EMPTY, {}),
        (json.dumps(ANALYSIS), Problem.JSON, {}),
        ('```json\n{"cause_span": "my boss yelled"}\n```', Problem.JSON, {}),
        ("cause_span: my boss yelled. need: vent", Problem.ANALYSIS, {}),
        ("I'm feeling so, I'm feeling so, I'm feeling so, I'm feeling so", Problem.LOOP, {}),
        ("That hurts. You matter. That hurts. You matter.", Problem.LOOP, {}),
        (REPLY, Problem.REPEAT, {"earlier_replies": [REPLY]}),
        (f"Oh. {EXEMPLAR}", Problem.EXEMPLAR, {"exemplars": [EXEMPLAR]}),
        ("I feel humiliated because my boss yelled at me in front of everyone.", Problem.VOICE, {}),
        ("I understand. That must have stung in front of everyone.", Problem.OPENER, {}),
        ("I'm sorry to hear that. A day for yourself!", Problem.VALENCE, {"valence": 0.7}),
        ("Congratulations, what great news!", Problem.VALENCE, {"valence": -0.6}),
    ],
)
def test_each_broken_reply_is_caught(reply, problem, kw):
    assert problem in problems_of(reply, **kw)


@pytest.mark.parametrize(
    "reply",
    [
        REPLY,
        "Being shouted at in front of your team would shake anyone. What happened after?",
        "That must have felt humiliating. You did not deserve to be treated that way.",
        varied_reply(3),
    ],
)
def test_good_replies_pass(reply):
    assert problems_of(reply, earlier_replies=[varied_reply(5)], exemplars=[EXEMPLAR]) == set()


def test_a_whole_stock_opener_sentence_is_dropped_a_clause_is_not():
    assert repair_opener("I understand. That sounds like a lot at once.") == (
        "That sounds like a lot at once."
    )
    clause = "I understand how hard this is, and you are not alone."
    assert repair_opener(clause) == clause  # removing it would leave "and you are not alone"
    assert repair_opener("I'm sorry to hear that. Taking a day off sounds lovely.", 0.7) == (
        "Taking a day off sounds lovely."
    )


def feed(gate: Gate, text: str) -> bool:
    for word in text.split(" "):
        if not gate.feed(word + " "):
            return False
    return True


def test_the_gate_shows_no_json_and_stops_the_stream():
    shown: list[str] = []
    gate = Gate(shown.append)
    assert not feed(gate, json.dumps(ANALYSIS))
    gate.close()
    assert shown == [] and gate.found[0].problem == Problem.JSON


def test_the_gate_drops_an_opener_before_showing_anything():
    shown: list[str] = []
    gate = Gate(shown.append)
    feed(gate, "I understand. Being yelled at like that would rattle anyone. What happened next?")
    reply = gate.close()
    assert reply.startswith("Being yelled at") and "".join(shown).strip() == reply
    assert gate.notes == ["a stock opener was dropped"]


def test_the_gate_cuts_a_loop_and_stops_generating():
    gate = Gate(None)
    loop = "You are not alone. I am here. You are not alone. I am here. You are not alone."
    assert not feed(gate, loop + " More words that never come.")
    assert gate.close() == "You are not alone. I am here."
    assert gate.notes and gate.notes[0].startswith("a loop was cut")


def test_split_sentences_gives_the_text_back():
    text = "One. Two? Three! and four"
    assert "".join(split_sentences(text)) == text


def test_an_analysis_leak_is_rewritten_and_never_streamed(make_agent):
    good = "Being yelled at like that would shake anyone. What happened next?"
    model = scripted_model(ANALYSIS, json.dumps(ANALYSIS), good)
    agent, user, session = make_agent(chat_model=model)
    tokens: list[str] = []
    result = agent.run_turn(user, session, "My boss yelled at me today.", on_token=tokens.append)
    assert result.reply == good
    assert "{" not in "".join(tokens)  # the JSON never reached the person
    trace = agent.context.store.get_turn(result.turn_id).trace
    assert any(note.startswith("rewritten: ") for note in trace.reply_checks)
    assert [c.node for c in trace.llm_calls] == [
        "analyze_cause",
        "generate_reply",
        "generate_reply",
    ]
    assert not result.state.get("degraded")


def test_a_reply_broken_twice_falls_back_visibly(make_agent):
    model = scripted_model(ANALYSIS, json.dumps(ANALYSIS), "need: vent, cause_span: boss")
    agent, user, session = make_agent(chat_model=model)
    result = agent.run_turn(user, session, "My boss yelled at me today.")
    assert result.reply and "{" not in result.reply and "cause_span" not in result.reply
    assert any("reply check failed twice" in note for note in result.state["degraded"])


def test_a_repeated_reply_is_rewritten(make_agent):
    again = "It makes sense that this stays with you. Who else knows how you feel about it?"
    model = scripted_model(ANALYSIS, REPLY, ANALYSIS, REPLY, again)
    agent, user, session = make_agent(chat_model=model)
    agent.run_turn(user, session, "My dad laughed at my exam result.")
    second = agent.run_turn(user, session, "He still brings it up at dinner.")
    assert second.reply == again
