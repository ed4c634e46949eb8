"""Benchmark one empathy turn by node on the embedded models, against a single-call baseline.

    python -m eval.bench_turn [--models qwen2.5-coder-0.5b-instruct ...] [--turns 5]

For each model: the median time of each node over the turns, the median non-LLM work per turn
(node time minus time inside model calls), LLM calls and tokens per turn, and the same model
answering the same messages with one plain streamed call (the baseline). Runs in a throwaway
data dir. Numbers are wall-clock on a shared machine: compare the ratios, not the absolutes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from rich.console import Console
from rich.table import Table

from agent.context import Context
from agent.graph import builder
from agent.prompts import PLAIN_REPLY_SYSTEM
from agent.reply import stream_reply
from agent.runner import Agent
from agent.settings import load_settings

MESSAGES = [
    "I failed my driving test again and my dad laughed at me.",
    "My best friend moved to another country and I feel so alone.",
    "I got the job I wanted! I still can't believe it.",
    "Work has been crushing me and I can't sleep before Mondays.",
    "My sister forgot my birthday and I'm trying not to be hurt.",
    "I keep arguing with my partner about money.",
]
NODES = [name for name in builder.nodes if name != "crisis_reply"]  # the ordinary turn
REPLY_PATH = {"analyze_cause", "generate_reply"}


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def run_turns(agent: Agent, count: int) -> list[dict[str, Any]]:
    """Run `count` turns in one session and return their final states."""
    store = agent.context.store
    session = store.new_session("bench")
    states = []
    for i in range(count):
        result = agent.run_turn("bench", session, MESSAGES[i % len(MESSAGES)])
        states.append(result.state)
    return states


def run_baseline(context: Context, count: int) -> list[tuple[float, int, int]]:
    """Answer the same messages with one plain streamed call each: (seconds, in, out tokens)."""
    rows = []
    for i in range(count):
        messages = [SystemMessage(PLAIN_REPLY_SYSTEM), HumanMessage(MESSAGES[i % len(MESSAGES)])]
        start = time.perf_counter()
        _, call, _ = stream_reply(
            context.chat_model, messages, node="baseline", model_name="", checking=False
        )
        rows.append((time.perf_counter() - start, call.prompt_tokens, call.completion_tokens))
    return rows


def summarise(
    states: list[dict[str, Any]], baseline: list[tuple[float, int, int]]
) -> dict[str, float]:
    """Reduce the states to the medians the table shows."""
    out: dict[str, float] = {}
    for node in NODES:
        out[node] = median([s["timings"].get(node, 0.0) for s in states]) * 1000
    totals, non_llm, calls, tokens_in, tokens_out = [], [], [], [], []
    for s in states:
        llm = s.get("llm_calls", [])
        total = sum(s["timings"].values())
        totals.append(total)
        non_llm.append(total - sum(c.seconds for c in llm))
        calls.append(sum(1 for c in llm if c.node in REPLY_PATH))
        tokens_in.append(sum(c.prompt_tokens for c in llm))
        tokens_out.append(sum(c.completion_tokens for c in llm))
    out |= {
        "turn_s": median(totals),
        "non_llm_ms": median(non_llm) * 1000,
        "llm_calls": median(calls),
        "tokens_in": median(tokens_in),
        "tokens_out": median(tokens_out),
        "baseline_s": median([b[0] for b in baseline]),
        "baseline_in": median([b[1] for b in baseline]),
        "baseline_out": median([b[2] for b in baseline]),
    }
    out["ratio"] = out["turn_s"] / out["baseline_s"] if out["baseline_s"] else float("nan")
    return out


def bench_model(model: str, turns: int, data_dir: Path) -> dict[str, float]:
    settings = load_settings(model=model, data_dir=data_dir / model)
    context = Context(settings)
    context.warm_up()
    agent = Agent(context)
    run_turns(agent, 1)  # warm the model and caches; not counted
    states = run_turns(agent, turns)
    return summarise(states, run_baseline(context, turns))


def render(results: dict[str, dict[str, float]], turns: int) -> Table:
    table = Table(title=f"Per-turn cost, median of {turns} turns")
    table.add_column("measure")
    for model in results:
        table.add_column(model, justify="right")
    rows = [(f"{n} (ms)", n, "{:.1f}") for n in NODES] + [
        ("non-LLM work (ms)", "non_llm_ms", "{:.1f}"),
        ("LLM calls on reply path", "llm_calls", "{:.0f}"),
        ("tokens in / out", None, ""),
        ("turn (s)", "turn_s", "{:.2f}"),
        ("baseline single call (s)", "baseline_s", "{:.2f}"),
        ("baseline tokens in / out", None, "base"),
        ("turn / baseline", "ratio", "{:.2f}x"),
    ]
    for label, key, fmt in rows:
        cells = []
        for r in results.values():
            if key is None and fmt == "base":
                cells.append(f"{r['baseline_in']:.0f} / {r['baseline_out']:.0f}")
            elif key is None:
                cells.append(f"{r['tokens_in']:.0f} / {r['tokens_out']:.0f}")
            else:
                cells.append(fmt.format(r[key]))
        table.add_row(label, *cells)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"],
    )
    parser.add_argument("--turns", type=int, default=5)
    args = parser.parse_args()
    console = Console()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            with console.status(f"benchmarking {model} ({args.turns} turns + baseline)…"):
                results[model] = bench_model(model, args.turns, Path(tmp))
    console.print(render(results, args.turns))


if __name__ == "__main__":
    main()
