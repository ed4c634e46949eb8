"""The user simulator: SAGE's emotion arithmetic, reactions from (fake and real) models, the
prompt it sees (the card and the replies' text, nothing else), and its own model."""

from __future__ import annotations

import json
import os
import re
import socket
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_openai import ChatOpenAI
from pydantic import Field

from agent.llm import ChatLlamaCpp
from agent.models import ModelNotInstalledError, resolve_model_path
from agent.settings import Settings
from eval.errors import EvalError
from eval.simulate.scenario import Card
from eval.simulate.user_sim import (
    MAX_EXCHANGES,
    Emotion,
    FixedReaction,
    Reaction,
    SimulatorError,
    UserSimulator,
    build_user_model,
)
from tests.fakes import scripted_model

CARD = Card.model_validate({
    "background": "Maya, 34, a nurse in Leeds, lost her father in November.",
    "style": "short lowercase messages, dry",
    "people": [{"name": "Tom", "relation": "brother", "notes": "hard to reach"}],
    "events": [
        {"date": "2025-11-02", "what": "Her father died after a short illness."},
        {"date": "2026-03-20", "what": "Selling her father's house."},
    ],
    "values": ["family", "being useful"],
    "big_five": {"openness": 0.5, "conscientiousness": 0.8, "extraversion": 0.1,
                 "agreeableness": 0.7, "neuroticism": 0.75},
    "support": {"wants_to_be_heard": 0.9, "wants_advice": 0.1, "humour": 0.5,
                "preferred_strategies": ["Reflection of feelings"],
                "disliked_strategies": ["Providing Suggestions"]},
})  # fmt: skip
GOAL = "to feel her grief is seen, not fixed"
SITUATION = "first weekend sorting her father's things"
CONVERSATION = [
    ("user", "cleared out dads shed today. found his old radio"),
    ("assistant", "Have you tried making a checklist and asking your brother to help?"),
]
REACTION = {
    "reaction": "Another to-do list, when I just wanted to talk about the radio.",
    "emotion_change": -4,
    "reason": "It jumped to advice.",
    "message": "i dont need a list. it still smells like him",
}
FIXED = {key: value for key, value in REACTION.items() if key != "message"}


class RecordingModel(GenericFakeChatModel):
    """A scripted fake that keeps what each call was given (messages and call options)."""

    seen: list[tuple[list[BaseMessage], dict[str, Any]]] = Field(default_factory=list)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append((messages, kwargs))
        return super()._generate(messages, stop, run_manager, **kwargs)


def recording(*replies: dict[str, object] | str) -> RecordingModel:
    texts = [r if isinstance(r, str) else json.dumps(r) for r in replies]
    return RecordingModel(messages=iter([AIMessage(t) for t in texts]))


def simulator(model: Any) -> UserSimulator:
    return UserSimulator(model, CARD, name="Maya")


def prompt_text(sim: UserSimulator, conversation=CONVERSATION, **kw: Any) -> tuple[str, str]:
    kw = {"goal": GOAL, "situation": SITUATION, **kw}
    system, human = sim.prompt(conversation, **kw)
    return system.text, human.text


# --- SAGE's emotion ---------------------------------------------------------------------------


def test_emotion_starts_at_40_and_stays_within_0_and_100():
    emotion = Emotion()
    assert (emotion.score, emotion.history, emotion.outcome) == (40, [40], None)
    assert emotion.apply(10) == 50
    assert emotion.apply(-60) == 0
    assert emotion.outcome == "failure"
    for _ in range(12):
        emotion.apply(10)
    assert emotion.score == 100 and emotion.outcome == "success"
    assert emotion.history[:3] == [40, 50, 0] and len(emotion.history) == 15


def test_emotion_thresholds_are_100_for_success_and_below_10_for_failure():
    assert Emotion(start=10).outcome is None
    assert Emotion(start=9).outcome == "failure"
    assert Emotion(start=99).outcome is None
    assert Emotion(start=99).apply(1) == 100


# --- reacting ---------------------------------------------------------------------------------


def test_a_valid_reaction_is_parsed_with_its_call_record():
    reaction, calls = simulator(scripted_model(REACTION)).react(
        CONVERSATION, goal=GOAL, situation=SITUATION
    )
    assert reaction == Reaction(**REACTION)
    assert [c.node for c in calls] == ["user_simulator"]


def test_an_emotion_change_off_the_scale_is_kept_on_it_and_the_grammar_lists_the_scale():
    reaction, _ = simulator(scripted_model({**REACTION, "emotion_change": 15})).react(
        CONVERSATION, goal=GOAL, situation=SITUATION
    )
    assert reaction.emotion_change == 10
    schema = Reaction.model_json_schema()["properties"]["emotion_change"]
    assert schema["enum"] == list(range(-10, 11))
    assert list(Reaction.model_fields) == ["reaction", "emotion_change", "reason", "message"]


def test_the_grammar_keeps_newlines_and_escapes_out_of_the_strings():
    pattern = re.compile(Reaction.model_json_schema()["properties"]["message"]["pattern"])
    assert pattern.match("it's fine, i guess") and not pattern.match("")
    assert not pattern.match("a\nb") and not pattern.match('say \\"hi\\"')
    assert not pattern.match("x" * 601)


def test_a_fixed_next_message_asks_only_for_the_reaction():
    model = recording(FIXED)
    script = "anyway. tom finally called back"
    reaction, calls = simulator(model).react(
        CONVERSATION, goal=GOAL, situation=None, next_fixed=script
    )
    assert reaction.message == script and reaction.emotion_change == -4
    (messages, options), = model.seen  # fmt: skip
    assert options["response_format"]["schema"] == FixedReaction.model_json_schema()
    assert '"message"' not in messages[-1].text and script not in messages[-1].text
    assert len(calls) == 1


def test_a_full_reaction_asks_for_the_message_too():
    model = recording(REACTION)
    simulator(model).react(CONVERSATION, goal=GOAL, situation=SITUATION)
    (messages, options), = model.seen  # fmt: skip
    assert options["response_format"]["schema"] == Reaction.model_json_schema()
    assert '"message"' in messages[-1].text


def test_junk_twice_is_a_simulator_error_naming_the_model_and_what_to_do():
    sim = simulator(scripted_model("I feel sad.", {"reaction": "hm"}))
    with pytest.raises(SimulatorError) as caught:
        sim.react(CONVERSATION, goal=GOAL, situation=SITUATION)
    message = str(caught.value)
    assert "gave no valid reaction twice" in message and "GenericFakeChatModel" in message
    assert "emotion_change" in message and "--user-model" in message
    assert isinstance(caught.value, EvalError)


def test_an_unreachable_endpoint_is_a_simulator_error_naming_the_url(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    settings = Settings(data_dir=tmp_path, request_timeout=5.0)
    model, method = build_user_model(settings, model="m", base_url=url)
    sim = UserSimulator(model, CARD, method=method)
    with pytest.raises(SimulatorError, match=f"model m.*{url}"):
        sim.react(CONVERSATION, goal=GOAL, situation=SITUATION)


# --- the prompt -------------------------------------------------------------------------------


def test_the_prompt_holds_the_card_in_words_and_the_days_goal():
    system, human = prompt_text(simulator(None), emotion=34, today=date(2026, 3, 7))
    for fact in (
        "You are Maya.", CARD.background, "short lowercase", "Tom (brother): hard to reach",
        "2025-11-02 (4 months ago): Her father died", "2026-03-20 (in 1 week): Selling",
        "family, being useful", "- quite anxious and moody: you worry",
        "- very reserved and quiet: you keep to yourself", "- slightly curious", GOAL, SITUATION,
        "34 of 100", "Never mention being simulated", "never name your traits",
    ):  # fmt: skip
        assert fact in system, fact
    assert "0.75" not in system and "0.1" not in system  # Big Five as words, not numbers
    # How they like to be supported: next to the reply it judges (small models read it there).
    judging = human.split("\n\n")[1]
    ups, downs = judging.split("It goes down")
    assert "listens and shows it understood you" in ups and "reflection of feelings, like" in ups
    assert "gives advice or tells you what to do" in downs and "providing suggestions" in downs
    assert "jokes" not in human and "humorous" not in human  # average scores: no leaning
    assert "blunt" not in human and "plain and direct" not in human
    assert human.startswith("The conversation so far:\nYou: cleared out dads shed")
    assert "Companion: Have you tried making a checklist" in human


def test_the_prompt_sees_only_the_text_of_the_conversation():
    sim = simulator(None)
    system, human = prompt_text(sim)
    other_system, other_human = prompt_text(sim, [("user", "hi"), ("assistant", "hello")])
    assert system == other_system  # the conversation reaches the system prompt not at all
    assert other_human.split("\n\n")[1:] == human.split("\n\n")[1:]  # nor the rest
    said = human.split("\n\n")[0]
    assert said.splitlines() == [
        "The conversation so far:",
        f"You: {CONVERSATION[0][1]}",
        f"Companion: {CONVERSATION[1][1]}",
    ]  # fmt: skip
    assert "strategy" not in system.lower() and "trace" not in system.lower()


def test_only_the_last_eight_exchanges_are_shown_and_earlier_lines_are_clipped():
    conversation = []
    for n in range(20):
        conversation += [("user", f"message {n:02d}"), ("assistant", f"reply {n:02d} " + "x" * 900)]
    _, human = prompt_text(simulator(None), conversation)
    lines = human.split("\n\n")[0].splitlines()[1:]
    assert lines[0] == "(earlier messages left out)"
    assert lines[1] == f"You: message {20 - MAX_EXCHANGES:02d}" and "message 11" not in human
    assert len(lines) == 1 + 2 * MAX_EXCHANGES
    assert len(lines[2]) < 620 and lines[2].endswith("…")  # an earlier reply, clipped
    assert lines[-1].endswith("x" * 900)  # the reply to react to, whole


def test_the_conversation_must_end_with_a_reply():
    with pytest.raises(ValueError, match="companion's reply"):
        simulator(None).prompt(CONVERSATION[:1], goal=GOAL, situation=None)


# --- the simulator's own model ---------------------------------------------------------------


def test_an_endpoint_override_gives_chat_openai_on_that_url(tmp_path):
    settings = Settings(data_dir=tmp_path, model="qwen2.5-coder-1.5b-instruct")
    model, method = build_user_model(
        settings, model="big", base_url="http://127.0.0.1:9/v1", api_key="k", max_tokens=123
    )
    assert isinstance(model, ChatOpenAI)
    assert (model.openai_api_base, model.model_name) == ("http://127.0.0.1:9/v1", "big")
    assert model.openai_api_key.get_secret_value() == "k"
    assert model.extra_body == {"max_tokens": 123}
    assert method == settings.structured_method
    assert settings.base_url is None and settings.model == "qwen2.5-coder-1.5b-instruct"


def test_by_default_the_simulator_uses_the_agents_endpoint(tmp_path):
    settings = Settings(data_dir=tmp_path, base_url="http://127.0.0.1:9/v1", model="agent")
    model, _ = build_user_model(settings)
    assert isinstance(model, ChatOpenAI) and model.model_name == "agent"
    assert model.openai_api_base == "http://127.0.0.1:9/v1"


def test_the_embedded_simulator_has_its_own_context(tmp_path):
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + bytes(16))
    settings = Settings(data_dir=tmp_path, base_url="http://127.0.0.1:9/v1")
    model, method = build_user_model(settings, model=str(gguf), base_url="")  # "": embedded
    assert isinstance(model, ChatLlamaCpp)
    assert (model.role, model.max_tokens, method) == ("simulator", 400, "json_schema_text")


def test_a_missing_simulator_model_is_a_simulator_error(tmp_path):
    settings = Settings(data_dir=tmp_path, cache_dir=tmp_path / "cache")
    with pytest.raises(SimulatorError, match="empathos models install"):
        build_user_model(settings, model="qwen2.5-coder-0.5b-instruct")


# --- the real embedded model ------------------------------------------------------------------

MODEL = os.environ.get("EMPATHOS_TEST_MODEL", "smollm2-135m-instruct")


@pytest.mark.model
def test_a_real_model_gives_a_valid_reaction(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, model=MODEL)
    try:
        resolve_model_path(MODEL, settings.models_dir)
    except ModelNotInstalledError as exc:
        pytest.skip(f"{exc}")
    model, method = build_user_model(settings)
    reaction, calls = UserSimulator(model, CARD, method=method, name="Maya").react(
        CONVERSATION, goal=GOAL, situation=SITUATION, emotion=40, today=date(2026, 3, 7)
    )
    assert isinstance(reaction, Reaction) and -10 <= reaction.emotion_change <= 10
    assert reaction.message and calls[0].model == MODEL and calls[0].completion_tokens > 0
