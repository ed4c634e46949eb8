"""Benchmark items: loading and writing, and the shipped small benchmark. The public data set
importers are tested in `tests/test_offline_importers.py`, items from a simulation run in
`tests/test_offline_from_sim.py`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from eval.offline.items import (
    TASKS,
    EmotionItem,
    ItemError,
    MemoryItem,
    ReplyItem,
    load_items,
    write_items,
)
from eval.offline.metrics import mentions_any

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
