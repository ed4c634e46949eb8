"""`empathos memory`: list, search, show, edit, forget, export and import what is remembered,
and ingest a person's past conversations."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tui.options import data_dir_option, model_options, os_problem, settings_from, user_option
from tui.progress import progress_bars

if TYPE_CHECKING:
    from agent.context import Context
    from agent.ingest import IngestReport
    from memory.memories import Memory


def open_memory(data_dir: Path | None) -> Context:
    """The run context over the data dir: its stores, memories, traits and outcomes (the
    embedding model loads only if a command embeds)."""
    from agent.context import Context

    return Context(settings_from(data_dir=data_dir))


@contextmanager
def memory_errors() -> Iterator[None]:
    """Turn the memory layer's typed errors into CLI errors with their messages."""
    from pydantic import ValidationError

    from memory.memories import MemoryStoreError
    from memory.outcomes import OutcomeError
    from memory.privacy import PrivacyError
    from memory.store import StoreError
    from memory.traits import TraitError
    from memory.vectors import VectorStoreError

    try:
        yield
    except (MemoryStoreError, OutcomeError, PrivacyError, StoreError, TraitError,
            VectorStoreError) as exc:  # fmt: skip
        raise click.ClickException(str(exc)) from exc
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        raise click.ClickException(f"Not accepted: {problems}.") from exc
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"The file is not UTF-8 text ({exc.reason}).") from exc
    except OSError as exc:
        raise os_problem(exc) from exc


def memory_line(memory: Memory, score: float | None = None) -> str:
    head = f"{memory.id}  {memory.kind:<10} imp {memory.importance:.2f}"
    head += f"  sim {score:.2f}" if score is not None else ""
    head += "" if memory.current else f"  [{memory.status}]"
    return f"{head}  {memory.text}"


@click.group()
def memory() -> None:
    """See, correct and remove what empathos remembers about a person."""


@memory.command("list")
@user_option
@click.option("--history", is_flag=True, help="Include superseded versions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@data_dir_option
def list_memories(user: str, history: bool, as_json: bool, data_dir: Path | None) -> None:
    """List the facts remembered about USER, newest first."""
    from dataclasses import asdict

    with memory_errors():
        found = open_memory(data_dir).memories.all(user, include_history=history)
    if as_json:
        click.echo(json.dumps([asdict(m) for m in found], ensure_ascii=False, indent=2))
        return
    for item in found:
        click.echo(memory_line(item))
    if not found:
        click.echo(f"Nothing remembered about {user} yet.")


@memory.command()
@click.argument("query")
@user_option
@click.option("-k", "k", type=click.IntRange(1, 50), default=5, show_default=True)
@data_dir_option
def search(query: str, user: str, k: int, data_dir: Path | None) -> None:
    """Find USER's memories closest in meaning to QUERY."""
    with memory_errors():
        hits = open_memory(data_dir).memories.search(user, query, k)
    for item, similarity in hits:
        click.echo(memory_line(item, similarity))
    if not hits:
        click.echo("No matching memories.")


@memory.command()
@click.argument("memory_id")
@user_option
@data_dir_option
def show(memory_id: str, user: str, data_dir: Path | None) -> None:
    """Show one memory with its source turns and the versions it replaced."""
    from dataclasses import asdict

    with memory_errors():
        opened = open_memory(data_dir)
        found = opened.memories.get(user, memory_id)
        record: dict[str, Any] = asdict(found)
        record["source_turns"] = opened.memories.sources(user, memory_id)
        record["replaced"] = [asdict(m) for m in opened.memories.history(user, memory_id)]
    click.echo(json.dumps(record, ensure_ascii=False, indent=2))


@memory.command()
@click.argument("memory_id")
@click.argument("text")
@user_option
@data_dir_option
def edit(memory_id: str, text: str, user: str, data_dir: Path | None) -> None:
    """Correct the words of a memory."""
    with memory_errors():
        click.echo(memory_line(open_memory(data_dir).memories.edit(user, memory_id, text)))


@memory.command()
@click.argument("memory_id", required=False)
@user_option
@click.option("--all", "everything", is_flag=True, help="Forget the person entirely.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@data_dir_option
def forget(
    memory_id: str | None, user: str, everything: bool, yes: bool, data_dir: Path | None
) -> None:
    """Forget one memory (MEMORY_ID), or everything about USER (--all)."""
    if everything == (memory_id is not None):
        raise click.UsageError("Give either a MEMORY_ID or --all.")
    from memory.traits import FORGOTTEN_SESSION

    with memory_errors():
        opened = open_memory(data_dir)
        if memory_id is not None:
            removed = opened.memories.forget(user, memory_id)
            opened.traits.refresh(user, FORGOTTEN_SESSION)  # what was inferred from it goes too
            click.echo(f"Forgot {len(removed)} memory version(s).")
            return
        if not yes:
            click.confirm(f"Remove everything about {user} (conversations, memories, traits)?",
                          abort=True)  # fmt: skip
        forget_everything(opened, user)


def forget_everything(opened: Context, user: str) -> None:
    report = opened.forget_user(user)
    click.echo(f"Forgot {user}: {report.total} records removed; freed space wiped.")
    fail_if_left_behind(report.left_behind)


def fail_if_left_behind(paths: list[str]) -> None:
    """Fail with the files a forgetting could not remove ("path: why"), for the person to."""
    if paths:
        listed = "\n  ".join(paths)
        raise click.ClickException(
            f"These files could not be removed; delete them by hand:\n  {listed}"
        )


@memory.command("export")
@user_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (private, 0600) instead of stdout.")  # fmt: skip
@data_dir_option
def export_command(user: str, output: Path | None, data_dir: Path | None) -> None:
    """Export everything about USER as one JSON document."""
    from memory.privacy import export_user

    with memory_errors():
        text = json.dumps(export_user(open_memory(data_dir).store.db, user), ensure_ascii=False)
    if output is None:
        click.echo(text)
        return
    with memory_errors():
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(output, 0o600)
    click.echo(f"Exported {user} to {output}.")


@memory.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@user_option
@click.option("--replace", is_flag=True, help="Swap USER's current data for the export's "
              "(in one step: an export that does not fit changes nothing).")  # fmt: skip
@data_dir_option
def import_command(file: Path, user: str, replace: bool, data_dir: Path | None) -> None:
    """Restore USER from an export FILE."""
    from memory.privacy import check_export

    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{file} is not a JSON export: {exc}.") from exc
    with memory_errors():
        if check_export(doc) != user:
            raise click.ClickException(f"{file} holds user {doc['user_id']!r}, not {user!r}.")
        counts, removed = open_memory(data_dir).import_user(doc, replace=replace)
    click.echo(f"Imported {user}: " + ", ".join(f"{n} {t}" for t, n in counts.items() if n))
    fail_if_left_behind(removed.left_behind)


def ingest_context(**options: Any) -> Context:
    """The run context an ingest uses: models from the CLI options (tests inject fakes here)."""
    from agent.context import Context

    return Context(settings_from(**options))


def ingest_summary(report: IngestReport) -> str:
    return (
        f"ingested {report.messages} messages as {report.turns} turns in {report.sessions} "
        f"sessions ({report.already_there} already there); {report.memories} memories"
    )


@memory.command("ingest")
@click.argument("history", type=click.Path(dir_okay=False, path_type=Path))
@user_option
@click.option("--source", help="Name this history (default: the file's name). The same history "
              "under the same name is stored once, however often it is ingested.")  # fmt: skip
@model_options
@data_dir_option
def ingest_command(history: Path, user: str, source: str | None, **options: Any) -> None:
    """Turn USER's past conversations in HISTORY (JSONL) into sessions, turns and memories."""
    from agent.errors import LLMError
    from agent.ingest import HistoryError, ingest, read_history
    from memory.store import check_user_id

    try:
        with memory_errors():
            check_user_id(user)
        messages = read_history(history)  # the whole file, before anything is written
        with memory_errors():
            context = ingest_context(**options)
            _ = context.services.background_model  # a missing model stops us here, not per job
            with progress_bars() as update:
                report = ingest(
                    context, user, messages, source=source or history.name,
                    on_progress=lambda done, total: update("ingesting turns", done, total),
                )  # fmt: skip
    except (HistoryError, LLMError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(ingest_summary(report))
    if report.skipped_assistant:
        click.echo(f"({report.skipped_assistant} assistant message(s) before anything the person "
                   "said in their session were skipped)", err=True)  # fmt: skip
    if report.failed_jobs:
        raise click.ClickException(
            f"{report.failed_jobs} memory job(s) failed, so some facts are missing from memory; "
            "the conversations are stored. `empathos doctor` shows why."
        )
