"""Turn an evaluation's journalled records into metrics with confidence intervals and tests.

Every metric (`eval.offline.measures`) is computed only where gold exists, per system, over
items: a per-item value (a 0/1 hit, a span F1, a judge score, or a (gold, prediction) pair for
corpus metrics such as macro-F1) and an aggregate over those values. Each gets a percentile
bootstrap 95% interval over items and, for every system but `full`, a paired permutation test
against `full` on the items both answered (`eval.offline.stats`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from statistics import fmean
from typing import Any

from eval.offline import metrics, stats
from eval.offline.items import (
    ESCONV_STRATEGIES,
    AnyItem,
    ReplyItem,
    StrategyItem,
)
from eval.offline.measures import METRICS, Aggregate, Lookup, Metric, Value, strategy_pair


def lookup_of(items: Sequence[AnyItem], records: Sequence[dict[str, Any]]) -> Lookup:
    outputs, verdicts, pasts = {}, {}, {}
    for r in records:
        if r["type"] == "output":
            outputs[(r["item"], r["system"])] = r
        elif r["type"] == "verdict":
            verdicts[(r["item"], r["system"], r["rubric"])] = r
        elif r["type"] == "past":
            pasts[r["item"]] = r
    return Lookup(outputs, verdicts, pasts, foreign_words(items))


def foreign_words(items: Sequence[AnyItem]) -> dict[str, list[str]]:
    """For each reply item, the memory words of other people's items that its own history,
    context and message never contain."""
    replies = [i for i in items if isinstance(i, ReplyItem)]
    found = {}
    for item in replies:
        own = " ".join([item.message, *(ln.text for ln in [*item.history, *item.context])])
        others = {w for o in replies if o.user != item.user for w in o.gold.memory_words}
        found[item.id] = sorted(w for w in others if not metrics.mentions_any(own, [w]))
    return found


def metric_rows(
    items: Sequence[AnyItem], records: Sequence[dict[str, Any]], systems: Sequence[str],
    *, seed: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """Every metric for every system that has values: value, 95% CI, n, p against full."""
    lookup = lookup_of(items, records)
    rows = []
    for metric in METRICS:
        task_items = [i for i in items if i.task == metric.task]
        names = ["emotion-plugin"] if metric.task == "emotion" else systems
        values = {s: per_item(metric, task_items, s, lookup) for s in names}
        for system in names:
            present = {k: v for k, v in values[system].items() if v is not None}
            if not present:
                continue
            ordered = list(present.values())
            value = metric.aggregate(ordered)
            low, high = (
                stats.bootstrap_ci(len(ordered), resampled(metric.aggregate, ordered), seed=seed)
                if metric.interval else (math.nan, math.nan)
            )  # fmt: skip
            p, paired_n = paired(metric, values, system, seed)
            rows.append({
                "task": metric.task, "metric": metric.name, "system": system, "value": value,
                "ci": [low, high], "n": len(ordered), "higher_is_better": metric.higher_is_better,
                "description": metric.description,
                "p_vs_full": p, "n_paired": paired_n,
            })  # fmt: skip
    return with_q_values(rows)


def with_q_values(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Benjamini-Hochberg q-values over all the run's tests against full (many metrics times
    many systems: some p < 0.05 would come by chance alone)."""
    from scipy.stats import false_discovery_control

    tested = [r for r in rows if r["p_vs_full"] is not None]
    if tested:
        qs = false_discovery_control([r["p_vs_full"] for r in tested], method="bh")
        for row, q in zip(tested, qs, strict=True):
            row["q_vs_full"] = float(q)
    for row in rows:
        row.setdefault("q_vs_full", None)
    return rows


def resampled(aggregate: Aggregate, values: Sequence[Value]) -> Callable[[Any], float]:
    """The aggregate of the items at some indexes (one bootstrap resample)."""
    return lambda indexes: aggregate([values[i] for i in indexes])


def per_item(
    metric: Metric, items: Sequence[AnyItem], system: str, lookup: Lookup
) -> dict[str, Value | None]:
    found = {}
    for item in items:
        out = lookup.outputs.get((item.id, system))
        found[item.id] = (
            None if out is None or "error" in out else metric.extract(item, out, lookup)
        )
    return found


def paired(
    metric: Metric, values: dict[str, dict[str, Value | None]], system: str, seed: int
) -> tuple[float | None, int]:
    """The p-value against full on the items both answered, and how many those are."""
    if system == "full" or "full" not in values:
        return None, 0
    both = [
        k for k, v in values[system].items() if v is not None and values["full"].get(k) is not None
    ]
    if len(both) < 2:
        return None, len(both)
    p = stats.paired_test(
        [values[system][k] for k in both], [values["full"][k] for k in both],
        metric.aggregate, seed=seed,
    )  # fmt: skip
    return (None if math.isnan(p) else p), len(both)


def trait_curve(
    items: Sequence[AnyItem], records: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Mean absolute trait error after each history session, over items with hidden traits."""
    pasts = {r["item"]: r for r in records if r["type"] == "past"}
    by_session: dict[int, list[float]] = {}
    for item in items:
        if not isinstance(item, ReplyItem) or item.persona is None or not item.persona.traits:
            continue
        for n, point in enumerate(pasts.get(item.id, {}).get("traits_curve", []), start=1):
            error = metrics.trait_error(point["traits"], item.persona.traits)
            if error["n"]:
                by_session.setdefault(n, []).append(error["mae"])
    return [{"session": n, "mae": fmean(v), "n": len(v)} for n, v in sorted(by_session.items())]


def confusions(
    items: Sequence[AnyItem], records: Sequence[dict[str, Any]], systems: Sequence[str]
) -> dict[str, dict[str, Any]]:
    lookup = lookup_of(items, records)
    found = {}
    strategy_items = [i for i in items if isinstance(i, StrategyItem)]
    for system in systems:
        answered = [
            strategy_pair(i, lookup.outputs[(i.id, system)], lookup)
            for i in strategy_items
            if (i.id, system) in lookup.outputs and "error" not in lookup.outputs[(i.id, system)]
        ]
        pairs = [p for p in answered if p is not None]
        if pairs:
            scores = metrics.strategy_scores(
                [g for g, _ in pairs], [p for _, p in pairs], ESCONV_STRATEGIES
            )
            found[system] = {"labels": list(ESCONV_STRATEGIES), "confusion": scores["confusion"],
                             "other": scores["invalid"],
                             "preference": scores["preference"], "n": len(pairs)}  # fmt: skip
    return found


def judge_alignment(records: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, int]]:
    """The judge against the humans on `rating` items, per dimension, overall and by level
    (dimensions the judge's EPITOME rubric does not score are counted, not compared)."""
    by_dimension: dict[str, tuple[list[float], list[float]]] = {}
    unscored: dict[str, int] = {}
    for r in records:
        if r["type"] != "rating" or "scores" not in r:
            continue
        for dimension, human in r["human"].items():
            if dimension not in r["scores"]:
                unscored[dimension] = unscored.get(dimension, 0) + 1
                continue
            judge, humans = by_dimension.setdefault(dimension, ([], []))
            judge.append(float(r["scores"][dimension]))
            humans.append(float(human))
    found: dict[str, Any] = {
        d: {"judge": j, "human": h,
            "by_level": {k: a.as_dict() for k, a in stats.alignment_by_level(j, h).items()},
            **stats.alignment(j, h).as_dict()}
        for d, (j, h) in by_dimension.items()
    }  # fmt: skip
    return found, unscored


def pairwise(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for r in records:
        if r["type"] != "pair" or "outcome" not in r:
            continue
        tally = found.setdefault(r["system"], {"win": 0, "tie": 0, "loss": 0, "consistent": 0})
        tally[r["outcome"]] += 1
        tally["consistent"] += bool(r["consistent"])
    for tally in found.values():
        n = tally["win"] + tally["tie"] + tally["loss"]
        tally |= {"n": n, "swap_consistency": tally["consistent"] / n if n else math.nan}
    return found


def failures(records: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Steps whose last attempt failed (a step retried with success is not listed)."""
    latest = {r["key"]: r for r in records if "key" in r}
    return [
        {"item": r["item"], "system": r.get("system", ""), "type": r["type"], "error": r["error"]}
        for r in latest.values()
        if "error" in r
    ]


def task_counts(items: Sequence[AnyItem]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.task] = counts.get(item.task, 0) + 1
    return counts
