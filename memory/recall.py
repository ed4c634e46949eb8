"""What the agent knows about a person when it plans a reply: history, memories, traits.

Recall ranks the user's current memories by a documented score (all parts in [0, 1], weights
summing to 1, so the score is in [0, 1]):

    score = 0.55 * relevance + 0.15 * recency + 0.15 * importance + 0.15 * congruence

- relevance: cosine similarity of the memory to the message (Chroma, the user's own collection);
  memories below `min_relevance` are not candidates at all.
- recency: 0.5 ** (days since the memory was last mentioned / half-life days), half-life 30.
- importance: 0..1, set at extraction (and nudged up each time the fact comes back).
- congruence: 1.0 same emotion label as now; 0.75 same valence sign; 0.5 unknown or neutral;
  0.25 opposite sign (mood-congruent recall).

Only the `candidates` nearest memories by relevance are scored, so a very important but
unrelated memory is not recalled. No LLM is called here: recall is on the reply's critical path.

`experiences` is the second, narrower look-up a personal analogy needs: the user's own
experiences (kinds "experience" and "life_event") nearest to *someone else's* situation, ranked
by relevance alone (the analogy needs the experience most like theirs, not the freshest one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from memory.store import ConversationStore
from memory.trace import MemoryRef, TraitValue
from memory.vectors import VectorStoreError

if TYPE_CHECKING:
    from memory.memories import Memory, MemoryStore
    from memory.traits import TraitModel

NEUTRAL_VALENCE = 0.1
OWN_EXPERIENCE = ("experience", "life_event")


class Recall(BaseModel):
    """The profile, memories and recent history handed to the planner."""

    traits: dict[str, TraitValue] = Field(default_factory=dict)
    memories: list[MemoryRef] = Field(default_factory=list)
    history: list[tuple[str, str]] = Field(
        default_factory=list, description="Recent (role, text) pairs of this session, oldest first."
    )
    degraded: list[str] = Field(default_factory=list, description="What could not be recalled.")
    analogy: MemoryRef | None = Field(
        default=None,
        description="The user's own experience nearest to the situation of someone whose "
        "feelings they struggle to understand (its relevance is to that situation); also in "
        "`memories`.",
    )
    analogy_judged: float | None = Field(
        default=None,
        description="How much more the model read `analogy` as related than a neutral "
        "experience, when it was below the similarity floor and the model was asked "
        "(agent.analogy_judge); None otherwise.",
    )


@dataclass(frozen=True)
class RecallWeights:
    relevance: float = 0.55
    recency: float = 0.15
    importance: float = 0.15
    congruence: float = 0.15
    half_life_days: float = 30.0
    min_relevance: float = 0.2
    candidates: int = 20


def recency(seen_at: str, at: datetime, half_life_days: float) -> float:
    """Return 0.5 ** (age in days / half-life), 1.0 for a memory seen just now."""
    age = (at - datetime.fromisoformat(seen_at)).total_seconds() / 86400
    return float(0.5 ** (max(age, 0.0) / half_life_days))


def congruence(
    memory_emotion: str, memory_valence: float, emotion: str | None, valence: float | None
) -> float:
    """Return how well a memory's feeling matches the current one (see the module docstring)."""
    if emotion and memory_emotion and emotion == memory_emotion:
        return 1.0
    if valence is None or abs(valence) < NEUTRAL_VALENCE or abs(memory_valence) < NEUTRAL_VALENCE:
        return 0.5
    return 0.75 if (valence > 0) == (memory_valence > 0) else 0.25


def score_memory(
    memory: Memory, relevance: float, weights: RecallWeights, at: datetime,
    emotion: str | None, valence: float | None,
) -> MemoryRef:  # fmt: skip
    """Return the memory as a MemoryRef carrying its weighted score and the parts."""
    parts = {
        "relevance": max(0.0, min(1.0, relevance)),
        "recency": recency(memory.last_seen_at, at, weights.half_life_days),
        "importance": memory.importance,
        "congruence": congruence(memory.emotion, memory.valence, emotion, valence),
    }
    score = sum(getattr(weights, name) * value for name, value in parts.items())
    rounded = {name: round(value, 4) for name, value in parts.items()}
    return MemoryRef(id=memory.id, text=memory.text, kind=memory.kind, score=round(score, 4),
                     **rounded)  # fmt: skip


EXPERIENCE_REACH = 4  # candidates looked at for own experiences, times the usual


class Recaller:
    """Look up what is known about a user for one turn."""

    def __init__(
        self,
        store: ConversationStore,
        history_turns: int = 6,
        *,
        memories: MemoryStore | None = None,
        traits: TraitModel | None = None,
        k: int = 5,
        weights: RecallWeights | None = None,
    ) -> None:
        self.store, self.history_turns = store, history_turns
        self.memories, self.traits = memories, traits
        self.k, self.weights = k, weights or RecallWeights()

    def recall(
        self,
        user_id: str,
        session_id: str,
        text: str,
        turn_index: int,
        emotion: str | None = None,
        valence: float | None = None,
        vector: NDArray[np.float32] | None = None,
    ) -> Recall:
        """Return the user's profile, relevant memories and this session's recent history.

        Pass the message's `vector` when it is already embedded (it is, for the plug-ins) and
        the current `emotion` label and `valence` for mood-congruent ranking.
        """
        history = self.store.history(user_id, session_id, self.history_turns, turn_index)
        found = Recall(history=history)
        if self.traits is not None:
            found.traits = self.traits.values(user_id)
        if self.memories is not None:
            try:
                found.memories = self.rank(user_id, text, emotion, valence, vector)
            except VectorStoreError as exc:  # the reply goes on without memories, and says so
                found.degraded.append(f"recall: {exc}")
        return found

    def rank(
        self, user_id: str, text: str, emotion: str | None = None, valence: float | None = None,
        vector: NDArray[np.float32] | None = None,
    ) -> list[MemoryRef]:  # fmt: skip
        """Return the user's top-k memories for this message by the documented score."""
        assert self.memories is not None
        if vector is None:
            vector = self.memories.embedder.embed([text])[0]
        weights, at = self.weights, self.store.clock.now()
        near = self.memories.similar(user_id, vector, weights.candidates, weights.min_relevance)
        scored = [score_memory(m, sim, weights, at, emotion, valence) for m, sim in near]
        scored.sort(key=lambda ref: (-ref.score, ref.id))
        return scored[: self.k]

    def experiences(
        self, user_id: str, text: str, vector: NDArray[np.float32] | None = None, k: int = 3,
        kinds: tuple[str, ...] = OWN_EXPERIENCE,
    ) -> list[MemoryRef]:  # fmt: skip
        """Return the user's own experiences most similar to `text` (a situation), best first,
        each with its score parts; none below `min_relevance`."""
        if self.memories is None:
            return []
        if vector is None:
            vector = self.memories.embedder.embed([text])[0]
        weights, at = self.weights, self.store.clock.now()
        # Chroma holds no kinds: look further, so memories of other kinds (often about the other
        # person themselves) cannot crowd the person's own experiences out.
        near = self.memories.similar(
            user_id, vector, weights.candidates * EXPERIENCE_REACH, weights.min_relevance
        )
        own = [score_memory(m, sim, weights, at, None, None) for m, sim in near if m.kind in kinds]
        own.sort(key=lambda ref: (-ref.relevance, ref.id))
        return own[:k]

    def verify_memory(self, user_id: str, memory_id: str) -> bool:
        """Return True only if the memory exists, is current and belongs to this user."""
        return self.memories is not None and self.memories.verify(user_id, memory_id)
