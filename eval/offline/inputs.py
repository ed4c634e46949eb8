"""What each system and the judge are given for an item, and the keys its results are kept
under.

A system is given an item's inputs only: the person, their history, the earlier lines of the
conversation and the message (`input_digest` leaves gold, the hidden persona, the id and the
source out, so correcting gold re-scores without running again). The judge is given the
conversation's last lines, the reply and the persona's notes (`judge_context`,
`persona_notes`). Lines without times get them here (`Timeline`): a day apart per session, a
minute apart per line.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from eval.errors import EvalError
from eval.offline.items import TASKS, AnyItem, Line, MemoryItem, ReplyItem

if TYPE_CHECKING:
    from agent.context import Context

START = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)  # the first history line when none is dated
SESSION_GAP = timedelta(days=1)
LINE_GAP = timedelta(minutes=1)
HIDDEN = {"id", "source", "gold", "persona", "answer", "evidence", "labels", "ratings", "reference"}


class EvaluationError(EvalError):
    """An evaluation that cannot start (a report dir in use, an unknown system, bad options)."""


def digest(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def input_digest(item: AnyItem) -> str:
    """What the system under test is given: gold, the hidden persona, the id and the source
    are left out, so correcting gold re-scores an item without running it again."""
    return digest(item.model_dump(mode="json", exclude=HIDDEN))


def past_digest(item: AnyItem) -> str:
    """The person and their history: items with one past share its ingestion."""
    return digest(
        getattr(item, "user", ""), [ln.model_dump(mode="json") for ln in history_of(item)]
    )


def history_of(item: AnyItem) -> list[Line]:
    return list(getattr(item, "history", []))


def context_of(item: AnyItem) -> list[Line]:
    return [] if isinstance(item, MemoryItem) else list(getattr(item, "context", []))


def user_of(item: AnyItem) -> str:
    """The store's user id for an item's past: one per (person, history), readable, within the
    store's name rules."""
    name = getattr(item, "user", "") or item.task
    safe = "".join(c if c.isalnum() or c in "_.-" else "-" for c in name)[:40].strip("-_.")
    return f"{safe or 'u'}-{past_digest(item)[:12]}"


@dataclass
class Timeline:
    """History and context lines with times (given or filled in) and session labels."""

    lines: list[tuple[Line, datetime, str]] = field(default_factory=list)

    @classmethod
    def of(cls, history: Sequence[Line], context: Sequence[Line]) -> Timeline:
        timeline = cls()
        at, label = START, None
        for n, line in enumerate([*history, *context]):
            current = "current" if n >= len(history) else (line.session or "past")
            if line.time is not None:
                at = line.time
            elif n and current != label:
                at = at + SESSION_GAP
            elif n:
                at = at + LINE_GAP
            label = current
            timeline.lines.append((line, at, current))
        return timeline

    @property
    def end(self) -> datetime:
        return self.lines[-1][1] if self.lines else START


def limited(items: list[AnyItem], limit: int | None, seed: int) -> list[AnyItem]:
    """At most `limit` items of each task, a reproducible random sample (so a small run still
    covers every task and does not take only the first conversations of a file), in file
    order."""
    if limit is None:
        return items
    if limit < 1:
        raise EvaluationError("--limit must be at least 1.")
    kept: set[int] = set()
    for task in TASKS:
        positions = [n for n, item in enumerate(items) if item.task == task]
        chosen = (
            positions if len(positions) <= limit else random.Random(seed).sample(positions, limit)
        )
        kept.update(chosen)
    return [item for n, item in enumerate(items) if n in kept]


def trait_values(context: Context, user: str) -> dict[str, float]:
    return {name: t.value for name, t in context.traits.values(user).items()}


def line_memories(context: Context, user: str, history: Sequence[Line]) -> list[list[str]]:
    """For each history line, the ids of the memories extracted from the turn that holds it
    (a person's consecutive lines are one turn's message; assistant lines hold none)."""
    turns = context.store.turns(user)
    found = []
    for line in history:
        text = " ".join(line.text.split())
        holders = [
            t for t in turns if line.role == "user" and text in " ".join(t.user_text.split())
        ]
        found.append([m.id for t in holders for m in context.memories.from_turn(user, t.id)])
    return found


def judge_context(item: ReplyItem) -> str:
    """The conversation the judge sees: the last lines of this conversation and the message."""
    lines = [f"{'Person' if ln.role == 'user' else 'Companion'}: {ln.text}" for ln in item.context]
    return "\n".join([*lines[-4:], f"Person: {item.message}"])


def persona_notes(item: ReplyItem) -> str | None:
    """What the judge is told about the person (the hidden persona, never shown to systems)."""
    persona = item.persona
    if persona is None:
        return None
    parts = [persona.notes] if persona.notes else []
    if persona.traits:
        parts.append(
            "Traits (0..1): " + ", ".join(f"{k} {v:.2f}" for k, v in persona.traits.items())
        )
    if persona.preferred:
        parts.append("Likes replies that use: " + ", ".join(persona.preferred))
    if persona.disliked:
        parts.append("Dislikes replies that use: " + ", ".join(persona.disliked))
    return "\n".join(parts) or None
