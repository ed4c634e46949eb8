"""The `empathos` command line: a root group; each command group lives in `tui/commands/`.

Core packages are imported inside the commands, so `empathos --help` stays fast.
"""

from __future__ import annotations

import click

from tui.commands.chat import chat, say
from tui.commands.emotions import emotions
from tui.commands.models import models


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="empathos")
def cli() -> None:
    """empathos: a long-term, personalised-empathy chat companion with memory."""


cli.add_command(chat)
cli.add_command(say)
cli.add_command(emotions)
cli.add_command(models)


def main() -> None:
    """Run the command line."""
    cli(prog_name="empathos")
