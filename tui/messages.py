"""Messages the app's workers and widgets post (thread-safe `post_message` from worker threads).

Turn messages carry the turn's sequence number, so messages from a cancelled turn that arrive
late are recognised and dropped.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message


class TurnToken(Message):
    """A streamed piece of the reply."""

    def __init__(self, seq: int, token: str) -> None:
        super().__init__()
        self.seq = seq
        self.token = token


class TurnStage(Message):
    """A graph node finished."""

    def __init__(self, seq: int, node: str) -> None:
        super().__init__()
        self.seq = seq
        self.node = node


class TurnDone(Message):
    """The turn finished; `result` is the runner's `TurnResult`."""

    def __init__(self, seq: int, result: Any) -> None:
        super().__init__()
        self.seq = seq
        self.result = result


class TurnFailed(Message):
    """The turn failed; `text` is the user's message, to give back for a retry."""

    def __init__(self, seq: int, text: str, error: str) -> None:
        super().__init__()
        self.seq = seq
        self.text = text
        self.error = error


class ModelsReady(Message):
    """The agent is built and the models are loaded."""


class ModelsFailed(Message):
    """Loading the agent or the models failed."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class ReplySelected(Message):
    """A reply in the log got focus: the why panel should explain it."""

    def __init__(self, turn_id: str) -> None:
        super().__init__()
        self.turn_id = turn_id


class SearchDone(Message):
    """Search results arrived from the worker."""

    def __init__(self, query: str, hits: list[Any]) -> None:
        super().__init__()
        self.query = query
        self.hits = hits
