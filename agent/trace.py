"""Build the stored trace of a turn (`memory.trace.TurnTrace`) from the turn's state, or from
the plug-ins' readings of a turn taken from a person's past conversations (`agent.ingest`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from agent.schemas import EmotionReading, SafetyAssessment
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


def record(part: BaseModel | None) -> dict[str, Any] | None:
    """A reading or analysis as the JSON the stored trace validates (None stays None)."""
    return part.model_dump(mode="json") if part is not None else None


def build_trace(state: TurnState, model: str) -> TurnTrace:
    """Collect the turn's reasoning: emotion, safety, cause, plan, memories, model and costs.

    Each part is validated against the stored record, so a field the agent renames fails here,
    at the writer, instead of silently disappearing for the readers."""
    found, plan = state.get("recall"), state.get("plan")
    emotion, safety, analysis = state.get("emotion"), state.get("safety"), state.get("analysis")
    return TurnTrace.model_validate({
        "turn_id": state["turn_id"],
        "emotion": record(emotion),
        "safety": record(safety),
        "analysis": record(analysis),
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


def ingested_trace(
    turn_id: str, emotion: EmotionReading, safety: SafetyAssessment, source: str
) -> TurnTrace:
    """The trace of a turn from a person's past conversations: what the plug-ins read in their
    words, marked `origin="ingested"` with its `source`; no plan, no model (nothing was chosen
    or written by empathos)."""
    return TurnTrace.model_validate({
        "turn_id": turn_id,
        "emotion": record(emotion),
        "safety": record(safety),
        "crisis": safety.band == "crisis",
        "origin": "ingested",
        "source": source,
    })  # fmt: skip
