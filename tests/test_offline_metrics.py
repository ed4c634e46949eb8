"""Offline metrics on hand-computed cases: the expected numbers are worked out in comments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from eval.offline.metrics import (
    distinct_n,
    emotion_scores,
    mentions_any,
    normalize_tokens,
    preference_bias,
    recall_at_k,
    span_f1,
    strategy_preferences,
    strategy_scores,
    trait_error,
)

ABC = ["A", "B", "C"]


def items_from(confusion: list[list[int]], labels: list[str]) -> tuple[list[str], list[str]]:
    """Expand a confusion matrix (rows gold, columns predicted) into gold/predicted lists."""
    gold, predicted = [], []
    for row, truth in enumerate(labels):
        for column, guess in enumerate(labels):
            gold += [truth] * confusion[row][column]
            predicted += [guess] * confusion[row][column]
    return gold, predicted


def test_normalize_tokens_drops_case_punctuation_and_articles() -> None:
    assert normalize_tokens("The cat, an owl & A  dog!") == ["cat", "owl", "dog"]
    assert normalize_tokens("theory") == ["theory"]  # "the" only as a whole word


def test_span_f1_on_hand_cases() -> None:
    # gold -> cat sat on mat (4), predicted -> cat on mat (3); overlap 3:
    # P = 3/3, R = 3/4, F1 = 2 * 1 * 0.75 / 1.75 = 6/7
    assert span_f1("the cat sat on the mat", "a cat on a mat!") == pytest.approx(6 / 7)
    # Counter overlap: "ha" counted once. P = 1/1, R = 1/3, F1 = 2 * (1/3) / (4/3) = 1/2
    assert span_f1("ha ha ha", "ha") == pytest.approx(0.5)
    assert span_f1("", "the") == 1.0  # both normalise to nothing
    assert span_f1("", "cat") == 0.0
    assert span_f1("cat", "") == 0.0
    assert span_f1("lost my job", "the weather") == 0.0


def test_emotion_scores_multi_label() -> None:
    gold = [["joy", "love"], ["anger"], ("sadness", "fear"), {"joy"}]
    predicted = ["love", "fear", "fear", "sadness"]
    # Effective gold: love (hit), anger (miss), fear (hit), joy (miss) -> accuracy 2/4.
    # Labels present: anger, fear, joy, love, sadness.
    #   love:    TP 1, 1 predicted, 1 gold          -> F1 1
    #   fear:    TP 1, 2 predicted, 1 gold          -> P 1/2, R 1, F1 2/3
    #   anger, joy (never predicted), sadness (never gold) -> F1 0
    # macro = (1 + 2/3) / 5 = 1/3
    scores = emotion_scores(gold, predicted)
    assert scores["accuracy"] == 0.5
    assert scores["macro_f1"] == pytest.approx(1 / 3)
    assert scores["n"] == 4


def test_emotion_scores_first_gold_label_of_a_set_is_alphabetical() -> None:
    # Miss on {"sadness", "fear"}: effective gold is "fear" -> "fear" F1 0, "joy" F1 0.
    scores = emotion_scores([{"sadness", "fear"}, "joy"], ["joy", "joy"])
    assert scores["accuracy"] == 0.5
    # labels fear, joy: joy TP 1, predicted 2, gold 1 -> F1 2/3; fear -> 0; macro 1/3
    assert scores["macro_f1"] == pytest.approx(1 / 3)


def test_emotion_scores_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="2 gold items but 1 predictions"):
        emotion_scores([["joy"], ["anger"]], ["joy"])
    with pytest.raises(ValueError, match="item 0 has no gold labels"):
        emotion_scores([[]], ["joy"])
    assert math.isnan(emotion_scores([], [])["accuracy"])


def test_strategy_scores_q_and_b_on_a_hand_made_confusion() -> None:
    # Rows gold, columns predicted. Off-diagonal wins w_ij = confusion[j][i]:
    #   w_AB = 2, w_BA = 1;  w_AC = 4, w_CA = 1;  w_BC = 2, w_CB = 1.
    # Each pair's win share equals p_i / (p_i + p_j) for p proportional to (4, 2, 1):
    #   A-B 2/3 = 4/6, A-C 4/5 = 4/5, B-C 2/3 = 2/3, so that p solves the BT likelihood
    #   equations exactly. Mean-1 scale (sum 3): p = (12/7, 6/7, 3/7).
    #   B = population SD = sqrt(((5/7)^2 + (1/7)^2 + (4/7)^2) / 3) = sqrt(42/147) = sqrt(2/7).
    confusion = [[5, 1, 1], [2, 5, 1], [4, 2, 5]]
    # Q: column sums (predicted) 11, 8, 7; row sums (gold) 7, 8, 11; TP 5 each.
    #   F1_A = 2*5/(11+7) = 5/9, F1_B = 10/16 = 5/8, F1_C = 10/18 = 5/9
    #   Q = (5/9 + 5/8 + 5/9) / 3 = 125/216; weighted = (7*5/9 + 8*5/8 + 11*5/9)/26 = 15/26
    gold, predicted = items_from(confusion, ABC)
    scores = strategy_scores(gold, predicted, ABC)
    assert scores["confusion"] == confusion
    assert scores["accuracy"] == pytest.approx(15 / 26)
    assert scores["macro_f1"] == pytest.approx(125 / 216)
    assert scores["weighted_f1"] == pytest.approx(15 / 26)
    assert scores["preference"] == pytest.approx({"A": 12 / 7, "B": 6 / 7, "C": 3 / 7})
    assert scores["bias"] == pytest.approx(math.sqrt(2 / 7))
    assert scores["n"] == 26
    assert scores["invalid"] == 0


def test_two_strategies_have_the_closed_form_ratio() -> None:
    # w_12 = 3 (said "A" where gold "B"), w_21 = 1. MLE: p1 / (p1 + p2) = 3/4 -> p1/p2 = 3.
    # Mean 1: p = (1.5, 0.5); B = population SD = 0.5.
    preferences = strategy_preferences([[9, 1], [3, 9]], ["A", "B"])
    assert preferences == pytest.approx({"A": 1.5, "B": 0.5})
    assert preference_bias(preferences) == pytest.approx(0.5)


def test_unbiased_model_has_no_bias() -> None:
    # Symmetric confusions: w_ij = w_ji for every pair -> all p_i equal -> B = 0.
    confusion = [[10, 3, 2, 1], [3, 10, 4, 2], [2, 4, 10, 5], [1, 2, 5, 10]]
    preferences = strategy_preferences(confusion, ["A", "B", "C", "D"])
    assert preferences == pytest.approx(dict.fromkeys("ABCD", 1.0))
    assert preference_bias(preferences) == pytest.approx(0.0, abs=1e-9)


def test_always_one_strategy_is_the_largest_bias() -> None:
    # Always "A": A wins every comparison, B and C never win -> p = (3, 0, 0),
    # B = sqrt(((3-1)^2 + 1 + 1) / 3) = sqrt(2) = sqrt(k - 1).
    gold = ["A"] * 4 + ["B"] * 5 + ["C"] * 6
    scores = strategy_scores(gold, ["A"] * len(gold), ABC)
    assert scores["preference"] == pytest.approx({"A": 3.0, "B": 0.0, "C": 0.0})
    assert scores["bias"] == pytest.approx(math.sqrt(2))
    assert scores["accuracy"] == pytest.approx(4 / 15)


def test_fit_solves_the_bradley_terry_likelihood_equations() -> None:
    # At the maximum, each strategy's wins equal its expected wins:
    #   sum_j w_ij = sum_j (w_ij + w_ji) * p_i / (p_i + p_j)
    rng = np.random.default_rng(0)
    confusion = rng.integers(1, 30, (8, 8)) + np.diag(rng.integers(20, 80, 8))
    labels = [f"s{i}" for i in range(8)]
    p = np.array(list(strategy_preferences(confusion, labels).values()))
    wins = confusion.T - np.diag(np.diag(confusion))
    expected = ((wins + wins.T) * p[:, None] / (p[:, None] + p[None, :])).sum(axis=1)
    assert expected == pytest.approx(wins.sum(axis=1), rel=1e-8)
    assert p.mean() == pytest.approx(1.0)


def test_a_group_that_never_wins_is_set_to_zero() -> None:
    # w_AB = 3, w_AC = 1, w_BC = 1, and neither B nor C ever beats A: Ford's condition fails,
    # the likelihood grows as p_B, p_C -> 0 relative to p_A. So p = (3, 0, 0), B = sqrt(2).
    preferences = strategy_preferences([[5, 0, 0], [3, 5, 0], [1, 1, 5]], ABC)
    assert preferences == {"A": 3.0, "B": 0.0, "C": 0.0}
    # Two groups, A-B and C-D, never confused with each other: each is fitted on its own.
    # A-B as the two-strategy case (3 : 1), C-D symmetric (1 : 1); overall mean 1.
    split = [[9, 1, 0, 0], [3, 9, 0, 0], [0, 0, 9, 2], [0, 0, 2, 9]]
    assert strategy_preferences(split, ["A", "B", "C", "D"]) == pytest.approx(
        {"A": 1.5, "B": 0.5, "C": 1.0, "D": 1.0}
    )


def test_f1_scores_equal_scikit_learns() -> None:
    rng = np.random.default_rng(3)
    labels = ["a", "b", "c", "d", "e"]
    gold = list(rng.choice(labels[:4], 60))
    predicted = list(rng.choice([*labels, "junk"], 60))
    present = [x for x in labels if x in set(gold) | set(predicted)]
    scores = strategy_scores(gold, predicted, labels)
    for average in ("macro", "weighted"):
        expected = f1_score(gold, predicted, labels=present, average=average, zero_division=0)
        assert scores[f"{average}_f1"] == pytest.approx(expected)  # type: ignore[literal-required]
    emotions = emotion_scores([[g] for g in gold], predicted)
    assert emotions["macro_f1"] == pytest.approx(
        f1_score(gold, predicted, average="macro", zero_division=0)
    )


def test_a_strategy_without_evidence_is_left_out() -> None:
    # "C" is in no off-diagonal cell; A and B as in the two-strategy case.
    preferences = strategy_preferences([[9, 1, 0], [3, 9, 0], [0, 0, 7]], ABC)
    assert preferences == pytest.approx({"A": 1.5, "B": 0.5})
    assert strategy_preferences([[4, 0], [0, 6]], ["A", "B"]) == {}
    assert preference_bias({}) == 0.0


def test_strategy_scores_handles_invalid_predictions_and_bad_gold() -> None:
    scores = strategy_scores(["A", "B"], ["A", "banana"], ABC)
    assert scores["invalid"] == 1
    assert scores["accuracy"] == 0.5
    assert scores["confusion"] == [[1, 0, 0], [0, 0, 0], [0, 0, 0]]
    # Present labels A, B: F1_A = 1, F1_B = 0 (missed) -> Q = 1/2
    assert scores["macro_f1"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"\['Z'\] are not in labels"):
        strategy_scores(["Z"], ["A"], ABC)
    with pytest.raises(ValueError, match="expected 3x3"):
        strategy_preferences([[1, 2], [3, 4]], ABC)


def test_preference_fit() -> None:
    """The preferred / disliked / acceptable share of a reply item (eval.offline.results)."""
    from eval.offline.items import ReplyItem
    from eval.offline.measures import strategy_in

    item = ReplyItem(task="reply", id="r", user="u", message="m",
                     gold={"preferred": ["Question"], "disliked": ["Information"]})  # fmt: skip
    fit = {name: strategy_in(name) for name in ("preferred", "disliked", "acceptable")}
    asked = {"strategy": "Question"}
    assert fit["preferred"](item, asked, None) == 1.0  # type: ignore[arg-type]
    assert fit["disliked"](item, asked, None) == 0.0  # type: ignore[arg-type]
    assert fit["preferred"](item, {"strategy": None}, None) is None  # type: ignore[arg-type]
    assert fit["acceptable"](item, asked, None) is None  # no such list  # type: ignore[arg-type]
    told = {"strategy": "Information"}
    assert fit["disliked"](item, told, None) == 1.0  # type: ignore[arg-type]


def test_distinct_n_over_the_corpus() -> None:
    texts = ["I am fine", "I am sad"]
    # unigrams: i am fine i am sad -> 4 distinct / 6
    assert distinct_n(texts, 1) == pytest.approx(4 / 6)
    # bigrams: (i am) (am fine) (i am) (am sad) -> 3 / 4; none crosses the two texts
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)
    assert distinct_n(texts, 3) == 1.0
    assert distinct_n(texts, 4) == 0.0
    assert distinct_n([], 1) == 0.0
    with pytest.raises(ValueError):
        distinct_n(texts, 0)


def test_mentions_any_matches_whole_words_in_any_case() -> None:
    assert not mentions_any("It was 2023 when we met", ["23"])
    assert mentions_any("It was '23 when we met", ["23"])
    assert mentions_any("My dog Biscuit ran off.", ["biscuit"])
    assert not mentions_any("Biscuits for breakfast", ["biscuit"])
    assert mentions_any("She moved to New\n York last May", ["new york"])
    assert mentions_any("I called Dr. Lee", ["dr. lee"])
    assert not mentions_any("anything", ["", "  "])


def test_recall_at_k() -> None:
    ranked = ["m3", "m1", "m7", "m2"]
    assert recall_at_k(ranked, {"m1", "m2"}, 2) == 0.5
    assert recall_at_k(ranked, {"m1", "m2"}, 4) == 1.0
    assert recall_at_k(ranked, ["m9"], 10) == 0.0
    assert recall_at_k(ranked, set(), 3) is None
    with pytest.raises(ValueError):
        recall_at_k(ranked, {"m1"}, 0)


def test_trait_error() -> None:
    # shared: openness |0.8 - 0.5| = 0.3, warmth |0.2 - 0.4| = 0.2 -> MAE 0.25
    error = trait_error(
        {"openness": 0.8, "warmth": 0.2, "humour": 0.9},
        {"openness": 0.5, "warmth": 0.4, "neuroticism": 0.1, "calm": 0.6},
    )
    assert error["mae"] == pytest.approx(0.25)
    assert error["n"] == 2
    assert error["missing"] == ["calm", "neuroticism"]
    nothing = trait_error({}, {"openness": 0.5})
    assert math.isnan(nothing["mae"]) and nothing["n"] == 0
