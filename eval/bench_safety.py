"""Train and measure the crisis screen.

    python -m eval.bench_safety --train   # fit the classifier head on agent/safety_data/train.jsonl
    python -m eval.bench_safety           # measure on the held-out eval/safety_set.jsonl

Training fits a multinomial logistic regression (scikit-learn, build time only) on frozen
all-MiniLM-L6-v2 embeddings next to hashed word unigrams and bigrams, picks C by stratified
cross-validation, and sets the two thresholds
on out-of-fold probabilities of the training set (never on the held-out set): `t_hi` so that at
most 5% of the training negatives (mostly hard ones: figurative, past, third party) would be
flagged by the classifier alone, `t_lo` so that at most 15% would reach "uncertain". The
weights go to agent/safety_data/head.npz.

The benchmark prints recall on explicit and indirect crisis messages, the false-alarm rate on
non-crisis messages (overall and per kind: figurative, third party, past, info, ordinary), how
many land in "uncertain", and the mean time of one screen call with the embedding excluded.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from agent.safety import HEAD_PATH, SafetyScreen, lexical_indices, sentence_windows
from memory.embeddings import DIMENSIONS, Embedder, default_embedder

TRAIN_PATH = Path(__file__).resolve().parent.parent / "agent" / "safety_data" / "train.jsonl"
EVAL_PATH = Path(__file__).resolve().parent / "safety_set.jsonl"
C_GRID = (2.0, 4.0, 8.0, 16.0, 32.0)
FOLDS = 5
LEXICAL_DIMENSIONS = 2**14
Q_LO, Q_HI = 0.85, 0.95


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read one JSON object per non-empty line."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def features(texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """Return [embedding | L2-normalised hashed n-grams], the head's input, one row per text."""
    lexical = np.zeros((len(texts), LEXICAL_DIMENSIONS), dtype=np.float32)
    for row, text in enumerate(texts):
        index = lexical_indices(text, LEXICAL_DIMENSIONS)
        lexical[row, index] = 1.0 / np.sqrt(len(index)) if index else 0.0
    return np.hstack([default_embedder().embed(texts), lexical])


def _fit(c: float, x: npt.NDArray[np.float32], y: Sequence[str]) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(x, y)


def _out_of_fold(c: float, x: npt.NDArray[np.float32], y: npt.NDArray[np.str_]) -> Any:
    from sklearn.model_selection import StratifiedKFold

    probs = np.zeros(len(y))
    for train, test in StratifiedKFold(FOLDS, shuffle=True, random_state=7).split(x, y):
        model = _fit(c, x[train], list(y[train]))
        none = list(model.classes_).index("none")
        probs[test] = 1.0 - model.predict_proba(x[test])[:, none]
    return probs


def _cv_score(probs: npt.NDArray[np.float64], y: npt.NDArray[np.str_]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y != "none", probs))


def train(out: Path = HEAD_PATH) -> None:
    """Fit the head, choose C and thresholds by cross-validation, write the .npz."""
    rows = read_jsonl(TRAIN_PATH)
    x = features([r["text"] for r in rows])
    y = np.array([r["label"] for r in rows])
    scored = {c: _out_of_fold(c, x, y) for c in C_GRID}
    best = max(C_GRID, key=lambda c: _cv_score(scored[c], y))
    oof = scored[best]
    negatives = oof[y == "none"]
    t_hi = max(0.5, float(np.quantile(negatives, Q_HI)))
    t_lo = min(t_hi, max(0.2, float(np.quantile(negatives, Q_LO))))
    model = _fit(best, x, list(y))
    coef = model.coef_.astype(np.float32)
    np.savez_compressed(
        out,
        weights=coef[:, :-LEXICAL_DIMENSIONS],
        lexical=coef[:, -LEXICAL_DIMENSIONS:],
        bias=model.intercept_.astype(np.float32),
        classes=np.array(model.classes_),
        thresholds=np.array([t_lo, t_hi]),
    )
    positives = oof[y != "none"]
    print(f"trained on {len(rows)} examples; C={best}, CV AUC={_cv_score(oof, y):.3f}")
    print(
        f"t_lo={t_lo:.3f} t_hi={t_hi:.3f}; out-of-fold recall at t_hi="
        f"{np.mean(positives >= t_hi):.2f}, at t_lo={np.mean(positives >= t_lo):.2f}"
    )
    print(f"wrote {out}")


class Precomputed(Embedder):
    """Serve vectors embedded beforehand, so timing the screen leaves the embedding out."""

    def __init__(self, texts: Sequence[str]) -> None:
        super().__init__()
        unique = sorted(set(texts))
        self._table = dict(zip(unique, default_embedder().embed(unique), strict=True))

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
        """Return the stored rows of the texts."""
        rows = [self._table[text] for text in texts]
        return np.array(rows, dtype=np.float32).reshape(len(rows), DIMENSIONS)


def _group(row: dict[str, Any]) -> str:
    return str(row["group"]) if row["group"] != "none" else f"none/{row['kind']}"


def bench(path: Path = EVAL_PATH, show_misses: bool = False, batch: str | None = None) -> None:
    """Screen every held-out message and print the recall / false-alarm table."""
    rows = [r for r in read_jsonl(path) if batch is None or r.get("batch") == batch]
    texts = [r["text"] for r in rows]
    embedder = Precomputed(texts + [w for text in texts for w in sentence_windows(text)])
    screen = SafetyScreen.load(embedder)
    start = time.perf_counter()
    results = [screen.screen(text) for text in texts]
    per_call_ms = (time.perf_counter() - start) * 1000 / len(rows)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row, result in zip(rows, results, strict=True):
        for key in {_group(row), "none" if row["group"] == "none" else "crisis (all)"}:
            cell = counts[key]
            cell[0] += 1
            cell[1] += result.crisis
            cell[2] += result.band == "uncertain"
            cell[3] += result.crisis and result.category == row["category"]
        if show_misses and result.crisis != (row["group"] != "none"):
            print(f"  MISS {row['group']:>8} {result.band:>9} {result.category:<17} {row['text']}")
    _print_table(counts)
    print(f"\nscreen() per call, embedding excluded: {per_call_ms:.2f} ms")


def bench_llm(model: str, path: Path = EVAL_PATH, batch: str | None = None) -> None:
    """Measure what the LLM's risk flag (from the real analysis call) adds to the screen.

    Only messages the screen does not already call a crisis are asked (the flag never
    downgrades). Prints recall and false alarms for: the screen alone; the LLM upgrading
    "uncertain" (the shipped rule); the LLM upgrading any band.
    """
    from rich.progress import track

    from agent.context import Context
    from agent.llm import LLMError, invoke_structured
    from agent.prompts import analysis_messages
    from agent.schemas import CauseAnalysis
    from agent.settings import load_settings

    rows = [r for r in read_jsonl(path) if batch is None or r.get("batch") == batch]
    context = Context(load_settings(model=model))
    screen = SafetyScreen.load(context.embedder)
    tally = {rule: [0, 0, 0, 0] for rule in ("screen alone", "+ LLM on uncertain", "+ LLM on any")}
    for row in track(rows, description=f"asking {model}…"):
        text, is_crisis = row["text"], row["group"] != "none"
        result = screen.screen(text)
        flag = False
        if not result.crisis:
            messages = analysis_messages(text, context.emotion.classify(text), [], [])
            try:
                analysis, _ = invoke_structured(
                    context.chat_model, messages, CauseAnalysis,
                    method=context.structured_method, node="analyze_cause", max_tokens=256,
                )  # fmt: skip
                flag = analysis.risk
            except LLMError:
                flag = False
        verdicts = {
            "screen alone": result.crisis,
            "+ LLM on uncertain": screen.combine(result, flag).crisis,
            "+ LLM on any": result.crisis or flag,
        }
        for rule, crisis in verdicts.items():
            cell = tally[rule]
            cell[0 if is_crisis else 2] += 1
            cell[1 if is_crisis else 3] += crisis
    print(f"{'rule':<22}{'crisis recall':>16}{'false alarms':>16}")
    for rule, (n_pos, hit, n_neg, alarm) in tally.items():
        recall, alarms = f"{hit}/{n_pos} {hit / n_pos:.2f}", f"{alarm}/{n_neg} {alarm / n_neg:.2f}"
        print(f"{rule:<22}{recall:>16}{alarms:>16}")


def _print_table(counts: dict[str, list[int]]) -> None:
    print(f"{'group':<22}{'n':>4}{'crisis':>8}{'rate':>7}{'uncertain':>11}{'category ok':>13}")
    order = ["explicit", "indirect", "crisis (all)", "none"]
    keys = order + sorted(k for k in counts if k not in order)
    for key in keys:
        n, flagged, uncertain, right = counts[key]
        label = "recall" if key in order[:3] else "false alarm"
        extra = f"{right:>13}" if key in order[:3] else f"{'':>13}"
        print(f"{key:<22}{n:>4}{flagged:>8}{flagged / n:>7.2f}{uncertain:>11}{extra}  {label}")


def main(argv: Sequence[str] | None = None) -> None:
    """Train the head or run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--train", action="store_true", help="fit and write the classifier head")
    parser.add_argument("--set", type=Path, default=EVAL_PATH, help="held-out JSONL to measure")
    parser.add_argument("--misses", action="store_true", help="print every misclassified message")
    parser.add_argument(
        "--batch",
        help='only rows of one batch ("a": written before the '
        'patterns, "b": after they were frozen)',
    )
    parser.add_argument("--llm", metavar="MODEL", help="also measure the LLM's risk flag")
    args = parser.parse_args(argv)
    if args.train:
        train()
    bench(args.set, args.misses, args.batch)
    if args.llm:
        bench_llm(args.llm, args.set, args.batch)


if __name__ == "__main__":
    main()
