"""The `empathos` command line: a root group; each command group lives in `tui/commands/`.

Core packages are imported inside the commands, so `empathos --help` stays fast.
"""

from __future__ import annotations

import click

from memory.heap import scrub_freed_memory
from tui.commands.chat import chat, say
from tui.commands.doctor import doctor
from tui.commands.emotions import emotions
from tui.commands.eval import eval_group
from tui.commands.feedback import feedback
from tui.commands.memory import memory
from tui.commands.models import models
from tui.commands.screen import screen
from tui.commands.simulate import simulate
from tui.commands.traits import traits


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="empathos")
def cli() -> None:
    """empathos: a long-term, personalised-empathy chat companion with memory."""


cli.add_command(chat)
cli.add_command(say)
cli.add_command(emotions)
cli.add_command(screen)
cli.add_command(models)
cli.add_command(memory)
cli.add_command(traits)
cli.add_command(feedback)
cli.add_command(doctor)
cli.add_command(simulate)
cli.add_command(eval_group)


def main() -> None:
    """Run the command line."""
    scrub_freed_memory()  # first, so no freed user text can reach Chroma's files (memory/heap.py)
    cli(prog_name="empathos")
