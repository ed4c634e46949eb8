"""Simulations from other sources: a history session ingested at its date, the README's example
scenario, and ESConv conversations rebuilt from overlapping items."""

from __future__ import annotations

import json
from pathlib import Path

from eval.simulate.scenario import parse_scenario
from memory.database import open_database
from tests.test_simulate import card, journal, simulation

HISTORY = (
    """name: with-history
start: 2026-03-02
people:
  - id: ana"""
    + card()
    + """
    sessions:
      - date: 2026-02-01T10:00:00+00:00
        history:
          - {role: user, text: "my sister Odile moved to Lyon for a job at the hospital", minute: 0}
          - {role: assistant, text: "That is a big move for her, zebra.", minute: 1}
          - {role: user, text: "i miss her already, we walked the dogs on sundays", minute: 5}
      - day: 0
        script: ["do you remember where my sister moved to?"]
        probes:
          - question: "where did Odile move to?"
            expect_any: [Lyon]
"""
)


def test_a_history_session_is_ingested_at_its_date_from_the_persons_words_only(
    tmp_path: Path,
) -> None:
    assert simulation(tmp_path, HISTORY).run() == []
    records = journal(tmp_path)
    first = records[0]
    assert first["type"] == "session_end" and first["kind"] == "history"
    assert first["ingested"]["turns"] == 2 and first["memories"] >= 1
    db = open_database(tmp_path / "data" / "empathos.db")
    texts = [m["text"] for m in db.table("memories").rows_where("user_id = 'ana'")]
    assert any("Odile moved to Lyon" in t for t in texts)
    assert not any("zebra" in t for t in texts)  # the assistant's words are never a memory
    stamped = next(iter(db.table("turns").rows_where("user_text like 'my sister Odile%'")))
    assert stamped["created_at"].startswith("2026-02-01T10:00")
    probe = next(r for r in records if r["type"] == "probe")
    assert probe["memory_hit"] is True
    markdown = (tmp_path / "run" / "people" / "ana" / "transcript.md").read_text()
    assert "Session 1 — Sunday 01 February 2026 (history)" in markdown
    assert "zebra" in markdown  # the readable transcript shows both sides of the history


def test_the_readme_scenario_example_is_valid() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Simulations") :]
    block = section[
        section.index("```yaml\n") + 8 : section.index("```", section.index("```yaml") + 7)
    ]
    scenario = parse_scenario(block, "README.md")
    rosa = scenario.people[0]
    assert [s.kind for s in rosa.sessions] == ["history", "script", "simulate"]
    assert rosa.sessions[0].when(scenario.start) < scenario.start


def test_esconv_conversations_are_rebuilt_from_overlapping_items(tmp_path: Path) -> None:
    from eval.simulate.esconv_replay import conversations

    def item(context: list[tuple[str, str]], response: str) -> str:
        turns = [{"speaker": who, "text": text} for who, text in context]
        return json.dumps({"context": turns, "strategy": "Question", "response": response})

    lines = [
        item([("seeker", "s1")], "r1"),
        item([("seeker", "s1"), ("supporter", "r1"), ("seeker", "s2")], "r2"),
        item([("supporter", "r1"), ("seeker", "s2"), ("supporter", "r2"), ("seeker", "s3")], "r3"),
        item([("seeker", "t1")], "u1"),
    ]
    path = tmp_path / "dev.jsonl"
    path.write_text("\n".join(lines) + "\n")
    first, second = conversations(path)
    assert [text for who, text in first["turns"] if who == "seeker"] == ["s1", "s2", "s3"]
    assert [text for who, text in first["turns"] if who == "supporter"] == ["r1", "r2", "r3"]
    assert second["turns"] == [("seeker", "t1"), ("supporter", "u1")]
