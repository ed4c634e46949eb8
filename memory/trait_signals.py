"""The signals one turn gives the user model besides the prototypes: markers and stated
preferences, the stored analysis and emotion, and the trait head's reading of the clauses; and
the prototype statements (`trait_prototypes.toml`) the model compares sentences with.

`memory.traits` turns these into evidence rows; see its module doc for what each kind means.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from memory.sentences import clauses
from memory.stated import STATED_WEIGHT, stated_support, states_support
from memory.trace import TurnTrace
from memory.trait_head import head_readings

PROTOTYPES_FILE = Path(__file__).with_name("trait_prototypes.toml")


@cache
def prototype_statements() -> dict[str, tuple[list[str], list[str]]]:
    """The high and low prototype statements of each trait (data in trait_prototypes.toml)."""
    with PROTOTYPES_FILE.open("rb") as handle:
        data = tomllib.load(handle)
    return {name: (list(entry["high"]), list(entry["low"])) for name, entry in data.items()}


# The analysis calls most messages "vent" on the small models (every message of 20 simulated
# people, advice-seekers included, in the issue-12 run): a need is weak evidence of a trait.
NEED_SIGNALS: dict[str, list[tuple[str, float, float]]] = {
    "get_advice": [("wants_advice", 0.9, 0.4), ("wants_to_be_heard", 0.3, 0.2)],
    "information": [("wants_advice", 0.75, 0.3)],
    "vent": [("wants_to_be_heard", 0.75, 0.25), ("wants_advice", 0.35, 0.15)],
    "be_validated": [("wants_to_be_heard", 0.7, 0.25), ("wants_advice", 0.4, 0.1)],
    "celebrate": [("extraversion", 0.7, 0.3)],
}
MARKERS: list[tuple[re.Pattern[str], str, float, float]] = [
    (re.compile(r"\b(haha+|lol|lmao|rofl|jk)\b|😂|🤣|:D", re.I), "humour", 0.85, 0.6),
    (re.compile(r"just tell me|be (honest|blunt|straight)|no sugar|get to the point", re.I),
     "directness", 0.9, 0.7),
    (re.compile(r"be gentle|go easy|softly", re.I), "directness", 0.2, 0.6),
    (re.compile(r"what about you|have you ever|do you ever", re.I),
     "self_disclosure_comfort", 0.8, 0.5),
]  # fmt: skip


@dataclass(frozen=True)
class Signal:
    name: str
    signal: float
    weight: float
    why: str
    kind: str = "prototype"
    basis: str | None = None  # the memory a rating rests on (forgetting it deletes the row)


def clip(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return max(low, min(high, value))


def marker_signals(text: str) -> list[Signal]:
    """Return signals from surface markers and the message's length."""
    found = [Signal(name, s, w, f"said {m.group(0)!r}", "marker")
             for pattern, name, s, w in MARKERS if (m := pattern.search(text))]  # fmt: skip
    found += [Signal(name, value, STATED_WEIGHT, f"said {words!r}", "marker")
              for name, (value, words) in stated_support(text).items()]  # fmt: skip
    count = len(text.split())
    found.append(Signal("reply_length", clip(count / 80), 0.25, f"wrote {count} words", "length"))
    return found


def head_clauses(text: str) -> list[str]:
    """The clauses of `text` the trait head reads: not those saying how the person wants to be
    supported."""
    return [part for part in clauses(text) if not states_support(part)]


def head_signals(vectors: NDArray[np.float32]) -> list[Signal]:
    """The trait head's reading of one message's clause vectors (`memory.trait_head`)."""
    return [
        Signal(r.trait, r.signal, r.weight,
               f"the trait head read {r.trait} {'high' if r.signal > 0.5 else 'low'}", "head")
        for r in head_readings(vectors)
    ]  # fmt: skip


def trace_signals(trace: TurnTrace) -> list[Signal]:
    """Return signals from the turn's stored analysis (need) and emotion."""
    need = trace.analysis.need if trace.analysis else ""
    found = [Signal(n, s, w, f"needed '{need}'", "need") for n, s, w in NEED_SIGNALS.get(need, [])]
    if (emotion := trace.emotion) is not None:
        signal = clip(0.5 - 0.45 * emotion.valence)
        found.append(
            Signal(
                "neuroticism", signal, 0.3 * emotion.intensity, f"felt {emotion.label}", "emotion"
            )
        )
    return found
