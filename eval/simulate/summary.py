"""What a simulation run shows: per person, per session and overall, from the run dir alone.

Everything here is computed from the journals (`people/*/transcript.jsonl`) and the scenario
kept in `run.json`, never from the data dir, so a merged run of shards summarises exactly as a
single run does. Statistics come from scipy (Spearman); nothing is estimated by hand.

Measures:
- trait error: mean absolute error between the agent's inferred traits and the hidden values,
  over the traits it has inferred (coverage says how many of the nine), after each session;
  Spearman between inferred and hidden Big Five, pooled over people, per session;
- preference fit: the share of ordinary turns whose chosen strategy is one the person prefers,
  and one they dislike, per session;
- probes: the reply names an expected fact / the recalled memories hold it;
- emotion: the SAGE score (start 40) after each reply, per session, and the last one;
- crisis moments handled (the crisis reply), and false alarms (a crisis reply to an ordinary
  message);
- turns per minute of the agent's time (the simulator's time is counted apart), and the leak
  check: recalled memories of another person.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from statistics import fmean
from typing import Any

from eval.simulate.files import (
    PEOPLE_DIR,
    RUN_FILE,
    SUMMARY_FILE,
    SimulationError,
    people_dirs,
    read_journal,
    write_json,
)  # fmt: skip
from eval.simulate.scenario import Person, Scenario
from eval.simulate.user_model import spearman

Records = list[dict[str, Any]]
TIMING_KEYS = frozenset(
    {"seconds", "turns_per_minute", "simulator_seconds"}
)  # differ between runs by nature


def share(items: list[str], names: list[str]) -> float | None:
    return round(sum(i in names for i in items) / len(items), 3) if items else None


def mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(fmean(present), 3) if present else None


def trait_table(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The inferred traits of a session end beside the hidden truth."""
    traits, truth = record.get("traits", {}), record.get("truth", {})
    table = {}
    for name, true_value in truth.items():
        got = traits.get(name)
        table[name] = {
            "truth": true_value,
            "inferred": got["value"] if got else None,
            "confidence": got["confidence"] if got else None,
            "error": round(abs(got["value"] - true_value), 3) if got else None,
        }
    return table


def person_report(person: Person, records: Records) -> dict[str, Any]:
    """One person's sessions, probes and checks, from their journal."""
    from eval.simulate.user_model import replay_rows
    from memory.traits import BIG_FIVE

    support = person.card.support
    sessions = []
    for index, session in enumerate(person.sessions):
        end = next((r for r in records if r["type"] == "session_end" and r["session"] == index),
                   None)  # fmt: skip
        turns = [r for r in records if r["type"] == "turn" and r["session"] == index]
        ordinary = [r for r in turns if r["kind"] != "crisis" and not r["crisis"]]
        strategies = [r["strategy"] for r in ordinary if r.get("strategy")]
        traits = trait_table(end) if end else {}
        five = [(traits[t]["inferred"], traits[t]["truth"]) for t in BIG_FIVE
                if traits.get(t, {}).get("inferred") is not None]  # fmt: skip
        emotions = [r["emotion"] for r in turns if r.get("emotion") is not None]
        sessions.append({
            "session": index + 1, "kind": session.kind, "goal": session.goal,
            "finished": end is not None, "at": end["at"] if end else None,
            "traits": traits,
            "trait_mae": mean([row["error"] for row in traits.values()]),
            "traits_inferred": sum(row["inferred"] is not None for row in traits.values()),
            "big_five_spearman": spearman([a for a, _ in five], [b for _, b in five]),
            "strategies": strategies,
            "preferred_share": share(strategies, support.preferred_strategies),
            "disliked_share": share(strategies, support.disliked_strategies),
            "emotion": emotions, "final_emotion": emotions[-1] if emotions else None,
            "outcome": end.get("outcome") if end else None,
            "memories": end.get("memories") if end else None,
            "crisis_expected": sum(r["crisis_expected"] for r in turns),
            "crisis_handled": sum(r["crisis_expected"] and r["crisis"] for r in turns),
            "false_alarms": sum(r["crisis"] and not r["crisis_expected"] for r in turns),
            "turns": len(turns),
            "by_signal": end.get("by_signal", {}) if end else {},
            "replay": replay_rows(records, index, person.truth()),
        })  # fmt: skip
    probes = [
        {
            k: r.get(k)
            for k in (
                "session",
                "message",
                "reply",
                "expect_any",
                "reference",
                "reply_hit",
                "memory_hit",
            )
        }  # fmt: skip
        for r in records
        if r["type"] == "probe"
    ]
    live = [r for r in records if r["type"] in ("turn", "probe")]
    seconds = round(sum(r["seconds"] for r in live), 3)
    simulator = round(sum(r.get("simulator_seconds", 0.0) for r in live), 3)
    return {
        "id": person.id,
        "finished": any(r["type"] == "done" for r in records),
        "errors": [r["error"] for r in records if r["type"] == "error"],
        "truth": person.truth(),
        "preferred_strategies": support.preferred_strategies,
        "disliked_strategies": support.disliked_strategies,
        "sessions": sessions,
        "probes": probes,
        "turns": len(live),
        "seconds": seconds,
        "turns_per_minute": round(60 * len(live) / seconds, 2) if seconds else None,
        "simulator_seconds": simulator,
        "leaks": sorted({leak for r in live for leak in r.get("leaks", [])}),
    }


def pooled_spearman(reports: list[dict[str, Any]], index: int) -> float | None:
    """Spearman over every (person, Big Five trait) pair inferred after session `index`."""
    from memory.traits import BIG_FIVE

    pairs = [
        (row["inferred"], row["truth"])
        for report in reports if index < len(report["sessions"])
        for name, row in report["sessions"][index]["traits"].items()
        if name in BIG_FIVE and row["inferred"] is not None
    ]  # fmt: skip
    return spearman([a for a, _ in pairs], [b for _, b in pairs])


def summarize(scenario: Scenario, reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's summary: per person and overall (people in the scenario's order)."""
    from eval.simulate.user_model import user_model_summary

    order = {p.id: n for n, p in enumerate(scenario.people)}
    reports = sorted(reports, key=lambda r: order.get(r["id"], len(order)))
    per_person = {r["id"]: person_summary(r) for r in reports}
    longest = max((len(r["sessions"]) for r in reports), default=0)
    by_session = []
    for index in range(longest):
        rows = [r["sessions"][index] for r in reports
                if index < len(r["sessions"]) and r["sessions"][index]["finished"]]  # fmt: skip
        strategies = [(s, r["preferred_strategies"], r["disliked_strategies"])
                      for r in reports if index < len(r["sessions"])
                      for s in r["sessions"][index]["strategies"]]  # fmt: skip
        by_session.append({
            "session": index + 1,
            "people": len(rows),
            "trait_mae": mean([row["trait_mae"] for row in rows]),
            "big_five_spearman": pooled_spearman(reports, index),
            "preferred_share": round(fmean(s in p for s, p, _ in strategies), 3)
            if strategies else None,
            "disliked_share": round(fmean(s in d for s, _, d in strategies), 3)
            if strategies else None,
            "mean_final_emotion": mean([row["final_emotion"] for row in rows]),
        })  # fmt: skip
    probes = [p for r in reports for p in r["probes"]]
    turns = sum(r["turns"] for r in reports)
    seconds = sum(r["seconds"] for r in reports)
    crisis = [s for r in reports for s in r["sessions"]]
    scenario_ids = [p.id for p in scenario.people]
    return {
        "scenario": scenario.name,
        "user_model": user_model_summary(reports),
        "people": len(reports),
        "finished": sum(r["finished"] for r in reports),
        "missing": [i for i in scenario_ids if i not in per_person],
        "per_person": per_person,
        "by_session": by_session,
        "overall": {
            "probe_reply_accuracy": round(fmean(p["reply_hit"] for p in probes), 3)
            if probes else None,
            "probe_memory_accuracy": round(fmean(p["memory_hit"] for p in probes), 3)
            if probes else None,
            "probes": len(probes),
            "mean_final_emotion": mean([s["final_emotion"] for s in per_person.values()]),
            "crisis_expected": sum(s["crisis_expected"] for s in crisis),
            "crisis_handled": sum(s["crisis_handled"] for s in crisis),
            "false_alarms": sum(s["false_alarms"] for s in crisis),
            "turns": turns,
            "seconds": round(seconds, 3),
            "turns_per_minute": round(60 * turns / seconds, 2) if seconds else None,
            "simulator_seconds": round(sum(r["simulator_seconds"] for r in reports), 3),
            "leaks": sum(len(r["leaks"]) for r in reports),
            "leak_check": "passed" if not any(r["leaks"] for r in reports) else "FAILED",
        },
    }  # fmt: skip


def person_summary(report: dict[str, Any]) -> dict[str, Any]:
    sessions = report["sessions"]
    probes = report["probes"]
    finals = [s["final_emotion"] for s in sessions if s["final_emotion"] is not None]
    return {
        "finished": report["finished"],
        "errors": report["errors"],
        "trait_mae": [s["trait_mae"] for s in sessions],
        "traits_inferred": [s["traits_inferred"] for s in sessions],
        "big_five_spearman": [s["big_five_spearman"] for s in sessions],
        "preferred_share": [s["preferred_share"] for s in sessions],
        "disliked_share": [s["disliked_share"] for s in sessions],
        "emotion_by_session": [s["final_emotion"] for s in sessions],
        "final_emotion": finals[-1] if finals else None,
        "outcomes": [s["outcome"] for s in sessions],
        "probe_reply_hits": sum(bool(p["reply_hit"]) for p in probes),
        "probe_memory_hits": sum(bool(p["memory_hit"]) for p in probes),
        "probes": len(probes),
        "crisis_handled": f"{sum(s['crisis_handled'] for s in sessions)}/"
        f"{sum(s['crisis_expected'] for s in sessions)}",
        "false_alarms": sum(s["false_alarms"] for s in sessions),
        "turns": report["turns"],
        "seconds": report["seconds"],
        "turns_per_minute": report["turns_per_minute"],
        "simulator_seconds": report["simulator_seconds"],
        "leaks": len(report["leaks"]),
    }


def load_run(run_dir: Path) -> tuple[dict[str, Any], Scenario]:
    run_file = run_dir / RUN_FILE
    if not run_file.exists():
        raise SimulationError(f"{run_dir} holds no simulation run ({RUN_FILE} is missing).")
    described = json.loads(run_file.read_text(encoding="utf-8"))
    return described, Scenario.model_validate(described["scenario"])


def summarize_run(run_dir: Path) -> dict[str, Any]:
    """Recompute every person's report and the run's summary from the run dir; write them."""
    _, scenario = load_run(run_dir)
    people = {p.id: p for p in scenario.people}
    reports = []
    for folder in people_dirs(run_dir):
        journal = folder / "transcript.jsonl"
        if folder.name not in people or not journal.exists():
            continue
        report = person_report(people[folder.name], read_journal(journal))
        write_json(folder / "person.json", report)
        reports.append(report)
    summary = summarize(scenario, reports)
    write_json(run_dir / SUMMARY_FILE, summary)
    return summary


def without_timing(value: Any) -> Any:
    """The summary without wall-time measures (for comparing two runs of the same work)."""
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def merge_runs(run_dirs: list[Path], out: Path) -> dict[str, Any]:
    """Combine shard run dirs of one scenario into one run dir and summarise it."""
    if not run_dirs:
        raise SimulationError("Name at least one run dir to merge.")
    described = [load_run(d)[0] for d in run_dirs]
    first = described[0]
    same = ("scenario_sha256", "seed")
    for run_dir, other in zip(run_dirs[1:], described[1:], strict=True):
        for key in same:
            if other.get(key) != first.get(key):
                raise SimulationError(
                    f"{run_dir} has another {key} than {run_dirs[0]}: only shards of one run "
                    "can be merged."
                )
        for key in ("model", "user_model", "variant"):
            if other["settings"].get(key) != first["settings"].get(key):
                raise SimulationError(f"{run_dir} ran with another {key}: not mergeable.")
    if (out / RUN_FILE).exists() or (out.exists() and any(out.iterdir())):
        raise SimulationError(f"{out} is not empty; merge into a new directory.")
    seen: dict[str, Path] = {}
    for run_dir in run_dirs:
        for folder in people_dirs(run_dir):
            if folder.name in seen:
                raise SimulationError(
                    f"{folder.name} is in both {seen[folder.name]} and {run_dir}: the shards "
                    "overlap."
                )
            seen[folder.name] = run_dir
    (out / PEOPLE_DIR).mkdir(parents=True, exist_ok=True)
    for name, run_dir in seen.items():
        shutil.copytree(run_dir / PEOPLE_DIR / name, out / PEOPLE_DIR / name)
    merged = {
        **first,
        "shard": "merged",
        "merged_from": [{"dir": str(d), "shard": r["shard"]} for d, r in zip(run_dirs, described,
                                                                               strict=True)],
        "people": [p["id"] for p in first["scenario"]["people"] if p["id"] in seen],
    }  # fmt: skip
    write_json(out / RUN_FILE, merged)
    return summarize_run(out)
