"""`empathos doctor`: check a data dir and the models, and say what to do about each problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tui.options import data_dir_option

if TYPE_CHECKING:
    from agent.context import Context
    from memory.doctor import Finding


@click.command()
@data_dir_option
@click.option(
    "--rehash", is_flag=True, help="Re-check every installed model file's sha256 in full."
)
@click.option(
    "--repair",
    is_flag=True,
    help="Re-embed memories whose vectors are out of step; queue interrupted jobs again.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per check.")
def doctor(data_dir: Path | None, rehash: bool, repair: bool, as_json: bool) -> None:
    """Check the database, the vector store against it, memory jobs, turns and model files.

    Exits with status 1 when something needs attention; each problem says what to do.
    """
    from memory.doctor import check
    from tui.commands.memory import memory_errors, open_memory

    with memory_errors():
        context = open_memory(data_dir)
        findings = check(context.memories)
        if repair:
            findings = _repair(context, findings)
        findings += _models(context.settings.models_dir, rehash)
    for finding in findings:
        if as_json:
            click.echo(json.dumps(finding.__dict__))
        else:
            mark = "ok  " if finding.ok else "FIX "
            click.echo(f"{mark} {finding.check}: {finding.detail}")
            if finding.fix and not finding.ok:
                click.echo(f"       -> {finding.fix}")
    if not all(f.ok for f in findings):
        raise SystemExit(1)


def _repair(context: Context, findings: list[Finding]) -> list[Finding]:
    """Put back jobs a stopped process left running, re-embed the users whose vectors
    disagree, then check everything again."""
    from memory.doctor import check

    requeued = context.memory_worker.queue.recover()
    if requeued:
        click.echo(f"repaired: {requeued} interrupted memory job(s) queued again", err=True)
    for finding in findings:
        if finding.check.startswith("vectors of ") and not finding.ok:
            user = finding.check.removeprefix("vectors of ")
            count = context.memories.reindex(user)
            click.echo(f"repaired {user}: {count} memories re-embedded", err=True)
    return check(context.memories)


def _models(models_dir: Path, rehash: bool) -> list[Finding]:
    from agent.models import model_status
    from memory.doctor import Finding

    found = []
    for status in model_status(models_dir, rehash=rehash):
        name = status.spec.name
        if not status.installed:
            detail, ok = "not installed", True  # only a problem if you use it
        elif status.verified is False:
            detail, ok = f"{status.path} does not match the official sha256", False
        elif status.verified is None:
            detail, ok = "installed, changed since it was verified", False
        else:
            detail, ok = "installed and verified", True
        fix = f"Run `empathos models install {name}` (a file that differs is replaced)."
        found.append(Finding(f"model {name}", ok, detail, fix))
    return found
