"""The crisis head's training weights: every kind of negative is a stratum of its own."""

from __future__ import annotations

import numpy as np
import pytest

from eval.train_safety import STRATUM_WEIGHT, Units, sample_weights, simulated_messages


def test_each_negative_kind_weighs_its_share_whatever_its_size() -> None:
    kinds = ["explicit", "ours", "ours", "goemotions", "esconv", "simulated", "simulated"]
    labels = ["suicide", "none", "none", "none", "none", "none", "none"]
    units = Units(texts=list(kinds), labels=labels, groups=list(range(7)), trained=[True] * 7)
    weights = sample_weights(units, kinds)
    crisis = weights[0]
    for kind in ("ours", "goemotions", "esconv", "simulated"):
        total = weights[[i for i, k in enumerate(kinds) if k == kind]].sum()
        assert total == pytest.approx(STRATUM_WEIGHT[kind] * crisis)
    assert weights.sum() == pytest.approx(units.trained.count(True))


def test_simulated_negatives_split_by_seed_into_train_and_held_out() -> None:
    train, held_out = simulated_messages("train"), simulated_messages("held-out")
    assert train and held_out
    assert {row["seed"] for row in train}.isdisjoint({row["seed"] for row in held_out})
    assert not {row["text"] for row in train} & {row["text"] for row in held_out}
    assert all(row["group"] == "none" for row in train + held_out)
    assert np.mean([len(row["text"]) for row in held_out]) > 50
