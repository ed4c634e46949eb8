"""What the screens need from the app, as protocols, so no screen imports `tui.app`.

`tui.app.EmpathosApp` is the one `Host`; screens reach it with `host_of(screen)`. The app imports
the screens and the screens import this module, so imports point one way. `TurnRunner` is what
the app needs from the agent (`agent.runner.Agent` or a test fake).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

if TYPE_CHECKING:
    import threading

    from textual.dom import DOMNode

    from agent.context import Context
    from memory.store import ConversationStore

TokenHandler = Callable[[str], None]
FeedbackHandler = Callable[[str, int], None]


@runtime_checkable
class TurnRunner(Protocol):
    """What the app needs from the agent (`agent.runner.Agent` or a test fake)."""

    def run_turn(
        self,
        user_id: str,
        session_id: str,
        message: str,
        *,
        on_token: TokenHandler | None = None,
        on_stage: TokenHandler | None = None,
        turn_id: str | None = None,
    ) -> Any: ...

    def resume_pending(self, user_id: str, on_token: TokenHandler | None = None) -> list[Any]: ...


class Host(Protocol):
    """The app as the screens see it: who is talking, in which session, and the services."""

    context: Context
    user: str | None
    session_id: str | None
    models_status: str
    turn_lock: threading.Lock
    on_feedback: FeedbackHandler | None

    @property
    def store(self) -> ConversationStore: ...

    def get_agent(self) -> TurnRunner: ...

    def begin_warm_up(self) -> None: ...

    async def switch_to(
        self, user: str | None, session: str | None = None, *, new: bool = False
    ) -> None: ...


def host_of(node: DOMNode) -> Host:
    """Return the app a screen or widget runs in, as its `Host`."""
    return cast("Host", node.app)
