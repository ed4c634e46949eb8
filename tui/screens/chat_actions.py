"""The chat screen's base: its parts, loading a session, and the actions besides sending.

Sessions, search, rename, feedback, copy, memory, settings and switching user live here so that
`tui.screens.chat` stays about running turns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.screen import Screen

from agent.settings import config_file
from memory.database import secure_dir
from tui.host import Host, host_of
from tui.screens.memory import MemoryScreen
from tui.screens.memory_actions import MemoryClosed
from tui.screens.prompt import PromptScreen
from tui.screens.search import SearchScreen, TextEmbedder, TurnIndex
from tui.screens.sessions import SessionChoice, SessionsScreen, session_name
from tui.screens.settings import SettingsScreen
from tui.screens.users import UserScreen
from tui.widgets.chat_input import ChatInput
from tui.widgets.chat_log import ChatLog
from tui.widgets.stage import StageIndicator
from tui.widgets.why_panel import WhyPanel

if TYPE_CHECKING:
    from pathlib import Path

COPY_FILE = "last-reply.md"


class ChatActions(Screen[None]):
    """Parts of the chat screen and the actions that are not about the running turn."""

    busy_text: str | None = None
    turn_index: TurnIndex
    forgotten_memories: frozenset[str] = frozenset()

    @property
    def host(self) -> Host:
        return host_of(self)

    @property
    def user(self) -> str:
        assert self.host.user is not None
        return self.host.user

    @property
    def session_id(self) -> str:
        assert self.host.session_id is not None
        return self.host.session_id

    @property
    def log_view(self) -> ChatLog:
        return self.query_one("#log", ChatLog)

    @property
    def input(self) -> ChatInput:
        return self.query_one("#input", ChatInput)

    @property
    def stage(self) -> StageIndicator:
        return self.query_one("#stage", StageIndicator)

    @property
    def why(self) -> WhyPanel:
        return self.query_one("#why", WhyPanel)

    async def load_session(self) -> None:
        """Show the current session's turns and explain its last reply."""
        turns = self.host.store.turns(self.user, self.session_id)
        await self.log_view.show_turns(turns, self.user, self.host.context.settings.locale)
        self.refresh_title()
        last = next((t for t in reversed(turns) if t.reply is not None), None)
        if last is not None:
            self.explain(last.id)
        else:
            self.why.clear()

    def refresh_title(self) -> None:
        summary = self.host.store.session(self.user, self.session_id)
        title = session_name(summary) or "new conversation"
        self.sub_title = f"{self.user} · {title if len(title) <= 60 else title[:59] + '…'}"

    def explain(self, turn_id: str) -> None:
        """Show the reasons behind the reply of `turn_id`, without memories forgotten since."""
        turn = self.host.store.get_turn(turn_id)
        if turn is None:
            return
        trace = turn.trace
        if any(m.id in self.forgotten_memories for m in trace.memories_used):
            used = [m for m in trace.memories_used if m.id not in self.forgotten_memories]
            trace = trace.model_copy(update={"memories_used": used})
        self.why.show(turn.id, turn.user_text, trace)

    def idle(self, doing: str) -> bool:
        """Return True if no turn runs; else say why `doing` has to wait."""
        if self.busy_text is None:
            return True
        self.notify(f"Wait for the reply (or press Esc) before you {doing}.", severity="warning")
        return False

    def action_sessions(self) -> None:
        """List the sessions to switch, start or rename one."""
        if self.idle("switch sessions"):
            screen = SessionsScreen(self.host.store, self.user, self.session_id)
            self.app.push_screen(screen, self._session_chosen)

    async def _session_chosen(self, choice: SessionChoice | None) -> None:
        if choice is None:
            self.refresh_title()  # it may have been renamed
        elif choice[0] == "open" and choice[1]:
            await self.host.switch_to(self.user, choice[1])
        elif choice[0] == "new":
            await self.action_new_session()
        elif choice[0] == "search":
            self.action_search()

    async def action_new_session(self) -> None:
        """Start a new conversation."""
        if self.idle("start a new session"):
            await self.host.switch_to(self.user, new=True)

    def action_rename_session(self) -> None:
        """Give the current conversation a title."""
        current = session_name(self.host.store.session(self.user, self.session_id))
        prompt = PromptScreen("Rename this conversation", current, "a short title")
        self.app.push_screen(prompt, self._renamed)

    def _renamed(self, title: str | None) -> None:
        if title:
            self.host.store.rename_session(self.user, self.session_id, title)
            self.refresh_title()

    def action_search(self) -> None:
        """Search every past conversation."""
        if not self.idle("search"):
            return
        screen = SearchScreen(self.host.store, self.user, self._embedder, self.turn_index)
        self.app.push_screen(screen, self._hit_chosen)

    def _embedder(self) -> TextEmbedder:
        return self.host.context.embedder

    async def _hit_chosen(self, hit: tuple[str, str] | None) -> None:
        if hit is not None:
            await self.host.switch_to(self.user, hit[0])
            self.explain(hit[1])

    def last_reply_turn(self) -> tuple[str, str] | None:
        """Return (turn id, text) of the newest reply shown."""
        reply = self.log_view.last_reply()
        return (reply.turn_id, reply.text) if reply is not None and reply.turn_id else None

    def action_thumbs_up(self) -> None:
        """Say the last reply helped."""
        self.feedback(1)

    def action_thumbs_down(self) -> None:
        """Say the last reply missed."""
        self.feedback(-1)

    def feedback(self, value: int) -> None:
        """Pass thumbs up (1) or down (-1) on the last reply to the feedback handler."""
        last = self.last_reply_turn()
        if last is None:
            self.notify("There is no reply to rate yet.", severity="warning")
            return
        handler = self.host.on_feedback
        if handler is not None:
            try:
                handler(last[0], value)
            except Exception as exc:  # the UI edge: the handler is injected, report its failure
                self.notify(f"Feedback not saved: {exc}", severity="error")
                return
        self.notify(f"Feedback noted {'👍' if value > 0 else '👎'}")

    def action_copy_reply(self) -> None:
        """Copy the last reply (OSC 52) and also save it to a file, for terminals without it."""
        last = self.last_reply_turn()
        if last is None:
            self.notify("There is no reply to copy yet.", severity="warning")
            return
        self.app.copy_to_clipboard(last[1])
        path = self.save_copy(last[1])
        self.notify(f"Copied the last reply. Without clipboard support, find it in {path}")

    def save_copy(self, text: str) -> Path:
        """Write `text` privately to the user's copy file (forgetting them removes it)."""
        from memory.privacy import user_files

        folder = user_files(self.host.context.settings.data_dir, self.user)
        secure_dir(folder.parent)
        path = secure_dir(folder) / COPY_FILE
        path.touch(mode=0o600, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
        return path

    def action_memory(self) -> None:
        """Browse, edit or forget what empathos remembers and infers."""
        open_already = any(isinstance(s, MemoryScreen) for s in self.app.screen_stack)
        if not open_already and self.idle("open your memories"):
            self.app.push_screen(MemoryScreen(self.user), self._memory_closed)

    def _memory_closed(self, closed: MemoryClosed | None) -> None:
        if closed is None:
            return
        self.forgotten_memories |= closed.forgotten
        if self.why.turn_id is not None:
            self.explain(self.why.turn_id)  # drop the memories just forgotten

    def action_settings(self) -> None:
        """Edit the model and endpoint."""
        self.app.push_screen(SettingsScreen(self.host.context.settings, config_file()))

    def action_switch_user(self) -> None:
        """Talk as another person."""
        if self.idle("switch user"):
            self.app.push_screen(UserScreen(self.host.store), self._user_chosen)

    async def _user_chosen(self, user: str | None) -> None:
        if user is not None and user != self.user:
            await self.host.switch_to(user)
