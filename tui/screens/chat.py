"""The chat screen: the conversation, the message box, the stage indicator and the why panel.

A turn runs in a worker thread; tokens and stages come back as messages tagged with the turn's
sequence number. Esc cancels: the worker is cancelled, the next callback from the runner raises
`TurnCancelledError` (which stops generation, and the runner marks the turn failed; the user's
message stays stored), and anything the turn still posts is dropped.

Exceptions: `TurnCancelledError` — raised inside the runner's callbacks to stop a cancelled turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header, OptionList, Static
from textual.worker import get_current_worker

from tui.errors import FrontEndError
from tui.keys import ACTIONS
from tui.messages import ReplySelected, TurnDone, TurnFailed, TurnStage, TurnToken
from tui.screens.chat_actions import ChatActions
from tui.screens.memory_detail import MemoryDetailScreen
from tui.screens.search import TurnIndex
from tui.widgets.chat_input import ChatInput
from tui.widgets.chat_log import ChatLog, ReplyMessage, UserMessage, crisis_resources_markdown
from tui.widgets.stage import StageIndicator
from tui.widgets.why_panel import WhyPanel

if TYPE_CHECKING:
    from textual.app import ComposeResult


class TurnCancelledError(FrontEndError):
    """The user cancelled the turn; raised in the runner's callbacks to stop it."""


class ChatScreen(ChatActions):
    """Talk with empathos."""

    BINDINGS = [Binding(a.key, a.name, a.label, show=a.show, id=a.name) for a in ACTIONS]

    def __init__(self) -> None:
        super().__init__()
        self.turn_index = TurnIndex()
        self.seq = 0
        self.busy_text: str | None = None
        self.pending_user: UserMessage | None = None
        self.pending_reply: ReplyMessage | None = None
        self._memory_problem: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            with Vertical(id="conversation"):
                yield ChatLog(id="log")
                yield StageIndicator(id="stage")
                yield Static(id="status")
                yield ChatInput(id="input")
            yield WhyPanel(id="why")
        yield Footer()

    async def on_mount(self) -> None:
        self.show_status(self.host.models_status)
        await self.load_session()
        self.input.focus()
        self.call_after_refresh(self.host.begin_warm_up)  # paint first, then load models

    def show_status(self, text: str) -> None:
        """Show the models' state under the conversation."""
        self.query_one("#status", Static).update(text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer Esc only while a turn runs (elsewhere Esc keeps its usual meaning)."""
        if action == "cancel":
            return self.busy_text is not None
        return True

    @on(ChatInput.Submitted)
    async def send(self, event: ChatInput.Submitted) -> None:
        text = event.text.strip()
        if not text:
            return
        if self.busy_text is not None:
            self.notify("Wait for the reply, or press Esc to cancel it.", severity="warning")
            return
        event.chat_input.clear()
        self.seq += 1
        self.busy_text = text
        self.pending_user = await self.log_view.add_user(text)
        self.pending_reply = None
        self.stage.start()
        self.refresh_bindings()
        self.run_turn(self.seq, text, self.user, self.session_id)

    @work(thread=True, group="turn")
    def run_turn(self, seq: int, text: str, user: str, session: str) -> None:
        """Run one turn in a worker thread; one turn at a time (the lock), stoppable by Esc."""
        worker = get_current_worker()

        def check() -> None:
            if worker.is_cancelled:
                raise TurnCancelledError("cancelled by the user")

        def on_token(token: str) -> None:
            check()
            self.post_message(TurnToken(seq, token))

        def on_stage(node: str) -> None:
            check()
            self.post_message(TurnStage(seq, node))

        with self.host.turn_lock:
            if worker.is_cancelled:
                return
            try:
                agent = self.host.get_agent()
                result = agent.run_turn(user, session, text, on_token=on_token, on_stage=on_stage)
            except Exception as exc:  # the UI edge: any failure is shown, the text kept
                if not worker.is_cancelled:
                    self.post_message(TurnFailed(seq, text, str(exc) or type(exc).__name__))
                return
        if not worker.is_cancelled:
            self.post_message(TurnDone(seq, result))

    def _current(self, seq: int) -> bool:
        return seq == self.seq and self.busy_text is not None

    async def on_turn_token(self, message: TurnToken) -> None:
        if not self._current(message.seq):
            return
        if self.pending_reply is None:
            self.pending_reply = await self.log_view.add_reply(None)
            self.stage.replying()
        await self.pending_reply.write(message.token)
        self.log_view.scroll_end(animate=False)

    def on_turn_stage(self, message: TurnStage) -> None:
        if self._current(message.seq):
            self.stage.node_finished(message.node)

    def report_memory_problem(self) -> None:
        """Say once when background memory work has stopped (it restarts by itself)."""
        problem = self.host.context.memory_problem()
        if problem and problem != self._memory_problem:
            self.notify(problem, title="Memory", severity="warning")
        self._memory_problem = problem

    async def on_turn_done(self, message: TurnDone) -> None:
        if not self._current(message.seq):
            return
        result: Any = message.result
        text = self._end_turn()
        if result.rejected:
            await self._drop_reply("rejected", "not sent")
            self.input.restore(text)
            self.notify(result.rejected, title="Not sent", severity="warning")
            return
        reply = self.pending_reply or await self.log_view.add_reply(None)
        await reply.finish(result.turn_id, result.reply or "")
        if result.crisis:
            locale = self.host.context.settings.locale
            await reply.show_crisis(crisis_resources_markdown(locale, result.reply or ""))
        self.refresh_title()
        self.explain(result.turn_id)
        self.report_memory_problem()
        self.log_view.scroll_end(animate=False)

    async def on_turn_failed(self, message: TurnFailed) -> None:
        if not self._current(message.seq):
            return
        self._end_turn()
        await self._drop_reply("failed", "not answered: your text is back in the box to retry")
        self.input.restore(message.text)
        self.notify(message.error, title="The turn failed", severity="error", timeout=12)

    async def action_cancel(self) -> None:
        """Stop the running turn; its message stays stored, its reply is discarded."""
        if self.busy_text is None:
            return
        self.seq += 1
        self.workers.cancel_group(self, "turn")
        text = self._end_turn()
        await self._drop_reply("cancelled", "cancelled")
        self.input.restore(text)
        self.notify("Cancelled: your message is saved, the reply was discarded.")

    def _end_turn(self) -> str:
        text, self.busy_text = self.busy_text or "", None
        self.stage.stop()
        self.refresh_bindings()
        return text

    async def _drop_reply(self, state: str, note: str) -> None:
        if self.pending_reply is not None:
            await self.pending_reply.remove()
            self.pending_reply = None
        if self.pending_user is not None:
            self.pending_user.mark(state, note)

    def on_reply_selected(self, message: ReplySelected) -> None:
        self.explain(message.turn_id)

    def action_why(self) -> None:
        """Show or hide the why panel."""
        self.why.display = not self.why.display

    @on(OptionList.OptionSelected, "#why-memories")
    def open_memory(self, event: OptionList.OptionSelected) -> None:
        memory = self.why.memory_at(event.option_id)
        if memory is not None:
            self.app.push_screen(MemoryDetailScreen(memory))
