"""A correction wins at once: a trait the person sets (CLI or TUI, both `TraitModel.set`) is what
the very next turn's policy uses, over everything inferred."""

from __future__ import annotations

from click.testing import CliRunner

from tui.cli import cli


def test_a_trait_set_by_the_person_drives_the_next_turn(make_agent, settings) -> None:
    agent, user, session = make_agent(turns=2)
    before = agent.run_turn(user, session, "I failed my driving test again and my dad laughed")
    plan = agent.context.store.get_turn(before.turn_id).trace.plan
    assert plan.strategy != "Providing Suggestions"  # validation, with no traits known

    result = CliRunner().invoke(cli, [
        "traits", "set", "wants_advice=1", "wants_to_be_heard=0", "--user", user,
        "--data-dir", str(settings.data_dir),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    after = agent.run_turn(user, session, "I failed my driving test again and my dad laughed")
    plan = agent.context.store.get_turn(after.turn_id).trace.plan
    assert "wants_advice" in plan.traits_used
    assert plan.strategy == "Providing Suggestions"
    shown = CliRunner().invoke(cli, ["traits", "show", "--user", user, "--data-dir",
                                     str(settings.data_dir)])  # fmt: skip
    assert "wants_advice" in shown.output and "1.00  confidence 1.00  user" in shown.output
