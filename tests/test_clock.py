"""The injected clock: every stored time and the recency of recall follow it.

A simulation lives weeks of a person's life in minutes; week-four recall must really be four
weeks old. Job backoff stays on the wall clock (a standing simulated clock must not stall retries).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent.runner import Agent, checkpoint_serde
from memory.clock import ClockError, SimulatedClock, SystemClock
from memory.database import open_database
from memory.recall import Recaller
from memory.store import ConversationStore
from tests.conftest import fake_context
from tests.test_memory_fakes import build_services, fact

START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def test_simulated_clock_moves_only_when_told():
    clock = SimulatedClock(START)
    assert clock.now() == clock.now() == START
    assert clock.advance(timedelta(days=7)) == START + timedelta(days=7)
    clock.set(START + timedelta(days=30))
    assert clock.now() == START + timedelta(days=30)


def test_simulated_clock_rejects_naive_times_and_going_back():
    with pytest.raises(ClockError, match="time zone"):
        SimulatedClock(datetime(2026, 3, 2))
    with pytest.raises(ClockError, match="cannot go back"):
        SimulatedClock(START).advance(timedelta(hours=-1))


def test_system_clock_is_aware_utc():
    assert SystemClock().now().tzinfo is not None


def test_turns_are_stamped_with_the_injected_clock(settings):
    from langgraph.checkpoint.memory import InMemorySaver

    clock = SimulatedClock(START)
    store = ConversationStore(open_database(settings.db_path), clock)
    context = fake_context(settings, store, turns=2)
    assert context.clock is clock
    agent = Agent(context, InMemorySaver(serde=checkpoint_serde()))
    session = store.new_session("ana")
    first = agent.run_turn("ana", session, "Today was my first day at the new job.")
    clock.advance(timedelta(days=28))
    second = agent.run_turn("ana", session, "Four weeks in, it still feels strange.")
    stamps = [store.get_turn(r.turn_id).created_at for r in (first, second)]
    assert [datetime.fromisoformat(s) for s in stamps] == [START, START + timedelta(days=28)]


def test_recall_recency_follows_the_simulated_clock(tmp_path):
    clock = SimulatedClock(START)
    services = build_services(tmp_path / "data", clock=clock)
    services.store.ensure_user("ana")
    services.memories.remember("ana", [fact("My sister Maya moved to Berlin in March")], "t1")
    recaller = Recaller(services.store, memories=services.memories, traits=services.traits)
    fresh = recaller.rank("ana", "I miss my sister in Berlin")[0]
    clock.advance(timedelta(days=30))
    month_old = recaller.rank("ana", "I miss my sister in Berlin")[0]
    assert fresh.recency == pytest.approx(1.0)
    assert month_old.recency == pytest.approx(0.5, abs=1e-3)  # half-life: 30 days
    stored = services.memories.get("ana", fresh.id)
    assert datetime.fromisoformat(stored.created_at) == START
