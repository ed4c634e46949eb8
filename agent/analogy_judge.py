"""Ask the model whether an own experience relates to someone else's feelings, when the vectors
cannot tell.

A personal analogy needs an experience of the person's own that is like what the other person
feels, and it is usually a different situation: the sister upset about the move, the user lost
after changing schools at twelve. MiniLM finds such pairs only when they share words, so many
related experiences sit below the analogy's similarity floor (`ANALOGY_MIN_RELEVANCE`), among
unrelated ones. The best own experience in that grey band (`ANALOGY_JUDGED_MIN_RELEVANCE` up
to the floor) is put to the turn's model as a one-letter question, A ("yes, a similar
feeling") or B ("no, unrelated"), twice: with the experience, and with a neutral one ("The
user had toast for breakfast this morning."). The answer is how much more probable A is with
the experience than with the neutral one; it grounds the analogy from `ANALOGY_JUDGE_MIN`.

Why the contrast (eval/bench_analogy.py, 2026-12-08, qwen-1.5b): the model's probability of A
alone is biased high and moves with the message (0.62-0.73 for every pair). Alone, with a floor
of 0.70, it accepted "The user won a pub quiz" for a daughter scared of hand dryers on a fresh
set. Against the neutral answer for the same message, on the grey-band pairs of five earlier
case sets (38 related, 30 unrelated), it orders them with AUC 0.88 (alone 0.84, the similarity
0.67); a margin of 0.04 accepts 29 of the 38 related and 4 of the 30 unrelated. Both calls
share the prompt up to the experience, so the second costs little more than its end. Only for a
message read as a struggle with an experience in the band: rare (0.2-0.5% of real messages
read as a struggle at all).

Without logprobs (an endpoint that gives none) or when a call fails, the answer is None and
the similarity floor alone decides: never a worse turn than without the judge.
"""

from __future__ import annotations

import logging
from typing import Protocol

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from agent.errors import LLMError
from agent.memory_llm import ModelSource, resolve
from agent.prompts import triple_quoted
from agent.trait_llm import token_mass

log = logging.getLogger(__name__)

JUDGE_SYSTEM = (
    "You decide whether a person's own past experience can help them understand someone "
    "else's feelings."
)
TOP_LOGPROBS = 10
NEUTRAL = "The user had toast for breakfast this morning."


class RelationJudge(Protocol):
    """Whether an own experience relates to the feelings someone struggles to understand."""

    def relates(self, message: str, who: str, memory: str) -> float | None:
        """How much more the experience reads as related than a neutral one (-1..1), or None
        when it cannot tell. `who` is the other person as the question names them ("their
        sister", "Theo", "the other person")."""
        ...


def judge_messages(message: str, who: str, memory: str) -> list[BaseMessage]:
    """The one-letter question: the message and the experience quoted as data."""
    return [
        SystemMessage(JUDGE_SYSTEM),
        HumanMessage(
            f"The person wrote:\n{triple_quoted(message)}\n\n"
            f"Something the person went through themselves:\n{triple_quoted(memory)}\n\n"
            f"Did the person once feel something like what {who} feels now, so that "
            f"remembering it could help them understand {who}?\n"
            "A: yes, a similar feeling\nB: no, unrelated\nAnswer with one letter."
        ),
    ]


class LLMRelationJudge:
    """The relation judge on a chat model that gives first-token logprobs (a factory is
    called only when a judgement is asked for: most turns never ask)."""

    def __init__(self, model: ModelSource) -> None:
        self._model = model

    def relates(self, message: str, who: str, memory: str) -> float | None:
        related = self.probability(message, who, memory)
        neutral = self.probability(message, who, NEUTRAL) if related is not None else None
        return None if related is None or neutral is None else related - neutral

    def probability(self, message: str, who: str, memory: str) -> float | None:
        """The model's probability of A ("a similar feeling") among A and B, or None."""
        try:
            answer = resolve(self._model).invoke(
                judge_messages(message, who, memory), logprobs=True,
                top_logprobs=TOP_LOGPROBS, max_tokens=1, temperature=0.0,
            )  # fmt: skip
        except LLMError as exc:  # the similarity floor alone decides, as without a judge
            log.warning("analogy judge: %s", exc)
            return None
        mass = token_mass(answer.response_metadata, ("A", "B"))
        return None if mass is None else mass["A"]
