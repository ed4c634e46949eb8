"""Uncertainty and agreement: bootstrap intervals, paired tests, judge-human alignment.

All three work over benchmark *items*, so a corpus metric (macro-F1, preference bias) is
resampled as a whole, not averaged per item:

- `bootstrap_ci(n, statistic)`: `statistic(indices)` computes the metric on the items at
  those indices; the percentile bootstrap resamples the indices.
- `paired_test(a, b, metric)`: `a[i]` and `b[i]` are system A's and system B's records for
  item i (a score, or a (gold, predicted) pair, anything `metric` understands); the
  permutation test swaps each pair at random and compares metric(A) - metric(B).
- `alignment(judge, human)`: how far an LLM judge's scores track human ones.

Degenerate data (too few items, constant values) gives NaN, never an exception; scipy's
warnings about it are silenced. Inputs that cannot be paired (lengths differ, NaN scores)
raise `ValueError`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy import stats

Record = TypeVar("Record")
Indices = NDArray[np.intp]

_NAN_PAIR = (math.nan, math.nan)


@dataclass(frozen=True)
class Alignment:
    """Agreement between judge and human scores on the same items (judge minus human).

    Standard deviations are sample ones (ddof=1). `cohens_d` uses the pooled SD of the two
    score sets, the effect size Roshanaei et al. report for human vs GPT-4o ratings.
    Anything undefined on the data (n < 2, a constant side) is NaN.
    """

    n: int
    judge_mean: float
    judge_std: float
    human_mean: float
    human_std: float
    pearson_r: float
    pearson_t: float
    pearson_p: float
    spearman_rho: float
    spearman_p: float
    cohens_d: float
    wasserstein: float
    paired_t: float
    paired_p: float

    def as_dict(self) -> dict[str, float | int]:
        """Return the fields as a plain dict, in declaration order."""
        return asdict(self)


def bootstrap_ci(
    n: int,
    statistic: Callable[[Indices], float],
    *,
    seed: int,
    resamples: int = 2000,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Return a percentile-bootstrap confidence interval for a statistic over n items.

    Resamples item indices with replacement (`scipy.stats.bootstrap`, method "percentile")
    and calls `statistic(indices)` on each resample. Returns (nan, nan) when n < 2, when the
    statistic is not finite on the full data or on any resample, or when every resample
    gives the same value: a zero-width interval would claim a certainty the bootstrap
    cannot give (e.g. 30 of 30 right).
    """
    if n < 2:
        return _NAN_PAIR
    indices = np.arange(n)
    with _quiet():
        if not math.isfinite(statistic(indices)):
            return _NAN_PAIR
        result = stats.bootstrap(
            (indices,),
            statistic,
            vectorized=False,
            method="percentile",
            n_resamples=resamples,
            confidence_level=confidence,
            random_state=np.random.default_rng(seed),
        )
    spread = np.asarray(result.bootstrap_distribution, dtype=float)
    if not np.isfinite(spread).all() or np.ptp(spread) == 0:
        return _NAN_PAIR
    low, high = result.confidence_interval
    return float(low), float(high)


def paired_test(
    a: Sequence[Record],
    b: Sequence[Record],
    metric: Callable[[Sequence[Record]], float],
    *,
    seed: int,
    resamples: int = 2000,
) -> float:
    """Return the two-sided p-value of a paired permutation test of system A against B.

    `a[i]` and `b[i]` are the two systems' records for item i; `metric` turns a list of
    records into one number (a mean of scores, or macro-F1 of (gold, predicted) pairs). The
    observed statistic is metric(a) - metric(b); under the null each item's pair may swap
    (`scipy.stats.permutation_test`, permutation_type="samples", exact when 2**n <=
    resamples). Returns NaN when n < 2 or the observed difference is not finite.
    """
    if len(a) != len(b):
        raise ValueError(f"system A has {len(a)} items but B has {len(b)}; pair them per item")
    n = len(a)
    if n < 2:
        return math.nan
    records = [*a, *b]

    def difference(first: Indices, second: Indices) -> float:
        return metric([records[i] for i in first]) - metric([records[i] for i in second])

    sides = (np.arange(n), np.arange(n, 2 * n))
    with _quiet():
        if not math.isfinite(difference(*sides)):
            return math.nan
        result = stats.permutation_test(
            sides,
            difference,
            permutation_type="samples",
            vectorized=False,
            n_resamples=resamples,
            alternative="two-sided",
            random_state=np.random.default_rng(seed),
        )
    return float(result.pvalue)


def alignment(judge: Sequence[float], human: Sequence[float]) -> Alignment:
    """Compare a judge's scores with human scores on the same items.

    Pearson r with t = r * sqrt((n - 2) / (1 - r^2)) and its p (`scipy.stats.pearsonr`),
    Spearman rho and p, Cohen's d of judge minus human (pooled SD), the Wasserstein distance
    between the two score distributions, and a paired t-test (`scipy.stats.ttest_rel`).
    Raises ValueError if the lengths differ or a score is NaN.
    """
    return _align(*_paired_arrays(judge, human))


def alignment_by_level(judge: Sequence[float], human: Sequence[float]) -> dict[str, Alignment]:
    """Return `alignment` overall ("all") and for each distinct human score ("0", "1", ...).

    Within one level the human side is constant, so correlations there are NaN by design;
    the means, Cohen's d and Wasserstein distance still say how the judge drifts.
    """
    scored, truth = _paired_arrays(judge, human)
    levels = {f"{level:g}": truth == level for level in sorted(set(truth.tolist()))}
    by_level = {key: _align(scored[mask], truth[mask]) for key, mask in levels.items()}
    return {"all": _align(scored, truth), **by_level}


def _align(scored: NDArray[np.float64], truth: NDArray[np.float64]) -> Alignment:
    """Compute every `Alignment` field for two paired score arrays."""
    with _quiet():
        return Alignment(
            n=len(scored),
            judge_mean=_mean(scored),
            judge_std=_std(scored),
            human_mean=_mean(truth),
            human_std=_std(truth),
            **_correlations(scored, truth),
            cohens_d=_cohens_d(scored, truth),
            wasserstein=_wasserstein(scored, truth),
            **_paired_t(scored, truth),
        )


def _paired_arrays(
    judge: Sequence[float], human: Sequence[float]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return both score lists as float arrays, or raise ValueError if they cannot pair."""
    scored, truth = np.asarray(judge, dtype=float), np.asarray(human, dtype=float)
    if scored.shape != truth.shape or scored.ndim != 1:
        raise ValueError(
            f"judge has {scored.shape} scores but human has {truth.shape}; give one each per item"
        )
    if np.isnan(scored).any() or np.isnan(truth).any():
        raise ValueError("scores contain NaN; drop the unscored items from both lists first")
    return scored, truth


def _mean(values: NDArray[np.float64]) -> float:
    """Return the mean, NaN for no values."""
    return float(values.mean()) if len(values) else math.nan


def _std(values: NDArray[np.float64]) -> float:
    """Return the sample standard deviation, NaN for fewer than two values."""
    return float(values.std(ddof=1)) if len(values) >= 2 else math.nan


def _correlations(judge: NDArray[np.float64], human: NDArray[np.float64]) -> dict[str, float]:
    """Return Pearson r, t and p and Spearman rho and p (NaN where undefined)."""
    if len(judge) < 2:
        return dict.fromkeys(
            ("pearson_r", "pearson_t", "pearson_p", "spearman_rho", "spearman_p"), math.nan
        )
    pearson = stats.pearsonr(judge, human)
    spearman = stats.spearmanr(judge, human)
    r = float(pearson.statistic)
    return {
        "pearson_r": r,
        "pearson_t": _pearson_t(r, len(judge)),
        "pearson_p": float(pearson.pvalue),
        "spearman_rho": float(spearman.statistic),
        "spearman_p": float(spearman.pvalue),
    }


def _pearson_t(r: float, n: int) -> float:
    """Return t = r * sqrt((n - 2) / (1 - r^2)): infinite for |r| = 1, NaN if n < 3."""
    if n < 3 or math.isnan(r):
        return math.nan
    if abs(r) >= 1.0:
        return math.copysign(math.inf, r)
    return r * math.sqrt((n - 2) / (1 - r * r))


def _cohens_d(judge: NDArray[np.float64], human: NDArray[np.float64]) -> float:
    """Return (mean judge - mean human) / pooled SD; NaN if n < 2 or both sides constant."""
    if len(judge) < 2:
        return math.nan
    pooled = math.sqrt((judge.var(ddof=1) + human.var(ddof=1)) / 2)
    return float(judge.mean() - human.mean()) / pooled if pooled > 0 else math.nan


def _wasserstein(judge: NDArray[np.float64], human: NDArray[np.float64]) -> float:
    """Return the 1-Wasserstein distance between the score distributions, NaN if empty."""
    return float(stats.wasserstein_distance(judge, human)) if len(judge) else math.nan


def _paired_t(judge: NDArray[np.float64], human: NDArray[np.float64]) -> dict[str, float]:
    """Return the paired t-test's t and p (NaN if n < 2 or the two sides are identical)."""
    if len(judge) < 2:
        return {"paired_t": math.nan, "paired_p": math.nan}
    result = stats.ttest_rel(judge, human)
    return {"paired_t": float(result.statistic), "paired_p": float(result.pvalue)}


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence scipy's and numpy's warnings about degenerate data, which we report as NaN."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        for category in (
            stats.DegenerateDataWarning,
            stats.ConstantInputWarning,
            stats.NearConstantInputWarning,
            RuntimeWarning,
        ):
            warnings.simplefilter("ignore", category)
        yield
