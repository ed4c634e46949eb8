"""How well the user model tells people apart, from a simulation's journals (issue 12).

- Trait Spearman per trait: inferred vs hidden value, pooled over people, after each session
  (scipy); and the same from each kind of signal alone, and without the model's ratings
  (`by_signal` in each session end), so what each signal adds is a number.
- Support side: the share of people whose inferred `wants_to_be_heard` and `wants_advice` are on
  the same side of 0.5 as the hidden values.
- Calibration: after the last session, (person, trait) pairs binned by confidence, and how often
  the inferred value is on the right side of 0.5 in each bin.
- Preference fit replayed: every turn's plan keeps the part of each score that came from traits
  (`trait_scores`), so the strategy the policy would have chosen *without* traits, and *with the
  hidden traits* (confidence 1), is recomputed on the same turn — same message, analysis, memory
  and outcome draw. This isolates the traits' effect; it is not a separate run (a no-traits run
  would also see other replies and outcomes). The fit is also given over the turns whose
  message did *not* state how they want support (`preference_fit_unstated`; a stated one sets
  the need whatever the traits say), with the share of turns that stated one.
"""

from __future__ import annotations

import math
import warnings
from statistics import fmean
from typing import Any

Records = list[dict[str, Any]]

SUPPORT = ("wants_to_be_heard", "wants_advice")
TIE_DIGITS = 6  # equal to 6 places is a tie (traces before f484ae8 kept trait scores to 6)
CONFIDENCE_BINS = ((0.0, 0.3), (0.3, 0.6), (0.6, 1.01))


def spearman(inferred: list[float], truth: list[float]) -> float | None:
    """Spearman's rho (scipy), or None when it is undefined (under 3 pairs, or no spread)."""
    from scipy.stats import spearmanr

    if len(inferred) < 3 or len(set(inferred)) < 2 or len(set(truth)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = float(spearmanr(inferred, truth).statistic)
    return None if math.isnan(rho) else round(rho, 3)


def strategy_names() -> set[str]:
    from strategies.catalogue import load_catalogue

    return {s.name for s in load_catalogue().strategy}


def trait_bonus(truth: dict[str, float]) -> dict[str, float]:
    """Each strategy's score from the hidden traits at confidence 1 (the policy's own weights)."""
    from strategies.catalogue import load_policy

    bonus: dict[str, float] = {}
    for name, value in truth.items():
        for strategy, weight in load_policy().traits.get(name, {}).items():
            bonus[strategy] = bonus.get(strategy, 0.0) + weight * (value - 0.5) * 2.0
    return bonus


def replayed(record: dict[str, Any], truth: dict[str, float]) -> dict[str, str | None]:
    """The strategy this turn's policy picks without traits and with the hidden ones (None for
    a turn without a plan or scores, e.g. an answer from memory)."""
    plan = (record.get("trace") or {}).get("plan") or {}
    scores, from_traits = plan.get("scores") or {}, plan.get("trait_scores")
    names = strategy_names() & set(scores)
    if not names or not from_traits:  # no plan scores, or a trace from before trait_scores
        return {"no_traits": None, "true_traits": None}
    base = {n: round(scores[n] - from_traits.get(n, 0.0), TIE_DIGITS) for n in names}
    bonus = trait_bonus(truth)
    oracle = {n: round(base[n] + bonus.get(n, 0.0), TIE_DIGITS) for n in names}
    return {"no_traits": best(base), "true_traits": best(oracle)}


def best(table: dict[str, float]) -> str:
    """The policy's rule: the highest score, ties to the later name."""
    return max(table, key=lambda n: (table[n], n))


def pooled(reports: list[dict[str, Any]], index: int, trait: str, source: str = "") -> float | None:
    """Spearman over people of one trait after session `index` (from `by_signal[source]`)."""
    pairs = []
    for report in reports:
        if index >= len(report["sessions"]):
            continue
        session = report["sessions"][index]
        value = (session.get("by_signal", {}).get(source, {}).get(trait) if source
                 else session["traits"].get(trait, {}).get("inferred"))  # fmt: skip
        if value is not None and trait in report["truth"]:
            pairs.append((value, report["truth"][trait]))
    return spearman([a for a, _ in pairs], [b for _, b in pairs]) if len(pairs) >= 3 else None


def side_share(reports: list[dict[str, Any]], index: int, traits: tuple[str, ...]) -> float | None:
    """The share of people whose inferred `traits` are all on the hidden side of 0.5."""
    right = []
    for report in reports:
        if index >= len(report["sessions"]):
            continue
        rows = report["sessions"][index]["traits"]
        right.append(all(
            rows.get(t, {}).get("inferred") is not None
            and (rows[t]["inferred"] - 0.5) * (report["truth"][t] - 0.5) > 0 for t in traits
        ))  # fmt: skip
    return round(fmean(right), 3) if right else None


def majority_share(reports: list[dict[str, Any]], traits: tuple[str, ...]) -> float | None:
    """What saying the same side for everyone scores at best (the chance level of
    `side_share`): the share of people in the most common combination of hidden sides."""
    from collections import Counter

    sides = Counter(tuple(r["truth"][t] > 0.5 for t in traits) for r in reports)
    return round(max(sides.values()) / len(reports), 3) if reports else None


def inferred_count(reports: list[dict[str, Any]], trait: str, source: str) -> int:
    """How many people the last session's `by_signal[source]` has a value of `trait` for."""
    return sum(
        1 for r in reports
        if r["sessions"] and r["sessions"][-1].get("by_signal", {}).get(source, {}).get(trait)
        is not None
    )  # fmt: skip


def calibration(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """After each person's last session: right side of 0.5 by confidence bin."""
    pairs = []
    for report in reports:
        if not report["sessions"]:
            continue
        for row in report["sessions"][-1]["traits"].values():
            if row["inferred"] is not None and row["truth"] != 0.5:
                pairs.append(
                    (row["confidence"], (row["inferred"] - 0.5) * (row["truth"] - 0.5) > 0)
                )
    return [
        {"confidence": f"{low:.1f}-{min(high, 1.0):.1f}", "n": len(hits),
         "right_side": round(fmean(hits), 3) if hits else None}
        for low, high in CONFIDENCE_BINS
        for hits in [[ok for c, ok in pairs if low <= c < high]]
    ]  # fmt: skip


def fit(rows: list[tuple[str, list[str], list[str]]]) -> dict[str, float | None]:
    if not rows:
        return {"preferred": None, "disliked": None, "n": 0}
    return {
        "preferred": round(fmean(s in p for s, p, _ in rows), 3),
        "disliked": round(fmean(s in d for s, _, d in rows), 3), "n": len(rows),
    }  # fmt: skip


def session_turns(report: dict[str, Any], index: int) -> list[dict[str, Any]]:
    return report["sessions"][index].get("replay", []) if index < len(report["sessions"]) else []


def user_model_summary(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The measures above, per session and overall."""
    from memory.traits import BIG_FIVE, KINDS, SUBSETS

    longest = max((len(r["sessions"]) for r in reports), default=0)
    traits = (*BIG_FIVE, *SUPPORT, "humour", "directness")
    by_session = []
    for index in range(longest):
        rows: dict[str, list[tuple[str, list[str], list[str]]]] = {
            "actual": [], "no_traits": [], "true_traits": [],
        }  # fmt: skip
        unstated: dict[str, list[tuple[str, list[str], list[str]]]] = {k: [] for k in rows}
        for report in reports:
            p, d = report["preferred_strategies"], report["disliked_strategies"]
            for turn in session_turns(report, index):
                if turn["no_traits"] is None:  # not replayable: left out of all three columns
                    continue
                for key in rows:
                    rows[key].append((turn[key], p, d))
                    if not turn.get("stated"):
                        unstated[key].append((turn[key], p, d))
        by_session.append({
            "session": index + 1,
            "spearman": {t: pooled(reports, index, t) for t in traits},
            "support_right_side": {
                **{t: side_share(reports, index, (t,)) for t in SUPPORT},
                "both": side_share(reports, index, SUPPORT),
                "both_if_one_side_for_all": majority_share(reports, SUPPORT),
            },
            "preference_fit": {key: fit(value) for key, value in rows.items()},
            "preference_fit_unstated": {key: fit(value) for key, value in unstated.items()},
            "stated_share": round(1 - len(unstated["actual"]) / len(rows["actual"]), 3)
            if rows["actual"] else None,
        })  # fmt: skip
    last = longest - 1
    by_signal = {
        source: {t: pooled(reports, last, t, source) for t in traits}
        for source in (*SUBSETS, *KINDS)
    } if longest else {}  # fmt: skip
    people = {
        source: {t: inferred_count(reports, t, source) for t in traits} for source in by_signal
    }  # how many people each cell of by_signal pools over
    return {"by_session": by_session, "by_signal": by_signal, "by_signal_people": people,
            "calibration": calibration(reports)}  # fmt: skip


def replay_rows(records: Records, session: int, truth: dict[str, float]) -> list[dict[str, Any]]:
    """Per ordinary turn of a session: the chosen strategy and the replayed ones."""
    from strategies.policy import SAID

    rows = []
    for record in records:
        if record["type"] != "turn" or record["session"] != session:
            continue
        if record["kind"] == "crisis" or record["crisis"] or not record.get("strategy"):
            continue
        plan = (record.get("trace") or {}).get("plan") or {}  # traces before 11ca810: the reason
        stated = plan.get("need_said") or any(SAID in r for r in plan.get("why") or [])
        rows.append({"actual": record["strategy"], **replayed(record, truth), "stated": stated})
    return rows
