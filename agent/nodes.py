"""One function per node of the empathy turn, and the routers between them.

Nodes are safe to re-run after a crash: stores are written with idempotent upserts keyed by the
turn id, and a node's state update only lands once the node has finished.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from langchain_core.messages import BaseMessage, SystemMessage
from langgraph.constants import TAG_NOSTREAM
from langgraph.graph import END
from langgraph.runtime import Runtime

from agent import prompts
from agent.analysis import (
    Note,
    as_planned,
    asks_about_own_past,
    fallback_analysis,
    ground_cause,
    note_analysis,
    note_grammar,
    note_sentences,
    read_note,
    read_request,
)
from agent.context import Context, default_context
from agent.llama import ChatLlamaCpp
from agent.llm import LLMError, invoke_structured, model_call_errors, record_call
from agent.reply import ReplyChecks, checked_reply, stream_reply, writer_emit
from agent.schemas import CauseAnalysis, LLMCall, SafetyAssessment
from agent.state import TurnState
from agent.trace import build_trace
from agent.understanding import addressed, read_understanding, with_analogy
from agent.validation import message_problem
from memory.database import transaction
from memory.trace import MemoryRef
from strategies.catalogue import Catalogue, load_catalogue
from strategies.policy import GROUNDING_MIN_RELEVANCE, Plan, Signals, select_plan

Update = dict[str, Any]
Node = Callable[[TurnState, Runtime[Context]], Update]


def services(runtime: Runtime[Context]) -> Context:
    """Return the run's context, or the process default when none was passed (dev server)."""
    return runtime.context if runtime.context is not None else default_context()


def timed(node: Node) -> Node:
    """Record the node's wall time under `timings[node name]`."""

    @wraps(node)
    def run(state: TurnState, runtime: Runtime[Context]) -> Update:
        start = time.perf_counter()
        update = node(state, runtime)
        return {**update, "timings": {node.__name__: time.perf_counter() - start}}

    return run


def crisis_text(ctx: Context, assessment: SafetyAssessment) -> str:
    """The crisis reply with the resources for the configured locale and the crisis's kind."""
    from agent.crisis import crisis_reply as write_crisis_reply
    from agent.crisis import crisis_resources

    return write_crisis_reply(
        assessment, crisis_resources(ctx.settings.locale, assessment.category)
    )


def check_in_text(ctx: Context, assessment: SafetyAssessment) -> str:
    """The one gentle check-in line an "uncertain" screen adds after the ordinary reply."""
    from agent.crisis import check_in_line, crisis_resources

    return check_in_line(assessment, crisis_resources(ctx.settings.locale, assessment.category))


def with_crisis_resources(ctx: Context, problem: str, message: str) -> str:
    """A rejected message is still screened: if it discloses a crisis, the answer that asks the
    person to resend also stays with them and gives the resources."""
    readable = "".join(
        ch if ch.isprintable() or ch in "\n\t" else " "
        for ch in message.encode("utf-8", "replace").decode("utf-8")
    )[: ctx.settings.max_message_chars]
    assessment = ctx.safety.screen(readable)
    return f"{crisis_text(ctx, assessment)}\n\n({problem})" if assessment.crisis else problem


@timed
def guard(state: TurnState, runtime: Runtime[Context]) -> Update:
    """Reject unusable input; persist the user's message before any model sees it."""
    ctx = services(runtime)
    problem = message_problem(state["message"], ctx.settings.max_message_chars)
    if problem:
        return {"rejected": with_crisis_resources(ctx, problem, state["message"])}
    turn = ctx.store.begin_turn(
        state["turn_id"], state["user_id"], state["session_id"], state["message"]
    )
    return {"turn_index": turn.idx}


@timed
def safety_screen(state: TurnState, runtime: Runtime[Context]) -> Update:
    """Screen for a crisis with the fast non-LLM plug-in."""
    ctx = services(runtime)
    message = state["message"]
    assessment = ctx.safety.screen(message, ctx.vector(message), ctx.window_vectors(message))
    return {"safety": assessment, "crisis": assessment.crisis}


@timed
def recall(state: TurnState, runtime: Runtime[Context]) -> Update:
    """Fetch the profile, relevant memories and the session's recent history."""
    ctx = services(runtime)
    message = state["message"]
    reading = ctx.read_emotion(message)  # for mood-congruent ranking; cached for the next node
    found = ctx.recall.recall(
        state["user_id"], state["session_id"], message, state.get("turn_index", 0),
        emotion=reading.label, valence=reading.valence, vector=ctx.vector(message),
    )  # fmt: skip
    variant = ctx.variant
    if not variant.memory or not variant.traits:  # an ablation: keep only what it may use
        memories = found.memories if variant.memory else []
        found = found.model_copy(update={"memories": memories, "traits": {}})
    if variant.memory:
        found = with_analogy(ctx.recall, ctx.embedder.embed_one, state["user_id"],
                             message, found, ctx.vector(message), ctx.analogy_judge)  # fmt: skip
    return {"recall": found, "degraded": found.degraded}


@timed
def recognize_emotion(state: TurnState, runtime: Runtime[Context]) -> Update:
    """Read the emotion with the classifier plug-in (not the LLM)."""
    return {"emotion": services(runtime).read_emotion(state["message"])}


def current_memories(ctx: Context, state: TurnState) -> list[MemoryRef]:
    """The recalled memories that still exist and are this user's (a resumed turn may carry
    memories forgotten since it was recalled; they must never reach a prompt or a trace)."""
    user_id = state["user_id"]
    return [m for m in state["recall"].memories if ctx.recall.verify_memory(user_id, m.id)]


def writes_note(ctx: Context) -> bool:
    """Whether the analysis is the compact note (see agent.analysis) or the full JSON."""
    setting = ctx.settings.analysis
    return setting == "note" or (setting == "auto" and isinstance(ctx.chat_model, ChatLlamaCpp))


def analysis_call(ctx: Context, state: TurnState) -> list[BaseMessage]:
    """The messages of the analysis call; the reply call repeats them as its cached prefix
    (without cause analysis: the conversation and memories alone)."""
    memories, history = current_memories(ctx, state), state["recall"].history
    if not ctx.variant.cause_analysis:
        return prompts.conversation_messages(state["message"], memories, history)
    return prompts.analysis_messages(
        state["message"], state["emotion"], memories, history, compact=writes_note(ctx)
    )


def write_note(
    ctx: Context, messages: list[BaseMessage], message: str
) -> tuple[CauseAnalysis, list[LLMCall]]:
    """The compact note: grammar-constrained on the embedded model (three tokens), structured
    output elsewhere."""
    model = ctx.chat_model
    if not isinstance(model, ChatLlamaCpp):
        note, calls = invoke_structured(
            model, messages, Note, method=ctx.structured_method, node="analyze_cause",
            max_tokens=NOTE_MAX_TOKENS,
        )  # fmt: skip
        return note_analysis(note, message), calls
    start = time.perf_counter()
    grammar = note_grammar(len(note_sentences(message)))
    with model_call_errors(model):
        answer = model.with_config(tags=[TAG_NOSTREAM]).invoke(
            messages, grammar=grammar, max_tokens=NOTE_MAX_TOKENS, temperature=0.0
        )
    call = record_call("analyze_cause", model, answer, time.perf_counter() - start, False)
    return read_note(answer.text, message), [call]


NOTE_MAX_TOKENS = 12
ANSWER_MIN_RELEVANCE = GROUNDING_MIN_RELEVANCE  # a memory this unlike the question answers nothing


@timed
def analyze_cause(state: TurnState, runtime: Runtime[Context]) -> Update:
    """Work out the cause and the need (and, in full, situation and thoughts) before replying
    (EBG)."""
    ctx = services(runtime)
    messages = analysis_call(ctx, state)
    try:
        if writes_note(ctx):
            analysis, calls = write_note(ctx, messages, state["message"])
        else:
            analysis, calls = invoke_structured(
                ctx.chat_model,
                messages,
                CauseAnalysis,
                method=ctx.structured_method,
                node="analyze_cause",
                max_tokens=ctx.settings.analysis_max_tokens,
            )
    except (LLMError, ValueError, TimeoutError, ConnectionError) as exc:  # reply without it;
        # if the model is really down the reply call fails too, and the turn ends in a clear error
        fallback = fallback_analysis(state["message"], state["emotion"])
        safety = ctx.safety.combine(state["safety"], None)  # no reading: err on safety
        return {
            "analysis": fallback,
            "degraded": [f"analyze_cause: {exc}"],
            "safety": safety,
            "crisis": safety.crisis,
        }
    safety = ctx.safety.combine(state["safety"], analysis.risk)
    return {
        "analysis": ground_cause(analysis, state["message"]),
        "llm_calls": calls,
        "safety": safety,
        "crisis": safety.crisis,
    }


@timed
def assume_cause(state: TurnState, runtime: Runtime[Context]) -> Update:
    """Without cause analysis (the `no-ebg` variant): a minimal analysis, no LLM call."""
    note = "(no cause analysis in this configuration)"
    return {"analysis": fallback_analysis(state["message"], state["emotion"], note)}


@timed
def select_strategy(state: TurnState, runtime: Runtime[Context]) -> Update:
    """Choose a lens and strategy from the analysis, emotion, traits and outcomes (CoE).

    What has worked for this person enters as a Thompson draw per lens and strategy, seeded by
    the turn id so a resumed turn makes the same choice. A personal analogy needs both: they
    struggle to understand someone else's feelings, and an own experience like that person's
    situation was recalled (`with_analogy`) that the store confirms is this user's, now. A
    support preference the message states ("what should I do?") sets the need (`read_request`).
    """
    ctx = services(runtime)
    emotion, analysis, found = state["emotion"], state["analysis"], state["recall"]
    user_id, message = state["user_id"], state["message"]
    memory_question = asks_about_own_past(message)
    reading = read_understanding(message, ctx.vector(message))
    grounding = found.analogy
    if grounding is not None and not ctx.recall.verify_memory(user_id, grounding.id):
        grounding = None
    rng = random.Random(f"{ctx.settings.seed}:{state['turn_id']}")
    evidence, request = ctx.outcomes.evidence(user_id, rng), read_request(message)
    signals = Signals(
        need=(request.need or analysis.need).value, need_said=request.need is not None,
        emotion=emotion.label, emotion_probability=emotion.probability,
        valence=emotion.valence, intensity=emotion.intensity,
        turn_index=state.get("turn_index", 0),
        grounding_memory_id=grounding.id if grounding else None,
        grounding_relevance=grounding.relevance if grounding else 0.0,
        grounding_judged=found.analogy_judged if grounding else None,
        memory_question=memory_question,
        understanding_other=reading.struggling and not memory_question,
        other_person=reading.other,
    )  # fmt: skip
    plan = select_plan(signals, found.traits, evidence, request.traits)
    return {"plan": plan, "evidence": evidence}


def checked_plan(ctx: Context, state: TurnState) -> tuple[Plan | None, MemoryRef | None, list[str]]:
    """The plan (none without the policy) and the memory it cites, if that still exists."""
    plan, found = state.get("plan"), state["recall"]
    if plan is None or plan.grounding_memory_id is None:
        return plan, None, []
    grounding = next((m for m in found.memories if m.id == plan.grounding_memory_id), None)
    if grounding is not None and ctx.recall.verify_memory(state["user_id"], grounding.id):
        return plan, grounding, []
    gone = f"generate_reply: memory {plan.grounding_memory_id} is gone; no analogy"
    return plan.without_grounding(), None, [gone]  # forgotten or edited since recall


def finished_reply(ctx: Context, state: TurnState, reply: str) -> Update:
    """The reply as the person sees it: never empty, with the check-in an "uncertain" gets."""
    text, degraded = reply.strip(), []
    if not text:
        text = prompts.EMPTY_REPLY
        degraded.append("empty reply")
    if state["safety"].band == "uncertain":  # graded: ordinary reply plus one gentle check-in
        text = f"{text}\n\n{check_in_text(ctx, state['safety'])}"
    return {"reply": text, "degraded": degraded}


@timed
def generate_reply(state: TurnState, runtime: Runtime[Context]) -> Update:
    """Write the reply in the chosen strategy (unguided without one), streaming tokens."""
    ctx = services(runtime)
    plan, grounding, degraded = checked_plan(ctx, state)
    catalogue = load_catalogue()
    task = prompts.reply_task(
        catalogue.lens_named(plan.lens) if plan else None,
        catalogue.strategy_named(plan.strategy) if plan else None,
        grounding,
        memory_question=plan is not None and plan.answer_from_memory,
        best_memory=best_memory(ctx, state) if plan and plan.answer_from_memory else None,
        other=addressed(plan.other_person) if plan else "",
    )
    messages = reply_call(ctx, state, task)
    reply, calls, notes, failed = checked_reply(
        ctx.chat_model, messages, reply_checks(state, catalogue, ctx.settings.reply_check),
        node="generate_reply",
        model_name=ctx.model_name, emit=writer_emit(runtime.stream_writer),
    )  # fmt: skip
    update = finished_reply(ctx, state, reply)
    planned = {"plan": plan} if plan is not None else {}
    degraded += failed + update["degraded"]
    return {**update, **planned, "llm_calls": calls, "reply_checks": notes, "degraded": degraded}


def best_memory(ctx: Context, state: TurnState) -> MemoryRef | None:
    """The recalled memory that best answers a question about the past, if one is related."""
    related = (m for m in current_memories(ctx, state) if m.relevance >= ANSWER_MIN_RELEVANCE)
    return next(related, None)


def reply_call(ctx: Context, state: TurnState, task: str) -> list[BaseMessage]:
    """The reply call continues the analysis call (its prompt is the model's cached prefix),
    then the analysis as a plain sentence and the task. (The note kept as the model's own
    message was cheaper, but qwen-0.5b then answered with the note itself.)"""
    prefix, analysis = analysis_call(ctx, state), as_planned(state["analysis"], state.get("plan"))
    if not ctx.variant.cause_analysis:
        return prompts.reply_messages(prefix, None, task)
    if writes_note(ctx):
        return [*prefix, SystemMessage(prompts.note_notes(analysis, state["message"]) + task)]
    return prompts.reply_messages(prefix, analysis, task)


def reply_checks(state: TurnState, catalogue: Catalogue, enabled: bool = True) -> ReplyChecks:
    """What this turn's reply is checked against: the message and its mood, the session's
    earlier replies, every exemplar of the catalogue."""
    return ReplyChecks(
        message=state["message"],
        earlier_replies=[text for role, text in state["recall"].history if role != "user"],
        exemplars=[e for strategy in catalogue.strategy for e in strategy.exemplars],
        instructions=[prompts.shared_system()],
        valence=state["emotion"].valence if state.get("emotion") else None,
        enabled=enabled,
    )


@timed
def plain_reply(state: TurnState, runtime: Runtime[Context]) -> Update:
    """One plain streamed call, the `single-call` baseline (after the same safety screen)."""
    ctx = services(runtime)
    messages = prompts.plain_messages(state["message"], state["recall"].history)
    reply, call, _ = stream_reply(
        ctx.chat_model, messages, node="plain_reply", model_name=ctx.model_name,
        emit=writer_emit(runtime.stream_writer), checking=False,
    )  # fmt: skip
    return {**finished_reply(ctx, state, reply), "llm_calls": [call]}


@timed
def crisis_reply(state: TurnState, runtime: Runtime[Context]) -> Update:
    """Answer a crisis: acknowledge, stay with the person, give resources. No ordinary reply."""
    return {"reply": crisis_text(services(runtime), state["safety"]), "crisis": True}


@timed
def remember(state: TurnState, runtime: Runtime[Context]) -> Update:
    """Persist the reply with the turn's full trace."""
    ctx = services(runtime)
    # One transaction: a memory forgotten meanwhile is either gone from the check or scrubbed
    # from this trace by the forgetting (never left in it).
    with transaction(ctx.store.db):
        found = state.get("recall")
        if found is not None:  # cite only memories that still exist
            recalled = found.model_copy(update={"memories": current_memories(ctx, state)})
            state = {**state, "recall": recalled}
        trace = build_trace(state, ctx.model_name)
        crisis = state.get("crisis", False)
        ctx.store.complete_turn(state["turn_id"], state["reply"], trace, crisis)
    # Memory work (facts, traits, scoring the previous reply) runs later, off the critical path.
    if ctx.variant.memory:
        ctx.memory_worker.enqueue_turn(state["user_id"], state["session_id"], state["turn_id"])
    return {}


def route_after_guard(state: TurnState) -> str:
    return END if state.get("rejected") else "safety_screen"


def route_after_safety(state: TurnState) -> str:
    return "crisis_reply" if state.get("crisis") else "recall"


def route_after_analysis(state: TurnState) -> str:
    return "crisis_reply" if state.get("crisis") else "select_strategy"
