"""The user model: Big Five and support preferences in [0, 1], with confidence and evidence.

Exceptions: `TraitError` (base) > `UnknownTraitError` (not a trait name), `TraitValueError`
(a value outside [0, 1]).

Each of the user's turns (and each memory extracted from them) leaves evidence rows: a signal in
[0, 1] with a weight, keyed by (user, source id, trait), so observing the same turn twice changes
nothing. Signals come from
- similarity of each sentence to high and low prototype statements of each trait
  (all-MiniLM-L6-v2; the closest sentence per trait counts),
- the trait head (`memory.trait_head`, kind "head"): a classifier over the vectors of the
  message's clauses that reads which pole of O, C, E and A each shows, or neither,
- the turn's stored analysis ("need": get_advice -> wants_advice, vent -> wants_to_be_heard, ...),
- the turn's emotion (strong negative feeling, often, is weak evidence of neuroticism),
- surface markers (humour: "haha"; directness: "just tell me"; reply length: message length),
- what they say about how they want to be supported (`memory.stated`: "what should I do",
  "I just need to vent", "some easy company, not to be questioned"), weighted as the strongest
  evidence of a support preference,
- the person's most telling passages per trait, recalled from their history every few turns
  (`memory.trait_rating`, off the reply path): which side they lean to ("recall", for the
  support preferences only), and, when configured (off by default), the model's rating of the
  Big Five from them ("rating"),
- with a language model configured, its answer, per message, to whether what the person did or
  felt shows openness, conscientiousness or agreeableness, high, low or neither ("asked"),
  and, when configured (off by default), how much likelier the embedded model finds the
  message written by someone high than low in openness and conscientiousness ("likelihood";
  both `memory.trait_rating`).
Each evidence row keeps its `kind` (prototype, need, emotion, marker, length, recall, rating,
asked, likelihood), so what each kind adds can be measured (`estimates_by_kind`), and its
`basis` (the memory a rating rests on), so forgetting that memory deletes the rating too.
The signals a turn gives are computed in `memory.trait_signals`; this module keeps the rows and
the estimates. A trait's value is the weighted mean of its signals shrunk to 0.5 by a prior of
weight 2; confidence is (1 - exp(-total weight / 3)) times the signals' agreement (1 - their
weighted standard deviation), capped at 0.9: many signals that agree give high confidence,
signals that pull both ways give low. Values are refreshed per session and a snapshot per
(trait, session) is kept as history. A value the user sets (`empathos traits set`)
has confidence 1 and source "user", and inference never overwrites it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray
from sqlite_utils import Database

from memory.clock import SYSTEM_CLOCK, Clock
from memory.database import transaction
from memory.errors import MemoryLayerError
from memory.sentences import sentences
from memory.stated import states_support
from memory.store import Turn, now
from memory.trace import TraitValue
from memory.trait_signals import (
    Signal,
    clip,
    head_clauses,
    head_signals,
    marker_signals,
    prototype_statements,
    trace_signals,
)

if TYPE_CHECKING:
    from memory.memories import Memory

BIG_FIVE = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")
PREFERENCES = (
    "wants_advice", "wants_to_be_heard", "directness", "humour", "self_disclosure_comfort",
    "reply_length",
)  # fmt: skip
TRAITS = BIG_FIVE + PREFERENCES
PRIOR_WEIGHT, CONFIDENCE_SCALE, MAX_INFERRED_CONFIDENCE = 2.0, 3.0, 0.9
PROTOTYPE_FLOOR, PROTOTYPE_SPAN, PROTOTYPE_GAIN = 0.4, 0.3, 2.5
EVIDENCE_SHOWN = 5
FORGOTTEN_SESSION = "forgotten"  # the snapshot's session after a memory was forgotten
KINDS = (
    "prototype", "head", "need", "emotion", "marker", "length", "recall", "rating", "asked",
    "likelihood",
)  # fmt: skip
MODEL_KINDS = ("rating", "asked", "likelihood")  # the kinds a language model gives
# the subsets of estimates_by_kind
SUBSETS = ("all", "all-but-rating", "no-rating", "no-marker", "no-head", "per-turn")


def reads_for(name: str, text: str) -> bool:
    """Whether `text` is read as evidence of trait `name`: not for the Big Five when it says
    how the person wants to be supported (`states_support`)."""
    return name not in BIG_FIVE or not states_support(text)


class TraitError(MemoryLayerError):
    """Base class for trait errors."""


class UnknownTraitError(TraitError, KeyError):
    """Not a trait this model knows."""


class TraitValueError(TraitError, ValueError):
    """A trait value outside [0, 1]."""


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]: ...


@dataclass(frozen=True)
class Estimate:
    value: float
    confidence: float
    evidence: list[str]


def check_trait(name: str) -> str:
    if name not in TRAITS:
        raise UnknownTraitError(f"Unknown trait {name!r}: use one of {', '.join(TRAITS)}.")
    return name


def source_key(source: str, kind: str) -> str:
    """The evidence row's source: the turn or memory id, with the kind after a '#' for the
    kinds a turn gives besides its text (need, emotion, marker, length), one row each."""
    return source if kind in ("prototype", "recall", "rating") else f"{source}#{kind}"


def estimate(rows: Iterable[dict[str, Any]]) -> Estimate:
    """Shrink the weighted mean of the signals to 0.5 and name the strongest evidence."""
    rows = list(rows)
    total = sum(row["weight"] for row in rows)
    mean = (PRIOR_WEIGHT * 0.5 + sum(r["weight"] * r["signal"] for r in rows)) / (
        PRIOR_WEIGHT + total
    )
    raw = sum(r["weight"] * r["signal"] for r in rows) / total if total > 0 else 0.5
    spread = (
        math.sqrt(sum(r["weight"] * (r["signal"] - raw) ** 2 for r in rows) / total)
        if total > 0 else 0.0
    )  # fmt: skip
    amount = 1.0 - math.exp(-total / CONFIDENCE_SCALE)
    confidence = min(MAX_INFERRED_CONFIDENCE, amount * max(0.0, 1.0 - spread))
    strongest = sorted(rows, key=lambda r: -r["weight"] * abs(r["signal"] - 0.5))
    shown = (r["source_id"].split("#")[0] for r in strongest
             if not r["source_id"].startswith(("rating:", "recall:")))  # fmt: skip
    evidence = list(dict.fromkeys(shown))[:EVIDENCE_SHOWN]
    return Estimate(round(mean, 4), round(confidence, 4), evidence)


class TraitModel:
    """Infer, store and let the user correct one person's traits."""

    def __init__(self, db: Database, embedder: Embedder, clock: Clock = SYSTEM_CLOCK) -> None:
        self.db, self.embedder, self.clock = db, embedder, clock
        self._prototypes: dict[str, tuple[NDArray[np.float32], NDArray[np.float32]]] = {}

    def prototypes(self) -> dict[str, tuple[NDArray[np.float32], NDArray[np.float32]]]:
        """Return the embedded high/low prototype statements (embedded once)."""
        if not self._prototypes:
            for name, (high, low) in prototype_statements().items():
                self._prototypes[name] = (self.embedder.embed(high), self.embedder.embed(low))
        return self._prototypes

    def text_signals(self, vector: NDArray[np.float32], personality: bool = True) -> list[Signal]:
        """Return a signal per trait whose prototypes the text resembles closely enough (not
        the Big Five's, without `personality`)."""
        found = []
        for name, (high, low) in self.prototypes().items():
            if not personality and name in BIG_FIVE:
                continue
            s_high, s_low = float(np.max(high @ vector)), float(np.max(low @ vector))
            weight = clip((max(s_high, s_low) - PROTOTYPE_FLOOR) / PROTOTYPE_SPAN)
            if weight > 0:
                signal = clip(0.5 + PROTOTYPE_GAIN * (s_high - s_low))
                found.append(Signal(name, signal, weight, f"resembles {name} statements"))
        return found

    def observe_turn(self, user_id: str, turn: Turn) -> int:
        """Record the evidence one user turn gives; return how many signals were kept. Each
        sentence is read on its own (the closest one per trait is kept), and each clause by the
        trait head; one saying how they want to be supported is not read for the Big Five.
        Sentences and clauses are embedded in one call (a sentence without a break is both)."""
        parts, kept = sentences(turn.user_text), head_clauses(turn.user_text)
        texts = list(dict.fromkeys([*parts, *kept]))
        vector_of = dict(zip(texts, self.embedder.embed(texts), strict=True))
        signals = [
            s for part in parts
            for s in self.text_signals(vector_of[part], not states_support(part))
        ]  # fmt: skip
        if kept:
            signals += head_signals(np.stack([vector_of[c] for c in kept]))
        signals += marker_signals(turn.user_text)
        signals += trace_signals(turn.trace)
        return self._record(user_id, turn.id, turn.session_id, signals)

    def observe_answers(self, user_id: str, turn: Turn, signals: Sequence[Signal]) -> int:
        """Record what the model answered about one of the user's turns (kinds "asked" and
        "likelihood", one row per turn and trait: asking again replaces it)."""
        return self._record(user_id, turn.id, turn.session_id, list(signals))

    def observe_memories(self, user_id: str, memories: Sequence[Memory], session_id: str) -> int:
        """Record the evidence in newly remembered facts (keyed by memory id)."""
        if not memories:
            return 0
        vectors = self.embedder.embed([m.text for m in memories])
        return sum(self._record(user_id, m.id, session_id, self.text_signals(v))
                   for m, v in zip(memories, vectors, strict=True))  # fmt: skip

    def _record(self, user_id: str, source: str, session: str, signals: list[Signal]) -> int:
        merged: dict[tuple[str, str], Signal] = {}
        for item in signals:  # one row per trait, kind and source: keep the weightiest signal
            key = (item.name, item.kind)
            if key not in merged or item.weight > merged[key].weight:
                merged[key] = item
        at = now(self.clock)
        rows = [{"user_id": user_id, "source_id": source_key(source, s.kind), "name": s.name,
                 "signal": s.signal,
                 "weight": s.weight, "why": s.why, "session_id": session, "created_at": at,
                 "kind": s.kind, "basis": s.basis}
                for s in merged.values() if s.weight > 0]  # fmt: skip
        self.db.table("trait_evidence").upsert_all(rows, pk=("user_id", "source_id", "name"))
        return len(rows)

    def observe_ratings(
        self,
        user_id: str,
        session_id: str,
        ratings: Sequence[Signal],
        source: str,
        drew_on: Sequence[str] = (),
    ) -> int:
        """Record a reading of the telling passages (kinds "recall" and "rating") under
        `source`, replacing its earlier rows: the same source read again is one signal. A
        reading that drew on a memory forgotten since (`drew_on`: the memory ids it read) is
        void and writes nothing: checked in the write's own transaction, so a forget either
        comes first (nothing written) or deletes the rows after."""
        with transaction(self.db):
            if drew_on:
                marks = ", ".join("?" * len(drew_on))
                found = self.db.execute(
                    f"select count(*) from memories where user_id = ? and id in ({marks})",
                    [user_id, *drew_on],
                ).fetchone()[0]
                if found < len(set(drew_on)):
                    return 0
            self.db.execute(
                "delete from trait_evidence where user_id = ? and source_id = ?", [user_id, source]
            )
            return self._record(user_id, source, session_id, list(ratings))

    def by_trait(
        self, user_id: str, kinds: Iterable[str] = KINDS
    ) -> dict[str, list[dict[str, Any]]]:
        """The evidence rows of each trait, only of `kinds`."""
        wanted = set(kinds)
        found: dict[str, list[dict[str, Any]]] = {}
        for row in self.db.table("trait_evidence").rows_where("user_id = ?", [user_id]):
            if (row.get("kind") or "prototype") in wanted:
                found.setdefault(row["name"], []).append(row)
        return found

    def estimates_by_kind(self, user_id: str) -> dict[str, dict[str, float]]:
        """Each trait's value from all evidence, without the model's rating of the telling
        passages ("all-but-rating"), without both of the language model's kinds (its ratings
        and answers: "no-rating"), without the markers, without the trait head, from the
        per-message signals
        only (the kinds the user model had before issue 12, with today's weights and markers,
        one row per kind), and from each kind alone: what each signal adds (ignores values the
        user set)."""
        subsets = {
            "all": KINDS,
            "all-but-rating": tuple(k for k in KINDS if k != "rating"),
            "no-rating": tuple(k for k in KINDS if k not in MODEL_KINDS),
            "no-marker": tuple(k for k in KINDS if k != "marker"),
            "no-head": tuple(k for k in KINDS if k != "head"),
            "per-turn": tuple(k for k in KINDS if k not in ("recall", *MODEL_KINDS)),
        }
        subsets |= {kind: (kind,) for kind in KINDS}
        return {
            label: {n: estimate(rows).value for n, rows in self.by_trait(user_id, kinds).items()}
            for label, kinds in subsets.items()
        }  # fmt: skip

    def refresh(self, user_id: str, session_id: str) -> dict[str, Estimate]:
        """Recompute inferred traits from all evidence; keep a snapshot for this session (or
        for `FORGOTTEN_SESSION`, after a memory was forgotten)."""
        by_trait = self.by_trait(user_id)
        user_set = {name for name, t in self.values(user_id).items() if t.source == "user"}
        estimates = {n: estimate(r) for n, r in by_trait.items() if n not in user_set}
        with transaction(self.db):
            for name, est in estimates.items():
                self._write(user_id, name, est.value, est.confidence, "inferred", est.evidence)
                self._snapshot(user_id, name, session_id, est.value, est.confidence, "inferred")
            self.db.execute(  # an inferred trait whose evidence is all gone (forgotten) goes too
                f"delete from traits where user_id = ? and source = 'inferred' and name not in "
                f"({', '.join('?' * len(estimates))})",
                [user_id, *estimates],
            )
        return estimates

    def _write(
        self, user_id: str, name: str, value: float, confidence: float, source: str,
        evidence: list[str],
    ) -> None:  # fmt: skip
        self.db.table("traits").upsert(
            {"user_id": user_id, "name": name, "value": value, "confidence": confidence,
             "source": source, "evidence": json.dumps(evidence), "updated_at": now(self.clock)},
            pk=("user_id", "name"),
        )  # fmt: skip

    def _snapshot(
        self, user_id: str, name: str, session: str, value: float, confidence: float, source: str
    ) -> None:
        self.db.table("trait_history").upsert(
            {"user_id": user_id, "name": name, "session_id": session, "value": value,
             "confidence": confidence, "source": source, "created_at": now(self.clock)},
            pk=("user_id", "name", "session_id"),
        )  # fmt: skip

    def values(self, user_id: str) -> dict[str, TraitValue]:
        """Return the user's current traits (inferred and user-set) for the planner."""
        rows = self.db.table("traits").rows_where("user_id = ?", [user_id], order_by="name")
        return {
            row["name"]: TraitValue(
                value=row["value"],
                confidence=row["confidence"],
                source=row["source"],
                evidence=json.loads(row["evidence"] or "[]"),
            )  # fmt: skip
            for row in rows
        }

    def set(self, user_id: str, name: str, value: float) -> TraitValue:
        """Set a trait as the user says it is: confidence 1, never overwritten by inference."""
        check_trait(name)
        if not 0.0 <= value <= 1.0:
            raise TraitValueError(f"Trait values are between 0 and 1, not {value}.")
        with transaction(self.db):
            self._write(user_id, name, value, 1.0, "user", [])
            self._snapshot(user_id, name, "user-set", value, 1.0, "user")
        return self.values(user_id)[name]

    def unset(self, user_id: str, name: str, session_id: str = "user-unset") -> None:
        """Hand a user-set trait back to inference."""
        check_trait(name)
        self.db.execute("delete from traits where user_id = ? and name = ?", [user_id, name])
        self.refresh(user_id, session_id)

    def evidence(self, user_id: str, name: str) -> list[dict[str, Any]]:
        """Return the evidence rows behind a trait, strongest first."""
        rows = self.db.table("trait_evidence").rows_where(
            "user_id = ? and name = ?", [user_id, check_trait(name)]
        )
        return sorted(rows, key=lambda r: -r["weight"] * abs(r["signal"] - 0.5))

    def history(self, user_id: str, name: str) -> list[dict[str, Any]]:
        return list(self.db.table("trait_history").rows_where(
            "user_id = ? and name = ?", [user_id, check_trait(name)], order_by="created_at"
        ))  # fmt: skip
