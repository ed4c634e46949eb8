"""`empathos emotions`: classify texts with the emotion plug-in alone (batch use, evaluation)."""

from __future__ import annotations

import json
import sys
from typing import TextIO

import click

from tui.commands.lines import line_batches

BATCH = 64


@click.command()
@click.argument("file", type=click.File("r", encoding="utf-8"), required=False)
@click.option("--top", type=click.IntRange(1, 28), default=3, show_default=True)
def emotions(file: TextIO | None, top: int) -> None:
    """Classify one text per line of FILE (default: stdin); print one JSON object per line."""
    from agent.emotion import default_classifier

    classifier = default_classifier()
    for batch in line_batches(file or sys.stdin, BATCH):
        _emit(classifier.classify_batch(batch, top_k=top))


def _emit(readings: list) -> None:  # type: ignore[type-arg]
    for reading in readings:
        record = {
            "label": reading.label,
            "probability": round(reading.probability, 4),
            "top": [
                {"label": s.label, "probability": round(s.probability, 4)} for s in reading.top
            ],
            "valence": round(reading.valence, 4),
            "intensity": round(reading.intensity, 4),
        }
        click.echo(json.dumps(record))
