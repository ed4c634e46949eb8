"""Options shared by the commands, and turning them into settings at the CLI edge."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from agent.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def data_dir_option(fn: F) -> F:
    """Add --data-dir."""
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="EMPATHOS_DATA_DIR",
        help="Where conversations and memories live (default: the platform's data dir).",
    )(fn)


def model_options(fn: F) -> F:
    """Add --model and the endpoint options."""
    for decorator in reversed(
        [
            click.option("--model", help="Registry model name, .gguf path, or endpoint model id."),
            click.option(
                "--base-url", help="OpenAI-compatible endpoint (default: embedded model)."
            ),
            click.option("--api-key", help="API key for the endpoint (or EMPATHOS_API_KEY)."),
            click.option("--max-tokens", type=click.IntRange(16, 4096), help="Reply length cap."),
            click.option(
                "--variant",
                help="Pipeline variant: full (default), no-memory, no-traits, no-ebg, no-coe, "
                "single-call.",
            ),
        ]
    ):
        fn = decorator(fn)
    return fn


def user_option(fn: F) -> F:
    """Add the required --user."""
    return click.option("--user", "user", required=True, help="Who is talking (a short name).")(fn)


def settings_from(**options: Any) -> Settings:
    """Build settings from CLI options, turning validation errors into CLI errors."""
    import tomllib

    from pydantic import ValidationError

    from agent.settings import config_file, load_settings

    try:
        return load_settings(**options)
    except ValidationError as exc:
        raise click.UsageError(f"Invalid settings: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise click.UsageError(f"{config_file()} is not valid TOML ({exc}): fix it.") from exc


@contextmanager
def errors_as_click(*kinds: type[Exception]) -> Iterator[None]:
    """Turn the typed errors `kinds` into CLI errors with their messages (exit 1, no
    traceback), and an OSError into one that names the path."""
    try:
        yield
    except kinds as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise os_problem(exc) from exc


def os_problem(exc: OSError) -> click.ClickException:
    """Say which file or folder could not be used, and why, without a traceback."""
    where = f" ({exc.filename})" if exc.filename else ""
    return click.ClickException(f"{exc.strerror or exc}{where}. Check the path and permissions.")
