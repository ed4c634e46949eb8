"""The analogy detector's written training messages: they load, none leaks into a measured set,
and a broken line is named by file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.bench_analogy import load_cases
from eval.train_analogy_detector import (
    CASE_FILES,
    DATA,
    STRUGGLES,
    TrainingFileError,
    load_messages,
)

MEASURED = [DATA / f"analogy_cases_fresh{n}.jsonl" for n in (2, 3, 4, 5, 6)]


def test_the_shipped_messages_load_balanced_and_unique() -> None:
    messages = load_messages()
    labels = [m.label for m in messages]
    assert labels.count("struggle") == labels.count("other") == 330
    assert len({m.text for m in messages}) == len(messages)
    assert {m.voice for m in messages} == {"a", "b", "c"}


def test_no_training_text_is_a_struggle_the_bench_measures_on() -> None:
    """(One question about the past, "Do you remember what I told you about my trip to
    Lisbon?", was written word for word by two helpers, for the first and the sixth set.)"""
    trained = {m.text.strip().lower() for m in load_messages()}
    trained |= {c["message"].strip().lower() for path in CASE_FILES for c in load_cases(path)}
    for path in MEASURED:
        cases = load_cases(path)
        struggles = {c["message"].strip().lower() for c in cases if c["group"] in STRUGGLES}
        assert len(struggles) >= 20 and not trained & struggles, path.name
    assert not set(CASE_FILES) & set(MEASURED)


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ({"text": "Why is he so cold?", "label": "maybe"}, "label"),
        ({"text": "", "label": "other"}, "text"),
        ({"label": "struggle"}, "text"),
    ],
)
def test_a_broken_line_is_named_by_file_and_line(
    tmp_path: Path, line: dict[str, str], complaint: str
) -> None:
    path = tmp_path / "messages.jsonl"
    good = {"text": "Why is my sister so upset?", "label": "struggle"}
    rows = [json.dumps({"about": "header"}), json.dumps(good), json.dumps(line)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(TrainingFileError, match=r"messages.jsonl:3 is not a valid message") as err:
        load_messages(path)
    assert complaint in str(err.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TrainingFileError, match="No training messages"):
        load_messages(tmp_path / "none.jsonl")
