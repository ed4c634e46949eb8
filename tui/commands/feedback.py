"""`empathos feedback up|down`: tell empathos whether a reply helped (it learns per person)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from tui.commands.memory import memory_errors, open_memory
from tui.options import data_dir_option, user_option


@click.group()
def feedback() -> None:
    """Rate a reply; the strategy behind it is used more or less for this person."""


def _rate(up: bool, user: str, turn: str | None, note: str, data_dir: Path | None) -> None:
    with memory_errors():
        opened = open_memory(data_dir)
        outcome = opened.outcomes.feedback(opened.store, user, up, turn, note)
    verdict = "helped" if up else "did not help"
    click.echo(f"Noted: the reply {outcome.turn_id} ({outcome.strategy}, {outcome.lens}) "
               f"{verdict}. Score now {outcome.reward:.2f}.")  # fmt: skip


def rating_options(fn: Callable[..., None]) -> Callable[..., None]:
    """Add --user, --turn, --note and --data-dir."""
    fn = data_dir_option(fn)
    fn = click.option("--note", default="", help="A short note on why.")(fn)
    fn = click.option("--turn", help="The reply's turn id (default: the latest reply).")(fn)
    return user_option(fn)


@feedback.command()
@rating_options
def up(user: str, turn: str | None, note: str, data_dir: Path | None) -> None:
    """Say the reply helped."""
    _rate(True, user, turn, note, data_dir)


@feedback.command()
@rating_options
def down(user: str, turn: str | None, note: str, data_dir: Path | None) -> None:
    """Say the reply did not help."""
    _rate(False, user, turn, note, data_dir)
