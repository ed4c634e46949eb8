"""A turn killed mid-graph resumes at the failed node on the next start (durability="sync")."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel

from agent.context import Context
from agent.runner import Agent, checkpoint_serde, thread_config
from memory.database import open_database
from memory.store import ConversationStore
from tests.conftest import fake_context
from tests.fakes import REPLY, FakeEmbedder, FakeEmotion, FakeSafety, scripted_model

ROOT = Path(__file__).resolve().parents[1]


def test_hard_kill_mid_turn_resumes_without_redoing_finished_nodes(settings):
    store = ConversationStore(open_database(settings.db_path))
    session = store.new_session("ana")
    child = subprocess.run(
        [sys.executable, "-m", "tests.crash_child", str(settings.data_dir), session, "t-crash"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 137, child.stderr
    [pending] = store.pending_turns("ana")
    assert pending.user_text == "My exam went badly and I feel stupid"

    # Only the reply is scripted: if analyze_cause re-ran, the fake would hand it the reply text
    # as JSON and the turn would degrade; resuming must start at generate_reply.
    context = Context(
        settings,
        store,
        chat_model=scripted_model(REPLY),
        structured_method="json_schema_text",
        embedder=FakeEmbedder(),
        emotion=FakeEmotion(),
        safety=FakeSafety(),  # type: ignore[arg-type]
    )
    [result] = Agent(context).resume_pending("ana")
    assert result.reply == REPLY
    assert result.state.get("degraded", []) == []
    turn = store.get_turn("t-crash")
    assert turn.status == "done" and turn.reply == REPLY
    assert [c.node for c in turn.trace.llm_calls] == ["analyze_cause", "generate_reply"]
    assert store.pending_turns("ana") == []


def test_turn_lost_before_its_first_checkpoint_is_rerun_from_the_start(settings):
    store = ConversationStore(open_database(settings.db_path))
    session = store.new_session("ana")
    store.begin_turn("t-early", "ana", session, "hello again")  # persisted, graph never ran
    context = Context(
        settings,
        store,
        chat_model=scripted_model(
            {
                "cause_span": "hello again",
                "situation": "greeting",
                "need": "distraction",
                "thoughts": "none",
                "risk": False,
            },
            REPLY,
        ),
        structured_method="json_schema_text",
        embedder=FakeEmbedder(),
        emotion=FakeEmotion(),
        safety=FakeSafety(),  # type: ignore[arg-type]
    )
    [result] = Agent(context).resume_pending("ana")
    assert result.reply == REPLY
    assert [t.idx for t in store.turns("ana")] == [0]


class Foreign(BaseModel):
    """A type that is not part of the turn state."""

    x: int = 1


def test_checkpoints_deserialize_only_the_states_own_types(settings, store, caplog):
    agent = Agent(fake_context(settings, store))
    session = store.new_session("ana")
    with caplog.at_level(logging.WARNING):
        result = agent.run_turn("ana", session, "I failed my driving test again")
    # the state came back through the checkpointer; a finished turn's checkpoints are deleted
    assert result.state["plan"].strategy and "unregistered" not in caplog.text
    assert agent.graph.get_state(thread_config("ana", result.turn_id)).values == {}
    serde = checkpoint_serde()
    assert not isinstance(serde.loads_typed(serde.dumps_typed(Foreign())), Foreign)


def test_a_pending_turn_that_cannot_finish_never_blocks_the_others(settings, store):
    session = store.new_session("ana")
    store.begin_turn("too-long", "ana", session, "x" * 500)
    store.begin_turn("fine", "ana", session, "I failed my driving test again")
    short = settings.model_copy(update={"max_message_chars": 100})
    agent = Agent(fake_context(short, store))
    finished = agent.resume_pending("ana")
    assert [r.turn_id for r in finished] == ["fine"] and finished[0].reply == REPLY
    assert store.get_turn("too-long").status == "failed"
    assert store.pending_turns("ana") == []
