"""Benchmark items from the public data sets: the ESConv, EPITOME and GoEmotions importers."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    EmotionItem,
    RatingItem,
    StrategyItem,
)
from tests.test_offline_items import jsonl, of


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
