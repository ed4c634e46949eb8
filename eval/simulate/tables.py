"""What a simulation run looks like to a person: the summary as rich tables (printed by
`empathos simulate` and `simulate merge`) and each person's transcript as Markdown."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from eval.simulate.scenario import Person, Scenario
from eval.simulate.summary import Records, trait_table

if TYPE_CHECKING:
    from rich.table import Table


def fmt(value: Any, digits: int = 2) -> str:
    """A number for a table: "–" for none (or NaN), `digits` decimals, tiny values (p-values)
    in significant digits so they do not read as 0."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float) and value and abs(value) < 10**-digits:
        return f"{value:.2g}"
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{value:.{digits}f}"
    return str(value)


def series(values: list[Any]) -> str:
    return " → ".join(fmt(v, 0 if isinstance(v, int) else 2) for v in values) if values else "–"


def summary_tables(summary: dict[str, Any]) -> list[Table]:
    """The summary as two rich tables: all people by session, then one row per person."""
    from rich.table import Table

    sessions = Table(title=f"simulation {summary['scenario']}: all people, by session")
    for column in ("session", "people", "trait MAE", "Big Five ρ", "preferred", "disliked",
                   "final emotion"):  # fmt: skip
        sessions.add_column(column, justify="right")
    for row in summary["by_session"]:
        sessions.add_row(
            str(row["session"]), str(row["people"]), fmt(row["trait_mae"]),
            fmt(row["big_five_spearman"]), fmt(row["preferred_share"]),
            fmt(row["disliked_share"]), fmt(row["mean_final_emotion"], 0),
        )  # fmt: skip
    people = Table(title="per person (trait MAE, emotion: after each session)")
    for column in ("person", "trait MAE", "emotion", "probes", "crisis", "turns/min"):
        people.add_column(column)
    for person, row in summary["per_person"].items():
        probes = row["probes"]
        people.add_row(
            person + ("" if row["finished"] else " (unfinished)"),
            series(row["trait_mae"]), series(row["emotion_by_session"]),
            f"reply {row['probe_reply_hits']}/{probes}, memory {row['probe_memory_hits']}/{probes}",
            f"{row['crisis_handled']}, {row['false_alarms']} false",
            fmt(row["turns_per_minute"]),
        )  # fmt: skip
    overall = summary["overall"]
    people.add_row(
        "[b]overall[/b]", "", fmt(overall["mean_final_emotion"], 0),
        f"reply {fmt(overall['probe_reply_accuracy'])}, "
        f"memory {fmt(overall['probe_memory_accuracy'])}",
        f"{overall['crisis_handled']}/{overall['crisis_expected']}, "
        f"{overall['false_alarms']} false",
        fmt(overall["turns_per_minute"]),
    )  # fmt: skip
    people.caption = (
        f"leak check (no recall returned another person's memory): {overall['leak_check']}"
        + (f"; missing people: {', '.join(summary['missing'])}" if summary["missing"] else "")
    )
    return [sessions, people, *user_model_tables(summary.get("user_model"))]


def user_model_tables(found: dict[str, Any] | None) -> list[Table]:
    """Trait Spearman per trait and preference fit with, without and with the hidden traits."""
    from rich.table import Table

    if not found or not found["by_session"]:
        return []
    traits = list(found["by_session"][0]["spearman"])
    table = Table(title="user model by session: Spearman per trait (pooled over people), "
                  "support side, preferred share (chosen / no traits / hidden traits)")  # fmt: skip
    columns = ("session", *traits, "support side", "preferred", "disliked",
               "preferred, turns not saying how (share saying)")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    keys = ("actual", "no_traits", "true_traits")
    for row in found["by_session"]:
        fits, unstated = row["preference_fit"], row.get("preference_fit_unstated")
        table.add_row(
            str(row["session"]), *(fmt(row["spearman"][t]) for t in traits),
            fmt(row["support_right_side"]["both"]),
            " / ".join(fmt(fits[k]["preferred"]) for k in keys),
            " / ".join(fmt(fits[k]["disliked"]) for k in keys),
            " / ".join(fmt(unstated[k]["preferred"]) for k in keys)
            + f" ({fmt(row.get('stated_share'))})" if unstated else "–",
        )  # fmt: skip
    signals = Table(title="last session: Spearman per trait from each kind of signal")
    for column in ("signals", *traits):
        signals.add_column(column, justify="right")
    for source, row in found["by_signal"].items():
        signals.add_row(source, *(fmt(row.get(t)) for t in traits))
    signals.caption = "calibration (right side of 0.5 by confidence): " + ", ".join(
        f"{b['confidence']}: {fmt(b['right_side'])} (n {b['n']})" for b in found["calibration"]
    )
    return [table, signals]


def transcript_markdown(scenario: Scenario, person: Person, records: Records) -> str:
    """A person's run as Markdown a person can read."""
    lines = [f"# {person.id} — {scenario.name}", "", f"_{person.card.background}_", ""]
    support = person.card.support
    lines += [
        f"Prefers: {', '.join(support.preferred_strategies) or '–'}. "
        f"Dislikes: {', '.join(support.disliked_strategies) or '–'}.", "",
    ]  # fmt: skip
    for index, session in enumerate(person.sessions):
        when = session.when(scenario.start)
        lines += [f"## Session {index + 1} — {when:%A %d %B %Y} ({session.kind})", ""]
        if session.goal:
            lines += [f"Hidden goal: {session.goal}", ""]
        if session.history is not None:
            lines += [f"> **{'you' if h.role == 'user' else 'companion'}**: {h.text}  "
                      for h in session.history]  # fmt: skip
            lines.append("")
        for record in records:
            if record["session"] != index or record["type"] not in ("turn", "probe"):
                continue
            label = {"probe": "probe", "crisis": "crisis moment"}.get(record["kind"], "")
            lines.append(f"**{person.id}**{f' ({label})' if label else ''}: {record['message']}")
            lines.append("")
            how = ", ".join(x for x in (record.get("strategy"), record.get("lens")) if x)
            crisis = " · crisis reply" if record["crisis"] else ""
            lines.append(f"**empathos** ({how or 'no plan'}{crisis}): {record['reply'] or '–'}")
            lines.append("")
            if record.get("reaction"):
                reaction = record["reaction"]
                lines.append(
                    f"_{reaction['reaction']} ({reaction['emotion_change']:+d} → "
                    f"{record['emotion']}: {reaction['reason']})_"
                )
                lines.append("")
            if record["type"] == "probe":
                lines.append(
                    f"_probe: expected any of {record['expect_any']}; reply "
                    f"{'hit' if record['reply_hit'] else 'miss'}, memories "
                    f"{'hit' if record['memory_hit'] else 'miss'}_"
                )
                lines.append("")
        end = next((r for r in records if r["type"] == "session_end" and r["session"] == index),
                   None)  # fmt: skip
        if end:
            known = ", ".join(
                f"{name} {row['inferred']:.2f} (true {row['truth']:.2f})"
                for name, row in trait_table(end).items() if row["inferred"] is not None
            )  # fmt: skip
            lines += [
                f"_After this session: {end['memories']} memories; traits: {known or 'none yet'}._",
                "",
            ]
    for record in records:
        if record["type"] == "error":
            lines += [f"**Stopped**: {record['error']}", ""]
    return "\n".join(lines)
