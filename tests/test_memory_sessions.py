"""The memory system as the graph uses it: the context's own recall, worker and outcomes.

Runs the real graph and the real SQLite and Chroma stores with fake models: the `remember` node
queues the memory work, the worker runs it between sessions as it would in the background.
"""

from __future__ import annotations

from langgraph.checkpoint.memory import InMemorySaver

from agent.runner import Agent, checkpoint_serde, thread_config
from memory.memories import ExtractedFact, MemoryKind
from memory.rules import RuleJudge
from memory.trace import FORGOTTEN, MemoryRef, TurnTrace
from tests.conftest import fake_context
from tests.fakes import ANALYSIS, FakeEmotion, scripted_model, varied_reply
from tests.test_memory_fakes import SentenceExtractor, WordEmbedder


def test_session_one_is_recalled_in_session_three(settings, store):
    context = fake_context(settings, store, turns=3, embedder=WordEmbedder())
    worker = context.memory_worker
    worker.services.extractor = SentenceExtractor()
    worker.services.memories.judge = RuleJudge()  # the fake chat model serves turns only
    agent = Agent(context, InMemorySaver(serde=checkpoint_serde()))

    def say(session: str, text: str) -> str:
        result = agent.run_turn("ana", session, text)
        assert worker.queue.pending("ana") > 0, "remember must queue the memory work"
        assert worker.drain().failed == 0
        return result.turn_id

    say(store.new_session("ana"), "My sister Maya moved to Berlin in March.")
    say(store.new_session("ana"), "Work was long today and I am tired.")
    third = say(store.new_session("ana"), "I keep thinking about my sister Maya in Berlin.")

    trace = store.get_turn(third).trace
    used = trace.memories_used
    assert used[0].text == "My sister Maya moved to Berlin in March"
    assert context.recall.verify_memory("ana", used[0].id)
    assert not context.recall.verify_memory("bo", used[0].id)
    assert trace.traits["wants_to_be_heard"].evidence
    if trace.plan.strategy == "Personal Analogy":
        assert trace.memory_cited == used[0].id


def seeded_analogy_context(settings, store):
    """A context whose user has one memory that fits the next message closely."""
    context = fake_context(settings, store, turns=1, embedder=WordEmbedder())
    session = store.new_session("ana")
    turn = store.begin_turn("seed", "ana", session, "seed")
    fact = ExtractedFact(kind=MemoryKind.EXPERIENCE, text=OWN_EXPERIENCE, importance=0.9)
    [written] = context.memories.remember("ana", [fact], turn.id)
    store.complete_turn("seed", "ok", TurnTrace(), crisis=False)
    return context, session, written.memory_id


OWN_EXPERIENCE = "The user was so sad when their dog Biscuit died last spring"
# An analogy is for understanding someone else's feelings (EmoSync), never for plain venting.
MESSAGE = "I can't figure out why my son is still so sad that his dog died last spring"


def test_an_analogy_cites_a_verified_memory_of_this_user(settings, store):
    context, session, memory_id = seeded_analogy_context(settings, store)
    result = Agent(context, InMemorySaver(serde=checkpoint_serde())).run_turn(
        "ana", session, MESSAGE
    )
    trace = store.get_turn(result.turn_id).trace
    assert trace.plan.strategy == "Personal Analogy", trace.plan.why
    assert trace.memory_cited == memory_id
    assert any("an own experience like theirs" in why for why in trace.plan.why)


def test_an_analogy_never_cites_a_memory_forgotten_mid_turn(settings, store):
    context, session, memory_id = seeded_analogy_context(settings, store)
    real_verify, calls = context.recall.verify_memory, []

    def verify(user_id: str, memory: str) -> bool:  # forgotten right after the plan is made
        calls.append(memory)
        return real_verify(user_id, memory) and len(calls) <= 3  # recall, analysis, the plan

    context.recall.verify_memory = verify  # type: ignore[method-assign]
    result = Agent(context, InMemorySaver(serde=checkpoint_serde())).run_turn(
        "ana", session, MESSAGE
    )
    trace = store.get_turn(result.turn_id).trace
    assert set(calls) == {memory_id} and len(calls) >= 3
    assert trace.memories_used == []  # dropped from the reply prompt and the trace too
    assert trace.plan.strategy != "Personal Analogy" and trace.memory_cited is None
    assert any("is gone" in note for note in trace.degraded)


LIKED = "Affirmation and Reassurance"


def test_feedback_on_each_reply_shifts_the_strategy(settings, store):
    """A scripted user who rates one strategy up and every other down gets it within a few turns.

    The target is the prior's runner-up: outcomes re-rank the strategies that suit the moment;
    they never push one the context rules out (an untried arm gets no bonus)."""
    turns = 14
    script = []
    for i in range(turns):
        script += [ANALYSIS, varied_reply(i)]
    context = fake_context(
        settings,
        store,
        chat_model=scripted_model(*script),
        embedder=WordEmbedder(),
        emotion=FakeEmotion("sadness", 0.7, -0.6),
    )
    agent = Agent(context, InMemorySaver(serde=checkpoint_serde()))
    session = store.new_session("ana")
    chosen = []
    for i in range(turns):
        result = agent.run_turn(
            "ana", session, f"I failed my driving test again, take {i}", turn_id=f"turn-{i:02d}"
        )
        strategy = result.state["plan"].strategy
        chosen.append(strategy)
        context.outcomes.feedback(store, "ana", strategy == LIKED, result.turn_id)
    assert chosen[0] != LIKED, "the target must not be what the prior already picks"
    assert LIKED in chosen[:6], chosen
    assert chosen[-6:].count(LIKED) >= 5, chosen


def test_forgetting_a_memory_scrubs_it_from_past_traces(settings, store):
    context, session, memory_id = seeded_analogy_context(settings, store)
    agent = Agent(context)  # the real SQLite checkpointer
    result = agent.run_turn("ana", session, MESSAGE)
    assert agent.checkpointer.get_tuple(thread_config("ana", result.turn_id)) is None
    before = store.get_turn(result.turn_id).trace.memories_used
    assert before[0].text == OWN_EXPERIENCE
    context.memories.forget("ana", memory_id)
    after = store.get_turn(result.turn_id).trace.memories_used
    assert after == [MemoryRef(id=memory_id, text=FORGOTTEN)]
