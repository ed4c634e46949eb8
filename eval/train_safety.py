"""Train the crisis classifier and calibrate it to a false-alarm budget on real messages.

    python -m eval.train_safety                      # writes agent/safety_data/head.npz
    python -m eval.train_safety --budget 0.002 --uncertain-budget 0.02

The first head learnt from ~750 messages we wrote and set its thresholds on them; on messages
real people wrote it flagged one in seven. This one learns from the same hand-written examples
*and* from realistic negatives: GoEmotions train comments and half "a" of ESConv's seeker turns,
each message and each of its sentences (the screen scores sentences on their own, so ordinary
sentences must be seen as ordinary), and ordinary openings a small model wrote as a simulated
user (`eval/data/safety_simulated.jsonl`, batch "train": seeds 6-10; its word n-grams had learnt
"I want to", "I've been" from our own crisis examples and flagged that voice). The simulated
batch "held-out" (seeds 11-14) is only measured (`eval.bench_safety --set ... --batch
held-out`). Real messages we labelled as genuine crises (`eval/data/safety_real_labels.jsonl`)
join the positives; unlabelled real messages that mention crisis words are left out rather than
taught as ordinary.

The thresholds are chosen on data, out of fold (5 folds, a message and its sentences in one
fold): the statistic is what the screen computes at run time, the highest probability over the
message and its sentence windows; `t_hi` is set so that at most `budget` of the real negatives
reach it alone, `t_lo` so that at most `uncertain_budget` reach "uncertain". GoEmotions dev and
ESConv half "b" are never used here: `python -m eval.bench_safety --real` measures on them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

from agent.safety import HEAD_PATH, lexical_indices, sentence_windows
from eval.embed_cache import embed_many, read_jsonl
from eval.real_messages import Message, esconv_seeker_turns, goemotions
from eval.safety_labels import CRISIS_WORDS, load_labels

REAL_KINDS = ("goemotions", "esconv")
NEGATIVE_KINDS = (*REAL_KINDS, "simulated")  # each its own stratum; the rest are "ours"
REPO = Path(__file__).resolve().parent.parent
TRAIN_PATH = REPO / "agent" / "safety_data" / "train.jsonl"
SIMULATED_PATH = REPO / "eval" / "data" / "safety_simulated.jsonl"
CURVE_PATH = REPO / "eval" / "data" / "safety_curve.json"
LEXICAL_DIMENSIONS = 2**14
FOLDS = 5
C = 4.0
# crises together weigh 1.0
STRATUM_WEIGHT = {"ours": 0.5, "goemotions": 1.0, "esconv": 1.0, "simulated": 1.0}
CURVE_BUDGETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.03, 0.05)


@dataclass
class Units:
    """Every text the head sees: whole messages and their sentence windows."""

    texts: list[str]
    labels: list[str]
    groups: list[int]  # index of the message a unit belongs to
    trained: list[bool]  # windows of crisis messages are scored, never taught as either class


@dataclass
class Examples:
    """The messages, their labels, kinds (the hand-written kind, or the real set) and units."""

    texts: list[str]
    labels: list[str]
    kinds: list[str]
    units: Units


def real_training_messages() -> list[Message]:
    """GoEmotions train and ESConv half "a": the real messages training may see."""
    return [*goemotions("train"), *(m for m in esconv_seeker_turns() if m.source == "esconv-a")]


def simulated_messages(batch: str) -> list[dict[str, Any]]:
    """Ordinary openings the 1.5b user simulator wrote: "train" (seeds 6-10) or "held-out"."""
    return [row for row in read_jsonl(SIMULATED_PATH) if row["batch"] == batch]


def build_examples() -> Examples:
    """Hand-written rows, then real messages with their labels (unlabelled crisis words out)."""
    rows = read_jsonl(TRAIN_PATH)
    texts = [r["text"] for r in rows]
    labels = [r["label"] for r in rows]
    kinds = [r["kind"] for r in rows]
    verdicts = load_labels()
    for message in real_training_messages():
        verdict = verdicts.get(message.id)
        if verdict is None and CRISIS_WORDS.search(message.text):
            continue  # maybe a real crisis nobody has read: never teach it as ordinary
        if verdict is not None and verdict.label == "ambiguous":
            continue
        texts.append(message.text)
        labels.append(verdict.category if verdict and verdict.label == "crisis" else "none")
        kinds.append(message.source.split("-")[0])  # "goemotions" or "esconv"
    for row in simulated_messages("train"):
        texts.append(row["text"])
        labels.append("none")
        kinds.append("simulated")
    return Examples(texts, labels, kinds, _units(texts, labels))


def _units(texts: Sequence[str], labels: Sequence[str]) -> Units:
    units = Units([], [], [], [])
    for index, (text, label) in enumerate(zip(texts, labels, strict=True)):
        for unit in [text, *sentence_windows(text)]:
            is_message = unit is text
            units.texts.append(unit)
            units.labels.append(label if is_message else "none")
            units.groups.append(index)
            units.trained.append(is_message or label == "none")
    return units


def features(texts: Sequence[str], label: str) -> sparse.csr_matrix:
    """Return [embedding | L2-normalised hashed n-grams] as one sparse row per text."""
    rows, cols, values = [], [], []
    for row, text in enumerate(texts):
        index = lexical_indices(text, LEXICAL_DIMENSIONS)
        if not index:
            continue
        rows += [row] * len(index)
        cols += index
        values += [1.0 / np.sqrt(len(index))] * len(index)
    lexical = sparse.csr_matrix(
        (values, (rows, cols)), shape=(len(texts), LEXICAL_DIMENSIONS), dtype=np.float32
    )
    dense = sparse.csr_matrix(embed_many(texts, label))
    return sparse.hstack([dense, lexical], format="csr")


def sample_weights(units: Units, kinds: Sequence[str]) -> npt.NDArray[np.float64]:
    """Give each stratum a fixed total weight, whatever its size.

    Each crisis category weighs as much as the others; our own negatives, GoEmotions and ESConv
    each weigh as much as all crises together times their entry in `STRATUM_WEIGHT`, so 43k
    Reddit comments do not drown 1.5k support-chat turns, and the classifier cannot learn our
    voice (all positives, few negatives) as the sign of a crisis.
    """
    labels = np.array(units.labels)
    unit_kinds = np.array(kinds)[np.array(units.groups)]
    negatives = np.where(np.isin(unit_kinds, NEGATIVE_KINDS), unit_kinds, "ours")
    strata = np.where(labels != "none", labels, negatives)
    trained = np.array(units.trained)
    n_categories = len(set(labels[labels != "none"]))
    weights = np.zeros(len(labels))
    for stratum in set(strata):
        members = (strata == stratum) & trained
        share = STRATUM_WEIGHT.get(stratum, 1.0 / n_categories)
        weights[strata == stratum] = share / max(1, members.sum())
    scaled: npt.NDArray[np.float64] = weights * trained.sum() / weights[trained].sum()
    return scaled


def _fit(x: sparse.csr_matrix, y: Sequence[str], weights: npt.NDArray[np.float64]) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=3000).fit(x, y, sample_weight=weights)


def crisis_probability(model: Any, x: sparse.csr_matrix) -> npt.NDArray[np.float64]:
    """P(any crisis class) per row."""
    none = list(model.classes_).index("none")
    probability: npt.NDArray[np.float64] = 1.0 - np.asarray(model.predict_proba(x)[:, none])
    return probability


def message_scores(
    unit_p: npt.NDArray[np.float64], groups: Sequence[int], n: int
) -> npt.NDArray[np.float64]:
    """The screen's statistic per message: the highest probability over its units."""
    scores: npt.NDArray[np.float64] = np.zeros(n)
    np.maximum.at(scores, np.asarray(groups), unit_p)
    return scores


def out_of_fold(x: sparse.csr_matrix, examples: Examples) -> npt.NDArray[np.float64]:
    """Score every message with a model that never saw it (or its sentences)."""
    from rich.progress import track
    from sklearn.model_selection import GroupKFold

    units = examples.units
    y, groups = np.array(units.labels), np.array(units.groups)
    trained = np.array(units.trained)
    weights = sample_weights(units, examples.kinds)
    unit_p = np.zeros(len(y))
    splits = list(GroupKFold(FOLDS).split(x, y, groups))
    for train, test in track(splits, description="cross-validating", transient=True):
        keep = train[trained[train]]
        unit_p[test] = crisis_probability(_fit(x[keep], list(y[keep]), weights[keep]), x[test])
    return message_scores(unit_p, units.groups, len(examples.texts))


def threshold_at(negatives: npt.NDArray[np.float64], budget: float) -> float:
    """The lowest threshold that flags at most `budget` of the negatives."""
    ordered = np.sort(negatives)[::-1]
    allowed = int(np.floor(budget * len(ordered)))
    return float(ordered[allowed] + 1e-6) if allowed < len(ordered) else 0.0


def calibrated(scores: npt.NDArray[np.float64], examples: Examples, budget: float) -> float:
    """The threshold that keeps false alarms within `budget` on *each* real set."""
    kinds, labels = np.array(examples.kinds), np.array(examples.labels)
    return max(
        threshold_at(scores[(kinds == kind) & (labels == "none")], budget) for kind in REAL_KINDS
    )


def curve(scores: npt.NDArray[np.float64], examples: Examples) -> list[dict[str, float]]:
    """Out-of-fold recall on hand-written crises against false alarms on real messages."""
    kinds, labels = np.array(examples.kinds), np.array(examples.labels)
    ours = ~np.isin(kinds, NEGATIVE_KINDS)
    points = []
    for budget in CURVE_BUDGETS:
        t = calibrated(scores, examples, budget)
        point = {"budget": budget, "threshold": t}
        for kind in REAL_KINDS:
            negatives = scores[(kinds == kind) & (labels == "none")]
            point[f"false_alarms_{kind}"] = float(np.mean(negatives >= t))
        for kind in ("explicit", "indirect"):
            point[f"recall_{kind}"] = float(np.mean(scores[kinds == kind] >= t))
        point["false_alarms_ours"] = float(np.mean(scores[ours & (labels == "none")] >= t))
        point["false_alarms_simulated"] = float(np.mean(scores[kinds == "simulated"] >= t))
        points.append(point)
    return points


def train(budget: float, uncertain_budget: float, out: Path = HEAD_PATH) -> None:
    """Fit, calibrate, print the curve and write the head."""
    examples = build_examples()
    units = examples.units
    print(f"{len(examples.texts)} messages ({examples.kinds.count('real')} real), "
          f"{len(units.texts)} units with sentence windows")  # fmt: skip
    x = features(units.texts, "safety-units")
    scores = out_of_fold(x, examples)
    t_hi = calibrated(scores, examples, budget)
    t_lo = calibrated(scores, examples, uncertain_budget)
    points = curve(scores, examples)
    _print_curve(points, t_lo, t_hi)
    trained = np.array(units.trained)
    weights = sample_weights(units, examples.kinds)[trained]
    model = _fit(x[trained], list(np.array(units.labels)[trained]), weights)
    coef = model.coef_.astype(np.float32)
    np.savez_compressed(
        out,
        weights=coef[:, :-LEXICAL_DIMENSIONS],
        lexical=coef[:, -LEXICAL_DIMENSIONS:],
        bias=model.intercept_.astype(np.float32),
        classes=np.array(model.classes_),
        thresholds=np.array([t_lo, t_hi]),
    )
    CURVE_PATH.parent.mkdir(parents=True, exist_ok=True)
    CURVE_PATH.write_text(json.dumps({"t_lo": t_lo, "t_hi": t_hi, "curve": points}, indent=1))
    print(f"wrote {out} and {CURVE_PATH}")


def _print_curve(points: list[dict[str, float]], t_lo: float, t_hi: float) -> None:
    print("out of fold: false alarms on real messages vs recall on our crisis examples")
    header = ("threshold", 10), ("GoEmotions", 11), ("ESConv", 8), ("explicit", 10)
    print("".join(f"{name:>{width}}" for name, width in header)
          + f"{'indirect':>10}{'ours FA':>9}{'sim FA':>8}")  # fmt: skip
    for p in points:
        print(f"{p['threshold']:>10.3f}{p['false_alarms_goemotions']:>11.4f}"
              f"{p['false_alarms_esconv']:>8.4f}{p['recall_explicit']:>10.3f}"
              f"{p['recall_indirect']:>10.3f}{p['false_alarms_ours']:>9.3f}"
              f"{p['false_alarms_simulated']:>8.3f}")  # fmt: skip
    print(f"chosen: t_lo={t_lo:.3f} (uncertain), t_hi={t_hi:.3f} (crisis on the classifier alone)")


def main(argv: Sequence[str] | None = None) -> None:
    """Train the head."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--budget",
        type=float,
        default=0.003,
        help="share of real negatives the classifier alone may call a crisis",
    )
    parser.add_argument("--uncertain-budget", type=float, default=0.03,
                        help="share of real negatives that may reach 'uncertain'")  # fmt: skip
    args = parser.parse_args(argv)
    train(args.budget, args.uncertain_budget)


if __name__ == "__main__":
    main()
