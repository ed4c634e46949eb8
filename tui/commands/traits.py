"""`empathos traits`: show what empathos has inferred about a person, and let them correct it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tui.commands.memory import memory_errors, open_memory
from tui.options import data_dir_option, user_option


@click.group()
def traits() -> None:
    """See and set a person's traits (Big Five and how they like to be supported)."""


@traits.command("show")
@user_option
@click.option("--evidence", is_flag=True, help="List the evidence behind each trait.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@data_dir_option
def show_traits(user: str, evidence: bool, as_json: bool, data_dir: Path | None) -> None:
    """Show USER's traits: value, confidence, source and evidence ids."""
    with memory_errors():
        model = open_memory(data_dir).traits
        found = model.values(user)
        details = {name: model.evidence(user, name) for name in found} if evidence else {}
    if as_json:
        record = {n: {**t.model_dump(), "details": details.get(n, [])} for n, t in found.items()}
        click.echo(json.dumps(record, ensure_ascii=False, indent=2))
        return
    if not found:
        click.echo(f"No traits for {user} yet: they are inferred as you talk.")
    for name, trait in found.items():
        click.echo(f"{name:<24} {trait.value:.2f}  confidence {trait.confidence:.2f}  "
                   f"{trait.source:<8} evidence: {', '.join(trait.evidence) or '-'}")  # fmt: skip
        for row in details.get(name, [])[:5]:
            click.echo(f"    {row.get('kind') or '':<9} {row['source_id']}  {row['signal']:.2f} "
                       f"x{row['weight']:.2f}  {row['why']}")  # fmt: skip


@traits.command("set")
@click.argument("assignments", nargs=-1, required=True, metavar="NAME=VALUE...")
@user_option
@data_dir_option
def set_traits(assignments: tuple[str, ...], user: str, data_dir: Path | None) -> None:
    """Set traits as USER says they are (0..1, kept over inference); VALUE 'auto' unsets."""
    parsed = [parse_assignment(a) for a in assignments]
    with memory_errors():
        opened = open_memory(data_dir)
        opened.store.ensure_user(user)
        for name, value in parsed:
            if value is None:
                opened.traits.unset(user, name)
                click.echo(f"{name}: back to inferred")
            else:
                trait = opened.traits.set(user, name, value)
                click.echo(f"{name}: {trait.value:.2f} (set by you)")


def parse_assignment(text: str) -> tuple[str, float | None]:
    """Parse NAME=VALUE (VALUE a number in [0, 1] or 'auto')."""
    name, sep, value = text.partition("=")
    if not sep:
        raise click.BadParameter(f"{text!r}: write NAME=VALUE, e.g. wants_advice=0.8.")
    if value.strip().lower() == "auto":
        return name.strip(), None
    try:
        return name.strip(), float(value)
    except ValueError as exc:
        message = f"{text!r}: VALUE must be a number from 0 to 1 or 'auto'."
        raise click.BadParameter(message) from exc
