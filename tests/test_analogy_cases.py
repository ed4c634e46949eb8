"""The analogy bench's case files: the shipped ones load, a broken one is named line by line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.bench_analogy import CASES, GROUPS, CaseFileError, load_cases

FRESH = CASES.with_name("analogy_cases_fresh.jsonl")
POSITIVE = {
    "id": "p1",
    "group": "positive",
    "message": "I don't get why my sister is so upset about moving.",
    "memories": [{"kind": "experience", "text": "The user felt lonely after moving to Leeds."}],
    "fire": True,
    "expect": "The user felt lonely after moving to Leeds.",
    "cue": "leeds",
}


@pytest.mark.parametrize("path", [CASES, FRESH], ids=["in-sample", "fresh"])
def test_shipped_case_files_load_with_every_group(path: Path) -> None:
    cases = load_cases(path)
    assert {case["group"] for case in cases} == set(GROUPS)
    assert len({case["id"] for case in cases}) == len(cases)
    assert all(case["expect"] == case["memories"][0]["text"] for case in cases if case["fire"])


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_every_later_fresh_set_loads_with_every_group_and_positives_to_find(n: int) -> None:
    cases = load_cases(CASES.with_name(f"analogy_cases_fresh{n}.jsonl"))
    assert {case["group"] for case in cases} == set(GROUPS)
    assert len({case["id"] for case in cases}) == len(cases)
    assert sum(case["fire"] for case in cases) == 20


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"cue": "berlin"}, "'cue' must be a regex"),
        ({"expect": "The user likes tea."}, "'expect' must be the text"),
        ({"fire": False}, "fire must be true"),
        ({"group": "gossip"}, "group"),
        ({"memories": [{"kind": "mood", "text": "x"}]}, "kind"),
    ],
)
def test_a_broken_case_is_named_by_file_and_line(
    tmp_path: Path, change: dict[str, object], complaint: str
) -> None:
    path = tmp_path / "cases.jsonl"
    lines = [json.dumps({"about": "header"}), json.dumps(POSITIVE), json.dumps(POSITIVE | change)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(CaseFileError, match=r"cases.jsonl:3 is not a valid case") as caught:
        load_cases(path)
    assert complaint in str(caught.value)


def test_a_missing_file_says_to_pass_cases(tmp_path: Path) -> None:
    with pytest.raises(CaseFileError, match="--cases"):
        load_cases(tmp_path / "none.jsonl")
