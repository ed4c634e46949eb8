"""Pure metric functions for the offline benchmark: text in, numbers out, no model, no I/O.

Every function states its definition and where it comes from. Inputs that cannot be scored
(lengths that differ, a gold label outside the label set, an empty gold list) raise
`ValueError` saying what was wrong; a metric that is merely undefined on the data (no items,
nothing relevant) returns NaN or None as documented, never raises.

Strategy preference and bias follow Kang et al., ACL 2024, "Can Large Language Models be Good
Emotional Supporter? Mitigating Preference Bias on Emotional Support Conversation"
(arXiv:2402.13211): proficiency Q is macro-F1; the preference p_i of each strategy is a
Bradley-Terry strength fitted to the model's confusions, and the bias B is how unequal those
strengths are. See `strategy_preferences` for what was checked and where.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from typing import TypedDict

import numpy as np
from numpy.typing import NDArray
from scipy.sparse.csgraph import connected_components

BT_TOLERANCE = 1e-10
BT_MAX_ROUNDS = 10_000

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


class EmotionScores(TypedDict):
    """What `emotion_scores` returns."""

    accuracy: float
    macro_f1: float
    n: int


class StrategyScores(TypedDict):
    """What `strategy_scores` returns."""

    accuracy: float
    macro_f1: float
    weighted_f1: float
    preference: dict[str, float]
    bias: float
    confusion: list[list[int]]
    invalid: int
    n: int


class TraitError(TypedDict):
    """What `trait_error` returns."""

    mae: float
    n: int
    missing: list[str]


def normalize_tokens(text: str) -> list[str]:
    """Lowercase, drop punctuation and articles, split on whitespace.

    This is SQuAD's `normalize_answer` (Rajpurkar et al. 2016, official evaluation script),
    which RECCON (Poria et al. 2021) reuses for cause spans.
    """
    lowered = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return _ARTICLES.sub(" ", lowered).split()


def span_f1(gold: str, predicted: str) -> float:
    """Token-overlap F1 between a gold and a predicted span (SQuAD token F1, as in RECCON).

    Overlap counts repeated tokens at most as often as both sides have them (Counter `&`).
    If either side normalises to no tokens, the score is 1.0 when both do, else 0.0
    (SQuAD v2's rule for empty answers).
    """
    gold_tokens, predicted_tokens = normalize_tokens(gold), normalize_tokens(predicted)
    if not gold_tokens or not predicted_tokens:
        return float(gold_tokens == predicted_tokens)
    same = sum((Counter(gold_tokens) & Counter(predicted_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def emotion_scores(gold: Sequence[Collection[str]], predicted: Sequence[str]) -> EmotionScores:
    """Score one emotion label per item against one or more gold labels (GoEmotions).

    - `accuracy`: share of items whose prediction is among that item's gold labels.
    - `macro_f1`: scikit-learn's `f1_score(average="macro", zero_division=0)` (same numbers,
      see `_f1_scores`) over the labels that occur in the effective gold labels or the
      predictions. An item with several gold
      labels has one *effective* gold label: the prediction when it is among them (the item
      counts as right), else the first gold label (the item counts as a miss of that label).
      "First" is the first in order for a list or tuple and the alphabetically first for a
      set, so results never depend on set order. A plain string counts as one label.
    - `n`: number of items. With no items, both scores are NaN.
    """
    _check_lengths(gold, predicted)
    effective: list[str] = []
    hits = 0
    for index, (given, guess) in enumerate(zip(gold, predicted, strict=True)):
        options = _as_label_list(given, index)
        hit = guess in options
        hits += hit
        effective.append(guess if hit else options[0])
    if not effective:
        return {"accuracy": math.nan, "macro_f1": math.nan, "n": 0}
    labels = sorted(set(effective) | set(predicted))
    macro, _ = _f1_scores(_confusion(effective, predicted, labels), _support(effective, labels))
    return {"accuracy": hits / len(effective), "macro_f1": macro, "n": len(effective)}


def strategy_scores(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> StrategyScores:
    """Score predicted support strategies (ESConv) against gold ones, Kang et al. 2024 style.

    - `accuracy`: share of exact matches.
    - `macro_f1`: proficiency Q of Kang et al. 2024; `weighted_f1` weights by gold support.
      Both equal scikit-learn's `f1_score(zero_division=0)` over the `labels` that occur in
      gold or predictions (its default label set, so a strategy the benchmark never asks
      for and the model never says does not count as a zero).
    - `confusion`: counts, rows = gold, columns = predicted, both in `labels` order.
    - `preference` (label -> p_i) and `bias` (B): see `strategy_preferences`.
    - `invalid`: predictions outside `labels`. Each counts as wrong (a miss for its gold
      strategy) but is left out of the confusion matrix: it prefers no strategy.
    - `n`: number of items.

    Raises ValueError if the lengths differ or a gold label is not in `labels`.
    """
    _check_lengths(gold, predicted)
    unknown = sorted(set(gold) - set(labels))
    if unknown:
        raise ValueError(f"gold strategies {unknown} are not in labels; add them to labels")
    n = len(gold)
    counts = _confusion(gold, predicted, labels)
    macro, weighted = _f1_scores(counts, _support(gold, labels)) if n else (math.nan, math.nan)
    preferences = strategy_preferences(counts, labels)
    return {
        "accuracy": int(np.trace(counts)) / n if n else math.nan,
        "macro_f1": macro,
        "weighted_f1": weighted,
        "preference": preferences,
        "bias": preference_bias(preferences),
        "confusion": counts.tolist(),
        "invalid": n - int(counts.sum()),
        "n": n,
    }


def strategy_preferences(
    confusion: Sequence[Sequence[float]] | NDArray[np.generic], labels: Sequence[str]
) -> dict[str, float]:
    """Fit each strategy's preference p_i (Bradley-Terry) to a confusion matrix (Kang 2024).

    `confusion` has rows = gold, columns = predicted (scikit-learn's layout). A confusion is
    a comparison the predicted strategy "won": w_ij = confusion[j][i] for i != j, the number
    of times the model said strategy i where the gold was j. Correct predictions (the
    diagonal) are not comparisons. The strengths are the Bradley-Terry maximum-likelihood
    fit, by Zermelo's MM iteration (Hunter 2004), updating all strategies at once:

        p_i <- sum_j w_ij / sum_j (w_ij + w_ji) / (p_i + p_j)

    then rescaling so the p_i average 1 (they sum to the number of strategies), until no p_i
    moves by BT_TOLERANCE, or BT_MAX_ROUNDS rounds. B is then `preference_bias`.

    Normalisation, checked: the EmoDynamiX code (Wan et al., NAACL 2025;
    https://github.com/cw-wan/EmoDynamiX-v2, `metrics.py`, `preference_bias`) rescales p to
    sum to the number of strategies every round and takes B as the population standard
    deviation. It is called in `modules/trainer/trainer.py` with scikit-learn's
    `confusion_matrix(truths, predictions)` and uses confusion[j, i] as i's wins over j, as
    here. Its update is the equivalent fixed-point form p_i <- sum_j w_ij p_j/(p_i + p_j) /
    sum_j w_ji/(p_i + p_j), run for 20 rounds; both reach the same maximum-likelihood fit
    (checked on a random 8x8 matrix: B agrees to 1e-8). Kang et al.'s formulas could not
    be read (only the abstract of arXiv:2402.13211 was reachable) and no code of theirs was
    found, so the mean-1 scale and the population SD are taken from EmoDynamiX, which
    reproduces their metric and reports B of 0.45 for itself on ESConv.

    Degenerate cases (our choice): a strategy in no off-diagonal cell, neither confused for
    another nor mistaken for one, gives no evidence and is left out of the result (and so
    out of B); the mean-1 scale is over the strategies that remain. With no confusions at
    all the result is empty. Where a group of strategies is beaten by others but never
    beats any of them (a strategy the model never says but sometimes should; Ford's
    condition fails), maximum likelihood puts the group at 0: it is set to 0 directly,
    since the iteration would only creep toward 0 for all BT_MAX_ROUNDS rounds. The
    groups never beaten are fitted each on its own (strongly connected components of the
    "i beat j" graph) to mean 1; how two such groups compare is not identified by the data.
    The whole is then rescaled to mean 1. No division by zero can occur.
    """
    counts = np.asarray(confusion, dtype=float)
    if counts.shape != (len(labels), len(labels)):
        raise ValueError(
            f"confusion is {counts.shape}, expected {len(labels)}x{len(labels)} for the labels"
        )
    if (counts < 0).any():
        raise ValueError("confusion has negative counts; pass counts of items")
    wins = counts.T.copy()
    np.fill_diagonal(wins, 0.0)
    seen = (wins + wins.T).sum(axis=1) > 0
    if not seen.any():
        return {}
    strengths = _bradley_terry(wins[np.ix_(seen, seen)])
    kept = [label for label, keep in zip(labels, seen, strict=True) if keep]
    return {label: float(p) for label, p in zip(kept, strengths, strict=True)}


def preference_bias(preferences: Mapping[str, float]) -> float:
    """Return B: the population standard deviation of the preferences p_i (Kang et al. 2024).

    With p_i averaging 1, B is 0 for a model that favours no strategy and sqrt(k - 1) for one
    that only ever says one of k strategies. No preferences (no confusions) give 0.0.
    """
    if not preferences:
        return 0.0
    return float(np.std(np.fromiter(preferences.values(), dtype=float)))


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct-n (Li et al. 2016): distinct n-grams / all n-grams over the whole corpus.

    Tokens come from a lowercased whitespace split; n-grams never cross two texts. Returns
    0.0 when there are no n-grams.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    grams: list[tuple[str, ...]] = []
    for text in texts:
        tokens = text.lower().split()
        grams.extend(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return len(set(grams)) / len(grams) if grams else 0.0


def mentions_any(text: str, words: Collection[str]) -> bool:
    """Say whether any word or phrase occurs in text as a whole word, in any case.

    Whole word means no letter, digit or underscore right before or after ("23" is not in
    "2023"); spaces inside a phrase match any run of whitespace. Blank entries are ignored.
    """
    for word in words:
        parts = word.split()
        if not parts:
            continue
        pattern = r"(?<!\w)" + r"\s+".join(map(re.escape, parts)) + r"(?!\w)"
        if re.search(pattern, text, flags=re.IGNORECASE):
            return True
    return False


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float | None:
    """Return the share of the relevant items found in the top k, or None if none is relevant."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    wanted = set(relevant)
    if not wanted:
        return None
    return len(wanted & set(ranked[:k])) / len(wanted)


def trait_error(inferred: Mapping[str, float], truth: Mapping[str, float]) -> TraitError:
    """Compare inferred trait values with the true ones.

    Returns `mae` (mean absolute error over traits present in both; NaN if none), `n` (how
    many were compared) and `missing` (true traits not inferred, sorted).
    """
    shared = sorted(set(inferred) & set(truth))
    errors = [abs(float(inferred[t]) - float(truth[t])) for t in shared]
    return {
        "mae": sum(errors) / len(errors) if errors else math.nan,
        "n": len(shared),
        "missing": sorted(set(truth) - set(inferred)),
    }


def _bradley_terry(wins: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fit Bradley-Terry strengths (mean 1): 0 for beaten groups, MM within the others."""
    count, group = connected_components(wins > 0, directed=True, connection="strong")
    beaten = {group[j] for i, j in zip(*np.nonzero(wins), strict=True) if group[i] != group[j]}
    strengths = np.zeros(len(wins))
    for unbeaten in sorted(set(range(count)) - beaten):
        members = np.flatnonzero(group == unbeaten)
        strengths[members] = _zermelo(wins[np.ix_(members, members)])
    return strengths * (len(wins) / float(strengths.sum()))


def _zermelo(wins: NDArray[np.float64]) -> NDArray[np.float64]:
    """Run the MM iteration on a strongly connected wins matrix; return strengths of mean 1."""
    size = len(wins)
    games = wins + wins.T
    won = wins.sum(axis=1)
    strengths = np.ones(size)
    if size == 1:
        return strengths
    for _ in range(BT_MAX_ROUNDS):
        pair = strengths[:, None] + strengths[None, :]
        rate = np.divide(games, pair, out=np.zeros_like(games), where=(games > 0) & (pair > 0))
        spread = rate.sum(axis=1)
        fitted = np.divide(won, spread, out=np.zeros_like(won), where=spread > 0)
        fitted *= size / fitted.sum()
        moved = float(np.max(np.abs(fitted - strengths)))
        strengths = fitted
        if moved < BT_TOLERANCE:
            break
    return strengths


def _confusion(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> NDArray[np.int_]:
    """Count items by (gold, predicted) in `labels` order; predictions outside it are left out."""
    index = {label: position for position, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=int)
    for truth, guess in zip(gold, predicted, strict=True):
        if guess in index:
            counts[index[truth], index[guess]] += 1
    return counts


def _support(gold: Sequence[str], labels: Sequence[str]) -> NDArray[np.int_]:
    """Count gold items per label, in `labels` order."""
    tally = Counter(gold)
    return np.array([tally[label] for label in labels], dtype=int)


def _f1_scores(counts: NDArray[np.int_], support: NDArray[np.int_]) -> tuple[float, float]:
    """Return macro and weighted F1 over the labels seen in gold or predictions.

    Same numbers as scikit-learn's `f1_score(labels=<those labels>, zero_division=0)`:
    F1 = 2 TP / (gold + predicted) per label, then the plain mean (macro) or the mean
    weighted by gold support (weighted). Computed from counts because bootstrap and
    permutation tests call it thousands of times and scikit-learn's input checks cost ~5 ms.
    """
    sizes = support + counts.sum(axis=0)
    seen = sizes > 0
    f1 = 2 * np.diag(counts)[seen] / sizes[seen]
    weights = support[seen]
    weighted = float(f1 @ weights / weights.sum()) if weights.sum() else 0.0
    return float(f1.mean()), weighted


def _as_label_list(labels: Collection[str], index: int) -> list[str]:
    """Return an item's gold labels as a list in a stable order (see `emotion_scores`)."""
    if isinstance(labels, str):
        return [labels]
    options = list(labels) if isinstance(labels, Sequence) else sorted(labels)
    if not options:
        raise ValueError(f"item {index} has no gold labels; give it at least one")
    return options


def _check_lengths(gold: Sequence[object], predicted: Sequence[object]) -> None:
    """Raise ValueError unless there is exactly one prediction per gold item."""
    if len(gold) != len(predicted):
        raise ValueError(
            f"{len(gold)} gold items but {len(predicted)} predictions; give one per item"
        )
