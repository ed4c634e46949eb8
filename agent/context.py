"""The run context handed to every node: settings and the services the nodes use.

Services load lazily (the chat model, the embedder, the plug-ins), so building a context is cheap
and a front end can show its first screen before any model is in memory. Tests pass their own
services (fake chat models, temp stores) through the constructor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from agent.settings import Settings, load_settings
from agent.variants import Variant, variant_named
from memory.clock import SYSTEM_CLOCK, Clock
from memory.embeddings import Embedder, default_embedder
from memory.recall import Recall
from memory.store import ConversationStore, open_database

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agent.emotion import EmotionClassifier
    from agent.llm import StructuredMethod
    from agent.safety import SafetyScreen
    from agent.schemas import EmotionReading
    from memory.memories import MemoryStore
    from memory.outcomes import Outcomes
    from memory.privacy import ForgetReport
    from memory.traits import TraitModel
    from memory.worker import MemoryWorker


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


class Context:
    """Settings plus lazily built services for one process."""

    def __init__(
        self,
        settings: Settings,
        store: ConversationStore | None = None,
        *,
        chat_model: BaseChatModel | None = None,
        structured_method: StructuredMethod | None = None,
        embedder: Embedder | None = None,
        emotion: EmotionClassifier | None = None,
        safety: SafetyScreen | None = None,
        recall: RecallSource | None = None,
        outcomes: Outcomes | None = None,
        memory_worker: MemoryWorker | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        # One clock for every store of this context: the given one, the given store's, or the
        # wall clock. Simulations pass a `SimulatedClock`.
        self.clock: Clock = clock or (store.clock if store is not None else SYSTEM_CLOCK)
        self._lock = threading.Lock()
        self._vectors: dict[str, NDArray[np.float32]] = {}
        self._readings: dict[str, EmotionReading] = {}
        if store is not None:
            self.__dict__["store"] = store
        for name, value in [
            ("chat_model", chat_model),
            ("structured_method", structured_method),
            ("embedder", embedder),
            ("emotion", emotion),
            ("safety", safety),
            ("recall", recall),
            ("outcomes", outcomes),
            ("memory_worker", memory_worker),
        ]:
            if value is not None:
                self.__dict__[name] = value

    @cached_property
    def store(self) -> ConversationStore:
        return ConversationStore(open_database(self.settings.db_path), self.clock)

    @cached_property
    def chat_model(self) -> BaseChatModel:
        from agent.llm import build_chat_model

        with self._lock:
            return build_chat_model(self.settings)

    @cached_property
    def structured_method(self) -> StructuredMethod:
        from agent.llm import structured_method

        return structured_method(self.settings)

    @property
    def variant(self) -> Variant:
        """The pipeline configuration this context runs (settings.variant)."""
        return variant_named(self.settings.variant)

    @property
    def model_name(self) -> str:
        return self.settings.model

    @cached_property
    def embedder(self) -> Embedder:
        return default_embedder()

    @cached_property
    def emotion(self) -> EmotionClassifier:
        from agent.emotion import EmotionClassifier

        return EmotionClassifier.load(embedder=self.embedder)

    @cached_property
    def safety(self) -> SafetyScreen:
        from agent.safety import SafetyScreen

        return SafetyScreen.load(embedder=self.embedder)

    @cached_property
    def recall(self) -> RecallSource:
        from agent.memory_llm import memory_recaller

        return memory_recaller(self)

    @cached_property
    def outcomes(self) -> Outcomes:
        from memory.outcomes import Outcomes

        return Outcomes(self.store.db, clock=self.clock)

    @cached_property
    def memory_worker(self) -> MemoryWorker:
        """The memory worker; jobs queue up until a front end starts it or drains it."""
        from agent.memory_llm import memory_worker

        return memory_worker(self)

    @cached_property
    def memories(self) -> MemoryStore:
        """The user's remembered facts, for browsing and editing (no LLM judge)."""
        from agent.memory_llm import vectors_for
        from memory.memories import MemoryStore

        return MemoryStore(
            self.store.db, vectors_for(self.settings), self.embedder, clock=self.clock
        )

    @cached_property
    def traits(self) -> TraitModel:
        from memory.traits import TraitModel

        return TraitModel(self.store.db, self.embedder, self.clock)

    def forget_user(self, user_id: str) -> ForgetReport:
        """Remove the user everywhere (rows, vectors, checkpoints) while this process runs.

        The background memory thread is stopped first so it cannot write the user back; the
        caller must not run a turn for this user meanwhile. Raises `memory.privacy` errors.
        """
        from agent.memory_llm import vectors_for
        from memory.privacy import forget_user

        worker = self.__dict__.get("memory_worker")
        was_running = worker is not None and worker.running
        if worker is not None and not worker.stop():
            raise RuntimeError("The memory worker did not stop; try again in a moment.")
        try:
            with self._lock:
                self._vectors, self._readings = {}, {}
            return forget_user(
                self.store.db, vectors_for(self.settings), user_id,
                checkpoint_path=self.settings.checkpoint_path, data_dir=self.settings.data_dir,
            )  # fmt: skip
        finally:
            if was_running:
                self.start_memory_worker()

    def memory_problem(self) -> str | None:
        """What stopped background memory work last, if it is not running smoothly."""
        worker = self.__dict__.get("memory_worker")  # never build the worker just to ask
        return worker.problem if worker is not None else None

    def start_memory_worker(self) -> MemoryWorker:
        """Start the background memory thread (long-running front ends: chat, TUI)."""
        from agent.memory_llm import memory_services

        worker = self.memory_worker
        worker.start(lambda: memory_services(self, own_connection=True))
        return worker

    def vector(self, text: str) -> NDArray[np.float32]:
        """Return the embedding of `text`, computed once per turn and shared by the plug-ins."""
        with self._lock:
            cached = self._vectors.get(text)
        if cached is None:
            cached = self.embedder.embed_one(text)
            with self._lock:
                self._vectors = {text: cached}
        return cached

    def memory_busy(self) -> AbstractContextManager[None]:
        """Hold background memory jobs while a turn runs (no-op if no worker was built)."""
        worker = self.__dict__.get("memory_worker")
        return worker.busy() if worker is not None else nullcontext()

    def finish_memory_work(self, on_progress: Callable[[int], None] | None = None) -> int:
        """Stop the background thread and run the jobs still queued; return how many ran.

        Jobs are durable, so skipping this loses nothing: they run on the next start.
        """
        worker = self.__dict__.get("memory_worker")
        if worker is None:
            return 0
        worker.stop()
        pending = worker.queue.pending()
        if pending and on_progress is not None:
            on_progress(pending)
        return int(worker.drain().done)

    def read_emotion(self, text: str) -> EmotionReading:
        """Return the emotion plug-in's reading of `text`, computed once per turn."""
        with self._lock:
            cached = self._readings.get(text)
        if cached is None:
            cached = self.emotion.classify_vector(self.vector(text))
            with self._lock:
                self._readings = {text: cached}
        return cached

    def warm_up(self) -> None:
        """Load the embedder and the plug-ins now (e.g. in a background worker)."""
        self.embedder.embed_one("warm up")
        _ = self.emotion, self.safety


_default: Context | None = None


def default_context() -> Context:
    """Return a process-wide context from the environment (for LangGraph's dev server)."""
    global _default
    if _default is None:
        _default = Context(load_settings())
    return _default
