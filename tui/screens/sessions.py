"""The sessions list: switch to a past conversation, start a new one, rename one.

The list and the renaming go through the store (`sessions`, `rename_session`); this module only
decides how a session reads in the list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from tui.screens.prompt import PromptScreen

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from memory.store import ConversationStore, SessionSummary

SessionChoice = tuple[str, str | None]
"""("open", session id), ("new", None) or ("search", None)."""

LABEL_WIDTH = 40


def session_name(session: SessionSummary) -> str:
    """Return the title, else the first message (flattened), else ""."""
    return session.title or " ".join(session.first_text.split())


def session_label(session: SessionSummary) -> str:
    """Return the name cut to fit the list, or a placeholder for an empty session."""
    name = session_name(session) or "(empty conversation)"
    return name if len(name) <= LABEL_WIDTH else name[: LABEL_WIDTH - 1] + "…"


def when(stamp: str) -> str:
    return stamp[:16].replace("T", " ")


def session_option(session: SessionSummary, current: str | None) -> Option:
    marker = "● " if session.id == current else "  "
    turns = f"{session.turns} turn" + ("" if session.turns == 1 else "s")
    label = f"{session_label(session):<{LABEL_WIDTH}} {turns:>9}  {when(session.updated_at)}"
    return Option(marker + label, id=session.id)


class SessionsScreen(ModalScreen[SessionChoice | None]):
    """List the user's sessions; Enter opens, n starts a new one, r renames, / searches."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("n", "new", "New"),
        Binding("r", "rename", "Rename"),
        Binding("slash", "search", "Search"),
    ]

    def __init__(self, store: ConversationStore, user: str, current: str | None) -> None:
        super().__init__(classes="dialog-screen")
        self.store = store
        self.user = user
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="sessions-dialog"):
            yield Label(f"Conversations of {self.user}", classes="dialog-title")
            yield OptionList(id="sessions")
            yield Label(
                "Enter open · n new · r rename · / search · Esc close", classes="dialog-help"
            )

    def on_mount(self) -> None:
        self.refresh_list()

    def refresh_list(self, highlight: str | None = None) -> None:
        """Reload the list from the store, keeping `highlight` (default: current) highlighted."""
        sessions = self.store.sessions(self.user)
        options = self.query_one("#sessions", OptionList)
        options.clear_options()
        options.add_options([session_option(s, self.current) for s in sessions])
        ids = [s.id for s in sessions]
        target = highlight or self.current
        options.highlighted = ids.index(target) if target in ids else (0 if ids else None)

    def highlighted_id(self) -> str | None:
        options = self.query_one("#sessions", OptionList)
        if options.highlighted is None:
            return None
        return options.get_option_at_index(options.highlighted).id

    @on(OptionList.OptionSelected, "#sessions")
    def open_session(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(("open", event.option_id))

    def action_new(self) -> None:
        self.dismiss(("new", None))

    def action_search(self) -> None:
        self.dismiss(("search", None))

    def action_close(self) -> None:
        self.dismiss(None)

    def action_rename(self) -> None:
        session = self.highlighted_id()
        if session is None:
            return
        current = session_name(self.store.session(self.user, session))
        self.app.push_screen(
            PromptScreen("Rename this conversation", current, "a short title"),
            lambda title: self._renamed(session, title),
        )

    def _renamed(self, session: str, title: str | None) -> None:
        if title:
            self.store.rename_session(self.user, session, title)
            self.refresh_list(highlight=session)
