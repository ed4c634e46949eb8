"""Start the Textual app for `empathos chat`: settings from the CLI options, services lazily.

Nothing heavy is imported here: the agent (LangGraph, the chat model, the plug-ins) is built by
the app in a background worker after its first screen is up.

Exceptions: invalid options or user names become `click` errors (this is the CLI edge).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from agent.context import Context
    from tui.app import FeedbackHandler, TurnRunner


def agent_factory(context: Context) -> Callable[[], TurnRunner]:
    """Return a function that builds the agent and loads its chat model (slow: not on the UI)."""

    def build() -> TurnRunner:
        from agent.runner import Agent

        agent = Agent(context)
        _ = context.chat_model  # load the model now: a missing one is reported at start
        context.start_memory_worker()  # memory jobs run while the person is typing
        return agent

    return build


def run_app(
    user: str | None = None,
    session: str | None = None,
    *,
    on_feedback: FeedbackHandler | None = None,
    **options: Any,
) -> None:
    """Run the chat app for `user` (None: ask) in `session` (None: a fresh one)."""
    from agent.context import Context
    from memory.store import InvalidUserIdError, check_user_id
    from tui.app import create_app
    from tui.options import settings_from

    if user is not None:
        try:
            check_user_id(user)
        except InvalidUserIdError as exc:
            raise click.UsageError(str(exc)) from exc
    context = Context(settings_from(**options))
    app = create_app(context, agent_factory(context), user, session, on_feedback=on_feedback)
    try:
        app.run()
    finally:
        context.finish_memory_work(
            lambda n: click.echo(f"(remembering: {n} memory job(s) to finish…)", err=True)
        )
