"""The one place that builds a run's services, each once, from settings and a clock.

    services = Services(settings)                       # the real ones, built when first used
    services = Services(settings, chat_model=fake, embedder=FakeEmbedder())   # tests, tools

Every service is built lazily (a front end shows its first screen before any model loads) and
at most once; anything passed to the constructor is used instead of building it. The memory
stores exist once per run: the reply path and the memory worker's thread share them, and each
thread still gets its own SQLite connection (`memory.database.ThreadLocalDatabase`), so no two
threads ever share a transaction. Nothing here knows about turns: `agent.context.Context` adds
the per-turn caches and the worker's lifecycle on top.

| service           | what it is                                   | built from               |
|-------------------|----------------------------------------------|--------------------------|
| store             | users, sessions, turns (SQLite)              | settings.db_path, clock  |
| vectors           | memories' embeddings (Chroma, one per place) | settings.data_dir / url  |
| embedder          | sentence-transformers MiniLM                 | the packaged model       |
| emotion, safety   | plug-ins over the embedding                  | embedder                 |
| chat_model        | the LLM (embedded GGUF or OpenAI-compatible) | settings                 |
| background_model  | the LLM for memory work: its own embedded    | settings (or chat_model) |
|                   | context that gives way to turns              |                          |
| memories, traits, outcomes | the user model                      | store, vectors, embedder |
| recall            | history + ranked memories + traits           | the three above          |
| memory_worker     | the durable job queue and its thread         | all of the memory system |
"""

from __future__ import annotations

import threading
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from agent.settings import Settings
from memory.clock import SYSTEM_CLOCK, Clock
from memory.database import open_database
from memory.embeddings import Embedder, default_embedder
from memory.memories import MemoryStore
from memory.outcomes import Outcomes
from memory.recall import Recall, Recaller
from memory.store import ConversationStore
from memory.traits import TraitModel
from memory.vectors import VectorStore
from memory.worker import MemoryServices, MemoryWorker

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agent.emotion import EmotionClassifier
    from agent.llm import StructuredMethod
    from agent.safety import SafetyScreen


class RecallSource(Protocol):
    def recall(
        self,
        user_id: str,
        session_id: str,
        text: str,
        turn_index: int,
        emotion: str | None = None,
        valence: float | None = None,
        vector: NDArray[np.float32] | None = None,
    ) -> Recall: ...

    def verify_memory(self, user_id: str, memory_id: str) -> bool: ...


SERVICES = (
    "store", "vectors", "embedder", "emotion", "safety", "chat_model", "background_model",
    "structured_method", "memories", "traits", "outcomes", "recall", "memory_worker",
)  # fmt: skip


@cache
def shared_vectors(path: Path | None, url: str | None) -> VectorStore:
    """Return one vector store per location for the whole process (Chroma clients are shared)."""
    return VectorStore(path, url=url) if url is None else VectorStore(url=url)


def vectors_for(settings: Settings) -> VectorStore:
    url = settings.chroma_url
    return shared_vectors(None if url else settings.data_dir / "chroma", url)


class Services:
    """A run's services, built on first use from settings and a clock (or given)."""

    def __init__(self, settings: Settings, clock: Clock | None = None, **given: Any) -> None:
        unknown = set(given) - set(SERVICES)
        if unknown:
            raise TypeError(f"Unknown services {sorted(unknown)}; known: {', '.join(SERVICES)}")
        self.settings = settings
        self._loading = threading.RLock()
        store = given.get("store")
        # One clock for every store: the given one, the given store's, or the wall clock.
        self.clock: Clock = clock or (store.clock if store is not None else SYSTEM_CLOCK)
        self.given = {name for name, value in given.items() if value is not None}
        self.__dict__.update({name: given[name] for name in self.given})

    def built(self, name: str) -> Any | None:
        """Return the service `name` if it has been built (never builds it)."""
        return self.__dict__.get(name)

    @cached_property
    def store(self) -> ConversationStore:
        return ConversationStore(open_database(self.settings.db_path), self.clock)

    @cached_property
    def vectors(self) -> VectorStore:
        return vectors_for(self.settings)

    @cached_property
    def embedder(self) -> Embedder:
        with self._loading:
            return self.__dict__.get("embedder") or default_embedder()

    @cached_property
    def emotion(self) -> EmotionClassifier:
        from agent.emotion import EmotionClassifier

        return EmotionClassifier.load(embedder=self.embedder)

    @cached_property
    def safety(self) -> SafetyScreen:
        from agent.safety import SafetyScreen

        return SafetyScreen.load(embedder=self.embedder)

    @cached_property
    def chat_model(self) -> BaseChatModel:
        from agent.llm import build_chat_model

        with self._loading:  # the UI thread and the worker may both ask first
            return self.__dict__.get("chat_model") or build_chat_model(self.settings)

    @cached_property
    def background_model(self) -> BaseChatModel:
        """The model memory work uses. Embedded: a second llama.cpp context over the same
        weights, so extraction never evicts the turn's cached prompt, and it gives way to
        turns (agent.llama). An endpoint or a given model: the chat model itself."""
        from agent.llm import build_chat_model

        with self._loading:
            if "chat_model" in self.given or self.settings.base_url:
                return self.chat_model  # a fake or an endpoint: one model serves both
            return build_chat_model(self.settings, role="background")

    @cached_property
    def structured_method(self) -> StructuredMethod:
        from agent.llm import structured_method

        return structured_method(self.settings)

    @cached_property
    def memories(self) -> MemoryStore:
        """Remembered facts. The rule judge decides repeats here; the memory worker's services
        give the store the LLM judge when they are built (only the worker remembers)."""
        return MemoryStore(self.store.db, self.vectors, self.embedder, clock=self.clock)

    @cached_property
    def traits(self) -> TraitModel:
        return TraitModel(self.store.db, self.embedder, self.clock)

    @cached_property
    def outcomes(self) -> Outcomes:
        return Outcomes(self.store.db, clock=self.clock)

    @cached_property
    def recall(self) -> RecallSource:
        """History, ranked memories and traits for a turn (no LLM: it is on the reply path)."""
        return Recaller(
            self.store, self.settings.history_turns, memories=self.memories, traits=self.traits
        )

    @cached_property
    def memory_services(self) -> MemoryServices:
        """The memory system the worker runs jobs with: the same stores, plus the LLM fact
        extractor and relation judge (the chat model loads when the first job needs it)."""
        from agent.memory_llm import LLMFactExtractor, LLMRelationJudge
        from agent.trait_llm import LLMTraitRater

        self.memories.judge = LLMRelationJudge(
            lambda: self.background_model, self.structured_method
        )
        return MemoryServices(
            store=self.store, memories=self.memories, traits=self.traits,
            outcomes=self.outcomes,
            extractor=LLMFactExtractor(lambda: self.background_model, self.structured_method),
            rater=LLMTraitRater(lambda: self.background_model)
            if self.settings.llm_trait_asking or self.settings.llm_trait_rating
            or self.settings.llm_trait_weighing else None,
            ask=self.settings.llm_trait_asking, weigh=self.settings.llm_trait_weighing,
            rate_passages=self.settings.llm_trait_rating,
        )  # fmt: skip

    @cached_property
    def memory_worker(self) -> MemoryWorker:
        """The durable job queue; its thread runs only once a front end starts it."""
        return MemoryWorker(self.memory_services)
