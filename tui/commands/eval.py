"""`empathos eval`: offline evaluation — benchmarks, systems side by side, a judge, one report.

empathos eval run BENCH.jsonl... --report DIR [--systems full,no-memory,...] [--judge-model J]
                  [--rubrics likert,epitome,personaemp] [--pairwise] [--limit N] [--seed S]
                  [--resume] [--model M]
empathos eval from-sim RUN_DIR -o BENCH.jsonl
empathos eval import esconv|epitome|goemotions PATH -o BENCH.jsonl
empathos eval judge-check RATED --judge-model J --report DIR [--limit N] [--resume]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tui.options import F, errors_as_click, model_options, settings_from
from tui.progress import progress_bars

if TYPE_CHECKING:
    from agent.settings import Settings
    from eval.offline.judge import Judge

DEFAULT_SYSTEMS = "full,no-memory,no-traits,no-ebg,no-coe,single-call"


@contextmanager
def eval_errors() -> Iterator[None]:
    """Typed errors become one clear line (exit 1); the report dir stays resumable."""
    from agent.errors import AgentError
    from eval.errors import EvalError
    from memory.errors import MemoryLayerError

    with errors_as_click(EvalError, AgentError, MemoryLayerError):
        yield


def judge_options(fn: F) -> F:
    for decorator in reversed([
        click.option("--judge-model", help="The judge's model: a registry name, a .gguf path "
                     "or an endpoint model id (separate from the agent's)."),
        click.option("--judge-base-url", help="The judge's OpenAI-compatible endpoint "
                     "(default: embedded, even when the agent uses an endpoint)."),
        click.option("--judge-api-key", help="The judge endpoint's API key."),
    ]):  # fmt: skip
        fn = decorator(fn)
    return fn


def report_option(fn: F) -> F:
    return click.option(
        "--report", "report_dir", required=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="The report dir: report.html, results.json, records.jsonl, plots/.",
    )(fn)  # fmt: skip


def output_option(fn: F) -> F:
    return click.option(
        "-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
        help="Where to write the benchmark items (JSONL).",
    )(fn)  # fmt: skip


def build_judge(
    settings: Settings, model: str | None, base_url: str | None, api_key: str | None
) -> Judge:
    from eval.offline.judge import Judge, build_judge_model

    chat, method = build_judge_model(
        settings, model=model, base_url=base_url if base_url is not None else "",
        api_key=api_key,
    )  # fmt: skip
    return Judge(chat, method, name=model or settings.model)


@contextmanager
def counting(label: str) -> Iterator[Callable[[int, int], None]]:
    with progress_bars(transient=False) as update:
        yield lambda done, total: update(label, done, total)


@click.group("eval")
def eval_group() -> None:
    """Evaluate offline: benchmark items, ablations side by side, a judge, one report."""


@eval_group.command("run")
@click.argument("benchmarks", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))  # fmt: skip
@report_option
@click.option("--systems", default=DEFAULT_SYSTEMS, show_default=True,
              help="Pipeline variants to compare, comma-separated.")  # fmt: skip
@judge_options
@click.option("--rubrics", default="likert,epitome,personaemp", show_default=True,
              help="Judge rubrics for replies, comma-separated.")  # fmt: skip
@click.option("--pairwise", is_flag=True, help="Also compare each system's reply with full's "
              "(judge, both orders).")  # fmt: skip
@click.option("--limit", type=click.IntRange(1), help="At most N items of each task.")
@click.option("--seed", type=int, help="Sampling and bootstrap seed (default: the config's).")
@click.option("--resume", is_flag=True, help="Continue in --report, reusing finished steps.")
@model_options
def run_command(
    benchmarks: tuple[Path, ...], report_dir: Path, systems: str, judge_model: str | None,
    judge_base_url: str | None, judge_api_key: str | None, rubrics: str, pairwise: bool,
    limit: int | None, seed: int | None, resume: bool, **options: Any,
) -> None:  # fmt: skip
    """Run the items of BENCHMARKS through each system, judge the replies, write a report."""
    from eval.errors import JudgeError
    from eval.offline.items import load_items
    from eval.offline.rubrics import parse_rubrics
    from eval.offline.run import Evaluation, Progress

    with eval_errors():
        loaded = load_items(list(benchmarks))  # bad lines are named, skipped and counted
        for problem in loaded.problems:
            click.echo(f"skipped: {problem}", err=True)
        try:
            chosen = [rubric.name for rubric in parse_rubrics(rubrics)]
        except JudgeError as exc:
            raise click.BadParameter(str(exc), param_hint="--rubrics") from exc
        if options.get("variant"):
            raise click.BadParameter(
                "use --systems to choose variants here", param_hint="--variant"
            )
        extra = {"seed": seed} if seed is not None else {}
        settings = settings_from(**options, **extra)
        judge, judge_name, judge_sha = None, "", ""
        if judge_model or judge_base_url:
            from eval.offline.judge import judge_identity

            judge = build_judge(settings, judge_model, judge_base_url, judge_api_key)
            judge_name, judge_sha = judge_identity(
                settings, model=judge_model, base_url=judge_base_url or ""
            )
            warn_if_self_judging(settings, judge_sha)
        evaluation = Evaluation(
            loaded, settings, report_dir,
            systems=[s.strip() for s in systems.split(",") if s.strip()],
            judge=judge, judge_name=judge_name, judge_sha=judge_sha,
            rubrics=chosen, pairwise=pairwise, limit=limit, resume=resume,
        )  # fmt: skip
        with progress_bars(transient=False) as update:

            def on_progress(event: Progress) -> None:
                update("steps", event.done, event.total, f"eval: {event.note[:50]}")

            evaluation.on_progress = on_progress
            results = evaluation.run()
    print_summary(results)
    if loaded.problems:
        click.echo(f"{len(loaded.problems)} benchmark line(s) skipped (named above).", err=True)
    failed = results["failures"]
    if failed:
        click.echo(f"{len(failed)} step(s) failed (listed in the report); run the same command "
                   "with --resume to retry them after fixing the cause.", err=True)  # fmt: skip
    click.echo(f"report: {report_dir / 'report.html'} (results.json, records.jsonl)")


def warn_if_self_judging(settings: Settings, judge_sha: str) -> None:
    """A judge with the agent's own weights rates its own words (self-preference): allowed, as
    the only model at hand may be the agent's, but said."""
    from eval.simulate.files import model_digests

    agent_sha = model_digests(settings, "").get(settings.model, {}).get("sha256")
    if agent_sha and agent_sha == judge_sha:
        click.echo(
            "warning: the judge has the agent's own weights (it rates its own replies, which "
            "favours them); use another --judge-model for numbers you publish.",
            err=True,
        )


def print_summary(results: dict[str, Any]) -> None:
    """The headline metrics as one rich table per task."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for task in ("reply", "strategy", "memory", "emotion"):
        rows = [r for r in results["metrics"] if r["task"] == task]
        if not rows:
            continue
        systems = list(dict.fromkeys(r["system"] for r in rows))
        table = Table(title=f"{task} items", title_justify="left")
        table.add_column("metric")
        for system in systems:
            table.add_column(system, justify="right")
        for name in dict.fromkeys(r["metric"] for r in rows):
            cells = {r["system"]: r for r in rows if r["metric"] == name}
            table.add_row(name, *(value_text(cells.get(s)) for s in systems))
        console.print(table)


def value_text(row: dict[str, Any] | None) -> str:
    from eval.simulate.tables import fmt

    if row is None:
        return "–"
    p = row.get("p_vs_full")
    star = "*" if p is not None and p < 0.05 else ""
    return f"{fmt(row['value'], 2)}{star} (n={row['n']})"


@eval_group.command("from-sim")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@output_option
def from_sim_command(run_dir: Path, output: Path) -> None:
    """Turn a simulation run dir into benchmark items (reply and memory items)."""
    from eval.offline.from_sim import items_from_run

    with eval_errors():
        converted = items_from_run(run_dir)
        count = converted.write(output)
    report_conversion(converted, count, output)


@eval_group.command("import")
@click.argument("dataset", type=click.Choice(["esconv", "epitome", "goemotions"]))
@click.argument("path", type=click.Path(path_type=Path))
@output_option
def import_command(dataset: str, path: Path, output: Path) -> None:
    """Convert a public data set at PATH into benchmark items (never shipped: licences)."""
    from eval.offline.importers import CONVERTERS

    with eval_errors():
        converted = CONVERTERS[dataset](path)
        count = converted.write(output)
    report_conversion(converted, count, output)


def report_conversion(converted: Any, count: int, output: Path) -> None:
    """Name the skipped rows (the first 20) and say what was written and set aside."""
    for problem in converted.problems[:20]:
        click.echo(f"skipped: {problem}", err=True)
    if len(converted.problems) > 20:
        click.echo(f"... and {len(converted.problems) - 20} more skipped rows", err=True)
    click.echo(f"{count} items written to {output} ({converted.summary()})")


@eval_group.command("judge-check")
@click.argument("rated", type=click.Path(path_type=Path))
@judge_options
@report_option
@click.option("--limit", type=click.IntRange(1), help="Judge at most N rated pairs (sampled "
              "reproducibly).")  # fmt: skip
@click.option("--seed", type=int, help="Sampling seed (default: the config's).")
@click.option("--resume", is_flag=True, help="Continue in --report, reusing judged pairs.")
def judge_check_command(
    rated: Path, judge_model: str | None, judge_base_url: str | None, judge_api_key: str | None,
    report_dir: Path, limit: int | None, seed: int | None, resume: bool,
) -> None:  # fmt: skip
    """How well the judge agrees with human ratings in RATED (EPITOME CSVs or a dir of them)."""
    from eval.offline.judge import judge_identity
    from eval.offline.judge_check import run_judge_check

    if not judge_model and not judge_base_url:
        raise click.UsageError("Name the judge: --judge-model NAME (and --judge-base-url for an "
                               "endpoint).")  # fmt: skip
    with eval_errors():
        settings = settings_from(**({"seed": seed} if seed is not None else {}))
        judge = build_judge(settings, judge_model, judge_base_url, judge_api_key)
        name, sha = judge_identity(settings, model=judge_model, base_url=judge_base_url or "")
        with counting("judged") as on_progress:
            found = run_judge_check(
                rated, judge, report_dir, judge_name=name, judge_sha=sha, limit=limit,
                seed=settings.seed, resume=resume, on_progress=on_progress,
            )  # fmt: skip
    print_alignment(found)
    click.echo(f"report: {report_dir / 'report.html'} (judge_check.json, records.jsonl)")


def print_alignment(found: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from eval.simulate.tables import fmt

    table = Table(title="judge vs humans (overall)", title_justify="left")
    for column in ("dimension", "n", "Pearson r", "p", "Spearman", "Cohen's d", "Wasserstein",
                   "exact agreement"):  # fmt: skip
        table.add_column(column, justify="right")
    for dimension, result in found.get("dimensions", {}).items():
        a = result.get("alignment", {}).get("all", {})
        table.add_row(dimension, fmt(a.get("n"), 0), fmt(a.get("pearson_r")),
                      fmt(a.get("pearson_p")), fmt(a.get("spearman_rho")), fmt(a.get("cohens_d")),
                      fmt(a.get("wasserstein")), fmt(result.get("exact_agreement")))  # fmt: skip
    Console().print(table)
