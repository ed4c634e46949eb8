"""Read a text file (or stdin) one line per item, in batches, with a clear error for bad UTF-8."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TextIO

import click


def line_batches(file: TextIO, size: int) -> Iterator[list[str]]:
    """Yield the lines of `file` without their newline, `size` at a time."""
    batch: list[str] = []
    lines = iter(file)
    while True:
        try:
            line = next(lines)
        except StopIteration:
            break
        except UnicodeDecodeError as exc:
            where = f"after {exc.start} bytes of the line" if exc.start else "in the input"
            raise click.ClickException(f"The input is not UTF-8 text ({where}).") from exc
        batch.append(line.rstrip("\n"))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
