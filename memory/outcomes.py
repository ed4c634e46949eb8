"""Learn which lenses and strategies help this person: outcome scores and Thompson sampling.

Exceptions: `OutcomeError` (base) > `NothingToRateError` (no finished reply with a plan to rate).

When the user answers, the previous reply is scored in [0, 1] from what happened next:
- emotion shift: clip(0.5 + (valence now - valence before)), from the emotion plug-in's
  readings stored in both turns' traces;
- engagement: clip(0.5 * words now / typical words of this user's earlier messages);
- automatic reward = 0.6 * shift + 0.4 * engagement.
Explicit feedback (up = 1, down = 0) counts 70 % against the automatic 30 %, or alone if the reply
was never answered. Each rated reply adds (2 * reward, 2 * (1 - reward)) to a per-user Beta(1, 1)
for its lens and its strategy (an outcome counts as two pseudo-observations: with one, a strategy
that kept helping still lost too often to sampling noise in a scripted 16-turn run).
`evidence()` draws theta ~ Beta for every arm the user has outcomes for and returns
bonus = max_bonus * (2 * theta - 1): a strategy that keeps helping this person rises, one that
keeps failing sinks, and little data means a wide draw (exploration). Arms without data get no
bonus, so the trait-based policy is the prior. Rows are keyed by the rated turn, so scoring the
same turn twice counts once.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from memory.clock import SYSTEM_CLOCK, Clock
from memory.database import transaction
from memory.errors import MemoryLayerError
from memory.store import ConversationStore, Turn, now

SHIFT_WEIGHT, ENGAGEMENT_WEIGHT, FEEDBACK_SHARE, SHIFT_GAIN = 0.6, 0.4, 0.7, 1.0


class OutcomeError(MemoryLayerError):
    """Base class for outcome errors."""


class NothingToRateError(OutcomeError, LookupError):
    """No finished reply with a plan to rate."""


@dataclass(frozen=True)
class Beta:
    alpha: float
    beta: float
    n: int

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


@dataclass(frozen=True)
class Outcome:
    turn_id: str
    lens: str
    strategy: str
    reward: float
    emotion_shift: float | None
    engagement: float | None
    feedback: int | None


def clip(value: float) -> float:
    return max(0.0, min(1.0, value))


def plan_of(turn: Turn) -> tuple[str, str] | None:
    """Return (lens, strategy) of a finished turn's reply, or None (crisis or failed turns)."""
    plan = turn.trace.plan if turn.status == "done" else None
    return (plan.lens, plan.strategy) if plan else None


def valence_of(turn: Turn) -> float | None:
    return turn.trace.emotion.valence if turn.trace.emotion else None


def combine(auto: float | None, feedback: int | None) -> float:
    """Blend the automatic reward with explicit feedback (see the module docstring)."""
    if feedback is None:
        return auto if auto is not None else 0.5
    explicit = 1.0 if feedback > 0 else 0.0
    return explicit if auto is None else FEEDBACK_SHARE * explicit + (1 - FEEDBACK_SHARE) * auto


class Outcomes:
    """Per-user outcome statistics over lenses and strategies."""

    def __init__(
        self, db: Database, max_bonus: float = 1.0, weight: float = 2.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:  # fmt: skip
        self.db, self.max_bonus, self.weight, self.clock = db, max_bonus, weight, clock

    def score_previous(
        self, store: ConversationStore, user_id: str, turn_id: str
    ) -> Outcome | None:
        """Score the reply before `turn_id` (same session) from how the user answered it."""
        turn = store.get_turn(turn_id)
        if turn is None or turn.user_id != user_id or turn.idx == 0:
            return None
        earlier = [t for t in store.turns(user_id, turn.session_id) if t.idx < turn.idx]
        previous = earlier[-1] if earlier else None
        if previous is None or (plan := plan_of(previous)) is None:
            return None
        shift = self._shift(previous, turn)
        engagement = self._engagement(turn, earlier)
        auto = (
            SHIFT_WEIGHT * shift + ENGAGEMENT_WEIGHT * engagement
            if shift is not None
            else (engagement)
        )
        return self._save(user_id, previous.id, plan, auto, shift, engagement, turn.id)

    def _shift(self, previous: Turn, turn: Turn) -> float | None:
        before, after = valence_of(previous), valence_of(turn)
        if before is None or after is None:
            return None
        return clip(0.5 + SHIFT_GAIN * (after - before))

    def _engagement(self, turn: Turn, earlier: list[Turn]) -> float:
        typical = statistics.median([len(t.user_text.split()) for t in earlier] or [10])
        return clip(0.5 * len(turn.user_text.split()) / max(typical, 3))

    def _save(
        self, user_id: str, turn_id: str, plan: tuple[str, str], auto: float | None,
        shift: float | None, engagement: float | None, next_turn: str | None,
    ) -> Outcome:  # fmt: skip
        # Read the rating and write the outcome in one transaction: a rating given while the
        # worker scores the same reply is then either seen here or rescored by `feedback`.
        with transaction(self.db):
            return self._save_now(user_id, turn_id, plan, auto, shift, engagement, next_turn)

    def _save_now(
        self, user_id: str, turn_id: str, plan: tuple[str, str], auto: float | None,
        shift: float | None, engagement: float | None, next_turn: str | None,
    ) -> Outcome:  # fmt: skip
        feedback = self._feedback(turn_id)
        reward = combine(auto, feedback)
        row: dict[str, Any] = {
            "turn_id": turn_id, "user_id": user_id, "lens": plan[0], "strategy": plan[1],
            "emotion_shift": shift, "engagement": engagement, "auto_reward": auto,
            "feedback": feedback, "reward": reward, "updated_at": now(self.clock),
        }  # fmt: skip
        if next_turn is not None:
            row["next_turn_id"] = next_turn
        self.db.table("outcomes").upsert(row, pk="turn_id")
        return Outcome(turn_id, plan[0], plan[1], reward, shift, engagement, feedback)

    def _feedback(self, turn_id: str) -> int | None:
        rows = list(self.db.table("feedback").rows_where("turn_id = ?", [turn_id]))
        return int(rows[0]["value"]) if rows else None

    def feedback(
        self, store: ConversationStore, user_id: str, up: bool, turn_id: str | None = None,
        note: str = "",
    ) -> Outcome:  # fmt: skip
        """Record the user's thumbs up/down on a reply (default: their latest) and rescore it."""
        turn = self._rateable(store, user_id, turn_id)
        plan = plan_of(turn)
        assert plan is not None
        with transaction(self.db):  # the rating and the rescored outcome land together
            self.db.table("feedback").upsert(
                {"turn_id": turn.id, "user_id": user_id, "value": 1 if up else -1, "note": note,
                 "created_at": now(self.clock)},
                pk="turn_id",
            )  # fmt: skip
            old = list(self.db.table("outcomes").rows_where("turn_id = ?", [turn.id]))
            auto = old[0]["auto_reward"] if old else None
            shift = old[0]["emotion_shift"] if old else None
            engagement = old[0]["engagement"] if old else None
            return self._save_now(user_id, turn.id, plan, auto, shift, engagement, None)

    def _rateable(self, store: ConversationStore, user_id: str, turn_id: str | None) -> Turn:
        if turn_id is not None:
            turn = store.get_turn(turn_id)
            if turn is None or turn.user_id != user_id or plan_of(turn) is None:
                raise NothingToRateError(
                    f"No finished reply {turn_id!r} of user {user_id!r} to rate: check the id "
                    "(`empathos memory list` shows turns' sources) or omit --turn."
                )
            return turn
        done = [t for t in store.turns(user_id) if plan_of(t) is not None]
        if not done:
            raise NothingToRateError(f"User {user_id!r} has no reply to rate yet: chat first.")
        return done[-1]

    def stats(self, user_id: str) -> dict[str, Beta]:
        """Return Beta(1 + sum reward, 1 + sum (1 - reward)) per lens and per strategy."""
        sums: dict[str, list[float]] = {}
        for row in self.db.table("outcomes").rows_where("user_id = ?", [user_id]):
            for arm in (row["lens"], row["strategy"]):
                sums.setdefault(arm, []).append(float(row["reward"]))
        w = self.weight
        return {arm: Beta(1 + w * sum(r), 1 + w * sum(1 - x for x in r), len(r))
                for arm, r in sums.items()}  # fmt: skip

    def evidence(
        self, user_id: str, rng: random.Random | None = None, sample: bool = True
    ) -> dict[str, float]:
        """Return name -> bonus for `select_plan(evidence=...)`: a Thompson draw per arm.

        `sample=False` uses each Beta's mean instead (for explanations and reports).
        """
        rng = rng or random.Random()
        bonus = {}
        for arm, beta in sorted(self.stats(user_id).items()):
            theta = rng.betavariate(beta.alpha, beta.beta) if sample else beta.mean
            bonus[arm] = round(self.max_bonus * (2 * theta - 1), 4)
        return bonus

    def history(self, user_id: str) -> list[dict[str, Any]]:
        return list(
            self.db.table("outcomes").rows_where("user_id = ?", [user_id], order_by="updated_at")
        )


def summary(stats: Mapping[str, Beta]) -> list[tuple[str, int, float]]:
    """Return (arm, n, mean reward) sorted by mean, best first."""
    return sorted(((a, b.n, round(b.mean, 3)) for a, b in stats.items()), key=lambda x: -x[2])
