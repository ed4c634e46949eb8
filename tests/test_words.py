"""Words-only re-readings (`eval.simulate.words`): the file format, resuming, and a reading."""

from __future__ import annotations

import json

import pytest

from eval.simulate import words
from eval.simulate.words import EVIDENCE_KEYS, FORMAT, SUBSETS, WordsError, load, read


def test_a_file_that_is_not_a_words_file_is_refused_with_what_to_do(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"people": {}}), encoding="utf-8")
    with pytest.raises(WordsError, match="not a words file"):
        load(bad)
    with pytest.raises(WordsError, match="Cannot read"):
        load(tmp_path / "missing.json")
    with pytest.raises(SystemExit) as stop:
        words.main(["read", str(bad)])
    assert stop.value.code == 2 and "words write" in capsys.readouterr().err


def test_writing_into_another_seeds_file_is_refused_before_any_model_loads(tmp_path):
    other = tmp_path / "w.json"
    other.write_text(json.dumps({"format": FORMAT, "seed": 1, "people": {}}), encoding="utf-8")
    with pytest.raises(WordsError, match="holds seed 1, not 2"):
        words.write(2, 3, 1, other)


CALM = ["Honestly the move went fine, I took it in my stride and slept well.",
        "Work was busy but I stayed relaxed, nothing really rattles me."]  # fmt: skip
TENSE = ["I can't stop worrying, my stomach is in knots and I panic over every email.",
         "I lay awake again, so anxious and on edge about everything going wrong."]  # fmt: skip


def test_reading_ranks_people_by_their_words_on_the_real_embedder():
    doc = {"format": FORMAT, "seed": 0, "people": {
        f"p{n}": {"truth": {"openness": 0.5, "conscientiousness": 0.5, "extraversion": 0.5,
                            "agreeableness": 0.5, "neuroticism": truth},
                  "messages": messages}
        for n, (truth, messages) in enumerate([(0.9, TENSE), (0.8, TENSE[::-1]),
                                               (0.2, CALM), (0.1, CALM[::-1])])
    }}  # fmt: skip
    result = read(doc, rating=False, asking=False)
    assert result["people"] == 4 and set(result["spearman"]) == set(SUBSETS)
    assert result["spearman"]["all"]["neuroticism"] > 0.5
    tense, calm = result["estimates"]["p0"]["all"], result["estimates"]["p2"]["all"]
    assert tense["neuroticism"] > calm["neuroticism"]
    assert result["spearman"]["asked"]["neuroticism"] is None  # nothing asked: no spread
    rows = result["evidence"]["p0"]  # the rows behind the estimates, to weigh them otherwise
    assert {row["kind"] for row in rows} >= {"prototype", "length"}
    assert all(set(row) == set(EVIDENCE_KEYS) and row["weight"] > 0 for row in rows)


def test_the_ceiling_counts_the_events_a_message_still_tells():
    from eval.simulate.population import generate_population
    from eval.simulate.words import ceiling

    scenario = generate_population(people=8, sessions=3, seed=0, turns=1)

    def doc(tell: bool) -> dict:
        return {"format": FORMAT, "seed": 0, "people": {
            p.id: {"truth": p.card.big_five.model_dump(),
                   "messages": [s.simulate.situation if tell and s.simulate else "Hello there."
                                for s in p.sessions]}
            for p in scenario.people
        }}  # fmt: skip

    told = ceiling([doc(tell=True)])
    assert all(row["told"] == row["given"] for row in told.values())
    assert told["neuroticism"]["given"] is not None and told["neuroticism"]["given"] > 0.5
    silent = ceiling([doc(tell=False)])
    assert all(row["told"] is None for row in silent.values())  # no event told: no spread
    wrong = doc(tell=True)
    wrong["seed"] = 1
    with pytest.raises(WordsError, match="not this file's people"):
        ceiling([wrong])


def test_a_population_runs_openings_become_a_words_file(tmp_path):
    from eval.simulate.population import dump_scenario, generate_population
    from tests.test_simulate import simulation

    scenario = generate_population(people=2, sessions=2, turns=2, seed=4)
    dump_scenario(scenario, tmp_path / "pop.yaml")
    assert (
        simulation(tmp_path, (tmp_path / "pop.yaml").read_text(), last_reaction=False).run() == []
    )
    out = tmp_path / "words.json"
    words.main(["from-run", str(tmp_path / "run"), "-o", str(out)])
    doc = load(out)
    assert doc["seed"] == 4 and set(doc["people"]) == {p.id for p in scenario.people}
    for person in scenario.people:
        mine = doc["people"][person.id]
        assert mine["truth"] == person.card.big_five.model_dump()
        # the simulator's opening of each session, not its second message
        assert [m.split()[:4] for m in mine["messages"]] == [["today", "i", "want", "to"]] * 2
    assert words.ceiling([doc])  # its people are the seed's people
    with pytest.raises(WordsError, match="not a simulation run dir"):
        words.from_run(tmp_path)
