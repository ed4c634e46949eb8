"""The memory screen's state, its lists, and the actions that change what is stored.

`MemoryActions` is the base of `tui.screens.memory.MemoryScreen` (which adds the layout, the
tabs, filtering, searching and the detail views): it reads memories and traits in a worker,
corrects or forgets one memory, sets or unsets a trait, and forgets the whole person ("forget
me") while holding the app's turn lock, so no turn runs meanwhile. Anything that may load a model
or Chroma (listing builds the vector store, editing re-embeds) runs in a worker thread.

Forgetting the person hands over to the app (`Host.switch_to(None)`): the chat closes and the
app asks who is talking. Otherwise the screen closes with a `MemoryClosed` naming the memories
forgotten, so the chat stops showing them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.screen import Screen
from textual.widgets import Button, DataTable, Input, Label

from memory.traits import FORGOTTEN_SESSION, TRAITS, TraitError
from tui.host import Host, host_of
from tui.screens.memory_detail import (
    ConfirmScreen,
    ForgetMeScreen,
    TraitRow,
    forget_summary,
    memory_cells,
    parse_trait_value,
    problem,
    trait_cells,
)
from tui.screens.prompt import PromptScreen

if TYPE_CHECKING:
    from agent.context import Context
    from memory.memories import Memory
    from memory.privacy import ForgetReport

LOCK_WAIT = 10.0
NO_MEMORIES = "Nothing remembered yet — memories appear after a few turns."


@dataclass(frozen=True)
class MemoryClosed:
    """What changed while the screen was open."""

    forgotten: frozenset[str] = frozenset()


class MemoryActions(Screen[MemoryClosed]):
    """One person's memories and traits, read into tables, and the actions that change them."""

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
    def host(self) -> Host:
        return host_of(self)

    @property
    def context(self) -> Context:
        return self.host.context

    def tables(self) -> tuple[DataTable[Any], DataTable[Any]]:
        return self.query_one("#memories", DataTable), self.query_one("#traits", DataTable)

    @property
    def on_traits(self) -> bool:
        return self.tab == "tab-traits"

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

    def apply_filter(self, query: str) -> None:
        words = query.strip().lower()
        if not words:
            self.show_memories(self.memories, NO_MEMORIES)
            return
        found = [m for m in self.memories if words in f"{m.kind} {m.text}".lower()]
        self.show_memories(found, f"No memory has “{query.strip()}” in it: Enter searches by "
                                  "meaning.")  # fmt: skip

    def changed(self, note: str, forgotten: Iterable[str] = ()) -> None:
        """Say what changed and read the lists again."""
        self.forgotten.update(forgotten)
        self.notify(note)
        self.load()

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
        try:  # the traits inferred from it are recomputed now, not at the next turn
            self.context.traits.refresh(self.user, FORGOTTEN_SESSION)
        except Exception as exc:
            self.app.call_from_thread(self.failed, "Forgotten; traits not yet recomputed", exc)
        self.app.call_from_thread(self.changed, "Forgotten.", removed)

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
        app, lock = self.app, self.host.turn_lock
        if not lock.acquire(timeout=LOCK_WAIT):
            busy = RuntimeError("a reply is still being written; try again when it is done.")
            app.call_from_thread(self.forget_me_failed, busy)
            return
        try:
            report = self.context.forget_user(self.user)
            # Before the lock is released, so no turn starts for them. (mypy cannot type an async
            # callback here: textual's `T | Awaitable[T]` makes T `Never`.)
            app.call_from_thread(self.user_forgotten, report)  # type: ignore[arg-type]
        except Exception as exc:  # the UI edge: report, the person's data stays as it was
            app.call_from_thread(self.forget_me_failed, exc)
        finally:
            lock.release()

    def forget_me_failed(self, exc: BaseException) -> None:
        self.set_forgetting(False)
        self.notify(f"Nothing was forgotten: {problem(exc)}", severity="error", markup=False)

    async def user_forgotten(self, report: ForgetReport) -> None:
        """Say what was removed, then leave: the app closes the chat and asks who is talking."""
        self.notify(
            forget_summary(self.user, report), title="Forgotten", timeout=12, markup=False,
            severity="warning" if report.left_behind else "information",
        )  # fmt: skip
        await self.host.switch_to(None)
