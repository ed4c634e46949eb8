"""LLM faults through the real graph (real SQLite store, models that fail on schedule).

Two back ends share one store and one fault schedule: the fault-injecting fake chat model, and
(`server_share` of the turns) the real `ChatOpenAI` that `agent.llm.build_chat_model` builds,
pointed at a real local HTTP server answering 500/502/503 or a valid completion, so the
client's own retry and error path runs. Every fault ends in a reply (degraded where the
analysis failed, recorded in the trace; or answered on the client's retry) or in a clear
`TurnFailedError`; the person's message is always stored. 100 turns in `make test`,
`pytest -m soak` runs 1,000.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agent.context import Context
from agent.reply_check import looks_like_json, loop_of
from agent.runner import Agent, TurnFailedError, checkpoint_serde
from memory.store import Turn
from tests.conftest import fake_context
from tests.fakes import FakeEmbedder, FakeEmotion, FakeSafety
from tests.faulty_model import SERVER_FAULTS, FaultSchedule, FaultyChatModel, FaultyServer


def server_context(settings, store, base_url: str) -> Context:
    """A context whose chat model is built from settings, as the app builds it: ChatOpenAI
    with the settings' structured method (function calling) and one retry."""
    endpoint = settings.model_copy(
        update={"base_url": base_url, "model": "faulty-server", "request_timeout": 30.0}
    )
    return Context(
        endpoint, store, embedder=FakeEmbedder(), emotion=FakeEmotion(), safety=FakeSafety()
    )  # type: ignore[arg-type]


def drive(
    settings, store, turns: int, seed: int = 11, rate: float = 0.4, server_share: float = 0.3
) -> Counter[str]:
    schedule, pick = FaultSchedule(seed, rate), random.Random(seed)
    saver = InMemorySaver(serde=checkpoint_serde())
    fake = Agent(
        fake_context(settings, store, chat_model=FaultyChatModel(schedule=schedule)), saver
    )
    session = store.new_session("ana")
    outcomes: Counter[str] = Counter()
    with FaultyServer(schedule) as server:
        real = Agent(server_context(settings, store, server.base_url), saver)
        for index in range(turns):
            via_server = pick.random() < server_share
            agent = real if via_server else fake
            before = sum(server.requests[f] for f in SERVER_FAULTS)
            message = f"Message {index}: work has been rough and I feel stuck."
            outcome, turn = run_one(agent, store, session, message)
            outcomes[outcome] += 1
            if via_server:
                faults = sum(server.requests[f] for f in SERVER_FAULTS) - before
                outcomes[f"server {outcome}" + (" after a 5xx" if faults else "")] += 1
                # the stored reason names what the server said
                assert turn.status == "done" or any(f"{c} " in turn.error for c in (500, 502, 503))
        outcomes.update({f"server requests {k}": v for k, v in server.requests.items()})
    stored = store.turns("ana")
    assert len(stored) == turns  # no silent drops: every message is kept
    assert {t.status for t in stored} <= {"done", "failed"}
    outcomes.update({f"injected {k}": v for k, v in schedule.injected.items()})
    return outcomes


def run_one(agent: Agent, store, session: str, message: str) -> tuple[str, Turn]:
    """Run one turn; check it ended visibly with the message kept; name the outcome."""
    try:
        result = agent.run_turn("ana", session, message)
    except TurnFailedError as exc:
        turn = store.get_turn(exc.turn_id)
        assert turn.status == "failed" and turn.error and turn.user_text == message
        assert "Your message was saved" in str(exc)
        return "clear error", turn
    turn = store.get_turn(result.turn_id)
    assert turn.status == "done" and turn.reply == result.reply and result.reply.strip()
    assert turn.user_text == message
    assert not looks_like_json(turn.reply) and not loop_of(turn.reply)  # the reply check holds
    return "degraded reply" if result.state.get("degraded") else "reply", turn


def test_every_llm_fault_ends_visibly_and_keeps_the_message(settings, store):
    outcomes = drive(settings, store, 100)
    print(dict(sorted(outcomes.items())))
    assert outcomes["clear error"] > 0 and outcomes["degraded reply"] > 0
    assert sum(v for k, v in outcomes.items() if k.startswith("injected")) > 20
    # the real client met real 5xx answers: some ended in a clear error, some were retried
    assert outcomes["server clear error after a 5xx"] > 0
    assert outcomes["server reply after a 5xx"] > 0
    assert all(outcomes[f"server requests {kind}"] > 0 for kind in SERVER_FAULTS)


@pytest.mark.soak
def test_a_thousand_turns_of_llm_faults(settings, store):
    outcomes = drive(settings, store, 1000, seed=5)
    print(dict(sorted(outcomes.items())))
    assert outcomes["reply"] + outcomes["degraded reply"] + outcomes["clear error"] == 1000
    assert all(outcomes[f"server requests {kind}"] > 0 for kind in SERVER_FAULTS)
