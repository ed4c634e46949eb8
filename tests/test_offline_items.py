"""Benchmark items: loading and writing, the public data set importers, items from a simulation
run, and the shipped small benchmark."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from eval.offline.from_sim import CRISIS, items_from_run
from eval.offline.importers import (
    CONVERTERS,
    DISAGREE,
    DISPUTED_AGAIN,
    NO_LEVEL_LEFT,
    REPEATED,
    SUPPORTER_AGAIN,
    SourceError,
    import_epitome,
    import_esconv,
    import_goemotions,
)
from eval.offline.items import (
    EMOTIONS,
    TASKS,
    EmotionItem,
    ItemError,
    MemoryItem,
    RatingItem,
    ReplyItem,
    StrategyItem,
    load_items,
    write_items,
)
from eval.offline.metrics import mentions_any
from eval.simulate.scenario import Scenario

T = TypeVar("T")
SMALL = Path(__file__).parents[1] / "eval" / "benchmarks" / "empathos-small.jsonl"

REPLY = {
    "task": "reply", "id": "r1", "user": "ana", "message": "my cat died this morning",
    "persona": {"traits": {"wants_to_be_heard": 0.9}, "preferred": ["Reflection of feelings"]},
    "gold": {"emotions": ["grief"], "cause_span": "my cat died"},
}  # fmt: skip
EMOTION = {"task": "emotion", "id": "e1", "text": "so proud of her", "labels": ["pride"]}
MEMORY = {
    "task": "memory", "id": "m1", "user": "ana", "question": "what was my cat called?",
    "history": [{"role": "user", "text": "Biscuit is my cat"}], "answer": ["Biscuit"],
    "evidence": [0],
}  # fmt: skip


def of(kind: type[T], items: Iterable[object]) -> list[T]:
    """The items of one type (the others are a test failure)."""
    assert all(isinstance(item, kind) for item in items)
    return [item for item in items if isinstance(item, kind)]


def jsonl(path: Path, *rows: Any) -> Path:
    """Write rows (dicts as JSON, strings as they are) one a line."""
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- load_items and write_items ------------------------------------------------------------------
def test_load_items_reads_every_task(tmp_path: Path) -> None:
    loaded = load_items([jsonl(tmp_path / "b.jsonl", REPLY, EMOTION, MEMORY)])
    assert [item.id for item in loaded.items] == ["r1", "e1", "m1"]
    assert loaded.problems == []
    reply = loaded.by_task("reply")[0]
    assert isinstance(reply, ReplyItem)
    assert reply.gold.preferred == ["Reflection of feelings"]  # from the persona


def test_a_bad_line_is_named_skipped_and_counted(tmp_path: Path) -> None:
    bad = {**EMOTION, "id": "e2", "labels": ["happy"]}
    loaded = load_items([jsonl(tmp_path / "b.jsonl", REPLY, bad, "{not json", MEMORY)])
    assert [item.id for item in loaded.items] == ["r1", "m1"]
    assert len(loaded.problems) == 2
    assert loaded.problems[0].startswith("b.jsonl line 2: labels.0:")
    assert loaded.problems[1].startswith("b.jsonl line 3: not valid JSON")


def test_duplicate_ids_are_refused_across_files(tmp_path: Path) -> None:
    first = jsonl(tmp_path / "a.jsonl", EMOTION)
    second = jsonl(tmp_path / "b.jsonl", {**EMOTION, "text": "another"})
    loaded = load_items([first, second])
    assert len(loaded.items) == 1
    assert loaded.problems == [
        "b.jsonl line 1: id 'e1' is already used (a.jsonl line 1); ids must be unique across "
        "the files"
    ]


def test_an_empty_or_missing_file_is_an_item_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ItemError, match="No valid benchmark item in .*empty.jsonl"):
        load_items([empty])
    with pytest.raises(ItemError, match="missing.jsonl: no such file"):
        load_items([tmp_path / "missing.jsonl"])
    with pytest.raises(ItemError, match="First problem: only.jsonl line 1: task 'chat'"):
        load_items([jsonl(tmp_path / "only.jsonl", {"task": "chat", "id": "x"})])


def test_write_items_round_trips(tmp_path: Path) -> None:
    items = load_items([jsonl(tmp_path / "a.jsonl", REPLY, EMOTION, MEMORY)]).items
    assert write_items(items, tmp_path / "out" / "b.jsonl") == 3
    assert load_items([tmp_path / "out" / "b.jsonl"]).items == items
    assert not (tmp_path / "out" / "b.jsonl.tmp").exists()


def test_write_items_round_trips_a_line_separator_in_text(tmp_path: Path) -> None:
    item = EmotionItem(task="emotion", id="e", text="one\u2028two", labels=["neutral"])
    write_items([item], tmp_path / "b.jsonl")
    assert load_items([tmp_path / "b.jsonl"]).items == [item]


# --- ESConv --------------------------------------------------------------------------------------
def seeker(text: str) -> dict[str, str]:
    return {"speaker": "seeker", "text": text}


def supporter(text: str) -> dict[str, str]:
    return {"speaker": "supporter", "text": text}


def test_esconv_rows_become_strategy_items(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "dev.jsonl",
        {"context": [seeker("hi"), supporter("Hello"), seeker("I lost my job."),
                     seeker("Last Friday.")],
         "strategy": "Question", "response": "How are you coping?"},
        {"context": [seeker("hi"), supporter("Hello"), supporter("What's up?")],
         "strategy": "Question", "response": "Are you there?"},
        {"context": [seeker("hi")], "strategy": "Guessing", "response": "Hello"},
        {"context": [seeker("hi"), {"speaker": "bot", "text": "x"}], "strategy": "Others",
         "response": "Hello"},
        "",
        "{broken",
    )  # fmt: skip
    converted = import_esconv(path)
    [item] = of(StrategyItem, converted.items)
    assert item.id == "esconv-dev-1"
    assert item.source == "ESConv validation (Liu et al. 2021), CC BY-NC 4.0"
    assert [(line.role, line.text) for line in item.context] == [
        ("user", "hi"),
        ("assistant", "Hello"),
    ]
    assert {line.session for line in item.context} == {"esconv-dev-1"}
    assert item.message == "I lost my job. Last Friday."
    assert (item.gold, item.reference) == ("Question", "How are you coping?")
    assert converted.tally == {SUPPORTER_AGAIN: 1}
    assert len(converted.problems) == 3
    assert converted.problems[0].startswith("dev.jsonl line 3: strategy 'Guessing' is not one")
    assert converted.problems[1].startswith("dev.jsonl line 4: context[1]:")
    assert converted.problems[2].startswith("dev.jsonl line 6: not valid JSON")
    assert "1 strategy; 1 × supporter speaks next again; 3 problems" == converted.summary()


def test_esconv_with_no_usable_row_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no usable ESConv row. First problem: x.jsonl line 1"):
        import_esconv(jsonl(tmp_path / "x.jsonl", "[]"))
    with pytest.raises(SourceError, match="no such file"):
        import_esconv(tmp_path / "missing.jsonl")


# --- EPITOME -------------------------------------------------------------------------------------
HEADER = "sp_id,rp_id,seeker_post,response_post,level,rationales\n"


def test_epitome_files_are_joined_on_the_post_ids(tmp_path: Path) -> None:
    (tmp_path / "emotional-reactions.csv").write_text(
        HEADER
        + 'a1,b1,"I failed again.\nTwo lines.",So sorry to hear that.,2,So sorry|\n'
        + "a2,b2,I am lonely.,Go out more.,0,\n"
        + "a2,b2,I am lonely.,Go out more.,0,\n"  # repeated, same level: tallied
        + "a3,b3,Hello,Hi,7,\n",  # bad level: a problem
        encoding="utf-8",
    )
    (tmp_path / "interpretations.csv").write_text(
        HEADER
        + 'a1,b1,"I failed  again.\nTwo lines.",So sorry to hear that.,1,\n'
        + "a2,b2,I am lonely.,Go out more.,1,\n"
        + "a2,b2,I am lonely.,Go out more.,2,\n"  # conflicting level: dropped, tallied
        + "a2,b2,I am lonely.,Go out more.,1,\n",  # rated again: stays dropped
        encoding="utf-8",
    )
    (tmp_path / "notes.csv").write_text("whatever\n", encoding="utf-8")
    converted = import_epitome(tmp_path)
    by_id = {item.id: item for item in of(RatingItem, converted.items)}
    assert set(by_id) == {"epitome-a1-b1", "epitome-a2-b2"}
    first = by_id["epitome-a1-b1"]
    assert first.context == "I failed  again.\nTwo lines."  # the fuller spacing is kept
    assert [(r.dimension, r.value, r.scale) for r in first.ratings] == [
        ("emotional_reactions", 2, (0, 2)),
        ("interpretations", 1, (0, 2)),
    ]
    assert first.ratings[0].attributes == {"rationales": "So sorry|"}
    assert [(r.dimension, r.value) for r in by_id["epitome-a2-b2"].ratings] == [
        ("emotional_reactions", 0)  # the humans disagree on interpretations: dropped
    ]
    assert converted.tally == {REPEATED: 1, DISAGREE: 1, DISPUTED_AGAIN: 1}
    assert converted.problems == [
        "notes.csv: not read; its name says no mechanism (emotional, interpretation, exploration).",
        "emotional-reactions.csv line 6: level '7' is not 0, 1 or 2.",
    ]


def test_epitome_pair_left_with_no_level_is_left_out(tmp_path: Path) -> None:
    path = tmp_path / "explorations.csv"
    path.write_text(HEADER + "a1,b1,Hi,So?,2,\na1,b1,Hi,So?,0,\na2,b2,Hi,Oh.,1,\n", "utf-8")
    converted = import_epitome(path)
    assert [item.id for item in converted.items] == ["epitome-a2-b2"]
    assert converted.tally == {DISAGREE: 1, NO_LEVEL_LEFT: 1} and not converted.problems


def test_epitome_reads_one_file_and_refuses_a_wrong_header(tmp_path: Path) -> None:
    path = tmp_path / "explorations.csv"
    path.write_text(HEADER + "a1,b1,Hi,What happened?,2,\n", encoding="utf-8")
    [item] = of(RatingItem, import_epitome(path).items)
    assert [r.dimension for r in item.ratings] == ["explorations"]
    path.write_text("sp_id,text\na1,Hi\n", encoding="utf-8")
    with pytest.raises(SourceError, match="no column rp_id"):
        import_epitome(path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no EPITOME CSV"):
        import_epitome(tmp_path / "empty")


# --- GoEmotions ----------------------------------------------------------------------------------
def test_goemotions_rows_become_emotion_items(tmp_path: Path) -> None:
    (tmp_path / "labels.txt").write_text("\n".join(EMOTIONS) + "\n", encoding="utf-8")
    path = tmp_path / "dev.tsv"
    path.write_text(
        "So glad you came!\t17,13\teea1\n"
        "Hmm.\t27\teea2\n"
        "Bad label\t99\teea3\n"
        "no columns here\n"
        "Again\t27\teea2\n",
        encoding="utf-8",
    )
    converted = import_goemotions(path)
    assert [(i.id, i.labels) for i in of(EmotionItem, converted.items)] == [
        ("goemotions-eea1", ["joy", "excitement"]),
        ("goemotions-eea2", ["neutral"]),
    ]
    assert converted.items[0].source == "GoEmotions validation (Demszky et al. 2020), Apache-2.0"
    assert converted.problems == [
        "dev.tsv line 3: label id '99' is not 0..27.",
        "dev.tsv line 4: expected 3 tab-separated columns (text, label ids, id), not 1.",
        "dev.tsv line 5: id 'eea2' is already used by an earlier row.",
    ]


def test_goemotions_needs_its_labels(tmp_path: Path) -> None:
    path = tmp_path / "dev.tsv"
    path.write_text("Hi\t27\tx\n", encoding="utf-8")
    with pytest.raises(SourceError, match="labels.txt: no such file"):
        import_goemotions(path)
    (tmp_path / "labels.txt").write_text("anger\nhappiness\n", encoding="utf-8")
    with pytest.raises(SourceError, match="'happiness' is not a GoEmotions label"):
        import_goemotions(path)


def test_converters_name_the_cli_choices() -> None:
    assert set(CONVERTERS) == {"esconv", "epitome", "goemotions"}


# --- items from a simulation run -----------------------------------------------------------------
SCENARIO = {
    "name": "tiny", "start": "2026-03-02", "people": [{
        "id": "ana",
        "card": {
            "background": "Ana, 30, nurse.",
            "big_five": {"openness": 0.5, "conscientiousness": 0.6, "extraversion": 0.4,
                         "agreeableness": 0.7, "neuroticism": 0.8},
            "support": {"wants_to_be_heard": 0.9, "wants_advice": 0.1,
                        "preferred_strategies": ["Reflection of feelings"],
                        "disliked_strategies": ["Providing Suggestions"]},
        },
        "sessions": [
            {"day": 0, "history": [
                {"role": "user", "text": "my cat Biscuit is ill", "minute": 0},
                {"role": "assistant", "text": "I'm sorry Biscuit is ill.", "minute": 1}]},
            {"day": 7, "script": ["the vet called", "she has to stay in"],
             "crisis": "I want to end it all",
             "probes": [{"question": "what is my cat called?", "expect_any": ["Biscuit"]}]},
        ],
    }],
}  # fmt: skip


def turn(
    session: int, number: int, message: str, reply: str | None, **extra: Any
) -> dict[str, Any]:
    """A journal record as `PersonRun.record_turn` writes it (trace left out)."""
    minute = 3 * number
    return {
        "type": "turn", "session": session, "turn": number, "kind": "script",
        "at": f"2026-03-09T19:{minute:02d}:00.000+00:00", "turn_id": f"t{session}{number}",
        "message": message, "reply": reply, "crisis": False, "crisis_expected": False,
        "strategy": "Question", "lens": None, "seconds": 1.0, "leaks": [], "trace": {},
        "reaction": None, "emotion": None, "next_message": None, "outcome": None, **extra,
    }  # fmt: skip


def session_end(session: int, kind: str) -> dict[str, Any]:
    truth = Scenario.model_validate(SCENARIO).people[0].truth()
    return {
        "type": "session_end", "session": session, "turn": None, "kind": kind,
        "at": f"2026-03-0{2 + 7 * session}T19:00:00+00:00", "session_id": None,
        "memory_jobs": 0, "traits": {}, "truth": truth, "memories": 1,
    }  # fmt: skip


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-run"
    (folder / "people" / "ana").mkdir(parents=True)
    scenario = Scenario.model_validate(SCENARIO).model_dump(mode="json")
    (folder / "run.json").write_text(json.dumps({"format": 1, "scenario": scenario}))
    records = [
        session_end(0, "history"),
        turn(1, 0, "the vet called", "What did the vet say?"),
        turn(1, 1, "she has to stay in", "She has to stay in overnight."),
        turn(1, 2, "I want to end it all", "crisis reply", kind="crisis", crisis=True,
             crisis_expected=True),
        session_end(1, "script"),
        {**turn(1, 0, "what is my cat called?", "Biscuit."), "type": "probe", "kind": "probe",
         "at": "2026-03-09T20:00:00.000+00:00", "expect_any": ["Biscuit"],
         "reference": "", "reply_hit": True, "memory_hit": True},
        {"type": "done", "session": -1, "turn": None},
    ]  # fmt: skip
    jsonl(folder / "people" / "ana" / "transcript.jsonl", *records, "{torn")
    return folder


def test_items_from_a_run(run_dir: Path) -> None:
    converted = items_from_run(run_dir)
    by_id = {item.id: item for item in converted.items}
    assert set(by_id) == {"tiny-run-ana-s2-t1", "tiny-run-ana-s2-t2", "tiny-run-ana-s2-probe1"}
    assert converted.tally == {CRISIS: 1}
    assert converted.problems == [
        "ana/transcript.jsonl line 8: not valid JSON (Expecting "
        "property name enclosed in double quotes); skipped."
    ]
    first, second = by_id["tiny-run-ana-s2-t1"], by_id["tiny-run-ana-s2-t2"]
    assert isinstance(first, ReplyItem) and isinstance(second, ReplyItem)
    assert first.source == f"simulation {run_dir} (scenario tiny)"
    assert first.persona is not None
    assert first.persona.traits["neuroticism"] == 0.8
    assert first.persona.traits["wants_to_be_heard"] == 0.9
    assert first.gold.preferred == ["Reflection of feelings"]
    assert first.gold.disliked == ["Providing Suggestions"]
    assert [(line.role, line.text, line.session) for line in first.history] == [
        ("user", "my cat Biscuit is ill", "session 1"),
        ("assistant", "I'm sorry Biscuit is ill.", "session 1"),
    ]
    assert first.history[1].time == datetime.fromisoformat("2026-03-02T19:01:00+00:00")
    assert first.context == [] and first.message == "the vet called"
    assert [line.text for line in second.context] == ["the vet called", "What did the vet say?"]
    assert second.context[0].time == datetime.fromisoformat("2026-03-09T19:00:00+00:00")
    assert second.history == first.history
    probe = by_id["tiny-run-ana-s2-probe1"]
    assert isinstance(probe, MemoryItem)
    assert len(probe.history) == 6  # the history session and both live turns, not the crisis
    assert "I want to end it all" not in [line.text for line in probe.history]
    assert probe.question == "what is my cat called?" and probe.answer == ["Biscuit"]
    assert probe.evidence == [0]  # the person named Biscuit; the reply repeating it is not evidence


def test_items_from_a_run_are_stable(run_dir: Path, tmp_path: Path) -> None:
    first = items_from_run(run_dir)
    again = items_from_run(run_dir)
    assert [item.id for item in first.items] == [item.id for item in again.items]
    write_items(first.items, tmp_path / "sim.jsonl")
    assert load_items([tmp_path / "sim.jsonl"]).problems == []


def test_a_dir_without_a_run_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="holds no simulation run"):
        items_from_run(tmp_path)


# --- the shipped benchmark -----------------------------------------------------------------------
def test_the_small_benchmark_loads_clean_with_every_task() -> None:
    loaded = load_items([SMALL])
    assert loaded.problems == []
    counts = {task: len(loaded.by_task(task)) for task in TASKS}
    assert all(counts.values()), counts
    assert sum(counts.values()) <= 40  # it must stay small enough to run on a laptop


def test_the_small_benchmark_gold_is_consistent() -> None:
    loaded = load_items([SMALL])
    for item in loaded.by_task("reply"):
        assert isinstance(item, ReplyItem)
        assert item.gold.cause_span and item.gold.cause_span in item.message, item.id
        said = " ".join(line.text for line in item.history if line.role == "user")
        assert all(mentions_any(said, [word]) for word in item.gold.memory_words), item.id
    for item in loaded.by_task("memory"):
        assert isinstance(item, MemoryItem)
        holding = [
            n for n, line in enumerate(item.history)
            if line.role == "user" and mentions_any(line.text, item.answer)
        ]  # fmt: skip
        assert item.evidence == holding, item.id
    replies = [i for i in loaded.by_task("reply") if isinstance(i, ReplyItem)]
    assert sum(bool(i.history) for i in replies) >= 4
    assert sum(bool(i.persona and i.persona.preferred and i.persona.disliked) for i in replies) >= 3


def test_the_small_benchmark_holds_no_public_data_set_text() -> None:
    for item in load_items([SMALL]).items:
        assert not any(name in item.source for name in ("ESConv", "EPITOME", "GoEmotions"))
        assert "esconv" not in item.source.lower()


def test_the_strategy_names_are_the_catalogues() -> None:
    from eval.offline.items import STRATEGIES
    from strategies.catalogue import load_catalogue

    assert set(STRATEGIES) == {s.name for s in load_catalogue().strategy}


def test_memory_evidence_must_be_the_persons_own_lines() -> None:
    from eval.offline.items import parse_line

    line = json.dumps({"task": "memory", "id": "m", "user": "u", "question": "q?",
                       "answer": ["Pepper"], "evidence": [1],
                       "history": [{"role": "user", "text": "my cat is Pepper"},
                                   {"role": "assistant", "text": "Pepper, lovely"}]})  # fmt: skip
    with pytest.raises(ValueError, match="assistant lines"):
        parse_line(line)
