"""The user model reads a message sentence by sentence: one telling event is not averaged away."""

from __future__ import annotations

from memory.embeddings import Embedder, model_dir
from memory.sentences import sentences
from memory.trait_rating import rate_traits, telling_passages
from tests.test_memory_fakes import add_turn, build_services

BUSY = (
    "Hello! The weather was grey all day and the bus was late again. My sister called about "
    "the holidays and we talked for a while. I missed another deadline at work. Anyway, dinner "
    "was pasta."
)


def test_sentences_drop_greetings_and_keep_the_rest_in_order():
    assert sentences(BUSY) == [
        "The weather was grey all day and the bus was late again.",
        "My sister called about the holidays and we talked for a while.",
        "I missed another deadline at work.",
        "Anyway, dinner was pasta.",
    ]
    assert sentences("Hi!") == ["Hi!"]  # nothing long enough: the whole text
    assert sentences("Dr. Smith was kind to me today.") == ["Dr. Smith was kind to me today."]


def test_a_telling_sentence_inside_a_long_message_is_evidence(tmp_path):
    mem = build_services(tmp_path / "data", embedder=Embedder(model_dir()))
    session = mem.store.new_session("ana")
    turn = mem.store.get_turn(add_turn(mem, "ana", session, BUSY))
    whole = mem.traits.embedder.embed([BUSY])
    assert not [s for s in mem.traits.text_signals(whole[0]) if s.name == "conscientiousness"]
    mem.traits.observe_turn("ana", turn)
    rows = [r for r in mem.traits.evidence("ana", "conscientiousness") if r["kind"] == "prototype"]
    assert len(rows) == 1 and rows[0]["signal"] < 0.5  # read from "I missed another deadline"


def test_recall_reads_the_sentences_of_messages_and_counts_messages(tmp_path):
    mem = build_services(tmp_path / "data", embedder=Embedder(model_dir()))
    session = mem.store.new_session("ana")
    turn_id = add_turn(mem, "ana", session, BUSY)
    recalled = telling_passages(mem.traits, mem.memories, mem.store, "ana")
    chosen = [recalled.passages[n - 1] for n in recalled.facets["conscientiousness"]]
    assert chosen[0].text == "I missed another deadline at work."
    assert chosen[0].id == f"{turn_id}#2" and not chosen[0].memory
    assert recalled.read == 1  # one message, however many sentences
    rate_traits(mem.traits, mem.memories, mem.store, None, "ana", session)
    (row,) = mem.traits.evidence("ana", "conscientiousness")
    assert row["kind"] == "recall" and row["signal"] < 0.5
