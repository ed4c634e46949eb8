"""The LLM side of long-term memory: fact extraction and the same/contradicts judge.

Both run in the memory worker, off the reply's critical path. Only the user's own words are
shown to the model (never the assistant's replies, never prompts), quoted as data: instructions
inside them are something the person said, not something to do. Schemas bound every string and
use enums, because small models loop when decoding is constrained without bounds.
The wiring (which store, which model) lives in `agent.services`. Both take the chat model or a
function returning it, so the model loads only when the first job needs it.

Errors: `StructuredOutputError` / `ModelCallError` from `agent.llm` propagate out of extraction so
the worker records the failure and retries the job; the judge falls back to the rule judge.
A call that gave way to a turn (`ModelPreempted`) becomes `JobPreempted`: the job goes back on
the queue as it was, in both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Literal, Union

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from agent.errors import ModelPreempted
from agent.llm import LLMError, StructuredMethod, invoke_structured
from agent.prompts import EXTRACT_SYSTEM, EXTRACT_USER, JUDGE_SYSTEM, JUDGE_USER, quote_block
from agent.schemas import LLMCall
from memory.errors import JobPreempted
from memory.memories import ExtractedFact, MemoryKind, RelationJudge
from memory.rules import Relation, RuleJudge

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel


EXTRACT_MAX_TOKENS, JUDGE_MAX_TOKENS = 400, 40
SURE_SAME = 0.97


class Feeling(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    MIXED = "mixed"
    NEUTRAL = "neutral"


FEELING_VALENCE = {Feeling.POSITIVE: 0.6, Feeling.NEGATIVE: -0.6, Feeling.MIXED: 0.0,
                   Feeling.NEUTRAL: 0.0}  # fmt: skip


ModelSource = Union["BaseChatModel", Callable[[], "BaseChatModel"]]


def resolve(model: ModelSource) -> BaseChatModel:
    """Return the chat model (calling the factory the first time it is needed)."""
    from langchain_core.language_models import BaseChatModel

    return model if isinstance(model, BaseChatModel) else model()


class FactDraft(BaseModel):
    """One fact as the model writes it."""

    kind: MemoryKind
    text: str = Field(min_length=3, max_length=200)
    importance: int = Field(ge=1, le=5)
    feeling: Feeling
    emotion: str = Field(max_length=24)
    when: str = Field(max_length=40)

    def to_fact(self) -> ExtractedFact:
        return ExtractedFact(
            kind=self.kind, text=self.text.strip(), importance=(self.importance - 1) / 4,
            emotion=self.emotion.strip().lower(), valence=FEELING_VALENCE[self.feeling],
            happened=self.when.strip(),
        )  # fmt: skip


class FactDrafts(BaseModel):
    facts: list[FactDraft] = Field(max_length=3)


class RelationVerdict(BaseModel):
    relation: Literal["same", "contradicts", "unrelated"]


def extraction_messages(user_text: str, context: list[str]) -> list[BaseMessage]:
    """Build the extraction prompt: the user's words only, quoted as data."""
    earlier = quote_block("\n".join(context)) if context else "(none)"
    return [
        SystemMessage(EXTRACT_SYSTEM),
        HumanMessage(EXTRACT_USER.format(context=earlier, message=quote_block(user_text))),
    ]


@contextmanager
def gives_way() -> Iterator[None]:
    """A model call aborted for a turn becomes a job that gave way (it is run again later)."""
    try:
        yield
    except ModelPreempted as exc:
        raise JobPreempted(str(exc)) from exc


class LLMFactExtractor:
    """Extract facts with the chat model; failures propagate so the worker retries."""

    def __init__(self, model: ModelSource, method: StructuredMethod) -> None:
        self._model, self.method = model, method
        self.calls: list[LLMCall] = []

    @property
    def model(self) -> BaseChatModel:
        return resolve(self._model)

    def extract(self, user_text: str, context: list[str]) -> list[ExtractedFact]:
        with gives_way():
            drafts, calls = invoke_structured(
                self.model, extraction_messages(user_text, context), FactDrafts,
                method=self.method, node="extract_memories", max_tokens=EXTRACT_MAX_TOKENS,
            )  # fmt: skip
        self.calls += calls
        return [draft.to_fact() for draft in drafts.facts]


class LLMRelationJudge:
    """Ask the chat model whether a new fact repeats or contradicts an old one."""

    def __init__(self, model: ModelSource, method: StructuredMethod) -> None:
        self._model, self.method = model, method
        self.fallback: RelationJudge = RuleJudge()
        self.calls: list[LLMCall] = []

    def relation(self, new: str, old: str, similarity: float) -> Relation:
        if similarity >= SURE_SAME:
            return self.fallback.relation(new, old, similarity)
        messages = [
            SystemMessage(JUDGE_SYSTEM),
            HumanMessage(JUDGE_USER.format(old=quote_block(old), new=quote_block(new))),
        ]
        try:
            with gives_way():
                verdict, calls = invoke_structured(
                    resolve(self._model), messages, RelationVerdict, method=self.method,
                    node="judge_memory", max_tokens=JUDGE_MAX_TOKENS,
                )  # fmt: skip
        except LLMError:  # the judge is an refinement: the rule judge still decides
            return self.fallback.relation(new, old, similarity)
        self.calls += calls
        return verdict.relation
