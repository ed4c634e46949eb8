"""The typed state of one turn as it moves through the graph."""

from __future__ import annotations

import operator
import typing
from enum import Enum
from typing import Annotated, TypedDict

from pydantic import BaseModel

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
    evidence: dict[str, float]
    reply: str
    reply_checks: list[str]
    crisis: bool
    turn_index: int
    degraded: Annotated[list[str], operator.add]
    llm_calls: Annotated[list[LLMCall], operator.add]
    timings: Annotated[dict[str, float], merge_timings]


def checkpoint_types() -> set[tuple[str, str]]:
    """Return (module, name) of every model and enum in the state (the checkpoint allowlist)."""
    found: set[tuple[str, str]] = set()

    def visit(annotation: object) -> None:
        for arg in typing.get_args(annotation):
            visit(arg)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel | Enum):
            key = (annotation.__module__, annotation.__name__)
            if key not in found:
                found.add(key)
                if issubclass(annotation, BaseModel):
                    for field in annotation.model_fields.values():
                        visit(field.annotation)

    for annotation in typing.get_type_hints(TurnState).values():
        visit(annotation)
    return found
