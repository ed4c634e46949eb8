"""`empathos chat` and `empathos say`: talk to empathos from the terminal or a script."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from tui.options import data_dir_option, errors_as_click, model_options, settings_from, user_option

if TYPE_CHECKING:
    from collections.abc import Iterator

    from agent.runner import Agent, TurnResult


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn the core's typed errors into CLI errors with their messages."""
    from agent.llm import LLMError
    from agent.runner import TurnError
    from memory.store import StoreError

    with errors_as_click(LLMError, TurnError, StoreError):
        yield


def open_agent(**options: Any) -> Agent:
    """Build the context and the agent from CLI options."""
    from agent.context import Context
    from agent.runner import Agent

    return Agent(Context(settings_from(**options)))


def pick_session(agent: Agent, user: str, session: str | None, new: bool) -> str:
    store = agent.context.store
    store.ensure_user(user)
    if session:
        return store.check_session(user, session)
    if not new and (latest := store.latest_session(user)):
        return latest
    return store.new_session(user)


def result_json(agent: Agent, result: TurnResult, session_id: str) -> dict[str, Any]:
    """Summarise a turn as the JSON object `say --json` prints, with the stored trace."""
    turn = result.state
    stored = agent.context.store.get_turn(result.turn_id)
    trace = stored.trace.model_dump(mode="json") if stored else None
    emotion, analysis, plan = turn.get("emotion"), turn.get("analysis"), turn.get("plan")
    return {
        "turn_id": result.turn_id,
        "session_id": session_id,
        "reply": result.reply,
        "rejected": result.rejected,
        "crisis": result.crisis,
        "emotion": {"label": emotion.label, "probability": emotion.probability}
        if emotion
        else None,
        "cause": analysis.cause_span if analysis else None,
        "need": analysis.need.value if analysis else None,
        "lens": plan.lens if plan else None,
        "strategy": plan.strategy if plan else None,
        "trace": trace,
    }


def finish_memory_work(agent: Agent) -> None:
    """Run the memory jobs still queued before exiting (they would run next time anyway)."""

    def announce(pending: int) -> None:
        click.echo(f"(remembering: {pending} memory job(s) to finish…)", err=True)

    with cli_errors():
        agent.context.finish_memory_work(announce)


def report_resumed(agent: Agent, user: str) -> None:
    """Finish turns a crash left pending and show their replies on stderr (a crisis reply with
    its resources must reach the person even if the process died before printing it)."""
    for result in agent.resume_pending(user):
        turn = agent.context.store.get_turn(result.turn_id)
        said = f" you said: {turn.user_text[:80]!r}" if turn else ""
        click.echo(f"(an interrupted turn finished;{said})", err=True)
        if result.reply:
            click.echo(result.reply, err=True)


@click.command()
@click.argument("message")
@user_option
@click.option("--session", help="Continue this session id (default: the latest one).")
@click.option("--new-session", is_flag=True, help="Start a new session.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the trace.")
@model_options
@data_dir_option
def say(
    message: str, user: str, session: str | None, new_session: bool, as_json: bool, **options: Any
) -> None:
    """Send one MESSAGE and print the reply."""
    with cli_errors():
        agent = open_agent(**options)
        session_id = pick_session(agent, user, session, new_session)
        report_resumed(agent, user)
        if not as_json:
            if plain_turn(agent, user, session_id, message, prefix="") is None:
                sys.exit(1)
            finish_memory_work(agent)
            return
        result = agent.run_turn(user, session_id, message)
    if result.rejected:
        raise click.ClickException(result.rejected)
    click.echo(json.dumps(result_json(agent, result, session_id), ensure_ascii=False))
    sys.stdout.flush()
    finish_memory_work(agent)


@click.command()
@user_option
@click.option("--plain", is_flag=True, help="Line mode: read stdin, print replies (pipe-friendly).")
@click.option("--session", help="Continue this session id (default: a new session).")
@model_options
@data_dir_option
def chat(user: str, plain: bool, session: str | None, **options: Any) -> None:
    """Talk with empathos (the Textual app; --plain for line mode)."""
    if not plain:
        from tui.launch import run_app

        run_app(user=user, session=session, **options)
        return
    with cli_errors():
        agent = open_agent(**options)
        session_id = pick_session(agent, user, session, new=session is None)
        report_resumed(agent, user)
        agent.context.start_memory_worker()
        agent.context.prefill(user, session_id, load=True)  # while the person types
        try:
            run_plain(agent, user, session_id)
        finally:
            finish_memory_work(agent)


def run_plain(agent: Agent, user: str, session_id: str) -> None:
    """Read messages line by line from stdin and print each reply as it streams."""
    interactive = sys.stdin.isatty()
    if interactive:
        click.echo("empathos is listening. Type /quit to leave, /why for the last reply's reasons.")
    last: TurnResult | None = None
    shown: str | None = None  # the memory worker's problem last shown, so it is said once
    while True:
        if interactive:
            click.echo("you> ", nl=False)
        line = sys.stdin.readline()
        if not line or line.strip() == "/quit":
            break
        if line.strip() == "/why":
            trace = result_json(agent, last, session_id)["trace"] if last else None
            click.echo(json.dumps(trace, indent=2, ensure_ascii=False))
            continue
        if not line.strip():
            continue
        last = plain_turn(agent, user, session_id, line.rstrip("\n")) or last
        problem = agent.context.memory_problem()
        if problem and problem != shown:
            click.echo(f"[memory] {problem}", err=True)
        shown = problem


def unstreamed_tail(streamed: str, reply: str) -> str:
    """What of the final reply the stream did not show (e.g. an added safety check-in line)."""
    if not streamed:
        return reply
    start = reply.find(streamed.strip())
    if start < 0:  # the reply check rewrote the reply after it began to show
        return f"\n[rewritten] {reply}"
    return reply[start + len(streamed.strip()) :]


def plain_turn(
    agent: Agent, user: str, session_id: str, text: str, prefix: str = "empathos> "
) -> TurnResult | None:
    """Run one line-mode turn, streaming the reply; errors are shown, the session goes on."""
    from agent.runner import TurnError

    click.echo(prefix, nl=False)
    streamed: list[str] = []

    def on_token(token: str) -> None:
        streamed.append(token)
        click.echo(token, nl=False)

    try:
        result = agent.run_turn(user, session_id, text, on_token=on_token)
    except TurnError as exc:
        click.echo(f"\n[error] {exc}", err=True)
        return None
    if result.rejected:
        click.echo(f"[not sent] {result.rejected}")
        return None
    click.echo(unstreamed_tail("".join(streamed), result.reply or ""))
    if result.state.get("degraded"):
        click.echo(f"[note] degraded: {'; '.join(result.state['degraded'])}", err=True)
    return result
