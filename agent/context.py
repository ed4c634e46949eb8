"""The run context handed to every node: settings, a clock, the services, per-turn caches.

The services are built by `agent.services.Services` (the one factory; lazily, so building a
context is cheap and a front end can show its first screen before any model is in memory).
Tests and tools pass fakes by name: `Context(settings, store, chat_model=fake, ...)`. The
context adds what belongs to a running process: the embedding and emotion reading of the
message being answered (computed once per turn, shared by the plug-ins), and the memory
worker's lifecycle (start, hold during a turn, finish, stop while a person is forgotten).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from agent.errors import AgentError
from agent.services import RecallSource, Services
from agent.settings import Settings, load_settings
from agent.variants import Variant, variant_named
from memory.clock import Clock
from memory.embeddings import Embedder
from memory.store import ConversationStore

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agent.analogy_judge import RelationJudge
    from agent.emotion import EmotionClassifier
    from agent.llm import StructuredMethod
    from agent.safety import SafetyScreen
    from agent.schemas import EmotionReading
    from memory.jobs import Job
    from memory.memories import MemoryStore
    from memory.outcomes import Outcomes
    from memory.privacy import ForgetReport
    from memory.traits import TraitModel
    from memory.worker import MemoryWorker

__all__ = ["Context", "RecallSource", "default_context"]


log = logging.getLogger(__name__)


class Context:
    """Settings, a clock and the services of one run, plus per-turn caches."""

    def __init__(
        self,
        settings: Settings,
        store: ConversationStore | None = None,
        *,
        clock: Clock | None = None,
        services: Services | None = None,
        **given: Any,
    ) -> None:
        self.settings = settings
        self.services = services or Services(settings, clock, store=store, **given)
        self.clock: Clock = self.services.clock
        self._lock = threading.Lock()
        self._vectors: dict[str, tuple[NDArray[np.float32], NDArray[np.float32]]] = {}
        self._readings: dict[str, EmotionReading] = {}

    # The services the nodes and front ends use (built by `Services` on first use).
    @property
    def store(self) -> ConversationStore:
        return self.services.store

    @property
    def chat_model(self) -> BaseChatModel:
        return self.services.chat_model

    @property
    def structured_method(self) -> StructuredMethod:
        return self.services.structured_method

    @property
    def embedder(self) -> Embedder:
        return self.services.embedder

    @property
    def emotion(self) -> EmotionClassifier:
        return self.services.emotion

    @property
    def safety(self) -> SafetyScreen:
        return self.services.safety

    @property
    def recall(self) -> RecallSource:
        return self.services.recall

    @property
    def analogy_judge(self) -> RelationJudge | None:
        """The turn model as the analogy's relation judge, unless the settings turn it off."""
        if not self.settings.analogy_judge:
            return None
        from agent.analogy_judge import LLMRelationJudge

        return LLMRelationJudge(lambda: self.chat_model)

    @property
    def memories(self) -> MemoryStore:
        return self.services.memories

    @property
    def traits(self) -> TraitModel:
        return self.services.traits

    @property
    def outcomes(self) -> Outcomes:
        return self.services.outcomes

    @property
    def memory_worker(self) -> MemoryWorker:
        """The memory worker; jobs queue up until a front end starts it or drains it."""
        return self.services.memory_worker

    @property
    def variant(self) -> Variant:
        """The pipeline configuration this context runs (settings.variant)."""
        return variant_named(self.settings.variant)

    @property
    def model_name(self) -> str:
        return self.settings.model

    def forget_user(self, user_id: str) -> ForgetReport:
        """Remove the user everywhere (rows, vectors, checkpoints) while this process runs.

        The background memory thread is stopped first so it cannot write the user back; the
        caller must not run a turn for this user meanwhile. Raises `memory.privacy` errors.
        """
        from memory.privacy import forget_user

        with self._memory_worker_paused():
            return forget_user(
                self.store.db, self.services.vectors, user_id,
                checkpoint_path=self.settings.checkpoint_path, data_dir=self.settings.data_dir,
            )  # fmt: skip

    def import_user(
        self, doc: Any, *, replace: bool = False
    ) -> tuple[dict[str, int], ForgetReport]:
        """Restore a user from an export (`memory.privacy.import_user`); `replace` swaps their
        current data for it, and an export that does not fit raises before any of it goes.
        Returns the rows imported per table, and what `replace` removed that an export does
        not hold (checkpoints; loose files it could not remove). Stops the memory worker
        meanwhile, as `forget_user` does."""
        from memory.privacy import (
            ForgetReport,
            check_export,
            forget_files,
            import_user,
            user_exists,
        )

        user_id = check_export(doc)
        replacing = replace and user_exists(self.store.db, user_id)  # else nothing to remove
        with self._memory_worker_paused():
            counts = import_user(self.store.db, self.services.memories, doc, replace=replacing)
            removed = ForgetReport()
            if replacing:  # only once the new rows are in
                forget_files(
                    removed, user_id, checkpoint_path=self.settings.checkpoint_path,
                    data_dir=self.settings.data_dir,
                )  # fmt: skip
            return counts, removed

    @contextmanager
    def _memory_worker_paused(self) -> Iterator[None]:
        """Stop the background memory thread (so it cannot write a person back) and drop the
        per-turn caches for the block; restart the thread after it if it was running."""
        worker: MemoryWorker | None = self.services.built("memory_worker")
        was_running = worker is not None and worker.running
        if worker is not None and not worker.stop():
            raise RuntimeError("The memory worker did not stop; try again in a moment.")
        try:
            with self._lock:
                self._vectors, self._readings = {}, {}
            yield
        finally:
            if was_running:
                self.start_memory_worker()

    def memory_problem(self) -> str | None:
        """What stopped background memory work last, if it is not running smoothly."""
        worker: MemoryWorker | None = self.services.built("memory_worker")  # never build it to ask
        return worker.problem if worker is not None else None

    def start_memory_worker(self) -> MemoryWorker:
        """Start the background memory thread (long-running front ends: chat, TUI). At exit
        the thread is stopped before the models are closed (see `stop_memory_worker`)."""
        worker = self.memory_worker
        if not worker.running:
            atexit.register(self.stop_memory_worker)
        worker.start()
        return worker

    def stop_memory_worker(self, timeout: float = 10.0) -> bool:
        """Stop the background memory thread now: an embedded model call it is making gives
        way at once (its job goes back on the queue), so the thread ends between jobs. A daemon
        thread still inside llama.cpp or torch while the interpreter shuts down aborts the
        process. Returns whether it stopped."""
        from agent.llama import background_stopping

        worker: MemoryWorker | None = self.services.built("memory_worker")
        if worker is None:
            return True
        with background_stopping():
            return worker.stop(timeout)

    def vector(self, text: str) -> NDArray[np.float32]:
        """Return the embedding of `text`, computed once per turn and shared by the plug-ins."""
        return self._embedded(text)[0]

    def window_vectors(self, text: str) -> NDArray[np.float32]:
        """The embeddings of the crisis screen's sentence windows of `text` (one per window)."""
        return self._embedded(text)[1]

    def _embedded(self, text: str) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """The message and its sentence windows, embedded in one batch (one forward pass:
        ~16 ms for three texts where two passes took ~23)."""
        from agent.safety import sentence_windows

        with self._lock:
            cached = self._vectors.get(text)
        if cached is None:
            rows = self.embedder.embed([text, *sentence_windows(text)])
            cached = (rows[0], rows[1:])
            with self._lock:
                self._vectors = {text: cached}
        return cached

    @contextmanager
    def turn_in_progress(self) -> Iterator[None]:
        """Hold background memory work while a turn runs: no job starts, and an embedded
        background model call already running gives way at once (its job runs again later)."""
        from agent.llama import foreground

        worker: MemoryWorker | None = self.services.built("memory_worker")
        with foreground(), worker.busy() if worker is not None else nullcontext():
            yield

    def finish_memory_work(
        self, on_progress: Callable[[int], None] | None = None, user_id: str | None = None,
        on_job: Callable[[Job], None] | None = None,
    ) -> int:  # fmt: skip
        """Stop the background thread and run the jobs still queued (only `user_id`'s, if
        given: a simulation never runs one person's jobs under another's clock); return how
        many ran. `on_progress` hears how many are queued, `on_job` of each one run.

        Jobs are durable, so skipping this loses nothing: they run on the next start. Queued
        jobs run even if this process ran no turn (e.g. a simulation resumed at a session's end).
        """
        worker = self.memory_worker
        worker.stop()
        pending = worker.queue.pending(user_id)
        if pending and on_progress is not None:
            on_progress(pending)
        return int(worker.drain(user_id=user_id, on_job=on_job).done)

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
        """Load the embedder and the plug-ins now (e.g. in a background worker), and start
        putting the fixed start of every prompt into the embedded model's cache (if it is
        loaded; a first turn that comes sooner waits for it)."""
        self.embedder.embed_one("warm up")
        _ = self.emotion, self.safety
        self.prefill()

    def prefill(
        self, user_id: str | None = None, session_id: str | None = None, *, load: bool = False
    ) -> threading.Thread | None:
        """Evaluate the next turn's prompt start (the persona and catalogue, then the session
        so far) into the embedded model's cache, in a background thread, while the person reads
        and types; memory work waits meanwhile. A turn that starts during it waits for it (the
        work is the turn's own). Without `load`, nothing happens before the model is loaded;
        nothing happens on an endpoint or a fake either."""
        from agent.llama import ChatLlamaCpp, foreground
        from agent.prompts import conversation_prefix

        if self.variant.single_call or (not load and not self.services.built("chat_model")):
            return None
        history: list[tuple[str, str]] = []
        if user_id is not None and session_id is not None:
            limit, before = self.settings.history_turns, self.store.next_index(session_id)
            history = self.store.history(user_id, session_id, limit, before)
        messages = conversation_prefix(history)

        def run() -> None:
            try:
                model = self.chat_model
                if isinstance(model, ChatLlamaCpp):
                    with foreground():
                        model.prefill(messages)
            except (AgentError, ValueError) as exc:  # only a missed speed-up: say so
                log.warning("prefill failed: %s", exc)

        thread = threading.Thread(target=run, name="empathos-prefill", daemon=True)
        thread.start()
        return thread


_default: Context | None = None


def default_context() -> Context:
    """Return a process-wide context from the environment (for LangGraph's dev server)."""
    global _default
    if _default is None:
        _default = Context(load_settings())
    return _default
