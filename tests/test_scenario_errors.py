"""Scenario files: a small valid file, and the errors it gets once edited to be broken.

A file that does not validate gets a `ScenarioError` naming the file, the line and the field.
The examples in examples/*.yaml are tested in `tests/test_scenario.py`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eval.simulate.scenario import (
    ScenarioError,
    load_scenario,
    parse_scenario,
)
from memory.traits import BIG_FIVE

BASE = """\
name: s
start: 2026-03-02
people:
  - id: ana
    card:
      background: Ana, 30, lost her job at the bakery.
      big_five:
        openness: 0.5
        conscientiousness: 0.5
        extraversion: 0.5
        agreeableness: 0.5
        neuroticism: 0.5
      support:
        wants_to_be_heard: 0.8
        wants_advice: 0.2
        preferred_strategies: [Question]
        disliked_strategies: [Information]
    sessions:
      - day: 0
        script: [hi, i lost my job at the bakery on friday]
      - day: 7
        simulate:
          opening: week two of no job
          situation: Ana is looking for work and feels stuck.
          turns: 2
"""
PERSON = BASE[BASE.index("  - id: ana") :]


def edit(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def error(text: str) -> str:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "s.yaml")
    return str(caught.value)


def test_base_is_valid_and_a_bare_date_starts_at_19_utc() -> None:
    scenario = parse_scenario(BASE, "s.yaml")
    assert scenario.start == datetime(2026, 3, 2, 19, tzinfo=UTC)
    sessions = scenario.people[0].sessions
    assert sessions[1].when(scenario.start) == datetime(2026, 3, 9, 19, tzinfo=UTC)
    dated = parse_scenario(edit("- day: 7", "- date: 2026-03-10"), "s.yaml")
    assert dated.people[0].sessions[1].when(dated.start) == datetime(2026, 3, 10, 19, tzinfo=UTC)


def test_a_moment_with_a_zone_is_kept_and_compared_in_utc() -> None:
    text = edit("start: 2026-03-02", "start: 2026-03-02T08:30:00+01:00")
    text = edit("- day: 7", "- date: 2026-03-02T08:00:00+00:00", text)
    scenario = parse_scenario(text, "s.yaml")
    assert scenario.start.utcoffset() is not None
    later = scenario.people[0].sessions[1].when(scenario.start)
    assert later == datetime(2026, 3, 2, 8, tzinfo=UTC) > scenario.start


def test_big_five_out_of_range_names_file_line_and_field() -> None:
    message = error(edit("neuroticism: 0.5", "neuroticism: 1.4"))
    assert message.startswith("s.yaml line 12, people[0].card.big_five.neuroticism: ")
    assert "less than or equal to 1" in message
    assert "\n" not in message  # one problem, one line


def test_every_problem_is_reported() -> None:
    text = edit("openness: 0.5", "openness: -0.1", edit("neuroticism: 0.5", "neuroticism: 2"))
    lines = error(text).splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "s.yaml line 8, people[0].card.big_five.openness",
        "s.yaml line 12, people[0].card.big_five.neuroticism",
    ]


def test_unknown_strategy() -> None:
    message = error(edit("[Question]", "[Question, Hugging]"))
    assert message.startswith("s.yaml line 16, people[0].card.support.preferred_strategies: ")
    assert "unknown strategy 'Hugging'" in message
    assert "Reflection of feelings" in message  # says what would do


def test_a_strategy_both_preferred_and_disliked() -> None:
    message = error(edit("[Information]", "[Information, Question]"))
    assert ", people[0].card.support: 'Question' is both preferred and disliked" in message
    assert re.match(r"s\.yaml line 1[34],", message)  # the support block


def test_a_session_with_two_kinds() -> None:
    text = edit("on friday]\n", "on friday]\n        simulate: {opening: hi, situation: sad}\n")
    message = error(text)
    assert message == (
        "s.yaml line 19, people[0].sessions[0]: a session needs exactly one of script, "
        "simulate or history (it has script and simulate)"
    )


def test_a_session_with_no_kind() -> None:
    text = edit(
        "        script: [hi, i lost my job at the bakery on friday]\n",
        "        goal: to be heard\n",
    )
    assert error(text) == (
        "s.yaml line 19, people[0].sessions[0]: "
        "a session needs exactly one of script, simulate or history"
    )


def test_a_scenario_needs_a_person_with_a_session() -> None:
    message = error(edit("people:\n" + PERSON, "people: []\n"))
    assert message.startswith("s.yaml line 3, people: List should have at least 1 item")
    message = error(BASE[: BASE.index("    sessions:")] + "    sessions: []\n")
    assert "people[0].sessions: List should have at least 1 item" in message


def test_a_session_with_neither_day_nor_date() -> None:
    message = error(edit("      - day: 0\n        script:", "      - script:"))
    assert message.startswith("s.yaml line 19, people[0].sessions[0]: ")
    assert "exactly one of day (after the start) or date" in message


def test_a_session_with_both_day_and_date() -> None:
    message = error(edit("- day: 7", "- day: 7\n        date: 2026-03-09"))
    assert "people[0].sessions[1]: a session needs exactly one of day" in message


def test_sessions_out_of_time_order() -> None:
    message = error(edit("- day: 0", "- day: 10"))
    assert (
        "s.yaml line 21, people[0].sessions[1]: session 2 (2026-03-09) is before session 1 "
        in message
    )
    assert "(2026-03-12)" in message


def test_a_duplicate_person_id() -> None:
    message = error(BASE + PERSON)
    assert message == (
        "s.yaml line 26, people[1].id: person id 'ana' is used twice; each person needs their own"
    )
    assert parse_scenario(BASE + edit("- id: ana", "- id: bo", PERSON), "s.yaml")


@pytest.mark.parametrize("bad", ["ana smith", "-ana", "x" * 65])
def test_an_invalid_user_id(bad: str) -> None:
    message = error(edit("id: ana", f"id: '{bad}'"))
    assert message.startswith("s.yaml line 4, people[0].id: Invalid user name ")
    assert repr(bad) in message


def test_an_unknown_key() -> None:
    message = error(edit("script:", "scirpt:"))
    assert "s.yaml line 20, people[0].sessions[0].scirpt: Extra inputs are not permitted" in (
        message
    )


def test_broken_yaml_names_its_line() -> None:
    message = error(edit("lost her job at the bakery.", "lost: her job: at the bakery."))
    assert message.startswith("s.yaml line 6: not valid YAML (")
    message = error(edit("[Question]", "[Question"))
    assert re.match(r"s\.yaml line \d+: not valid YAML \(", message)


@pytest.mark.parametrize("text", ["", "just a line\n", "- a\n- list\n"])
def test_a_file_that_is_not_a_mapping(text: str) -> None:
    assert error(text) == "s.yaml: a scenario is a mapping with name, start and people."


def test_a_naive_datetime_is_refused() -> None:
    message = error(edit("- day: 7", "- date: 2026-03-09T19:00:00"))
    assert message.startswith("s.yaml line 21, people[0].sessions[1]: date has no zone")
    message = error(edit("start: 2026-03-02", "start: 2026-03-02T19:00:00"))
    assert message.startswith("s.yaml line 2, start: start has no zone")
    history = edit(
        "        script: [hi, i lost my job at the bakery on friday]",
        "        history:\n"
        "          - {role: user, text: hi, time: 2026-02-20T10:00:00}\n"
        "          - {role: assistant, text: hello, minute: 1}",
    )
    assert "people[0].sessions[0].history[0]: time has no zone" in error(history)


def test_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ScenarioError, match="no such scenario file") as caught:
        load_scenario(missing)
    assert str(missing) in str(caught.value)


def test_a_file_is_read_and_named_by_its_name(tmp_path: Path) -> None:
    path = tmp_path / "week.yaml"
    path.write_text(BASE, encoding="utf-8")
    assert load_scenario(path).people[0].id == "ana"
    path.write_text(edit("wants_advice: 0.2", "wants_advice: high"), encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(caught.value).startswith("week.yaml line 15, people[0].card.support.wants_advice: ")


def test_a_history_session_takes_no_probes_or_crisis() -> None:
    history = edit(
        "        script: [hi, i lost my job at the bakery on friday]",
        "        history:\n"
        "          - {role: user, text: i lost my job at the bakery, minute: 0}\n"
        "          - {role: assistant, text: that sounds hard, minute: 1}",
    )
    scenario = parse_scenario(history, "s.yaml")
    assert scenario.people[0].sessions[0].kind == "history"
    assert scenario.turn_budget() == 2  # the history is ingested, not lived
    probes = (
        "        probes:\n"
        "          - question: where did i work?\n"
        "            expect_any: [bakery]\n"
    )
    message = error(edit("minute: 1}\n", "minute: 1}\n" + probes, history))
    assert message.startswith("s.yaml line 19, people[0].sessions[0]: a history session")
    message = error(edit("minute: 1}\n", "minute: 1}\n        crisis: help\n", history))
    assert "no crisis or probes" in message


def test_truth_holds_the_big_five_and_the_support_scores() -> None:
    person = parse_scenario(BASE, "s.yaml").people[0]
    truth = person.truth()
    assert set(truth) == set(BIG_FIVE) | {
        "wants_to_be_heard",
        "wants_advice",
        "humour",
        "directness",
    }
    assert truth["wants_to_be_heard"] == 0.8 and truth["wants_advice"] == 0.2
    assert truth["humour"] == truth["directness"] == 0.5  # the defaults
    assert truth["neuroticism"] == 0.5


def test_a_quoted_date_only_start_is_a_date() -> None:
    text = BASE.replace("start: 2026-03-02", "start: '2026-03-02'")
    assert parse_scenario(text, "s.yaml").start.hour == 19


def test_history_lines_must_be_in_order_and_not_blank() -> None:
    history = BASE.replace(
        "        script: [hi, i lost my job at the bakery on friday]",
        "        history:\n"
        "          - {role: user, text: lost my job, minute: 5}\n"
        "          - {role: assistant, text: oh no, minute: 2}",
    )
    message = error(history)
    assert "people[0].sessions[0].history[1]: said at 2026-03-02 19:02, before the line" in message
    assert "line 22" in message  # the line of that history entry
    blank = history.replace("text: oh no, minute: 2", "text: '  ', minute: 6")
    assert "history[1].text: text is blank" in error(blank)
