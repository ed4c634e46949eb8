"""The memory screen: browse, correct and forget what empathos remembers and infers.

Two tabs: Memories (the current facts; Enter shows one, e corrects it, d forgets it, / filters by
words and Enter in the filter searches by meaning) and Traits (every trait, inferred or set; e
sets a value from 0 to 1, u hands it back to inference, Enter shows its evidence). "Forget me"
removes the person everywhere after they type their name, holding the app's turn lock.

Anything that may load a model or Chroma (listing builds the vector store, editing re-embeds,
searching embeds) runs in a worker thread. The screen closes with a `MemoryClosed` saying which
memories were forgotten and whether the person was, so the chat drops stale state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from textual import on, work
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, TabbedContent, TabPane

from memory.memories import Memory
from memory.traits import TRAITS, TraitError
from tui.keys import MEMORY_ACTIONS
from tui.screens.memory_detail import (
    ConfirmScreen,
    DetailScreen,
    ForgetMeScreen,
    MemoryCommands,
    TraitRow,
    evidence_line,
    forget_summary,
    memory_cells,
    memory_notes,
    parse_trait_value,
    problem,
    trait_cells,
    trait_summary,
)
from tui.screens.prompt import PromptScreen

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from agent.context import Context
    from memory.privacy import ForgetReport
    from tui.app import EmpathosApp

SEARCH_K, EVIDENCE_SHOWN, LOCK_WAIT = 20, 8, 10.0
NO_MEMORIES = "Nothing remembered yet — memories appear after a few turns."
NO_TRAITS = ("Nothing inferred yet — traits build up as you talk. You can set one now: "
             "highlight it and press e.")  # fmt: skip
TABS = {"memory_list": "tab-memories", "memory_traits": "tab-traits"}
MEMORY_TAB_ONLY = frozenset({"memory_forget", "memory_filter", "memory_traits"})
TRAIT_TAB_ONLY = frozenset({"trait_unset", "memory_list"})


@dataclass(frozen=True)
class MemoryClosed:
    """What changed while the screen was open."""

    forgotten: frozenset[str] = frozenset()
    user_forgotten: bool = False


class MemoryScreen(Screen[MemoryClosed]):
    """What empathos remembers about one person, and what it infers; they can change both."""

    BINDINGS = [
        *[Binding(a.key, a.name, a.label, id=a.name) for a in MEMORY_ACTIONS],
        Binding("escape", "close", "Close"),
    ]
    COMMANDS = {MemoryCommands}
    AUTO_FOCUS = "#memories"

    def __init__(self, user: str) -> None:
        super().__init__()
        self.user = user
        self.memories: list[Memory] = []
        self.shown: list[Memory] = []
        self.traits: list[TraitRow] = []
        self.forgotten: set[str] = set()
        self.tab = "tab-memories"
        self.forgetting = False

    @property
    def context(self) -> Context:
        return cast("EmpathosApp", self.app).context

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

    def tables(self) -> tuple[DataTable[Any], DataTable[Any]]:
        return self.query_one("#memories", DataTable), self.query_one("#traits", DataTable)

    @property
    def on_traits(self) -> bool:
        return self.tab == "tab-traits"

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

    # ------------------------------------------------------------------ loading

    @work(thread=True, exclusive=True, group="memory-load")
    def load(self) -> None:
        """Read memories and traits in a worker (the first use opens the vector store)."""
        try:
            memories = self.context.memories.all(self.user)
            model = self.context.traits
            values = model.values(self.user)
            traits = [TraitRow(n, values.get(n), len(model.evidence(self.user, n))) for n in TRAITS]
        except Exception as exc:  # the UI edge: report, keep the screen usable
            self.app.call_from_thread(self.failed, "Could not read memories", exc)
            return
        self.app.call_from_thread(self.show_data, memories, traits)

    def failed(self, what: str, exc: BaseException) -> None:
        for table in self.tables():
            table.loading = False
        self.notify(f"{what}: {problem(exc)}", severity="error", markup=False)

    def show_data(self, memories: list[Memory], traits: list[TraitRow]) -> None:
        self.memories, self.traits = memories, traits
        self.apply_filter(self.query_one("#memory-filter", Input).value)
        table = self.tables()[1]
        self.fill(table, [(r.name, trait_cells(r)) for r in traits])
        self.query_one("#traits-empty").display = all(r.value is None for r in traits)
        user_set = sum(1 for r in traits if r.value is not None and r.value.source == "user")
        count = f"{len(memories)} memor{'y' if len(memories) == 1 else 'ies'} · "
        self.query_one("#memory-count", Label).update(count + f"{user_set} trait(s) set by you")

    def fill(self, table: DataTable[Any], rows: Iterable[tuple[str, tuple[Any, ...]]]) -> None:
        """Replace a table's rows, keeping the cursor on the same row where it still exists."""
        keep = self.highlighted(table)
        table.loading = False
        table.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
        keys = [row.key.value for row in table.ordered_rows]
        if keep in keys:
            table.move_cursor(row=keys.index(keep))

    def show_memories(self, memories: list[Memory], empty: str) -> None:
        self.shown = memories
        self.fill(self.tables()[0], [(m.id, memory_cells(m)) for m in memories])
        note = self.query_one("#memories-empty", Label)
        note.update(empty)
        note.display = not memories

    @staticmethod
    def highlighted(table: DataTable[Any]) -> str | None:
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def highlighted_memory(self) -> Memory | None:
        key = self.highlighted(self.tables()[0])
        return next((m for m in self.shown if m.id == key), None)

    def highlighted_trait(self) -> TraitRow | None:
        key = self.highlighted(self.tables()[1])
        return next((r for r in self.traits if r.name == key), None)

    # ------------------------------------------------------------------ filter and search

    def action_memory_filter(self) -> None:
        """Filter memories by their words."""
        self.query_one("#memory-filter", Input).focus()

    @on(Input.Changed, "#memory-filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.apply_filter(event.value)

    def apply_filter(self, query: str) -> None:
        words = query.strip().lower()
        if not words:
            self.show_memories(self.memories, NO_MEMORIES)
            return
        found = [m for m in self.memories if words in f"{m.kind} {m.text}".lower()]
        self.show_memories(found, f"No memory has “{query.strip()}” in it: Enter searches by "
                                  "meaning.")  # fmt: skip

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

    # ------------------------------------------------------------------ edit and forget one

    def action_memory_edit(self) -> None:
        """Correct the highlighted memory, or set the highlighted trait."""
        if self.on_traits:
            row = self.highlighted_trait()
            current = f"{row.value.value:.2f}" if row and row.value else ""
            if row is not None:
                self.ask_trait(row.name, current)
            return
        memory = self.highlighted_memory()
        if memory is None:
            self.notify("There is no memory to edit yet.", severity="warning")
            return
        self.ask_memory(memory.id, memory.text)

    def ask_memory(self, memory_id: str, text: str) -> None:
        prompt = PromptScreen("Correct this memory", text, "3 to 300 characters")
        self.app.push_screen(prompt, lambda new: self.memory_entered(memory_id, text, new))

    def memory_entered(self, memory_id: str, old: str, text: str | None) -> None:
        if text and text != old:
            self.save_memory(memory_id, text)

    @work(thread=True, group="memory-edit")
    def save_memory(self, memory_id: str, text: str) -> None:
        """Store the corrected words and re-embed them (may load the embedding model)."""
        try:
            self.context.memories.edit(self.user, memory_id, text)
        except Exception as exc:  # the UI edge: say what was wrong, give the text back
            self.app.call_from_thread(self.edit_failed, memory_id, text, exc)
            return
        self.app.call_from_thread(self.changed, "Memory corrected.")

    def edit_failed(self, memory_id: str, text: str, exc: BaseException) -> None:
        self.notify(f"Not saved: {problem(exc)}", severity="error", markup=False)
        self.ask_memory(memory_id, text)

    def action_memory_forget(self) -> None:
        """Forget the highlighted memory, after asking."""
        memory = self.highlighted_memory()
        if memory is None:
            self.notify("There is no memory to forget.", severity="warning")
            return
        confirm = ConfirmScreen("Forget this memory?", memory.text, "Forget")
        self.app.push_screen(confirm, lambda yes: self.memory_confirmed(memory.id, yes))

    def memory_confirmed(self, memory_id: str, yes: bool | None) -> None:
        if yes:
            self.forget_memory(memory_id)

    @work(thread=True, group="memory-edit")
    def forget_memory(self, memory_id: str) -> None:
        """Delete the memory, its older versions and its vector (opens the vector store)."""
        try:
            removed = self.context.memories.forget(self.user, memory_id)
        except Exception as exc:  # the UI edge: report, keep the screen usable
            self.app.call_from_thread(self.failed, "Not forgotten", exc)
            return
        self.app.call_from_thread(self.changed, "Forgotten.", removed)

    def changed(self, note: str, forgotten: Iterable[str] = ()) -> None:
        """Say what changed and read the lists again."""
        self.forgotten.update(forgotten)
        self.notify(note)
        self.load()

    # ------------------------------------------------------------------ traits

    def ask_trait(self, name: str, value: str) -> None:
        prompt = PromptScreen(f"Set {name}", value, "a number from 0 (low) to 1 (high)")
        self.app.push_screen(prompt, lambda text: self.trait_entered(name, text))

    def trait_entered(self, name: str, text: str | None) -> None:
        if not text:
            return
        try:
            self.context.traits.set(self.user, name, parse_trait_value(text))
        except TraitError as exc:
            self.notify(f"Not set: {exc}", severity="error", markup=False)
            self.ask_trait(name, text)
            return
        self.changed(f"{name} set; empathos will not infer it any more.")

    def action_trait_unset(self) -> None:
        """Hand the highlighted trait back to inference."""
        row = self.highlighted_trait()
        if row is None or row.value is None or row.value.source != "user":
            self.notify("Only a trait you set can be unset; inferred ones update by themselves.",
                        severity="warning")  # fmt: skip
            return
        self.context.traits.unset(self.user, row.name)
        self.changed(f"{row.name} is inferred again.")

    def action_memory_list(self) -> None:
        """Show the memories tab."""
        self.query_one("#memory-tabs", TabbedContent).active = TABS["memory_list"]

    def action_memory_traits(self) -> None:
        """Show the traits tab."""
        self.query_one("#memory-tabs", TabbedContent).active = TABS["memory_traits"]

    # ------------------------------------------------------------------ forget me

    @on(Button.Pressed, "#forget-me")
    def action_forget_me(self) -> None:
        """Forget this person entirely, after they type their name."""
        self.app.push_screen(ForgetMeScreen(self.user), self.forget_me_confirmed)

    def forget_me_confirmed(self, yes: bool | None) -> None:
        if yes:
            self.set_forgetting(True)
            self.forget_me()

    def set_forgetting(self, busy: bool) -> None:
        """Block (or unblock) every action on the screen while the person is being forgotten."""
        self.forgetting = busy
        self.refresh_bindings()
        self.query_one("#memory-tabs").loading = busy
        self.query_one("#forget-me", Button).disabled = busy

    @work(thread=True, exclusive=True, group="forget-me")
    def forget_me(self) -> None:
        """Remove the person everywhere, holding the turn lock so no turn runs meanwhile."""
        app = cast("EmpathosApp", self.app)
        if not app.turn_lock.acquire(timeout=LOCK_WAIT):
            busy = RuntimeError("a reply is still being written; try again when it is done.")
            app.call_from_thread(self.forget_me_failed, busy)
            return
        try:
            report = app.context.forget_user(self.user)
            app.call_from_thread(self.user_forgotten, report)  # before another turn can start
        except Exception as exc:  # the UI edge: report, the person's data stays as it was
            app.call_from_thread(self.forget_me_failed, exc)
        finally:
            app.turn_lock.release()

    def forget_me_failed(self, exc: BaseException) -> None:
        self.set_forgetting(False)
        self.notify(f"Nothing was forgotten: {problem(exc)}", severity="error", markup=False)

    def user_forgotten(self, report: ForgetReport) -> None:
        app = cast("EmpathosApp", self.app)
        app.user = app.session_id = None
        self.notify(
            forget_summary(self.user, report), title="Forgotten", timeout=12, markup=False,
            severity="warning" if report.left_behind else "information",
        )  # fmt: skip
        self.dismiss(MemoryClosed(frozenset(self.forgotten), user_forgotten=True))

    def action_close(self) -> None:
        """Clear the filter if it has focus, else close the screen."""
        box = self.query_one("#memory-filter", Input)
        if box.has_focus and box.value:
            box.value = ""
            self.tables()[0].focus()
            return
        self.dismiss(MemoryClosed(frozenset(self.forgotten)))
