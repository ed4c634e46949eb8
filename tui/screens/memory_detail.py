"""The memory screen's parts: formatting, parsing, palette commands, details, confirmations.

`DetailScreen` shows a text verbatim with notes under it: a memory a reply used (opened from the
why panel), a stored memory or a trait's evidence (opened from the memory screen); the helpers
above it format those notes.
`ConfirmScreen` asks yes or no; `ForgetMeScreen` asks the user to type their name exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from memory.traits import TraitValueError
from tui.keys import MEMORY_ACTIONS

if TYPE_CHECKING:
    from textual.app import ComposeResult
    from textual.screen import Screen

    from memory.memories import Memory
    from memory.privacy import ForgetReport
    from memory.trace import MemoryRef, TraitValue


SCORE_PARTS = ("relevance", "recency", "importance", "congruence")
TEXT_WIDTH, SNIPPET_WIDTH = 64, 48


def describe_memory(memory: MemoryRef) -> str:
    """Return the memory's kind, id, score and the non-zero parts of its score (a trace written
    before the parts were recorded has none)."""
    kind = f"{memory.kind} · " if memory.kind else ""
    parts = {name: float(getattr(memory, name)) for name in SCORE_PARTS}
    shown = [f"{name} {value:.2f}" for name, value in parts.items() if value]
    detail = f" ({', '.join(shown)})" if shown else ""
    return f"{kind}id {memory.id} · score {memory.score:.2f}{detail}"


def cut(text: str, width: int) -> str:
    """Return `text` on one line, cut with an ellipsis to at most `width` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def when(stamp: str) -> str:
    return stamp[:16].replace("T", " ")


def memory_notes(memory: Memory, sources: int, older: list[Memory]) -> list[str]:
    """Return the lines under a stored memory's text: kind, feeling, dates, sources, history."""
    notes = [f"{memory.kind} · importance {memory.importance:.2f} · {memory.origin}"]
    felt = [f"felt {memory.emotion}" if memory.emotion else "", memory.happened]
    notes += [" · ".join(part for part in felt if part)] if any(felt) else []
    notes.append(f"remembered {when(memory.created_at)} · last seen {when(memory.last_seen_at)}")
    notes.append(f"from {sources} turn{'s' if sources != 1 else ''} · id {memory.id}")
    notes += [f"replaces: {cut(old.text, TEXT_WIDTH)}" for old in older]
    return notes


def trait_summary(name: str, value: TraitValue | None) -> str:
    if value is None:
        return f"{name}: not known yet"
    source = "set by you" if value.source == "user" else value.source
    return f"{name} {value.value:.2f} · confidence {value.confidence:.0%} · {source}"


@dataclass(frozen=True)
class TraitRow:
    """One line of the traits table: a trait, its value if known, how much evidence."""

    name: str
    value: TraitValue | None
    evidence: int


def memory_cells(memory: Memory) -> tuple[Any, ...]:
    """Return a table row: kind, text (never read as markup), importance, last seen."""
    text = Text(cut(memory.text, TEXT_WIDTH))
    return memory.kind, text, f"{memory.importance:.2f}", when(memory.last_seen_at)


def trait_cells(row: TraitRow) -> tuple[str, ...]:
    """Return a table row: name, value, confidence, source, evidence count."""
    if row.value is None:
        return row.name, "—", "—", "not yet", str(row.evidence)
    source = "set by you" if row.value.source == "user" else row.value.source
    value = row.value
    return row.name, f"{value.value:.2f}", f"{value.confidence:.0%}", source, str(row.evidence)


def parse_trait_value(text: str) -> float:
    """Return the number typed for a trait, or raise `TraitValueError` saying what to type."""
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        raise TraitValueError(
            f"{text!r} is not a number: type a value from 0 (low) to 1 (high), e.g. 0.7."
        ) from None
    if not 0.0 <= value <= 1.0:
        raise TraitValueError(f"{text} is outside 0 to 1: type a value from 0 (low) to 1 (high).")
    return value


def problem(exc: BaseException) -> str:
    """Return a validation or store error as one line for a notification."""
    if isinstance(exc, ValidationError):
        return "; ".join(str(e["msg"]) for e in exc.errors()) + " (a memory is 3 to 300 characters)"
    return str(exc) or type(exc).__name__


def evidence_line(row: dict[str, Any], said: str) -> str:
    """Return one piece of trait evidence: why, signal, weight, and the words it came from."""
    source = f" — “{cut(said, SNIPPET_WIDTH)}”" if said else ""
    return f"{row['why']} ({row['signal']:.2f}, weight {row['weight']:.2f}){source}"


def forget_summary(user: str, report: ForgetReport) -> str:
    """Say what forgetting a person removed, in the person's terms."""
    names = {"sessions": "conversation", "turns": "message", "memories": "memory version",
             "traits": "trait"}  # fmt: skip
    counts = [(report.rows.get(table, 0), name) for table, name in names.items()]
    named = ", ".join(f"{n} {name}{'' if n == 1 else 's'}" for n, name in counts)
    summary = f"Forgot {user}: {report.total} records removed ({named}); the freed space was wiped."
    if report.left_behind:
        summary += " Could not remove (delete by hand): " + "; ".join(report.left_behind)
    return summary


class MemoryCommands(Provider):
    """The memory screen's actions in the command palette (those that apply on its tab)."""

    def commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        screen = self.screen
        offered = [a for a in MEMORY_ACTIONS if hasattr(screen, f"action_{a.name}")]
        return [(a.title, a.help, _runner(screen, a.name)) for a in offered
                if screen.check_action(a.name, ())]  # fmt: skip

    async def discover(self) -> Hits:
        for title, help_text, run in self.commands():
            yield DiscoveryHit(title, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, run in self.commands():
            if (score := matcher.match(title)) > 0:
                yield Hit(score, matcher.highlight(title), run, help=help_text)


def _runner(screen: Screen[Any], action: str) -> Callable[[], Any]:
    def run() -> Any:
        return screen.run_action(action)

    return run


class DetailScreen(ModalScreen[None]):
    """A title, a text shown verbatim (never as markup) and dim notes under it."""

    BINDINGS = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, heading: str, text: str, notes: Sequence[str] = ()) -> None:
        super().__init__(classes="dialog-screen")
        self.heading, self.text, self.notes = heading, text, list(notes)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.heading, classes="dialog-title", markup=False)
            yield Static(self.text, id="memory-text", markup=False)
            for note in self.notes:
                yield Label(note, classes="dim", markup=False)
            yield Label("Esc to close", classes="dialog-help")

    def action_close(self) -> None:
        self.dismiss(None)


class MemoryDetailScreen(DetailScreen):
    """One remembered fact a reply used: its text, id and relevance score."""

    def __init__(self, memory: MemoryRef) -> None:
        super().__init__("A memory this reply used", memory.text, [describe_memory(memory)])
        self.memory = memory


class ConfirmScreen(ModalScreen[bool]):
    """Ask before doing something that cannot be undone; y or Enter does it, n or Esc not."""

    BINDINGS = [Binding("escape,n", "answer(False)", "Keep"), Binding("y", "answer(True)", "Yes")]

    def __init__(self, heading: str, text: str, verb: str) -> None:
        super().__init__(classes="dialog-screen")
        self.heading, self.text, self.verb = heading, text, verb

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm-dialog"):
            yield Label(self.heading, classes="dialog-title", markup=False)
            yield Static(self.text, markup=False)
            with Horizontal(classes="buttons"):
                yield Button(self.verb, variant="error", id="confirm-yes")
                yield Button("Keep it", id="confirm-no")
            yield Label(f"y {self.verb.lower()} · n or Esc keep it", classes="dialog-help")

    def on_mount(self) -> None:
        self.query_one("#confirm-yes", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ForgetMeScreen(ModalScreen[bool]):
    """Confirm forgetting a person entirely: they must type their user name exactly."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, user: str) -> None:
        super().__init__(classes="dialog-screen")
        self.user = user

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="forget-me-dialog"):
            yield Label(f"Forget everything about {self.user}?", classes="dialog-title",
                        markup=False)  # fmt: skip
            yield Static(
                f"This removes every conversation, memory and trait of {self.user} from this "
                "computer and wipes the freed space. It cannot be undone. The chat then closes "
                "and asks who is talking.",
                markup=False,
            )
            yield Label(f"Type {self.user} to confirm", classes="field-title", markup=False)
            yield Input(placeholder="your user name", id="forget-me-name")
            with Horizontal(classes="buttons"):
                yield Button("Forget me", variant="error", id="forget-me-yes")
                yield Button("Cancel", id="forget-me-no")
            yield Label("Enter to confirm · Esc to cancel", classes="dialog-help")

    def on_mount(self) -> None:
        self.query_one("#forget-me-name", Input).focus()

    @on(Input.Submitted, "#forget-me-name")
    @on(Button.Pressed, "#forget-me-yes")
    def confirm(self) -> None:
        typed = self.query_one("#forget-me-name", Input).value
        if typed != self.user:
            self.notify(f"That is not the user name: type {self.user} exactly, or press Esc.",
                        severity="error", markup=False)  # fmt: skip
            return
        self.dismiss(True)

    @on(Button.Pressed, "#forget-me-no")
    def action_cancel(self) -> None:
        self.dismiss(False)
