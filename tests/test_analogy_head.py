"""The learnt half of the analogy detector, with the real (local, offline) embedding model.

The messages here were written for this test, in ways the sentence patterns do not read; they
are in no case file the head was trained on. Of the four first written, the head read two (the
two below); it reads 0.74 of the training struggles out of fold, so a miss is expected, not a bug.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.understanding import CUES, StruggleHead, cue_features, read_understanding, struggle_head

HEAD_READS = [
    ("Ever since the funeral my uncle keeps snapping at everyone. Can someone explain that to me?",
     "my uncle"),
    ("My dad stopped talking to me after I skipped his birthday dinner for a work trip. Can you "
     "explain him to me?", "my dad"),
]  # fmt: skip
NOT_STRUGGLES = [
    "I was stuck in traffic for two hours and I'm so annoyed.",
    "Do you remember what I told you about my sister?",
    "My sister moved to Berlin last week and I miss her.",
]


@pytest.fixture(scope="module")
def embed():
    from memory.embeddings import default_embedder

    return default_embedder().embed_one


@pytest.mark.parametrize(("message", "other"), HEAD_READS)
def test_the_head_reads_a_struggle_the_patterns_miss(embed, message: str, other: str) -> None:
    assert not read_understanding(message).struggling  # the patterns alone
    reading = read_understanding(message, embed(message))
    assert reading.struggling and reading.other == other
    assert reading.situation  # what the own experience is searched with


@pytest.mark.parametrize("message", NOT_STRUGGLES)
def test_the_head_leaves_venting_questions_and_news_alone(embed, message: str) -> None:
    assert not read_understanding(message, embed(message)).struggling


def test_the_shipped_head_has_one_weight_per_dimension_and_cue_and_a_threshold() -> None:
    head = struggle_head()
    assert head is not None and head.weights.shape == (384 + len(CUES),)
    assert 0.5 < head.threshold < 1.0


def test_the_cue_flags_say_what_the_sentence_does() -> None:
    asks = cue_features("Why is my brother so quiet lately? I don't get it.")
    own = cue_features("I feel so tired today.")
    assert asks.dtype == np.float32 and set(asks.tolist()) <= {0.0, 1.0}
    # a puzzlement, a question, someone named, and their feeling; nothing of the user's own
    assert asks.tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    assert own.tolist() == [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]


def test_without_a_head_file_the_patterns_decide(tmp_path: Path) -> None:
    assert struggle_head(tmp_path / "missing.npz") is None


def test_a_struggle_needs_someone_named(monkeypatch: pytest.MonkeyPatch) -> None:
    always = StruggleHead(np.zeros(384 + len(CUES), np.float32), bias=10.0, threshold=0.5)
    monkeypatch.setattr("agent.understanding.struggle_head", lambda: always)
    vector = np.zeros(384, np.float32)
    assert not read_understanding("Everything is so strange lately.", vector).struggling
    reading = read_understanding("My cousin is acting odd lately.", vector)
    assert reading.struggling and reading.other == "my cousin"
