"""The sessions list: switch to a past conversation, start a new one, rename one.

Renaming writes the `title` column directly through the store's database (the store has no
rename method yet; `rename_session` is the one place that does it).
"""

from __future__ import annotations

from dataclasses import dataclass
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

    from memory.store import ConversationStore

SessionChoice = tuple[str, str | None]
"""("open", session id), ("new", None) or ("search", None)."""

TITLE_MAX = 80
LABEL_WIDTH = 40


@dataclass(frozen=True)
class SessionInfo:
    id: str
    title: str
    updated_at: str
    turns: int
    first_text: str

    @property
    def name(self) -> str:
        """Return the title, else the first message (flattened), else ""."""
        return self.title or " ".join(self.first_text.split())

    @property
    def label(self) -> str:
        """Return the name cut to fit the list, or a placeholder for an empty session."""
        name = self.name or "(empty conversation)"
        return name if len(name) <= LABEL_WIDTH else name[: LABEL_WIDTH - 1] + "…"

    @property
    def when(self) -> str:
        return self.updated_at[:16].replace("T", " ")


def list_sessions(store: ConversationStore, user: str) -> list[SessionInfo]:
    """Return the user's sessions, newest first, with turn counts and first messages."""
    rows = store.db.execute(
        "select s.id, s.title, s.updated_at, "
        "(select count(*) from turns t where t.session_id = s.id), "
        "(select user_text from turns t where t.session_id = s.id order by idx limit 1) "
        "from sessions s where s.user_id = ? order by s.updated_at desc",
        [user],
    ).fetchall()
    return [SessionInfo(r[0], r[1] or "", r[2] or "", int(r[3]), r[4] or "") for r in rows]


def session_title(store: ConversationStore, user: str, session: str) -> str:
    """Return the name of one session ("" while it has neither title nor messages)."""
    return next((s.name for s in list_sessions(store, user) if s.id == session), "")


def rename_session(store: ConversationStore, user: str, session: str, title: str) -> str:
    """Set a session's title (checked to belong to `user`); return the title stored."""
    store.check_session(user, session)
    title = " ".join(title.split())[:TITLE_MAX]
    store.db.table("sessions").update(session, {"title": title})
    return title


def session_option(info: SessionInfo, current: str | None) -> Option:
    marker = "● " if info.id == current else "  "
    turns = f"{info.turns} turn" + ("" if info.turns == 1 else "s")
    return Option(f"{marker}{info.label:<{LABEL_WIDTH}} {turns:>9}  {info.when}", id=info.id)


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
        sessions = list_sessions(self.store, self.user)
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
        current = session_title(self.store, self.user, session)
        self.app.push_screen(
            PromptScreen("Rename this conversation", current, "a short title"),
            lambda title: self._renamed(session, title),
        )

    def _renamed(self, session: str, title: str | None) -> None:
        if title:
            rename_session(self.store, self.user, session, title)
            self.refresh_list(highlight=session)
