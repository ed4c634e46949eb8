"""The emotion plug-in over the real MiniLM embedder (packaged, offline) and the committed head."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agent.emotion import (
    HEAD_PATH,
    METADATA_PATH,
    NEGATIVE,
    POSITIVE,
    REBUILD_COMMAND,
    SENTIMENT,
    EmotionClassifier,
    EmotionError,
    EmotionHead,
    EmotionHeadError,
    default_classifier,
)
from memory.embeddings import default_embedder


@pytest.fixture(scope="module")
def classifier() -> EmotionClassifier:
    return EmotionClassifier.load(embedder=default_embedder())


def test_good_news_reads_positive(classifier: EmotionClassifier) -> None:
    reading = classifier.classify("I am so happy, I got the job!")
    assert reading.label in POSITIVE
    assert reading.valence > 0.3
    assert reading.intensity > 0.5


def test_a_death_reads_as_sadness_or_grief(classifier: EmotionClassifier) -> None:
    reading = classifier.classify("My dog died this morning")
    assert reading.label in {"sadness", "grief"}
    assert reading.valence < -0.3


def test_fury_reads_as_anger(classifier: EmotionClassifier) -> None:
    reading = classifier.classify("I am furious at my landlord")
    assert reading.label in {"anger", "annoyance"}
    assert reading.valence < 0


def test_a_plain_statement_reads_neutral_and_calm(classifier: EmotionClassifier) -> None:
    reading = classifier.classify("The meeting is moved to room 4 on Tuesday.")
    assert reading.label == "neutral"
    assert reading.intensity < 0.5


def test_batch_equals_single(classifier: EmotionClassifier) -> None:
    texts = ["I am so happy, I got the job!", "", "My dog died this morning", "ok"]
    batch = classifier.classify_batch(texts, top_k=4)
    singles = [classifier.classify(text, top_k=4) for text in texts]
    for one, other in zip(batch, singles, strict=True):
        assert one.label == other.label
        assert [s.label for s in one.top] == [s.label for s in other.top]
        assert one.probability == pytest.approx(other.probability, abs=1e-4)
        assert one.valence == pytest.approx(other.valence, abs=1e-4)


def test_vector_reading_equals_text_reading(classifier: EmotionClassifier) -> None:
    text = "I can't believe they forgot my birthday again."
    vector = default_embedder().embed_one(text)
    assert classifier.classify_vector(vector) == classifier.classify(text)


def test_a_vector_of_the_wrong_size_is_refused(classifier: EmotionClassifier) -> None:
    with pytest.raises(EmotionError, match="384-d"):
        classifier.classify_vector(np.zeros(768, dtype=np.float32))


def test_scores_form_a_distribution(classifier: EmotionClassifier) -> None:
    reading = classifier.classify("Thank you so much, this means the world to me", top_k=28)
    probabilities = [score.probability for score in reading.top]
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-3)
    assert probabilities == sorted(probabilities, reverse=True)
    assert reading.top[0].label == reading.label
    assert reading.probability == probabilities[0]
    assert len({score.label for score in reading.top}) == 28


def test_top_k_bounds_the_list(classifier: EmotionClassifier) -> None:
    assert len(classifier.classify("What a lovely day", top_k=3).top) == 3
    assert len(classifier.classify("What a lovely day", top_k=0).top) == 1


def test_empty_text_is_neutral_without_embedding() -> None:
    class NoEmbedder:
        def embed(self, texts: object) -> None:
            raise AssertionError("the embedder must not be called for empty text")

    offline = EmotionClassifier.load(embedder=NoEmbedder())  # type: ignore[arg-type]
    for text in ("", "   \n"):
        reading = offline.classify(text)
        assert (reading.label, reading.probability) == ("neutral", 1.0)
        assert (reading.valence, reading.intensity) == (0.0, 0.0)


def test_multilabel_thresholds_pick_labels(classifier: EmotionClassifier) -> None:
    vector = default_embedder().embed_one("Thank you so much for your help!")
    assert "gratitude" in classifier.present(vector)


def test_missing_head_names_the_rebuild_command(tmp_path: Path) -> None:
    with pytest.raises(EmotionHeadError, match=REBUILD_COMMAND):
        EmotionClassifier.load(tmp_path / "absent.npz")


def test_corrupt_head_names_the_rebuild_command(tmp_path: Path) -> None:
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a numpy archive")
    with pytest.raises(EmotionHeadError, match=REBUILD_COMMAND):
        EmotionClassifier.load(path)


def test_head_with_wrong_shapes_is_refused(tmp_path: Path) -> None:
    head = EmotionHead.load(HEAD_PATH)
    bad = EmotionHead(head.labels[:-1], head.weights, head.biases, head.thresholds[:-1])
    path = tmp_path / "bad.npz"
    bad.save(path)
    with pytest.raises(EmotionHeadError, match="label list"):
        EmotionHead.load(path)


def test_head_round_trips(tmp_path: Path) -> None:
    head = EmotionHead.load(HEAD_PATH)
    path = tmp_path / "copy.npz"
    head.save(path)
    vectors = default_embedder().embed(["hello there", "I'm scared of tomorrow"])
    np.testing.assert_allclose(
        EmotionHead.load(path).probabilities(vectors), head.probabilities(vectors), atol=1e-6
    )


def test_sentiment_map_covers_every_label() -> None:
    head = EmotionHead.load(HEAD_PATH)
    assert set(head.labels) == set(SENTIMENT)
    assert len(POSITIVE) == 12 and len(NEGATIVE) == 11


def test_committed_head_beats_the_probe_on_dev() -> None:
    metadata = json.loads(METADATA_PATH.read_text(encoding="utf-8"))
    shipped = metadata["shipped"]
    assert shipped["top1_macro_f1"] > 0.33
    assert shipped["top1_macro_f1"] > metadata["dev"][0]["top1_macro_f1"]
    assert metadata["thresholds_tuned_on"].startswith("train")
    assert metadata["labels"] == list(EmotionHead.load(HEAD_PATH).labels)


def test_committed_head_is_small() -> None:
    assert HEAD_PATH.stat().st_size < 5 * 1024 * 1024


def test_default_classifier_is_cached() -> None:
    assert default_classifier() is default_classifier()


def test_top1_counts_any_gold_label_as_correct() -> None:
    from eval.train_emotion import top1_scores

    probs = np.eye(3, dtype=np.float32)[[0, 1, 2, 2]]
    macro, accuracy = top1_scores([[0], [0, 1], [1], [2]], probs)
    assert accuracy == 0.75
    assert 0.0 < macro < 1.0


def test_thresholds_are_tuned_per_label() -> None:
    from eval.train_emotion import tune_thresholds

    targets = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], dtype=np.float32)
    probs = np.array([[0.6, 0.1], [0.5, 0.2], [0.1, 0.9], [0.3, 0.1]], dtype=np.float32)
    low, high = tune_thresholds(targets, probs)
    assert 0.3 < low <= 0.5
    assert 0.2 < high <= 0.9


def test_malformed_training_rows_are_refused(tmp_path: Path) -> None:
    from eval.train_emotion import TrainingDataError, read_split

    (tmp_path / "train.tsv").write_text("fine\t3\tid1\nbroken row\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match="train.tsv:2"):
        read_split(tmp_path, "train", 28)
    with pytest.raises(TrainingDataError, match="--data-dir"):
        read_split(tmp_path, "dev", 28)


def test_loading_the_head_needs_neither_torch_nor_sklearn() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from agent.emotion import EmotionClassifier; EmotionClassifier.load(); "
        "heavy = ('torch', 'sklearn', 'sentence_transformers'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path.cwd()
    )
    assert result.stdout.strip() == "[]"
