"""The stage indicator: where a running turn is (screening → recalling → … → replying).

The runner reports a node when it has *finished*, so each node maps to the stage that runs next.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

STAGES = ("screening", "recalling", "emotion", "cause", "strategy", "replying")
NEXT_STAGE = {
    "guard": "screening",
    "safety_screen": "recalling",
    "recall": "emotion",
    "recognize_emotion": "cause",
    "analyze_cause": "strategy",
    "select_strategy": "replying",
    "generate_reply": "replying",
    "crisis_reply": "replying",
    "remember": "replying",
}


def stage_after(node: str) -> str | None:
    """Return the stage that runs after `node` finished (None for unknown nodes)."""
    return NEXT_STAGE.get(node)


def render_stages(current: str) -> Text:
    """Render the stages with those before `current` done and `current` highlighted."""
    position = STAGES.index(current)
    text = Text()
    for index, stage in enumerate(STAGES):
        if index:
            text.append(" → ", style="dim")
        if index < position:
            text.append(f"✓ {stage}", style="dim green")
        elif index == position:
            text.append(f"▸ {stage}…", style="bold")
        else:
            text.append(stage, style="dim")
    return text


class StageIndicator(Static):
    """Show the running turn's stage; hidden when no turn runs."""

    stage: reactive[str | None] = reactive(None)

    def watch_stage(self, stage: str | None) -> None:
        self.display = stage is not None
        self.update(render_stages(stage) if stage is not None else "")

    def start(self) -> None:
        """Show the first stage."""
        self.stage = STAGES[0]

    def node_finished(self, node: str) -> None:
        """Move on after a node finished; never move backwards (a crisis skips stages)."""
        nxt = stage_after(node)
        if nxt is None:
            return
        if self.stage is None or STAGES.index(nxt) >= STAGES.index(self.stage):
            self.stage = nxt

    def replying(self) -> None:
        """Mark the reply as being written (the first token arrived)."""
        self.stage = "replying"

    def stop(self) -> None:
        """Hide the indicator."""
        self.stage = None
