"""`empathos simulate`: live weeks with scripted and simulated people, against a hidden truth.

empathos simulate SCENARIO.yaml --out RUN_DIR [--model M] [--user-model M2] [--seed N]
                  [--concurrency K] [--shard I/N] [--resume] [--no-last-reaction]
empathos simulate merge RUN_DIR... --out DIR
empathos simulate generate --people 20 --sessions 5 [--turns 1] --seed 0 -o SCENARIO.yaml
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click_default_group import DefaultGroup

from tui.options import F, errors_as_click, model_options, settings_from
from tui.progress import progress_bars

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from eval.simulate.person_run import Progress


@contextmanager
def simulation_errors() -> Iterator[None]:
    """Typed errors become one clear line (and exit 1); the run dir stays resumable."""
    from agent.errors import AgentError
    from eval.errors import EvalError
    from memory.errors import MemoryLayerError

    with errors_as_click(EvalError, AgentError, MemoryLayerError):
        yield


def out_option(help: str) -> Callable[[F], F]:
    return click.option(
        "--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help=help
    )


def _simulate() -> None:
    """Run scripted and simulated multi-session conversations (see `simulate run --help`)."""


# `simulate SCENARIO` means `simulate run SCENARIO` (click-default-group); `merge` is the other.
simulate: click.Group = click.group(  # DefaultGroup has no type hints
    "simulate", cls=DefaultGroup, default="run", default_if_no_args=False
)(_simulate)  # type: ignore[no-untyped-call]


@simulate.command("run")
@click.argument("scenario_file", type=click.Path(dir_okay=False, path_type=Path))
@out_option("The run dir: run.json, people/*/transcript.jsonl|.md, summary.json.")
@click.option("--user-model", help="The user simulator's model (default: the agent's).")
@click.option("--user-base-url", help="The user simulator's endpoint (default: the agent's).")
@click.option("--user-api-key", help="The user simulator endpoint's API key.")
@click.option("--seed", type=int, help="Sampling seed (default: the scenario's).")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="People run at once (an endpoint runs them in parallel; the embedded model "
    "takes one call at a time).",
)
@click.option(
    "--shard",
    default="1/1",
    show_default=True,
    help="Run only the I-th of N deterministic shares of the people.",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out.")
@click.option(
    "--no-last-reaction",
    is_flag=True,
    help="Faster: the simulator does not react to a session's last reply (no SAGE score for it).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The shared data dir of all people (default: RUN_DIR/data).",
)
@model_options
def run_command(
    scenario_file: Path, out: Path, user_model: str | None, user_base_url: str | None,
    user_api_key: str | None, seed: int | None, concurrency: int, shard: str, resume: bool,
    no_last_reaction: bool, data_dir: Path | None, **options: Any,
) -> None:  # fmt: skip
    """Live the people of SCENARIO_FILE through their sessions; write RUN_DIR and a summary."""
    from rich.console import Console

    from eval.simulate.run import Shard, Simulation
    from eval.simulate.scenario import load_scenario
    from eval.simulate.summary import summarize_run
    from eval.simulate.tables import summary_tables

    with simulation_errors():
        scenario = load_scenario(scenario_file)  # nothing is written for a bad file
        sharding = Shard.parse(shard)
        settings = settings_from(
            data_dir=data_dir or out / "data", seed=scenario.seed if seed is None else seed,
            **options,
        )  # fmt: skip
        user = None
        if user_model or user_base_url:
            from eval.simulate.user_sim import build_user_model

            user = build_user_model(
                settings, model=user_model, base_url=user_base_url, api_key=user_api_key
            )
        simulation = Simulation(
            scenario, settings, out, scenario_file=scenario_file, user_model=user,
            user_model_name=user_model or "", concurrency=concurrency, shard=sharding,
            resume=resume, last_reaction=not no_last_reaction,
        )  # fmt: skip
        people = sharding.people(scenario)
        budgets = {person.id: person.turn_budget() for person in people}
        with progress_display(budgets) as on_progress:
            simulation.on_progress = on_progress
            failed = simulation.run()
        summary = summarize_run(out)
    Console().print(*summary_tables(summary))
    click.echo(f"run dir: {out} (summary.json, people/*/transcript.md)")
    if failed:
        for person in failed:
            errors = summary["per_person"].get(person, {}).get("errors") or ["(no reason kept)"]
            click.echo(f"{person} stopped: {errors[-1]}", err=True)
        click.echo(
            f"{len(failed)} of {len(people)} people stopped. Fix the cause and run the same "
            f"command with --resume: it goes on from the last finished turn.",
            err=True,
        )
        sys.exit(1)


@contextmanager
def progress_display(budgets: dict[str, int]) -> Iterator[Callable[[Progress], None]]:
    """A bar over all turns, and one per person (their session and turns), on stderr."""
    done = dict.fromkeys(budgets, 0)
    with progress_bars(transient=False) as update:
        update("all turns", 0, sum(budgets.values()))

        def on_progress(event: Progress) -> None:
            done[event.person] = event.turns
            update("all turns", sum(done.values()), sum(budgets.values()))
            where = f"session {event.session + 1}/{event.sessions}" if event.session >= 0 else ""
            note = f" — {event.note}" if event.note else ""
            update(event.person, event.turns, budgets[event.person],
                   f"{event.person}: {where}{note}")  # fmt: skip

        yield on_progress


@simulate.command("generate")
@click.option("--people", type=int, default=20, show_default=True, help="How many people.")
@click.option("--sessions", type=int, default=5, show_default=True, help="Sessions each.")
@click.option(
    "--turns", type=click.IntRange(1, 40), default=2, show_default=True,
    help="Turns per session (the simulator writes every message).",
)  # fmt: skip
@click.option(
    "--seed", type=int, default=0, show_default=True, help="The same seed, the same people."
)
@click.option(
    "-o", "--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="The scenario file to write (YAML).",
)  # fmt: skip
def generate_command(people: int, sessions: int, turns: int, seed: int, out: Path) -> None:
    """Write a scenario of generated people with hidden cards (for `simulate run`)."""
    from eval.simulate.population import dump_scenario, generate_population

    with simulation_errors():
        scenario = generate_population(people=people, sessions=sessions, seed=seed, turns=turns)
        if out.exists():
            raise click.ClickException(f"{out} exists; choose another -o or delete it first.")
        dump_scenario(scenario, out)
    click.echo(f"wrote {out}: {people} people x {sessions} sessions x {turns} turns (seed {seed})")


@simulate.command("merge")
@click.argument(
    "run_dirs",
    nargs=-1,
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
)
@out_option("A new directory for the merged run.")
def merge_command(run_dirs: tuple[Path, ...], out: Path) -> None:
    """Combine shard RUN_DIRS of one scenario into one run with one summary."""
    from rich.console import Console

    from eval.simulate.summary import merge_runs
    from eval.simulate.tables import summary_tables

    with simulation_errors():
        summary = merge_runs(list(run_dirs), out)
    Console().print(*summary_tables(summary))
    click.echo(f"merged {len(run_dirs)} run dirs into {out}")
