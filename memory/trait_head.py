"""The trait head: which pole of openness, conscientiousness, extraversion and agreeableness each
clause of a message shows, from its all-MiniLM-L6-v2 vector (evidence kind "head").

Per trait a three-way linear classifier (high, low, neither: multinomial logistic regression,
`eval/train_trait_head.py`): the high and low classes are short first-person statements that the
language model wrote from each pole's description (`eval/data/trait_statements.json`, never from
our simulation's events) and the prototype statements (`trait_prototypes.toml`); "neither" is
real ESConv validation seekers' sentences (half "a") and the other traits' statements. The
per-sentence prototypes are nearest-neighbour reads of four statements a pole and cannot tell
"I missed a deadline" from "I met my deadline" (both are about deadlines); a classifier trained
on a few hundred statements against real seekers' words weighs what sets the poles apart, and
"neither" keeps a worry or a request from reading as a trait. Neuroticism is not read here: real
seekers' sentences, the "neither" class, are mostly worry, so the head learns worry as no trait;
the prototypes read it (README, user model, ninth pass).

One evidence row per message and trait: the signal is the mean of P(high) / (P(high) + P(low))
over the message's clauses, each weighed by (P(high) + P(low))^2 (how sure the head is that the
clause shows the trait at all); the row weighs `HEAD_WEIGHT` times the sum of those weights.
Without the weights file (`trait_head.npz`) there is no head and no row.

Exceptions: `TraitHeadError` for a weights file that does not fit (retrain it).
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from memory.errors import MemoryLayerError

HEAD_FILE = Path(__file__).with_name("trait_head.npz")
HEAD_TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness")
HEAD_WEIGHT = 1.0
CLASSES = ("high", "low", "neither")


class TraitHeadError(MemoryLayerError, ValueError):
    """A trait head weights file that does not fit this code."""


@dataclass(frozen=True)
class Reading:
    trait: str
    signal: float  # in [0, 1]: the high side's share
    weight: float


@dataclass(frozen=True)
class TraitHead:
    traits: tuple[str, ...]
    weights: NDArray[np.float32]  # (traits, classes, dimensions)
    biases: NDArray[np.float32]  # (traits, classes)

    def probabilities(self, vectors: NDArray[np.float32]) -> NDArray[np.float32]:
        """P(high, low, neither) per trait and vector: shape (traits, vectors, 3)."""
        if vectors.ndim != 2 or vectors.shape[1] != self.weights.shape[2]:
            raise TraitHeadError(
                f"The trait head reads {self.weights.shape[2]}-d sentence vectors, not "
                f"{vectors.shape}: retrain it for this embedder "
                "(`python -m eval.train_trait_head`)."
            )
        logits = np.einsum("tcd,nd->tnc", self.weights, vectors) + self.biases[:, None, :]
        logits -= logits.max(axis=-1, keepdims=True)
        exp = np.exp(logits)
        found: NDArray[np.float32] = exp / exp.sum(axis=-1, keepdims=True)
        return found

    def readings(self, vectors: NDArray[np.float32]) -> list[Reading]:
        """One reading per trait from one message's clause vectors (none where no clause shows
        it at all)."""
        if len(vectors) == 0:
            return []
        found = []
        for trait, probs in zip(self.traits, self.probabilities(vectors), strict=True):
            shows = probs[:, 0] + probs[:, 1]
            weights = shows**2
            if float(weights.sum()) <= 0.0:
                continue
            side = probs[:, 0] / np.maximum(shows, 1e-9)
            signal = float((weights * side).sum() / weights.sum())
            found.append(Reading(trait, signal, HEAD_WEIGHT * float(weights.sum())))
        return found

    def save(self, path: Path = HEAD_FILE) -> None:
        np.savez_compressed(path, traits=np.array(self.traits), weights=self.weights,
                            biases=self.biases)  # fmt: skip

    @classmethod
    def load(cls, path: Path = HEAD_FILE) -> TraitHead:
        try:
            with np.load(path, allow_pickle=False) as archive:
                traits = tuple(str(t) for t in archive["traits"])
                weights = archive["weights"].astype(np.float32)
                biases = archive["biases"].astype(np.float32)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise TraitHeadError(
                f"Cannot read the trait head {path}: {exc}. Retrain it with "
                "`python -m eval.train_trait_head` (or reinstall empathos)."
            ) from exc
        if weights.shape[:2] != (len(traits), len(CLASSES)) or biases.shape != weights.shape[:2]:
            raise TraitHeadError(
                f"{path} holds weights of shape {weights.shape} for {len(traits)} traits, not "
                f"(traits, {len(CLASSES)}, dimensions): retrain it with "
                "`python -m eval.train_trait_head`."
            )
        return cls(traits, weights, biases)


@cache
def default_head() -> TraitHead | None:
    """The shipped head, or None without its weights file."""
    return TraitHead.load() if HEAD_FILE.exists() else None


def head_readings(vectors: Sequence[NDArray[np.float32]] | NDArray[np.float32]) -> list[Reading]:
    """The head's readings of one message's clause vectors (none without a head)."""
    head = default_head()
    return head.readings(np.asarray(vectors, dtype=np.float32)) if head is not None else []
