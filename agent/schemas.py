"""The typed records that flow through one turn: readings, analyses, plans and traces.

Every structured LLM output is one of these pydantic models; string fields carry `max_length`
and closed sets are enums, because small models loop without bounds when decoding is
constrained by the JSON schema.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Need(StrEnum):
    """What the person most likely wants from this reply."""

    VENT = "vent"
    VALIDATION = "be_validated"
    ADVICE = "get_advice"
    INFORMATION = "information"
    CELEBRATE = "celebrate"
    DISTRACTION = "distraction"


class EmotionScore(BaseModel):
    label: str
    probability: float = Field(ge=0.0, le=1.0)


class EmotionReading(BaseModel):
    """What the emotion plug-in read in one message."""

    label: str
    probability: float = Field(ge=0.0, le=1.0)
    top: list[EmotionScore]
    valence: float = Field(ge=-1.0, le=1.0, description="Negative to positive.")
    intensity: float = Field(ge=0.0, le=1.0)


CrisisCategory = Literal[
    "none", "suicide", "self_harm", "harm_to_others", "abuse", "medical_emergency"
]


class SafetyAssessment(BaseModel):
    """The crisis screen's verdict on one message, with the signals behind it."""

    crisis: bool
    category: CrisisCategory = "none"
    risk: float = Field(ge=0.0, le=1.0, description="Combined risk score.")
    band: Literal["clear", "uncertain", "crisis"] = "clear"
    signals: list[str] = Field(default_factory=list, description="Human-readable reasons.")
    llm_flag: bool | None = Field(default=None, description="The LLM's risk signal, if asked.")
    indirect_signal: bool = Field(
        default=False, description="An indirect crisis pattern fired (a rule, not only the model)."
    )


class CrisisResource(BaseModel):
    name: str
    contact: str
    note: str = ""


class CrisisResources(BaseModel):
    locale: str
    emergency: str
    resources: list[CrisisResource]


class CauseAnalysis(BaseModel):
    """Empathizing before generation: what happened, why it hurts, what is wanted."""

    model_config = ConfigDict(use_enum_values=False)

    cause_span: str = Field(
        max_length=200,
        description="The words of the user's message that say what caused the feeling.",
    )
    situation: str = Field(max_length=200, description="One sentence on what is going on.")
    need: Need = Field(description="What the person most likely wants from the reply.")
    thoughts: str = Field(
        max_length=200, description="What the person may be thinking or telling themselves."
    )
    risk: bool = Field(
        default=False,
        description="True only if the message hints at self-harm, suicide, violence or abuse.",
    )


class LLMCall(BaseModel):
    """One model call made during a turn."""

    node: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    retried: bool = False
