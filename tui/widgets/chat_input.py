"""The message box: a multi-line TextArea where Enter sends and Shift+Enter or Ctrl+J adds a line.

Shift+Enter arrives as its own key only in terminals with the kitty keyboard protocol; Ctrl+J
(a line feed) works everywhere, so both insert a newline.
"""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import TextArea

NEWLINE_KEYS = frozenset({"shift+enter", "ctrl+j", "newline", "alt+enter"})
PLACEHOLDER = "Say what is on your mind… (Enter sends, Ctrl+J new line)"


class ChatInput(TextArea):
    """A TextArea that posts `Submitted` on Enter."""

    class Submitted(Message):
        """The user pressed Enter to send the text."""

        def __init__(self, chat_input: ChatInput, text: str) -> None:
            super().__init__()
            self.chat_input = chat_input
            self.text = text

        @property
        def control(self) -> ChatInput:
            return self.chat_input

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            show_line_numbers=False,
            highlight_cursor_line=False,
            placeholder=PLACEHOLDER,
            compact=True,
        )

    async def _on_key(self, event: events.Key) -> None:
        """Send on Enter; insert a newline on the newline keys; otherwise type as usual."""
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self, self.text))
        elif event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert("\n")
        else:
            await super()._on_key(event)

    def restore(self, text: str) -> None:
        """Put text back (after a failed or cancelled turn) unless the user typed something new."""
        if not self.text.strip():
            self.load_text(text)
            self.move_cursor(self.document.end)
