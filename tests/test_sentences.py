"""The user model reads a message sentence by sentence: one telling event is not averaged away."""

from __future__ import annotations

from memory.embeddings import Embedder, model_dir
from memory.sentences import sentences
from memory.stated import states_support
from memory.trait_rating import lean_signal, rate_traits, telling_passages
from memory.traits import BIG_FIVE
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
    lean, _ = recalled.leaning["conscientiousness"]
    assert lean_signal("conscientiousness", lean) < 0.5  # the missed deadline leans low
    rate_traits(mem.traits, mem.memories, mem.store, None, "ana", session)
    assert mem.traits.evidence("ana", "conscientiousness") == []  # preferences only (LEAN_TRAITS)


ASKING = (
    "I want some easy, warm company tonight, not to be questioned. "
    "I spent the whole evening alone with a book and felt recharged."
)


def test_a_sentence_saying_how_they_want_support_is_not_read_as_personality(tmp_path):
    mem = build_services(tmp_path / "data", embedder=Embedder(model_dir()))
    asking, alone = sentences(ASKING)
    assert states_support(asking) and not states_support(alone)
    vector = mem.traits.embedder.embed([alone])[0]
    assert "extraversion" in {s.name for s in mem.traits.text_signals(vector)}
    assert not {s.name for s in mem.traits.text_signals(vector, False)} & set(BIG_FIVE)
    session = mem.store.new_session("ana")
    turn_id = add_turn(mem, "ana", session, ASKING)
    mem.traits.observe_turn("ana", mem.store.get_turn(turn_id))
    rows = [r for r in mem.traits.evidence("ana", "extraversion") if r["kind"] == "prototype"]
    assert len(rows) == 1 and rows[0]["signal"] < 0.5  # from the evening alone only
    assert mem.traits.evidence("ana", "wants_to_be_heard")  # the request is support evidence
    recalled = telling_passages(mem.traits, mem.memories, mem.store, "ana")
    for name in BIG_FIVE:
        assert asking not in [recalled.passages[n - 1].text for n in recalled.facets[name]]
    assert {p.text for p in recalled.passages} == {asking, alone}  # still read for preferences
