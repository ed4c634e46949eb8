"""Show one memory that a reply used (opened from the why panel)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

if TYPE_CHECKING:
    from textual.app import ComposeResult


SCORE_PARTS = ("relevance", "recency", "importance", "congruence")


def describe_memory(memory: dict[str, Any]) -> str:
    """Return the memory's kind, id, score and the parts of the score that are present."""
    kind = f"{memory['kind']} · " if memory.get("kind") else ""
    parts = [f"{name} {float(memory[name]):.2f}" for name in SCORE_PARTS if name in memory]
    detail = f" ({', '.join(parts)})" if parts else ""
    return f"{kind}id {memory.get('id', '?')} · score {float(memory.get('score', 0)):.2f}{detail}"


class MemoryDetailScreen(ModalScreen[None]):
    """One remembered fact: its text, id and relevance score."""

    BINDINGS = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, memory: dict[str, Any]) -> None:
        super().__init__(classes="dialog-screen")
        self.memory = memory

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("A memory this reply used", classes="dialog-title")
            yield Static(str(self.memory.get("text", "")), id="memory-text", markup=False)
            yield Label(describe_memory(self.memory), classes="dim")
            yield Label("Esc to close", classes="dialog-help")

    def action_close(self) -> None:
        self.dismiss(None)
