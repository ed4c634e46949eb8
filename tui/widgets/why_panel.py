"""The "Why this reply" panel: what empathos read in a message and why it answered as it did.

It renders the `memory.trace.TurnTrace` stored with each turn (`agent.trace.build_trace`):
emotions with probabilities, the cause span highlighted inside the user's own words, the lens and
strategy with their definitions, the memories used (select one to open it) and the trait
snapshot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from memory.trace import EmotionScoreTrace

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from memory.trace import (
        AnalysisTrace,
        EmotionTrace,
        MemoryRef,
        PlanTrace,
        TraitValue,
        TurnTrace,
    )

EMPTY = "Send a message: this panel then shows why empathos replied as it did."
BAR_WIDTH = 12


def bar(probability: float, width: int = BAR_WIDTH) -> str:
    """Return a bar of block characters for a probability."""
    filled = round(max(0.0, min(1.0, probability)) * width)
    return "█" * filled + "░" * (width - filled)


def emotion_text(emotion: EmotionTrace | None) -> Text:
    """Render the emotion reading: each top label with its probability."""
    if emotion is None:
        return Text("no emotion reading", style="dim")
    text = Text()
    scores = emotion.top or [
        EmotionScoreTrace(label=emotion.label, probability=emotion.probability)
    ]
    for score in scores:
        text.append(f"{score.label:<14}", style="bold" if score.label == emotion.label else "")
        text.append(f"{bar(score.probability)} {score.probability:4.0%}\n")
    text.append(f"valence {emotion.valence:+.2f} · intensity {emotion.intensity:.2f}", style="dim")
    return text


def find_span(message: str, span: str) -> tuple[int, int] | None:
    """Return where `span` occurs in `message` (ignoring case), if it does."""
    span = span.strip().strip("\"'").rstrip(".")
    if not span:
        return None
    start = message.lower().find(span.lower())
    return (start, start + len(span)) if start >= 0 else None


def cause_text(message: str, analysis: AnalysisTrace | None) -> Text:
    """Render the user's message with the cause span highlighted, then situation, need, thoughts."""
    if analysis is None:
        return Text("no cause analysis (a crisis reply or a degraded turn)", style="dim")
    span = analysis.cause_span
    text = Text("“", style="dim") + Text(message) + Text("”\n", style="dim")
    where = find_span(message, span)
    if where is not None:
        text.stylize("bold black on yellow", where[0] + 1, where[1] + 1)
    elif span:
        text.append("cause (not verbatim): ", style="dim").append(f"{span}\n", style="yellow")
    parts = (("situation", analysis.situation), ("need", analysis.need),
             ("thinking", analysis.thoughts))  # fmt: skip
    for title, value in parts:
        if value:
            text.append(f"{title}: ", style="bold").append(f"{value}\n")
    text.rstrip()
    return text


def plan_text(plan: PlanTrace | None) -> Text:
    """Render the chosen lens and strategy with their definitions and the reasons."""
    if plan is None:
        return Text("no strategy (a crisis reply follows a fixed safety protocol)", style="dim")
    text = Text()
    text.append("lens ", style="dim").append(f"{plan.lens}\n", style="bold")
    if plan.lens_definition:
        text.append(f"{plan.lens_definition}\n", style="italic")
    text.append("strategy ", style="dim").append(f"{plan.strategy}\n", style="bold")
    if plan.strategy_definition:
        text.append(f"{plan.strategy_definition}\n", style="italic")
    for reason in plan.why:
        text.append(f"• {reason}\n")
    text.rstrip()
    return text


def traits_text(traits: dict[str, TraitValue]) -> Text:
    """Render the trait snapshot with confidence, or say there is none yet."""
    if not traits:
        return Text("no traits yet", style="dim")
    text = Text()
    for name, trait in sorted(traits.items()):
        text.append(f"{name:<18}{bar(trait.value, 8)} {trait.value:.2f}  ")
        source = " · set by you" if trait.source == "user" else ""
        text.append(f"confidence {trait.confidence:.0%}{source}\n", style="dim")
    text.rstrip()
    return text


def notes_text(trace: TurnTrace) -> Text:
    """Render the safety band, degradations, model and cost of the turn."""
    text = Text()
    if trace.safety is not None:
        text.append(f"safety: {trace.safety.band} (risk {trace.safety.risk:.2f})\n")
    for note in trace.degraded:
        text.append(f"degraded: {note}\n", style="yellow")
    seconds = sum(trace.timings.values())
    model = trace.model or "?"
    text.append(f"model {model} · {len(trace.llm_calls)} LLM calls · {seconds:.1f} s", style="dim")
    return text


def memory_option(index: int, memory: MemoryRef) -> Option:
    """Return a list entry for a memory used in the turn."""
    snippet = " ".join(memory.text.split())
    snippet = snippet if len(snippet) <= 60 else snippet[:59] + "…"
    return Option(f"{snippet} ({memory.score:.2f})", id=str(index))


class WhyPanel(VerticalScroll):
    """Explain one reply from its stored trace."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Why this reply"
        self.memories: list[MemoryRef] = []
        self.turn_id: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(EMPTY, id="why-empty")
        for section, title in (
            ("emotion", "Emotion"),
            ("cause", "What seems to have caused it"),
            ("plan", "How empathos chose to answer"),
        ):
            yield Label(title, classes="why-title")
            yield Static(id=f"why-{section}", classes="why-section")
        yield Label("Memories used (Enter opens one)", classes="why-title")
        yield OptionList(id="why-memories")
        yield Label("What empathos knows about you", classes="why-title")
        yield Static(id="why-traits", classes="why-section")
        yield Static(id="why-notes", classes="why-section")

    def on_mount(self) -> None:
        self.set_class(True, "-empty")

    def clear(self) -> None:
        """Show the empty note instead of a reply's reasons."""
        self.turn_id = None
        self.set_class(True, "-empty")

    def show(self, turn_id: str, message: str, trace: TurnTrace) -> None:
        """Explain the turn `turn_id` from its user message and trace."""
        self.turn_id = turn_id
        self.set_class(trace.empty, "-empty")
        self.query_one("#why-emotion", Static).update(emotion_text(trace.emotion))
        self.query_one("#why-cause", Static).update(cause_text(message, trace.analysis))
        self.query_one("#why-plan", Static).update(plan_text(trace.plan))
        self.query_one("#why-traits", Static).update(traits_text(trace.traits))
        self.query_one("#why-notes", Static).update(notes_text(trace))
        self._show_memories(list(trace.memories_used))

    def _show_memories(self, memories: list[MemoryRef]) -> None:
        self.memories = memories
        options = self.query_one("#why-memories", OptionList)
        options.clear_options()
        if memories:
            options.add_options([memory_option(i, m) for i, m in enumerate(memories)])
        else:
            options.add_option(Option(Text("no memories used", style="dim"), disabled=True))

    def memory_at(self, option_id: str | None) -> MemoryRef | None:
        """Return the memory behind a selected option."""
        if option_id is None or not option_id.isdigit() or int(option_id) >= len(self.memories):
            return None
        return self.memories[int(option_id)]
