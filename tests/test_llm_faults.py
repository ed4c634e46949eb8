"""LLM faults through the real graph (real SQLite store, fake model that fails on schedule).

Every fault ends in a reply (degraded where the analysis failed, recorded in the trace) or in a
clear `TurnFailedError`; the person's message is always stored. 100 turns in `make test`,
`pytest -m soak` runs 1,000.
"""

from __future__ import annotations

from collections import Counter

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agent.runner import Agent, TurnFailedError, checkpoint_serde
from tests.conftest import fake_context
from tests.faulty_model import FaultSchedule, FaultyChatModel


def drive(settings, store, turns: int, seed: int = 11, rate: float = 0.4) -> Counter[str]:
    schedule = FaultSchedule(seed, rate)
    context = fake_context(settings, store, chat_model=FaultyChatModel(schedule=schedule))
    agent = Agent(context, InMemorySaver(serde=checkpoint_serde()))
    session = store.new_session("ana")
    outcomes: Counter[str] = Counter()
    for index in range(turns):
        message = f"Message {index}: work has been rough and I feel stuck."
        try:
            result = agent.run_turn("ana", session, message)
        except TurnFailedError as exc:
            turn = store.get_turn(exc.turn_id)
            assert turn.status == "failed" and turn.error and turn.user_text == message
            assert "Your message was saved" in str(exc)
            outcomes["clear error"] += 1
            continue
        turn = store.get_turn(result.turn_id)
        assert turn.status == "done" and turn.reply == result.reply and result.reply.strip()
        outcomes["degraded reply" if result.state.get("degraded") else "reply"] += 1
    stored = store.turns("ana")
    assert len(stored) == turns  # no silent drops: every message is kept
    assert {t.status for t in stored} <= {"done", "failed"}
    outcomes.update({f"injected {k}": v for k, v in schedule.injected.items()})
    return outcomes


def test_every_llm_fault_ends_visibly_and_keeps_the_message(settings, store):
    outcomes = drive(settings, store, 100)
    assert outcomes["clear error"] > 0 and outcomes["degraded reply"] > 0
    assert sum(v for k, v in outcomes.items() if k.startswith("injected")) > 20


@pytest.mark.soak
def test_a_thousand_turns_of_llm_faults(settings, store):
    outcomes = drive(settings, store, 1000, seed=5)
    print(dict(outcomes))
    assert outcomes["reply"] + outcomes["degraded reply"] + outcomes["clear error"] == 1000
