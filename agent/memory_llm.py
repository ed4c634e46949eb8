"""The LLM side of long-term memory: fact extraction and the same/contradicts judge.

Both run in the memory worker, off the reply's critical path. Only the user's own words are
shown to the model (never the assistant's replies, never prompts), quoted as data: instructions
inside them are something the person said, not something to do. Schemas bound every string and
use enums, because small models loop when decoding is constrained without bounds.
`memory_services`, `memory_worker` and `memory_recaller` build the memory system from a run
context (the wiring the graph uses).

Errors: `StructuredOutputError` / `ModelCallError` from `agent.llm` propagate out of extraction so
the worker records the failure and retries the job; the judge falls back to the rule judge.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from agent.llm import LLMError, StructuredMethod, invoke_structured
from agent.prompts import EXTRACT_SYSTEM, EXTRACT_USER, JUDGE_SYSTEM, JUDGE_USER, quote_block
from agent.schemas import LLMCall
from memory.memories import (
    ExtractedFact,
    MemoryKind,
    MemoryStore,
    Relation,
    RelationJudge,
    RuleJudge,
)
from memory.outcomes import Outcomes
from memory.recall import Recaller
from memory.store import ConversationStore, open_database
from memory.traits import TraitModel
from memory.vectors import VectorStore
from memory.worker import MemoryServices, MemoryWorker

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agent.context import Context
    from agent.settings import Settings

EXTRACT_MAX_TOKENS, JUDGE_MAX_TOKENS = 400, 40
SURE_SAME = 0.97


class Feeling(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    MIXED = "mixed"
    NEUTRAL = "neutral"


FEELING_VALENCE = {Feeling.POSITIVE: 0.6, Feeling.NEGATIVE: -0.6, Feeling.MIXED: 0.0,
                   Feeling.NEUTRAL: 0.0}  # fmt: skip


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


class LLMFactExtractor:
    """Extract facts with the chat model; failures propagate so the worker retries."""

    def __init__(self, model: BaseChatModel, method: StructuredMethod) -> None:
        self.model, self.method = model, method
        self.calls: list[LLMCall] = []

    def extract(self, user_text: str, context: list[str]) -> list[ExtractedFact]:
        drafts, calls = invoke_structured(
            self.model, extraction_messages(user_text, context), FactDrafts,
            method=self.method, node="extract_memories", max_tokens=EXTRACT_MAX_TOKENS,
        )  # fmt: skip
        self.calls += calls
        return [draft.to_fact() for draft in drafts.facts]


class LLMRelationJudge:
    """Ask the chat model whether a new fact repeats or contradicts an old one."""

    def __init__(self, model: BaseChatModel, method: StructuredMethod) -> None:
        self.model, self.method = model, method
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
            verdict, calls = invoke_structured(
                self.model, messages, RelationVerdict, method=self.method,
                node="judge_memory", max_tokens=JUDGE_MAX_TOKENS,
            )  # fmt: skip
        except LLMError:  # the judge is an refinement: the rule judge still decides
            return self.fallback.relation(new, old, similarity)
        self.calls += calls
        return verdict.relation


@cache
def shared_vectors(path: Path | None, url: str | None) -> VectorStore:
    """Return one vector store per location for the whole process (Chroma clients are shared)."""
    return VectorStore(path, url=url) if url is None else VectorStore(url=url)


def vectors_for(settings: Settings) -> VectorStore:
    url = settings.chroma_url
    return shared_vectors(None if url else settings.data_dir / "chroma", url)


def memory_services(context: Context, own_connection: bool = False) -> MemoryServices:
    """Build the memory system; `own_connection` opens a new SQLite connection (for a thread)."""
    clock = context.clock
    store = (
        ConversationStore(open_database(context.settings.db_path), clock)
        if own_connection
        else (context.store)
    )
    vectors = vectors_for(context.settings)
    vectors_embedder = context.embedder
    judge = LLMRelationJudge(context.chat_model, context.structured_method)
    return MemoryServices(
        store=store,
        memories=MemoryStore(store.db, vectors, vectors_embedder, judge, clock=clock),
        traits=TraitModel(store.db, vectors_embedder, clock),
        outcomes=Outcomes(store.db, clock=clock),
        extractor=LLMFactExtractor(context.chat_model, context.structured_method),
    )


def memory_worker(context: Context) -> MemoryWorker:
    """Build the worker on the context's connection (`Context.start_memory_worker` gives its
    thread a connection of its own)."""
    return MemoryWorker(memory_services(context))


def memory_recaller(context: Context) -> Recaller:
    """Build the recall service over the context's stores (no LLM: it is on the critical path)."""
    return Recaller(
        context.store, context.settings.history_turns,
        memories=context.memories, traits=context.traits,
    )  # fmt: skip
