"""The run context handed to every node: settings and the services the nodes use.

Services load lazily (the chat model, the embedder, the plug-ins), so building a context is cheap
and a front end can show its first screen before any model is in memory. Tests pass their own
services (fake chat models, temp stores) through the constructor.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from agent.settings import Settings, load_settings
from memory.embeddings import Embedder, default_embedder
from memory.recall import Recall, Recaller
from memory.store import ConversationStore, open_database

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agent.emotion import EmotionClassifier
    from agent.llm import StructuredMethod
    from agent.safety import SafetyScreen


class RecallSource(Protocol):
    def recall(self, user_id: str, session_id: str, text: str, turn_index: int) -> Recall: ...


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
    ) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._vectors: dict[str, NDArray[np.float32]] = {}
        if store is not None:
            self.__dict__["store"] = store
        for name, value in [
            ("chat_model", chat_model),
            ("structured_method", structured_method),
            ("embedder", embedder),
            ("emotion", emotion),
            ("safety", safety),
            ("recall", recall),
        ]:
            if value is not None:
                self.__dict__[name] = value

    @cached_property
    def store(self) -> ConversationStore:
        return ConversationStore(open_database(self.settings.db_path))

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
        return Recaller(self.store, self.settings.history_turns)

    def vector(self, text: str) -> NDArray[np.float32]:
        """Return the embedding of `text`, computed once per turn and shared by the plug-ins."""
        with self._lock:
            cached = self._vectors.get(text)
        if cached is None:
            cached = self.embedder.embed_one(text)
            with self._lock:
                self._vectors = {text: cached}
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
