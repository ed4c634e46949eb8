"""Progress bars for the commands: one rich bar per key, driven by a plain callback.

`progress_bars(unit)` yields `update(key, completed, total, description=None)`: the first call
for a key adds its bar, later ones move it (and may rename it). `unit` says what is counted:
"bytes" (downloads, hashing) or "items" (turns, people). Bars go to stderr, so a command's
output stays clean in a pipe.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, Protocol


class Update(Protocol):
    def __call__(
        self, key: str, completed: int, total: int | None, description: str | None = None
    ) -> None: ...


@contextmanager
def progress_bars(
    unit: Literal["bytes", "items"] = "items", *, transient: bool = True
) -> Iterator[Update]:
    """Yield an `Update` callback drawing one bar per key (see the module docstring)."""
    from rich import progress
    from rich.console import Console

    count = progress.DownloadColumn() if unit == "bytes" else progress.MofNCompleteColumn()
    timing = progress.TimeRemainingColumn() if unit == "bytes" else progress.TimeElapsedColumn()
    tasks: dict[str, Any] = {}
    columns = (progress.TextColumn("{task.description}"), progress.BarColumn(), count, timing)
    with progress.Progress(*columns, console=Console(stderr=True), transient=transient) as bar:

        def update(
            key: str, completed: int, total: int | None, description: str | None = None
        ) -> None:
            if key not in tasks:
                tasks[key] = bar.add_task(description or key, total=total or None)
            bar.update(tasks[key], completed=completed, total=total or None,
                       description=description or bar.tasks[tasks[key]].description)  # fmt: skip

        yield update
