"""One benchmark item's turn in one system: the person's past ingested once (in the base
store) and exported; then, in the system's own store, that export imported, the earlier lines
of this conversation stored, and the message answered as one real turn. `eval.offline.run`
journals what these return."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from eval.offline.inputs import (
    LINE_GAP,
    Timeline,
    context_of,
    history_of,
    input_digest,
    line_memories,
    past_digest,
    trait_values,
    user_of,
)
from eval.offline.items import MemoryItem, ReplyItem, StrategyItem
from eval.simulate.person_run import owners_of

if TYPE_CHECKING:
    from agent.context import Context
    from agent.runner import Agent
    from memory.clock import SimulatedClock


def ingest_past(
    context: Context, clock: SimulatedClock, item: ReplyItem | StrategyItem | MemoryItem
) -> dict[str, Any]:
    """Ingest the person's history session by session (memories extracted, traits inferred);
    return the user, their export, the traits after each session and each history line's
    memories."""
    from agent.ingest import HistoryMessage, ingest
    from memory.privacy import export_user

    user = user_of(item)
    if context.store.db["users"].count_where("id = ?", [user]):
        context.forget_user(user)  # a half-done earlier attempt
    context.store.ensure_user(user)
    history = history_of(item)
    messages = [
        HistoryMessage(role=line.role, text=line.text, time=at, session=label)
        for line, at, label in Timeline.of(history, []).lines
    ]
    curve: list[dict[str, Any]] = []
    for n, label in enumerate(dict.fromkeys(m.session for m in messages)):
        session = [m for m in messages if m.session == label]
        clock.set(session[-1].time)
        ingest(context, user, session, source=f"eval-{past_digest(item)}-{n}")
        curve.append({"session": label, "traits": trait_values(context, user)})
    return {
        "user": user, "export": export_user(context.store.db, user), "traits_curve": curve,
        "line_memories": line_memories(context, user, history),
    }  # fmt: skip


def answer_item(
    context: Context, agent: Agent, clock: SimulatedClock,
    item: ReplyItem | StrategyItem | MemoryItem, past: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """The person's past imported into this system's store, the earlier lines of this
    conversation stored (not mined), then the message answered as one real turn."""
    from agent.ingest import HistoryMessage, ingest

    user = past["user"]  # an earlier item with this past, or an interrupted one, is replaced
    context.import_user(past["export"], replace=True)
    timeline = Timeline.of(history_of(item), context_of(item))
    current = timeline.lines[len(history_of(item)) :]
    if current:
        messages = [HistoryMessage(role=ln.role, text=ln.text, time=at, session=label)
                    for ln, at, label in current]  # fmt: skip
        clock.set(messages[-1].time)
        ingest(context, user, messages, source=f"eval-{input_digest(item)}", drain=False)
    clock.set(timeline.end + LINE_GAP)
    session = context.store.latest_session(user) if current else None
    session = session or context.store.new_session(user, f"eval {item.id}")
    message = item.question if isinstance(item, MemoryItem) else item.message
    started = time.perf_counter()
    result = agent.run_turn(user, session, message, turn_id=f"{user}-{context.variant.name}")
    seconds = round(time.perf_counter() - started, 3)
    if result.rejected:
        return {"error": f"the message was rejected: {result.rejected}"}
    turn = context.store.get_turn(result.turn_id)
    assert turn is not None
    trace = turn.trace
    used = [m.id for m in trace.memories_used]
    owner = owners_of(context, used) if used else {}
    analysed = (
        trace.analysis is not None
        and context.variant.cause_analysis
        and not any(d.startswith("analyze_cause") for d in trace.degraded)
    )  # the stand-in analysis (no-ebg, or a failed call) is not a cause found
    return {
        "user": user,
        "message": message,
        "reply": turn.reply,
        "crisis": turn.crisis,
        "seconds": seconds,
        "emotion": trace.emotion.label if trace.emotion else None,
        "cause_span": trace.analysis.cause_span if trace.analysis and analysed else None,
        "strategy": trace.plan.strategy if trace.plan else None,
        "lens": trace.plan.lens if trace.plan else None,
        "memories": [{"id": m.id, "text": m.text} for m in trace.memories_used],
        "leaks": [i for i in used if owner.get(i) != user],
        "llm_calls": len(trace.llm_calls),
        "degraded": trace.degraded,
    }
