"""Across sessions: what the user said in session 1 comes back in session 3 and the trace cites it.

Runs the real graph with fake models; recall is the memory Recaller (what the lead wires into the
context), the worker runs between sessions as it would in the background.
"""

from __future__ import annotations

from langgraph.checkpoint.memory import InMemorySaver

from agent.memory_llm import memory_recaller, memory_services
from agent.runner import Agent
from memory.worker import MemoryWorker
from tests.conftest import fake_context
from tests.test_memory_fakes import SentenceExtractor, WordEmbedder


def test_session_one_is_recalled_in_session_three(settings, store):
    context = fake_context(settings, store, turns=3, embedder=WordEmbedder())
    context.__dict__["recall"] = memory_recaller(context)
    services = memory_services(context)
    services.extractor = SentenceExtractor()
    worker, agent = MemoryWorker(services), Agent(context, InMemorySaver())

    def say(session: str, text: str) -> str:
        result = agent.run_turn("ana", session, text)
        worker.enqueue_turn("ana", session, result.turn_id)
        assert worker.drain().failed == 0
        return result.turn_id

    say(store.new_session("ana"), "My sister Maya moved to Berlin in March.")
    say(store.new_session("ana"), "Work was long today and I am tired.")
    third = say(store.new_session("ana"), "I keep thinking about my sister in Berlin.")

    trace = store.get_turn(third).trace
    cited = [m["text"] for m in trace["memories_used"]]
    assert cited[0] == "My sister Maya moved to Berlin in March"
    assert context.recall.verify_memory("ana", trace["memories_used"][0]["id"])
    assert not context.recall.verify_memory("bo", trace["memories_used"][0]["id"])
    assert trace["traits"]["wants_to_be_heard"]["evidence"]
