"""What the agent knows about a person when it plans a reply: history, memories, traits.

Until long-term memory lands, `Recaller` returns the session's recent exchanges and an empty
profile; the interface (ids on every memory, traits with confidence) is the real one.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from memory.store import ConversationStore


class MemoryRef(BaseModel):
    """A remembered fact used in a turn, cited by id."""

    id: str
    text: str
    score: float = 0.0


class TraitValue(BaseModel):
    value: float = Field(ge=0.0, le=1.0)
    confidence: float = Field(ge=0.0, le=1.0)


class Recall(BaseModel):
    """The profile, memories and recent history handed to the planner."""

    traits: dict[str, TraitValue] = Field(default_factory=dict)
    memories: list[MemoryRef] = Field(default_factory=list)
    history: list[tuple[str, str]] = Field(
        default_factory=list, description="Recent (role, text) pairs of this session, oldest first."
    )


class Recaller:
    """Look up what is known about a user for one turn."""

    def __init__(self, store: ConversationStore, history_turns: int = 6) -> None:
        self.store = store
        self.history_turns = history_turns

    def recall(self, user_id: str, session_id: str, text: str, turn_index: int) -> Recall:
        """Return the user's profile, relevant memories and this session's recent history."""
        history = self.store.history(user_id, session_id, self.history_turns, turn_index)
        return Recall(history=history)
