"""The evaluation's outputs: `results.json` (machine-readable) and `report.html` with PNG plots.

    results = write_report(report_dir, items, records, systems, seed=7)

The HTML is self-contained apart from its PNGs beside it (matplotlib, Agg): metric bars with
95% intervals per system, the trait-error curve over history sessions, strategy confusion
matrices, pairwise outcomes and the judge against human ratings. Every data string is escaped
(Jinja2 autoescape).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from eval.offline import results as res
from eval.offline.items import AnyItem
from eval.offline.plots import confusion_png, scatter_png
from eval.simulate.files import clean, write_json
from eval.simulate.tables import fmt

RESULTS = "results.json"
REPORT = "report.html"
PLOTS = "plots"
TEMPLATE = "report.html.j2"  # beside this module


def write_report(
    report_dir: Path, items: Sequence[AnyItem], records: Sequence[dict[str, Any]],
    systems: Sequence[str], *, seed: int, run: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """Compute every metric and write results.json, report.html and the plots; return the
    results."""
    alignment, unscored = res.judge_alignment(records)
    results = {
        "run": run,
        "tasks": res.task_counts(items),
        "systems": list(systems),
        "metrics": res.metric_rows(items, records, systems, seed=seed),
        "trait_curve": res.trait_curve(items, records),
        "strategy": res.confusions(items, records, systems),
        "pairwise": res.pairwise(records),
        "judge_alignment": alignment,
        "judge_unscored_dimensions": unscored,
        "failures": res.failures(records),
        "skipped_lines": run.get("skipped_lines", []),
    }
    write_json(report_dir / RESULTS, clean(results))
    plots = draw(report_dir / PLOTS, results)
    (report_dir / REPORT).write_text(render(results, plots), encoding="utf-8")
    return results


# --- plots -----------------------------------------------------------------------------------
def draw(folder: Path, results: dict[str, Any]) -> dict[str, str]:
    """Draw every plot the results allow; return {name: path relative to the report}."""
    import matplotlib

    matplotlib.use("Agg")
    folder.mkdir(parents=True, exist_ok=True)
    plots: dict[str, str] = {}
    rows = results["metrics"]
    for task in ("reply", "strategy", "memory", "emotion"):
        task_rows = [r for r in rows if r["task"] == task and "per turn" not in r["metric"]]
        if task_rows:
            plots[f"bars-{task}"] = bars(folder / f"bars-{task}.png", task, task_rows)
    if results["trait_curve"]:
        plots["traits"] = trait_plot(folder / "traits.png", results["trait_curve"])
    for system, found in results["strategy"].items():
        path = folder / f"confusion-{system}.png"
        confusion_png(found["confusion"], found["labels"], path,
                      f"Strategy confusion: {system} (rows gold, columns predicted)")  # fmt: skip
        plots[f"confusion-{system}"] = path.name
    if results["pairwise"]:
        plots["pairwise"] = pairwise_plot(folder / "pairwise.png", results["pairwise"])
    for dimension, found in results["judge_alignment"].items():
        path = folder / f"judge-{dimension}.png"
        scatter_png(found["judge"], found["human"], path, f"Judge vs humans: {dimension}")
        plots[f"judge-{dimension}"] = path.name
    return {name: f"{PLOTS}/{Path(path).name}" for name, path in plots.items()}


def bars(path: Path, task: str, rows: Sequence[dict[str, Any]]) -> str:
    """One panel per metric: a bar per system with its 95% interval."""
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["metric"] for r in rows))
    columns = min(4, len(names))
    lines = math.ceil(len(names) / columns)
    figure, axes = plt.subplots(lines, columns, figsize=(3.4 * columns, 2.8 * lines), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        found = [r for r in rows if r["metric"] == name]
        values = [r["value"] for r in found]
        x = range(len(found))
        ax.bar(x, values, color="#5b8def")
        for n, r in enumerate(found):  # the interval as a line: it need not contain the value
            if finite(r["ci"][0]) and finite(r["ci"][1]):
                ax.vlines(n, r["ci"][0], r["ci"][1], color="black", linewidth=1.2)
                ax.hlines(r["ci"], n - 0.12, n + 0.12, color="black", linewidth=1.2)
            else:
                ax.annotate("no CI", (n, r["value"]), ha="center", va="bottom", fontsize=6)
        ax.set_xticks(list(x), [r["system"] for r in found], rotation=40, ha="right", fontsize=7)
        arrow = "↑" if found[0]["higher_is_better"] else "↓"
        ax.set_title(f"{name} {arrow}", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        if all(finite(v) and 0 <= v <= 1 for v in values):
            ax.set_ylim(0, 1.05)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    figure.suptitle(f"{task} items: value per system with bootstrap 95% interval", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path.name


def trait_plot(path: Path, curve: Sequence[dict[str, Any]]) -> str:
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(4.5, 3))
    ax.plot([p["session"] for p in curve], [p["mae"] for p in curve], marker="o")
    ax.set_xlabel("history sessions ingested")
    ax.set_ylabel("trait mean absolute error")
    ax.set_title("Inferred traits against hidden traits", fontsize=9)
    ax.set_xticks([p["session"] for p in curve])
    figure.tight_layout()
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path.name


def pairwise_plot(path: Path, found: dict[str, dict[str, Any]]) -> str:
    import matplotlib.pyplot as plt

    systems = list(found)
    figure, ax = plt.subplots(figsize=(5, 0.6 * len(systems) + 1.2))
    left = [0.0] * len(systems)
    for outcome, color in (("win", "#4caf50"), ("tie", "#bdbdbd"), ("loss", "#e57373")):
        share = [found[s][outcome] / found[s]["n"] if found[s]["n"] else 0 for s in systems]
        ax.barh(systems, share, left=left, color=color, label=outcome)
        left = [a + b for a, b in zip(left, share, strict=True)]
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of items, against full (judge, both orders)")
    ax.legend(fontsize=7, ncol=3, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path.name


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


# --- HTML ------------------------------------------------------------------------------------
def tables(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One table per task: a row per metric, a column per system ("value [low, high] n, p")."""
    found = []
    for task in ("reply", "strategy", "memory", "emotion"):
        rows = [r for r in results["metrics"] if r["task"] == task]
        if not rows:
            continue
        systems = list(dict.fromkeys(r["system"] for r in rows))
        body = []
        for name in dict.fromkeys(r["metric"] for r in rows):
            cells = {r["system"]: r for r in rows if r["metric"] == name}
            first = next(iter(cells.values()))
            body.append({
                "metric": name, "description": first["description"],
                "arrow": "↑" if first["higher_is_better"] else "↓",
                "cells": [cell(cells.get(s), first["higher_is_better"]) for s in systems],
            })  # fmt: skip
        found.append({"task": task, "systems": systems, "rows": body})
    return found


def cell(row: dict[str, Any] | None, higher: bool) -> dict[str, str]:
    if row is None:
        return {"text": "–", "note": "", "mark": ""}
    low, high = row["ci"]
    interval = f"[{fmt(low, 2)}, {fmt(high, 2)}] " if finite(low) else ""
    note = f"{interval}n={row['n']}"
    p, q = row.get("p_vs_full"), row.get("q_vs_full")
    mark = ""
    if p is not None:
        note += f"; vs full on {row['n_paired']}: p={fmt(p, 3)}, q={fmt(q, 3)}"
        if q is not None and q < 0.05:
            mark = "sig"
    return {"text": fmt(row["value"]), "note": note, "mark": mark}


def render(results: dict[str, Any], plots: dict[str, str]) -> str:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("eval.offline", "."), autoescape=True,
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
    )  # fmt: skip
    return env.get_template(TEMPLATE).render(
        run=results["run"], tasks=results["tasks"], tables=tables(results), plots=plots,
        trait_curve=results["trait_curve"], strategy=results["strategy"],
        pairwise=results["pairwise"], alignment=results["judge_alignment"],
        unscored=results["judge_unscored_dimensions"],
        failures=results["failures"], skipped=results["skipped_lines"], f=fmt,
    )  # fmt: skip
