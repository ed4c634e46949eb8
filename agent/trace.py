"""Build the stored trace of a turn (`memory.trace.TurnTrace`) from the turn's state."""

from __future__ import annotations

from agent.state import TurnState
from memory.trace import TurnTrace
from strategies.catalogue import load_catalogue


def plan_details(state: TurnState) -> dict[str, object] | None:
    """Return the plan with the lens and strategy definitions spelled out."""
    plan = state.get("plan")
    if plan is None:
        return None
    catalogue = load_catalogue()
    return {
        **plan.model_dump(mode="json"),
        "lens_definition": catalogue.lens_named(plan.lens).focus,
        "strategy_definition": catalogue.strategy_named(plan.strategy).definition,
    }


def build_trace(state: TurnState, model: str) -> TurnTrace:
    """Collect the turn's reasoning: emotion, safety, cause, plan, memories, model and costs.

    Each part is validated against the stored record, so a field the agent renames fails here,
    at the writer, instead of silently disappearing for the readers."""
    found, plan = state.get("recall"), state.get("plan")
    emotion, safety, analysis = state.get("emotion"), state.get("safety"), state.get("analysis")
    return TurnTrace.model_validate({
        "turn_id": state["turn_id"],
        "emotion": emotion.model_dump(mode="json") if emotion else None,
        "safety": safety.model_dump(mode="json") if safety else None,
        "analysis": analysis.model_dump(mode="json") if analysis else None,
        "plan": plan_details(state),
        "memories_used": [m.model_dump(mode="json") for m in found.memories] if found else [],
        "memory_cited": plan.grounding_memory_id if plan else None,
        "evidence": state.get("evidence", {}),
        "traits": {k: v.model_dump(mode="json") for k, v in found.traits.items()} if found else {},
        "crisis": state.get("crisis", False),
        "degraded": state.get("degraded", []),
        "reply_checks": state.get("reply_checks", []),
        "model": model,
        "llm_calls": [c.model_dump(mode="json") for c in state.get("llm_calls", [])],
        "timings": state.get("timings", {}),
    })  # fmt: skip
