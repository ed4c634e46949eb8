"""The emotion plug-in: a small head over frozen all-MiniLM-L6-v2 embeddings, not the LLM.

The head is a tiny numpy network trained on GoEmotions (Demszky et al., ACL 2020) by
`python -m eval.train_emotion`; it gives, for each of the 28 GoEmotions labels, the probability
that the label applies (multi-label, one sigmoid per label). Loading it needs numpy only.

A reading turns those scores into a distribution `q = p / sum(p)` over the 28 labels; the label,
`probability` and `top` come from `q`, so the scores in a reading sum to at most 1.

- valence = sum_i q_i * v_i, with v_i = +1 for the paper's positive group, -1 for its negative
  group and 0 for its ambiguous group and for neutral (see `SENTIMENT`); it lies in [-1, 1].
- intensity = sum of q_i over the non-neutral labels whose probability passes their calibrated
  multi-label threshold (tuned on training data): the evidence on emotions judged present. The
  plain `1 - q_neutral` would count the thin mass spread over 27 unlikely labels (a flat factual
  sentence scores ~0.7 by it), so it is not used. It lies in [0, 1].

An empty (or all-whitespace) text is read as neutral with probability 1, valence 0 and
intensity 0, without calling the embedder.

Errors: `EmotionError` is the base; `EmotionHeadError` means the head file is missing or
corrupt (its message names the command that rebuilds it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from agent.errors import AgentError
from agent.schemas import EmotionReading, EmotionScore
from memory.embeddings import DIMENSIONS, Embedder, default_embedder

HEAD_PATH = Path(__file__).with_name("emotion_head.npz")
METADATA_PATH = HEAD_PATH.with_suffix(".json")
REBUILD_COMMAND = "python -m eval.train_emotion"
NEUTRAL = "neutral"

Array = npt.NDArray[np.float32]
Output = Literal["sigmoid", "softmax"]

# The sentiment grouping of the GoEmotions paper (Demszky et al. 2020, section 3.2).
POSITIVE = frozenset(
    "admiration amusement approval caring desire excitement gratitude joy love optimism pride "
    "relief".split()
)
NEGATIVE = frozenset(
    "anger annoyance disappointment disapproval disgust embarrassment fear grief nervousness "
    "remorse sadness".split()
)
AMBIGUOUS = frozenset("confusion curiosity realization surprise".split())
SENTIMENT: dict[str, float] = {
    **{label: 1.0 for label in POSITIVE},
    **{label: -1.0 for label in NEGATIVE},
    **{label: 0.0 for label in AMBIGUOUS},
    NEUTRAL: 0.0,
}


class EmotionError(AgentError, RuntimeError):
    """Base of the emotion plug-in's errors."""


class EmotionHeadError(EmotionError):
    """The trained head is missing, unreadable or inconsistent."""


def _head_error(path: Path, problem: str) -> EmotionHeadError:
    return EmotionHeadError(
        f"Emotion head {path}: {problem}. Rebuild it with `{REBUILD_COMMAND}` "
        "(from the repository root, with the GoEmotions data in shared/data/goemotions)."
    )


@dataclass(frozen=True)
class EmotionHead:
    """A small dense network: ReLU hidden layers, then a sigmoid or softmax output."""

    labels: tuple[str, ...]
    weights: tuple[Array, ...]
    biases: tuple[Array, ...]
    thresholds: Array
    output: Output = "sigmoid"

    def probabilities(self, vectors: Array) -> Array:
        """Return one row of per-label probabilities per embedding row."""
        hidden = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        for weight, bias in zip(self.weights[:-1], self.biases[:-1], strict=True):
            hidden = np.maximum(hidden @ weight + bias, 0.0)
        logits = hidden @ self.weights[-1] + self.biases[-1]
        if self.output == "softmax":
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs: Array = (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
            return probs
        probs = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        return probs

    def save(self, path: Path) -> None:
        """Write the head as a plain numpy archive (no pickles), weights in float16.

        float16 halves the committed file; the forward pass still runs in float32.
        """
        arrays: dict[str, npt.NDArray[np.generic]] = {
            "labels": np.array(self.labels),
            "thresholds": self.thresholds.astype(np.float32),
            "output": np.array(self.output),
        }
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            arrays[f"w{index}"] = weight.astype(np.float16)
            arrays[f"b{index}"] = bias.astype(np.float16)
        with path.open("wb") as handle:
            np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path) -> EmotionHead:
        """Read a head written by `save`, checking its shapes."""
        if not path.is_file():
            raise _head_error(path, "the file does not exist")
        try:
            with np.load(path, allow_pickle=False) as archive:
                head = cls._from_archive(dict(archive.items()))
        except (OSError, ValueError, KeyError) as exc:
            raise _head_error(path, f"the file is not a valid head ({exc})") from exc
        head.check(path)
        return head

    @classmethod
    def _from_archive(cls, arrays: dict[str, npt.NDArray[np.generic]]) -> EmotionHead:
        depth = sum(1 for key in arrays if key.startswith("w"))
        output = str(arrays["output"])
        if output not in ("sigmoid", "softmax"):
            raise ValueError(f"unknown output {output!r}")
        return cls(
            labels=tuple(str(label) for label in arrays["labels"]),
            weights=tuple(arrays[f"w{i}"].astype(np.float32) for i in range(depth)),
            biases=tuple(arrays[f"b{i}"].astype(np.float32) for i in range(depth)),
            thresholds=arrays["thresholds"].astype(np.float32),
            output="softmax" if output == "softmax" else "sigmoid",
        )

    def check(self, path: Path) -> None:
        """Raise `EmotionHeadError` unless the layers chain from 384-d input to one per label."""
        width = DIMENSIONS
        for weight, bias in zip(self.weights, self.biases, strict=True):
            if weight.ndim != 2 or weight.shape[0] != width or bias.shape != (weight.shape[1],):
                raise _head_error(path, f"layer shapes do not chain from {DIMENSIONS}-d input")
            width = weight.shape[1]
        if not self.weights or width != len(self.labels) or NEUTRAL not in self.labels:
            raise _head_error(path, "the output does not match the label list")
        if self.thresholds.shape != (len(self.labels),):
            raise _head_error(path, "there is not one threshold per label")


class EmotionClassifier:
    """Read the emotion of a message from its sentence embedding."""

    def __init__(self, head: EmotionHead, embedder: Embedder | None = None) -> None:
        self.head = head
        self._embedder = embedder
        self._valence = np.array([SENTIMENT.get(label, 0.0) for label in head.labels])
        self._neutral = head.labels.index(NEUTRAL)
        self._emotions = np.array([label != NEUTRAL for label in head.labels])

    @classmethod
    def load(
        cls, head_path: Path | None = None, embedder: Embedder | None = None
    ) -> EmotionClassifier:
        """Load the committed head (or the one at `head_path`); the embedder loads lazily."""
        return cls(EmotionHead.load(head_path or HEAD_PATH), embedder)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.head.labels

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    def classify(self, text: str, top_k: int = 3) -> EmotionReading:
        """Read one message."""
        return self.classify_batch([text], top_k)[0]

    def classify_batch(self, texts: Sequence[str], top_k: int = 3) -> list[EmotionReading]:
        """Read many messages with one embedding call; empty texts read as neutral."""
        filled = [index for index, text in enumerate(texts) if text.strip()]
        readings = [self._empty_reading(top_k) for _ in texts]
        if filled:
            vectors = self.embedder.embed([texts[index] for index in filled])
            for index, reading in zip(filled, self.classify_vectors(vectors, top_k), strict=True):
                readings[index] = reading
        return readings

    def classify_vector(self, vector: Array, top_k: int = 3) -> EmotionReading:
        """Read a message from an embedding already computed (e.g. for memory)."""
        return self.classify_vectors(np.atleast_2d(vector), top_k)[0]

    def classify_vectors(self, vectors: Array, top_k: int = 3) -> list[EmotionReading]:
        """Read each row of an (n, 384) embedding matrix."""
        if vectors.ndim != 2 or vectors.shape[1] != DIMENSIONS:
            raise EmotionError(
                f"Expected {DIMENSIONS}-d all-MiniLM-L6-v2 embeddings, got shape {vectors.shape}: "
                "embed the text with memory.embeddings.Embedder."
            )
        return [self._reading(row, top_k) for row in self.head.probabilities(vectors)]

    def present(self, vector: Array) -> list[str]:
        """Return the labels whose probability passes their calibrated threshold (multi-label)."""
        passed = self.head.probabilities(vector)[0] >= self.head.thresholds
        return [label for label, on in zip(self.labels, passed, strict=True) if on]

    def _reading(self, scores: Array, top_k: int) -> EmotionReading:
        share = scores.astype(np.float64) / max(float(scores.sum()), 1e-12)
        order = np.argsort(-share, kind="stable")[: max(top_k, 1)]
        top = [EmotionScore(label=self.labels[i], probability=_unit(share[i])) for i in order]
        return EmotionReading(
            label=top[0].label,
            probability=top[0].probability,
            top=top,
            valence=float(np.clip(share @ self._valence, -1.0, 1.0)),
            intensity=_unit(float(share[self._emotions & (scores >= self.head.thresholds)].sum())),
        )

    def _empty_reading(self, top_k: int) -> EmotionReading:
        share = np.zeros(len(self.labels), dtype=np.float32)
        share[self._neutral] = 1.0
        return self._reading(share, top_k)


def _unit(value: float) -> float:
    return float(min(max(value, 0.0), 1.0))


@cache
def default_classifier() -> EmotionClassifier:
    """Return the process-wide classifier over the committed head and the default embedder."""
    return EmotionClassifier.load()
