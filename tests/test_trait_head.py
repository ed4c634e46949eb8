"""The trait head: a classifier over clause vectors that reads the pole of O, C, E and A."""

from __future__ import annotations

import numpy as np
import pytest

from memory.embeddings import Embedder, model_dir
from memory.sentences import clauses
from memory.trait_head import HEAD_TRAITS, TraitHead, TraitHeadError, default_head
from memory.trait_signals import head_clauses
from tests.test_memory_fakes import add_turn, build_services


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(model_dir())


def reading(embedder: Embedder, text: str) -> dict[str, tuple[float, float]]:
    head = default_head()
    assert head is not None, "memory/trait_head.npz is shipped"
    found = {r.trait: (r.signal, r.weight) for r in head.readings(embedder.embed([text]))}
    assert set(found) <= set(HEAD_TRAITS)
    return found


def test_clauses_split_where_a_sentence_turns_to_another_thing():
    text = "I'm anxious about the bill, and I lost my keys. Also, work was fine; my sister called."
    assert clauses(text) == [
        "I'm anxious about the bill", "I lost my keys", "Also, work was fine", "my sister called",
    ]  # fmt: skip
    assert clauses("Hi!") == ["Hi!"]


def test_the_head_reads_the_pole_a_clause_shows(embedder):
    # Written for this test; none of these is a training statement or a simulated day's event.
    assert (
        reading(embedder, "I never get around to opening my post and the bills pile up")[
            "conscientiousness"
        ][0]
        < 0.3
    )
    assert (
        reading(embedder, "I told my brother his cooking was terrible and walked out")[
            "agreeableness"
        ][0]
        < 0.3
    )
    assert (
        reading(embedder, "I'd rather have a quiet night in than go to the office party")[
            "extraversion"
        ][0]
        < 0.3
    )
    openness, weight = reading(embedder, "I went to a salsa class with strangers and loved it")[
        "openness"
    ]
    assert openness > 0.7 and weight > 0.2


def test_a_worry_or_a_request_weighs_little(embedder):
    for text in ("I'm so worried about my exam results", "Can you help me think this through?"):
        assert all(weight < 0.05 for _, weight in reading(embedder, text).values())


def test_a_turn_leaves_head_rows_but_not_from_how_they_want_support(tmp_path, embedder):
    mem = build_services(tmp_path / "data", embedder=embedder)
    session = mem.store.new_session("ana")
    text = "I told my brother his cooking was terrible and walked out. I just need to vent."
    turn = mem.store.get_turn(add_turn(mem, "ana", session, text))
    mem.traits.observe_turn("ana", turn)
    rows = [r for r in mem.traits.evidence("ana", "agreeableness") if r["kind"] == "head"]
    assert len(rows) == 1 and rows[0]["signal"] < 0.3
    assert rows[0]["source_id"] == f"{turn.id}#head"
    assert head_clauses("I just need to vent.") == []
    by_kind = mem.traits.estimates_by_kind("ana")
    assert by_kind["head"]["agreeableness"] < 0.5
    without = by_kind["no-head"].get("agreeableness", 0.5)  # the reader before the head
    assert by_kind["all"]["agreeableness"] < without


def test_a_head_that_does_not_fit_says_to_retrain(tmp_path):
    path = tmp_path / "head.npz"
    np.savez(path, traits=np.array(["openness"]), weights=np.zeros((1, 2, 4)),
             biases=np.zeros((1, 2)))  # fmt: skip
    with pytest.raises(TraitHeadError, match="retrain"):
        TraitHead.load(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(TraitHeadError, match="Cannot read the trait head"):
        TraitHead.load(path)
    head = TraitHead(("openness",), np.zeros((1, 3, 4), np.float32), np.zeros((1, 3), np.float32))
    with pytest.raises(TraitHeadError, match="384-d|4-d"):
        head.probabilities(np.zeros((2, 384), np.float32))
