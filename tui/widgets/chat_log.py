"""The conversation: the user's messages and empathos's replies (markdown, streamed as written).

Replies are focusable: focusing one posts `ReplySelected`, so the why panel explains that reply.
Crisis replies get their own look and the crisis resources for the configured locale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Markdown, Static

from tui.messages import ReplySelected

if TYPE_CHECKING:
    from textual.app import ComposeResult
    from textual.widgets.markdown import MarkdownStream

    from memory.store import Turn

WELCOME = (
    "**Hello {user}.** This is a new conversation: say whatever is on your mind.\n\n"
    "F2 shows *why* empathos replied as it did · F3 lists your sessions · "
    "Ctrl+P lists every action."
)


def crisis_resources_markdown(locale: str, reply: str = "") -> str | None:
    """Return the emergency line, plus the crisis lines unless the reply already lists them."""
    try:
        from agent.crisis import crisis_resources
        from agent.safety import SafetyError
    except ImportError:
        return None
    try:
        found = crisis_resources(locale)
    except SafetyError:
        return None
    lines = [f"**If you are in danger right now, call {found.emergency}.**"]
    if not any(resource.contact in reply for resource in found.resources):
        for resource in found.resources:
            note = f" ({resource.note})" if resource.note else ""
            lines.append(f"- **{resource.name}**: {resource.contact}{note}")
    return "\n".join(lines)


class UserMessage(Static):
    """One message the user sent."""

    def __init__(self, text: str) -> None:
        super().__init__(text, markup=False, classes="user-message")
        self.text = text
        self.border_title = "you"

    def mark(self, state: str, note: str) -> None:
        """Mark the message failed or cancelled, with a short note under it."""
        self.add_class(state)
        self.border_subtitle = note


class ReplyMessage(Vertical):
    """One reply: markdown, streamable; focus it to explain it in the why panel."""

    can_focus = True

    def __init__(self, turn_id: str | None = None, text: str = "") -> None:
        super().__init__(classes="reply-message")
        self.turn_id = turn_id
        self.text = text
        self.streamed = ""
        self._stream: MarkdownStream | None = None
        self.border_title = "empathos"

    def compose(self) -> ComposeResult:
        yield Markdown(self.text, classes="reply-body")

    @property
    def body(self) -> Markdown:
        return self.query_one(".reply-body", Markdown)

    async def write(self, token: str) -> None:
        """Append a streamed token."""
        if self._stream is None:
            self._stream = Markdown.get_stream(self.body)
        self.streamed += token
        await self._stream.write(token)

    async def finish(self, turn_id: str, reply: str) -> None:
        """Stop streaming and make sure the final reply is what is shown."""
        self.turn_id = turn_id
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        await self.body.update(reply)  # a full parse: streamed fragments can lose spacing
        self.text = reply

    async def show_crisis(self, resources: str | None) -> None:
        """Give the reply the crisis look and add the resources under it."""
        self.add_class("crisis")
        self.border_title = "empathos · crisis support"
        if resources:
            await self.mount(Markdown(resources, classes="crisis-resources"), before=self.body)

    def on_focus(self, event: events.Focus) -> None:
        if self.turn_id:
            self.post_message(ReplySelected(self.turn_id))


class ChatLog(VerticalScroll):
    """The scrolling conversation."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.can_focus = False

    async def show_turns(self, turns: list[Turn], user: str, locale: str) -> None:
        """Replace the log with a session's stored turns (or a welcome note)."""
        await self.remove_children()
        if not turns:
            await self.mount(Markdown(WELCOME.format(user=user), classes="welcome"))
        for turn in turns:
            await self.mount(UserMessage(turn.user_text))
            if turn.reply is not None:
                await self.add_reply(turn.id, turn.reply, turn.crisis, locale)
            else:
                self.query(UserMessage).last().mark("failed", f"not answered ({turn.status})")
        self.scroll_end(animate=False)

    async def add_user(self, text: str) -> UserMessage:
        """Append the user's message."""
        for welcome in self.query(".welcome"):
            await welcome.remove()
        message = UserMessage(text)
        await self.mount(message)
        self.scroll_end(animate=False)
        return message

    async def add_reply(
        self, turn_id: str | None, text: str = "", crisis: bool = False, locale: str = ""
    ) -> ReplyMessage:
        """Append a reply (empty to stream into it)."""
        reply = ReplyMessage(turn_id, text)
        await self.mount(reply)
        if crisis:
            await reply.show_crisis(crisis_resources_markdown(locale, text))
        self.scroll_end(animate=False)
        return reply

    def last_reply(self) -> ReplyMessage | None:
        """Return the newest finished reply."""
        replies = [r for r in self.query(ReplyMessage) if r.turn_id]
        return replies[-1] if replies else None
