"""Search across all of a user's conversations: by words or by meaning.

Words: the store's full-text index (`ConversationStore.search_turns`: word stems, bm25 ranking,
any text is a valid query). Meaning: each turn (the user's words and the reply) is embedded once
and its vector kept in a `TurnIndex` for later searches. Both run in a worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from textual import on, work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Switch
from textual.widgets.option_list import Option

from tui.messages import SearchDone

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from memory.search import TurnHit
    from memory.store import ConversationStore, Turn

SNIPPET_WIDTH = 72


class TextEmbedder(Protocol):
    def embed(self, texts: list[str]) -> Any: ...

    def embed_one(self, text: str) -> Any: ...


@dataclass(frozen=True)
class Hit:
    turn_id: str
    session_id: str
    snippet: str
    score: float


def snippet(text: str, width: int = SNIPPET_WIDTH) -> str:
    """Return the start of `text` on one line, cut with an ellipsis to `width` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def word_hit(hit: TurnHit) -> Hit:
    """Return a full-text hit as the screen lists it (its score: higher is better)."""
    return Hit(hit.turn_id, hit.session_id, snippet(hit.snippet), -hit.rank)


def text_search(store: ConversationStore, user: str, query: str, limit: int = 30) -> list[Hit]:
    """Return the user's turns with every word of `query` in them, best match first."""
    return [word_hit(hit) for hit in store.search_turns(user, query, limit)]


def turn_text(turn: Turn) -> str:
    return f"{turn.user_text}\n{turn.reply or ''}"


class TurnIndex:
    """Embeddings of a user's turns, computed once per turn and reused."""

    def __init__(self) -> None:
        self.vectors: dict[str, Any] = {}
        self._lock = threading.Lock()

    def search(
        self,
        store: ConversationStore,
        embedder: TextEmbedder,
        user: str,
        query: str,
        limit: int = 10,
    ) -> list[Hit]:
        """Return the user's turns closest in meaning to `query`, best first."""
        import numpy as np

        turns = store.turns(user)
        if not turns:
            return []
        with self._lock:
            missing = [t for t in turns if t.id not in self.vectors]
            if missing:
                vectors = embedder.embed([turn_text(t) for t in missing])
                self.vectors.update({t.id: v for t, v in zip(missing, vectors, strict=True)})
            matrix = np.stack([self.vectors[t.id] for t in turns])
        scores = matrix @ np.asarray(embedder.embed_one(query))
        order = np.argsort(-scores)[:limit]
        return [
            Hit(turns[i].id, turns[i].session_id, snippet(turns[i].user_text), float(scores[i]))
            for i in order
        ]


def hit_option(index: int, hit: Hit, semantic: bool) -> Option:
    score = f"{hit.score:.2f}  " if semantic else ""
    return Option(f"{score}{hit.snippet}", id=str(index))


class SearchScreen(ModalScreen[tuple[str, str] | None]):
    """Type a query; Enter searches; choose a hit to open its conversation."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(
        self,
        store: ConversationStore,
        user: str,
        embedder: Callable[[], TextEmbedder],
        index: TurnIndex,
    ) -> None:
        super().__init__(classes="dialog-screen")
        self.store, self.user = store, user
        self.embedder, self.index = embedder, index
        self.hits: list[Hit] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="search-dialog"):
            yield Label("Search your conversations", classes="dialog-title")
            with Horizontal(id="search-bar"):
                yield Input(placeholder="words to find…", id="query")
                yield Switch(value=False, id="semantic")
                yield Label("by meaning", id="semantic-label")
            yield Label("", id="search-status")
            yield OptionList(id="hits")
            yield Label("Enter search · ↓ results · Enter open · Esc close", classes="dialog-help")

    @on(Input.Submitted, "#query")
    def submit(self, event: Input.Submitted) -> None:
        query = event.value.strip()
        if not query:
            return
        semantic = self.query_one("#semantic", Switch).value
        self.query_one("#search-status", Label).update("searching…")
        self.run_search(query, semantic)

    @work(thread=True, exclusive=True, group="search")
    def run_search(self, query: str, semantic: bool) -> None:
        """Search in a worker thread (semantic search may load the embedding model)."""
        try:
            if semantic:
                hits = self.index.search(self.store, self.embedder(), self.user, query)
            else:
                hits = text_search(self.store, self.user, query)
        except Exception as exc:  # the UI edge: report, keep the screen usable
            self.app.call_from_thread(
                self.notify, f"Search failed: {type(exc).__name__}: {exc}", severity="error"
            )
            hits = []
        self.post_message(SearchDone(query, hits))

    def on_search_done(self, message: SearchDone) -> None:
        self.hits = list(message.hits)
        semantic = self.query_one("#semantic", Switch).value
        options = self.query_one("#hits", OptionList)
        options.clear_options()
        options.add_options([hit_option(i, h, semantic) for i, h in enumerate(self.hits)])
        found = f"{len(self.hits)} found for “{message.query}”" if self.hits else "nothing found"
        self.query_one("#search-status", Label).update(found)

    @on(OptionList.OptionSelected, "#hits")
    def open_hit(self, event: OptionList.OptionSelected) -> None:
        hit = self.hits[int(event.option_id or 0)]
        self.dismiss((hit.session_id, hit.turn_id))

    def action_close(self) -> None:
        self.dismiss(None)
