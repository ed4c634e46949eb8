"""Model-free rules on remembered statements: the rule judge (same / contradicts) and the
grounding check (is a fact made of the person's own words?)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

Relation = Literal["same", "contradicts", "unrelated"]

NEGATIONS = frozenset(
    "not no never nobody nothing nowhere neither nor cannot anymore stopped quit hate hates "
    "hated dislike dislikes disliked".split()
)
STOPWORDS = frozenset(
    "the a an and or but of to in on at for with from by is are was were be been being am "
    "i me my mine you your user user's their they them he she his her it its this that these "
    "those has have had do does did so very really just also about as into than then there".split()
)
WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def negated(text: str) -> bool:
    """Return True if the statement is phrased negatively (not, never, no longer, hate...)."""
    return any(w in NEGATIONS or w.endswith("n't") for w in words(text))


class RuleJudge:
    """A model-free judge: near-identical means same; similar with flipped polarity contradicts.

    It catches "I love running" vs "I don't love running anymore", not "I live in Berlin" vs
    "I moved to Lisbon"; the LLM judge in `agent.memory_llm` catches more.
    """

    def __init__(self, same_at: float = 0.88) -> None:
        self.same_at = same_at

    def relation(self, new: str, old: str, similarity: float) -> Relation:
        if negated(new) != negated(old):
            return "contradicts"
        return "same" if similarity >= self.same_at else "unrelated"


def content_words(text: str) -> set[str]:
    return {w[:5] for w in words(text) if w not in STOPWORDS and len(w) > 2}


def is_grounded(fact: str, sources: Sequence[str], share: float = 0.5) -> bool:
    """Return True if enough of the fact's content words come from the user's own words."""
    wanted = content_words(fact)
    if not wanted:
        return False
    have = set().union(*(content_words(s) for s in sources)) if sources else set()
    return len(wanted & have) / len(wanted) >= share
