"""`empathos screen`: the crisis screen alone, one JSON verdict per input line (for audits)."""

from __future__ import annotations

import json
import sys
from typing import TextIO

import click

from tui.commands.lines import line_batches

BATCH = 64


@click.command()
@click.argument("file", type=click.File("r", encoding="utf-8"), required=False)
@click.option("--text/--no-text", "with_text", default=False, help="Echo each message too.")
def screen(file: TextIO | None, with_text: bool) -> None:
    """Screen one message per line of FILE (default: stdin) for a crisis; no LLM is used.

    Prints one JSON object per line: band (clear, uncertain, crisis), category, risk and the
    signals behind the verdict. An empty line gets band "clear".
    """
    from agent.safety import SafetyScreen
    from memory.embeddings import default_embedder

    embedder = default_embedder()
    safety = SafetyScreen.load(embedder)
    for batch in line_batches(file or sys.stdin, BATCH):
        vectors = embedder.embed([text or " " for text in batch])
        for text, vector in zip(batch, vectors, strict=True):
            verdict = safety.screen(text, vector)
            record = {
                "band": verdict.band,
                "category": verdict.category,
                "risk": round(verdict.risk, 4),
                "signals": verdict.signals,
            }
            click.echo(json.dumps({"text": text, **record} if with_text else record))
