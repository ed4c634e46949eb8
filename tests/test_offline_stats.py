"""Offline statistics: scipy-checked alignment, NaN on degenerate data, bootstrap, paired tests."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from statistics import fmean

import numpy as np
import pytest
from scipy import stats as scipy_stats

from eval.offline.metrics import strategy_scores
from eval.offline.stats import (
    Alignment,
    alignment,
    alignment_by_level,
    bootstrap_ci,
    paired_test,
)

JUDGE = [2.0, 1.0, 2.0, 0.0, 1.0, 2.0, 1.0, 0.0, 2.0, 1.0]
HUMAN = [2.0, 1.0, 1.0, 0.0, 1.0, 2.0, 2.0, 0.0, 1.0, 0.0]


def test_alignment_matches_scipy_and_the_hand_formula() -> None:
    found = alignment(JUDGE, HUMAN)
    r, p = scipy_stats.pearsonr(JUDGE, HUMAN)
    rho, rho_p = scipy_stats.spearmanr(JUDGE, HUMAN)
    t, t_p = scipy_stats.ttest_rel(JUDGE, HUMAN)
    n = len(JUDGE)
    assert found.n == n
    assert found.pearson_r == pytest.approx(r)
    assert found.pearson_p == pytest.approx(p)
    assert found.pearson_t == pytest.approx(r * math.sqrt((n - 2) / (1 - r**2)))
    assert found.spearman_rho == pytest.approx(rho)
    assert found.spearman_p == pytest.approx(rho_p)
    assert found.paired_t == pytest.approx(t)
    assert found.paired_p == pytest.approx(t_p)
    assert found.wasserstein == pytest.approx(scipy_stats.wasserstein_distance(JUDGE, HUMAN))
    # Means: judge 12/10, human 10/10. Sample variances: judge sum (x - 1.2)^2 = 5.6 -> 5.6/9,
    # human sum (x - 1)^2 = 6 -> 6/9. Pooled SD = sqrt((5.6/9 + 6/9) / 2) = sqrt(11.6/18).
    assert found.judge_mean == pytest.approx(1.2)
    assert found.human_mean == pytest.approx(1.0)
    assert found.judge_std == pytest.approx(math.sqrt(5.6 / 9))
    assert found.human_std == pytest.approx(math.sqrt(6 / 9))
    assert found.cohens_d == pytest.approx(0.2 / math.sqrt(11.6 / 18))


def test_alignment_as_dict_lists_every_field() -> None:
    found = alignment(JUDGE, HUMAN).as_dict()
    assert list(found) == [field for field in Alignment.__dataclass_fields__]
    assert found["n"] == 10


def test_alignment_gives_nan_not_errors_on_degenerate_data() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may leak out either
        one = alignment([1.0], [2.0])
        constant = alignment([1.0, 1.0, 1.0], [0.0, 1.0, 2.0])
        empty = alignment([], [])
    assert one.n == 1 and one.judge_mean == 1.0 and one.wasserstein == 1.0
    assert all(math.isnan(getattr(one, f)) for f in ("judge_std", "pearson_r", "cohens_d"))
    assert math.isnan(constant.pearson_r) and math.isnan(constant.spearman_rho)
    assert constant.cohens_d == pytest.approx(0.0)  # equal means, human SD > 0
    assert empty.n == 0 and math.isnan(empty.judge_mean) and math.isnan(empty.wasserstein)


def test_alignment_refuses_unpaired_scores() -> None:
    with pytest.raises(ValueError, match="one each per item"):
        alignment([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        alignment([1.0, math.nan], [1.0, 2.0])


def test_alignment_by_level_splits_on_the_human_score() -> None:
    levels = alignment_by_level(JUDGE, HUMAN)
    assert list(levels) == ["all", "0", "1", "2"]
    assert levels["all"] == alignment(JUDGE, HUMAN)
    # human 0 at items 3, 7, 9 -> judge 0, 0, 1
    assert levels["0"].n == 3
    assert levels["0"].judge_mean == pytest.approx(1 / 3)
    assert math.isnan(levels["0"].pearson_r)  # human constant within a level
    assert levels["2"].n == 3 and levels["2"].judge_mean == pytest.approx(5 / 3)


def test_bootstrap_ci_contains_the_mean_and_is_reproducible() -> None:
    values = np.array([3.0, 5.0, 4.0, 6.0, 2.0, 5.0, 4.0, 7.0, 3.0, 5.0, 4.0, 6.0])

    def mean_of(indices: np.ndarray) -> float:
        return float(values[indices].mean())

    low, high = bootstrap_ci(len(values), mean_of, seed=7, resamples=999)
    assert low < values.mean() < high
    assert bootstrap_ci(len(values), mean_of, seed=7, resamples=999) == (low, high)
    assert bootstrap_ci(len(values), mean_of, seed=8, resamples=999) != (low, high)


def test_bootstrap_ci_resamples_items_for_corpus_metrics() -> None:
    gold = ["a", "b", "c", "a", "b", "c", "a", "b"]
    guess = ["a", "b", "a", "a", "c", "c", "a", "b"]

    def macro(indices: np.ndarray) -> float:
        picked = [gold[i] for i in indices], [guess[i] for i in indices]
        return strategy_scores(*picked, ["a", "b", "c"])["macro_f1"]

    low, high = bootstrap_ci(len(gold), macro, seed=1, resamples=499)
    assert 0.0 <= low <= macro(np.arange(len(gold))) <= high <= 1.0


def test_bootstrap_ci_is_nan_when_degenerate() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        single = bootstrap_ci(1, lambda idx: 1.0, seed=0, resamples=99)
        constant = bootstrap_ci(20, lambda idx: 1.0, seed=0, resamples=99)
        undefined = bootstrap_ci(20, lambda idx: math.nan, seed=0, resamples=99)
    for low, high in (single, constant, undefined):
        assert math.isnan(low) and math.isnan(high)


def test_paired_test_separates_different_systems_only() -> None:
    better = [0.9, 0.8, 0.95, 0.85, 0.9, 0.7, 0.88, 0.92, 0.81, 0.86, 0.9, 0.93]
    worse = [score - 0.4 for score in better]
    # Every item favours A: only the all-unswapped and all-swapped labellings are as
    # extreme, so the exact two-sided p is 2 / 2^12.
    assert paired_test(better, worse, fmean, seed=0, resamples=999) < 0.01
    assert paired_test(better, list(better), fmean, seed=0, resamples=999) == 1.0


def test_paired_test_takes_records_for_corpus_metrics() -> None:
    gold = ["a", "b", "c"] * 6
    right = [(g, g) for g in gold]
    always_a = [(g, "a") for g in gold]

    def macro(records: Sequence[tuple[str, str]]) -> float:
        truths, guesses = zip(*records, strict=True)
        return strategy_scores(truths, guesses, ["a", "b", "c"])["macro_f1"]

    assert paired_test(right, always_a, macro, seed=0, resamples=499) < 0.05
    assert paired_test(right, list(right), macro, seed=0, resamples=499) == 1.0


def test_paired_test_nan_and_errors() -> None:
    assert math.isnan(paired_test([1.0], [0.0], fmean, seed=0))
    assert math.isnan(paired_test([1.0, 2.0], [0.0, 1.0], lambda r: math.nan, seed=0))
    with pytest.raises(ValueError, match="pair them per item"):
        paired_test([1.0, 2.0], [1.0], fmean, seed=0)
