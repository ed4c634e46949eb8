"""The stored trace of a turn: a typed, versioned record every reader uses.

The agent writes one `TurnTrace` per finished turn (`agent.trace.build_trace`); the memory worker
(emotion of a fact), the outcome scorer (the plan and the mood), the trait model (the need and
the mood), forgetting (scrubbing memories' words) and the front ends (the "why" panel, `--json`)
read it back through `TurnTrace.load`. A field renamed in the agent is therefore a type error
here, not a key that silently stops being found.

Versions: 1 is the unversioned dict stored before this module existed (same fields, no
`version`); 2 adds `version`. `load` migrates older traces as it reads them, and the migration
`m004_trace_version_2` (memory.migrations) rewrites the stored rows once. A stored trace that
no longer validates reads as an empty trace whose `degraded` says why, so one damaged row never
hides a conversation.
The records keep fields they do not know (`extra="allow"`), so a newer writer loses nothing.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from memory.errors import MemoryLayerError

TRACE_VERSION = 2
FORGOTTEN = "[forgotten]"


class TraceError(MemoryLayerError):
    """A stored trace that is not valid JSON or does not match any trace version."""


class Record(BaseModel):
    model_config = ConfigDict(extra="allow")


class MemoryRef(Record):
    """A remembered fact used in a turn, cited by id, with the parts of its score."""

    id: str
    text: str
    score: float = 0.0
    kind: str = ""
    relevance: float = 0.0
    recency: float = 0.0
    importance: float = 0.0
    congruence: float = 0.0


class TraitValue(BaseModel):
    value: float = Field(ge=0.0, le=1.0)
    confidence: float = Field(ge=0.0, le=1.0)
    source: str = Field(
        default="inferred",
        description="'inferred', 'user' (set by the user) or 'said' (stated in this message).",
    )
    evidence: list[str] = Field(default_factory=list, description="Turn and memory ids.")


class EmotionScoreTrace(Record):
    label: str
    probability: float = 0.0


class EmotionTrace(Record):
    """The emotion plug-in's reading of the message."""

    label: str
    probability: float = 0.0
    top: list[EmotionScoreTrace] = Field(default_factory=list)
    valence: float = 0.0
    intensity: float = 0.5


class SafetyTrace(Record):
    crisis: bool = False
    category: str = "none"
    risk: float = 0.0
    band: str = "clear"
    signals: list[str] = Field(default_factory=list)
    llm_flag: bool | None = None
    indirect_signal: bool = False


class AnalysisTrace(Record):
    """The cause analysis (absent when the variant skips it)."""

    cause_span: str = ""
    situation: str = ""
    need: str = ""
    thoughts: str = ""
    risk: bool = False


class PlanTrace(Record):
    """The chosen lens and strategy, with their definitions spelled out."""

    lens: str
    strategy: str
    stage: str = ""
    why: list[str] = Field(default_factory=list)
    scores: dict[str, float] = Field(default_factory=dict)
    trait_scores: dict[str, float] = Field(default_factory=dict)
    grounding_memory_id: str | None = None
    traits_used: list[str] = Field(default_factory=list)
    lens_definition: str = ""
    strategy_definition: str = ""


class CallTrace(Record):
    node: str
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    retried: bool = False


class TurnTrace(Record):
    """Everything that shaped one reply."""

    version: int = TRACE_VERSION
    turn_id: str = ""
    emotion: EmotionTrace | None = None
    safety: SafetyTrace | None = None
    analysis: AnalysisTrace | None = None
    plan: PlanTrace | None = None
    memories_used: list[MemoryRef] = Field(default_factory=list)
    memory_cited: str | None = None
    evidence: dict[str, float] = Field(default_factory=dict)
    traits: dict[str, TraitValue] = Field(default_factory=dict)
    crisis: bool = False
    degraded: list[str] = Field(default_factory=list)
    reply_checks: list[str] = Field(default_factory=list, description="What the check fixed.")
    model: str = ""
    llm_calls: list[CallTrace] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def load(cls, raw: str | dict[str, Any] | None) -> TurnTrace:
        """Read a stored trace of any version (None or empty: an empty trace)."""
        try:
            return cls.parse(raw)
        except TraceError as exc:
            return cls(degraded=[str(exc)])

    @classmethod
    def parse(cls, raw: str | dict[str, Any] | None) -> TurnTrace:
        """Read a stored trace of any version; raise `TraceError` if it cannot be read."""
        if not raw:
            return cls()
        try:
            data = json.loads(raw) if isinstance(raw, str) else dict(raw)
            return cls.model_validate(upgrade(data))
        except (ValueError, TypeError, ValidationError) as exc:
            reason = str(exc).splitlines()[0][:200]
            raise TraceError(f"the stored trace could not be read ({reason})") from exc

    def dump(self) -> str:
        return self.model_dump_json()

    @property
    def empty(self) -> bool:
        return self == TurnTrace()

    def without_memories(self, ids: set[str]) -> TurnTrace:
        """Return this trace with the words of the memories `ids` replaced (forgetting)."""
        used = [
            MemoryRef(id=m.id, text=FORGOTTEN) if m.id in ids else m for m in self.memories_used
        ]
        return self.model_copy(update={"memories_used": used})


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a stored trace dict to the current version."""
    if not isinstance(data, dict):
        raise TypeError(f"a trace must be a JSON object, not {type(data).__name__}")
    version = data.get("version", 1)
    if version > TRACE_VERSION:
        raise ValueError(f"trace version {version} is newer than this empathos ({TRACE_VERSION})")
    if version == 1:  # v1 -> v2: the version is written down; the fields are unchanged
        data = {**data, "version": 2}
    return data
