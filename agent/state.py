"""The typed state of one turn as it moves through the graph."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from agent.schemas import (
    CauseAnalysis,
    EmotionReading,
    LLMCall,
    SafetyAssessment,
)
from memory.recall import Recall
from strategies.policy import Plan


def merge_timings(left: dict[str, float], right: dict[str, float]) -> dict[str, float]:
    """Merge per-node timings; a re-run node overwrites its own entry."""
    return {**left, **right}


class TurnInput(TypedDict):
    """What a caller passes in to run one turn."""

    user_id: str
    session_id: str
    turn_id: str
    message: str


class TurnState(TurnInput, total=False):
    """Everything the nodes of one turn read and write."""

    rejected: str
    safety: SafetyAssessment
    recall: Recall
    emotion: EmotionReading
    analysis: CauseAnalysis
    plan: Plan
    reply: str
    crisis: bool
    turn_index: int
    degraded: Annotated[list[str], operator.add]
    llm_calls: Annotated[list[LLMCall], operator.add]
    timings: Annotated[dict[str, float], merge_timings]
