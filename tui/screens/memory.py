"""The memory screen: browse, correct and forget what empathos remembers and infers.

Two tabs: Memories (the current facts; Enter shows one, e corrects it, d forgets it, / filters by
words and Enter in the filter searches by meaning) and Traits (every trait, inferred or set; e
sets a value from 0 to 1, u hands it back to inference, Enter shows its evidence). "Forget me"
removes the person everywhere after they type their name.

This module lays the screen out and browses (tabs, filter, search by meaning, details); reading
the lists and the actions that change them are in `tui.screens.memory_actions`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, TabbedContent, TabPane

from tui.keys import MEMORY_ACTIONS
from tui.screens.memory_actions import NO_MEMORIES, MemoryActions, MemoryClosed
from tui.screens.memory_detail import (
    DetailScreen,
    MemoryCommands,
    evidence_line,
    memory_notes,
    trait_summary,
)

if TYPE_CHECKING:
    from textual.app import ComposeResult

SEARCH_K, EVIDENCE_SHOWN = 20, 8
NO_TRAITS = ("Nothing inferred yet — traits build up as you talk. You can set one now: "
             "highlight it and press e.")  # fmt: skip
TABS = {"memory_list": "tab-memories", "memory_traits": "tab-traits"}
MEMORY_TAB_ONLY = frozenset({"memory_forget", "memory_filter", "memory_traits"})
TRAIT_TAB_ONLY = frozenset({"trait_unset", "memory_list"})


class MemoryScreen(MemoryActions):
    """What empathos remembers about one person, and what it infers; they can change both."""

    BINDINGS = [
        *[Binding(a.key, a.name, a.label, id=a.name) for a in MEMORY_ACTIONS],
        Binding("escape", "close", "Close"),
    ]
    COMMANDS = {MemoryCommands}
    AUTO_FOCUS = "#memories"

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(id="memory-tabs"):
            with TabPane("Memories", id="tab-memories"):
                yield Input(placeholder="/ filter by words · Enter searches by meaning",
                            id="memory-filter")  # fmt: skip
                yield Label(NO_MEMORIES, id="memories-empty", classes="empty-note")
                yield DataTable(id="memories", cursor_type="row", zebra_stripes=True)
            with TabPane("Traits", id="tab-traits"):
                yield Label(NO_TRAITS, id="traits-empty", classes="empty-note")
                yield DataTable(id="traits", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="memory-bar"):
            yield Label("", id="memory-count", classes="dim")
            yield Button("Forget me…", variant="error", id="forget-me")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"What empathos remembers about {self.user}"
        memories, traits = self.tables()
        memories.add_columns("Kind", "Memory", "Importance", "Last seen")
        traits.add_columns("Trait", "Value", "Confidence", "Source", "Evidence")
        memories.loading = traits.loading = True
        for note in self.query(".empty-note"):
            note.display = False  # until the lists are read
        self.load()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer each action only on the tab it applies to, and none while forgetting."""
        if self.forgetting:
            return False
        if action in MEMORY_TAB_ONLY:
            return not self.on_traits
        if action in TRAIT_TAB_ONLY:
            return self.on_traits
        return True

    @on(TabbedContent.TabActivated)
    def tab_changed(self, event: TabbedContent.TabActivated) -> None:
        self.tab = event.pane.id or self.tab
        self.refresh_bindings()
        self.tables()[1 if self.on_traits else 0].focus()

    def action_memory_list(self) -> None:
        """Show the memories tab."""
        self.query_one("#memory-tabs", TabbedContent).active = TABS["memory_list"]

    def action_memory_traits(self) -> None:
        """Show the traits tab."""
        self.query_one("#memory-tabs", TabbedContent).active = TABS["memory_traits"]

    # ------------------------------------------------------------------ filter and search

    def action_memory_filter(self) -> None:
        """Filter memories by their words."""
        self.query_one("#memory-filter", Input).focus()

    @on(Input.Changed, "#memory-filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.apply_filter(event.value)

    @on(Input.Submitted, "#memory-filter")
    def search_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.tables()[0].loading = True
            self.search(event.value.strip())
        self.tables()[0].focus()

    @work(thread=True, exclusive=True, group="memory-search")
    def search(self, query: str) -> None:
        """Find the memories closest in meaning to `query` (embeds: may load the model)."""
        try:
            hits = [m for m, _ in self.context.memories.search(self.user, query, SEARCH_K)]
        except Exception as exc:  # the UI edge: report, keep the screen usable
            self.app.call_from_thread(self.failed, "Search failed", exc)
            return
        empty = f"Nothing remembered is close to “{query}”."
        self.app.call_from_thread(self.show_memories, hits, empty)

    # ------------------------------------------------------------------ details

    @on(DataTable.RowSelected, "#memories")
    def open_memory(self) -> None:
        memory = self.highlighted_memory()
        if memory is None:
            return
        store = self.context.memories
        sources, older = store.sources(self.user, memory.id), store.history(self.user, memory.id)
        notes = memory_notes(memory, len(sources), older)
        self.app.push_screen(DetailScreen("Remembered about you", memory.text, notes))

    @on(DataTable.RowSelected, "#traits")
    def open_trait(self) -> None:
        row = self.highlighted_trait()
        if row is None:
            return
        rows = self.context.traits.evidence(self.user, row.name)[:EVIDENCE_SHOWN]
        notes = [evidence_line(r, self.source_text(r["source_id"])) for r in rows]
        summary = trait_summary(row.name, row.value)
        heading = f"What empathos thinks of your {row.name}, and why"
        self.app.push_screen(DetailScreen(heading, summary, notes or ["No evidence yet."]))

    def source_text(self, source_id: str) -> str:
        """Return the words a piece of evidence came from: a turn's message or a memory."""
        turn = self.context.store.get_turn(source_id)
        if turn is not None and turn.user_id == self.user:
            return turn.user_text
        return next((m.text for m in self.memories if m.id == source_id), "")

    def action_close(self) -> None:
        """Clear the filter if it has focus, else close the screen."""
        box = self.query_one("#memory-filter", Input)
        if box.has_focus and box.value:
            box.value = ""
            self.tables()[0].focus()
            return
        self.dismiss(MemoryClosed(frozenset(self.forgotten)))
