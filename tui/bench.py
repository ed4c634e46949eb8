"""Time from starting `empathos chat` to an interactive first screen.

    python -m tui.bench [--runs 7]

Each run starts a fresh Python process that does what `empathos chat --user NAME` does (parse
settings, import the app, build it, run it) headless, and stops the clock when the chat screen
is mounted with the input focused, i.e. when a key press would land. Models load in the
background afterwards and are not part of the number. A process that only imports Python and
exits is timed the same way as the baseline. Wall-clock on a shared machine: read the median
and the ratio, not one run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

from rich.console import Console
from rich.table import Table

CHILD = """
import sys, time
start = float(sys.argv[1])
import tui.cli  # what the `empathos` console script imports first
from agent.context import Context
from tui.app import create_app
from tui.options import settings_from
from tui.screens.chat import ChatScreen

context = Context(settings_from(data_dir=sys.argv[2]))

def never_built():
    raise RuntimeError("the benchmark never builds the agent")

app = create_app(context, never_built, "bench")
app.begin_warm_up = lambda: None  # measure the first screen only

async def ready(pilot):
    while not (isinstance(app.screen, ChatScreen) and app.screen.input.has_focus):
        await pilot.pause(0.005)
    print(time.time() - start)
    app.exit()

app.run(headless=True, auto_pilot=ready)
"""


def timed_child(code: str, *args: str) -> float:
    """Start a Python process running `code` and return the seconds it reports."""
    start = time.time()
    done = subprocess.run(
        [sys.executable, "-c", code, str(start), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    console = Console()
    app_times, bare_times = [], []
    with tempfile.TemporaryDirectory() as data_dir:
        for run in range(args.runs):
            console.log(f"run {run + 1}/{args.runs}")
            app_times.append(timed_child(CHILD, data_dir))
            bare = "import sys, time; print(time.time() - float(sys.argv[1]))"
            bare_times.append(timed_child(bare))
    table = Table(title=f"`empathos chat` to an interactive first screen ({args.runs} runs)")
    for column in ("measure", "median (s)", "min (s)", "max (s)"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    for label, values in (("first screen", app_times), ("bare Python start", bare_times)):
        row = (statistics.median(values), min(values), max(values))
        table.add_row(label, *(f"{v:.2f}" for v in row))
    console.print(table)


if __name__ == "__main__":
    main()
