"""The trace of a turn: everything that shaped the reply, as plain JSON-able data."""

from __future__ import annotations

from typing import Any

from agent.state import TurnState
from strategies.catalogue import load_catalogue


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json") if value is not None else None


def plan_details(state: TurnState) -> dict[str, Any] | None:
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


def build_trace(state: TurnState, model: str) -> dict[str, Any]:
    """Collect the turn's reasoning: emotion, safety, cause, plan, memories, model and costs."""
    found = state.get("recall")
    calls = state.get("llm_calls", [])
    return {
        "turn_id": state["turn_id"],
        "emotion": _dump(state.get("emotion")),
        "safety": _dump(state.get("safety")),
        "analysis": _dump(state.get("analysis")),
        "plan": plan_details(state),
        "memories_used": [m.model_dump(mode="json") for m in found.memories] if found else [],
        "memory_cited": plan.grounding_memory_id if (plan := state.get("plan")) else None,
        "evidence": state.get("evidence", {}),
        "traits": {k: v.model_dump(mode="json") for k, v in found.traits.items()} if found else {},
        "crisis": state.get("crisis", False),
        "degraded": state.get("degraded", []),
        "model": model,
        "llm_calls": [c.model_dump(mode="json") for c in calls],
        "timings": state.get("timings", {}),
    }
