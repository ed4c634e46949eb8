"""Pick who is talking, or create a new person (shown at start when no --user was given)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from memory.store import InvalidUserIdError, check_user_id

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from memory.store import ConversationStore


class UserScreen(ModalScreen[str | None]):
    """Choose a stored user or type a new name."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, store: ConversationStore, *, cancel_quits: bool = False) -> None:
        super().__init__(classes="dialog-screen")
        self.store = store
        self.cancel_quits = cancel_quits

    def compose(self) -> ComposeResult:
        users = self.store.users()
        with Vertical(classes="dialog", id="users-dialog"):
            yield Label("Who is talking?", classes="dialog-title")
            if users:
                yield OptionList(*[Option(user, id=user) for user in users], id="users")
            yield Input(placeholder="a new name (letters, digits, _ . @ -)", id="new-user")
            hint = "Enter to choose · Esc to " + ("quit" if self.cancel_quits else "cancel")
            yield Label(hint, classes="dialog-help")

    def on_mount(self) -> None:
        if not self.query("#users"):
            self.query_one("#new-user", Input).focus()

    @on(OptionList.OptionSelected, "#users")
    def choose(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option_id)

    @on(Input.Submitted, "#new-user")
    def create(self, event: Input.Submitted) -> None:
        try:
            user = check_user_id(event.value.strip())
        except InvalidUserIdError as exc:
            self.notify(str(exc), severity="error")
            return
        self.dismiss(self.store.ensure_user(user))

    def action_cancel(self) -> None:
        self.dismiss(None)
