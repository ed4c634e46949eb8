"""Benchmark the turn a person waits for: time to the first reply token and the whole turn,
against one plain streamed call of the same model in the same process.

    python -m eval.bench_turn [--model M] [--turns 6] [--conditions idle,worker] [--pause 8]
                              [--out FILE.json]

One scripted session of `--turns` warm messages (a first turn warms the model and is not
counted) per condition, in a throwaway data dir:
- `idle`: the memory worker is not running (its jobs wait);
- `worker`: the memory worker runs in its thread, so extraction and trait work happen between
  turns.
In both the person pauses `--pause` seconds between messages, as in a real chat (0: messages
back to back, as in a scripted simulation).
The baseline is a plain chat with the same model: the same messages, its own history, one
streamed call each (`single-call` without the graph). Reported: medians of the time to the
first token the person sees, the whole turn, reply tokens, the non-LLM work per turn and each
node, and the ratios to the baseline. Wall-clock on a shared machine: compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agent.context import Context
from agent.prompts import plain_messages
from agent.reply import stream_reply
from agent.runner import Agent
from agent.settings import DEFAULT_MODEL, load_settings

MESSAGES = [
    "Hi. I had a rough week and I don't really know where to start.",
    "My mum was diagnosed with dementia on Tuesday. She still lives alone.",
    "My brother Tom says we should move her into a home, but she would hate that.",
    "I keep lying awake going over the money. A care home costs about 4,000 a month.",
    "Today she called me by my aunt's name and I had to leave the room.",
    "Sorry, I'm rambling. I just have nobody else to say this to.",
    "Actually, one good thing: my boss said I can work from home on Fridays now.",
    "I think I'll visit her on Sunday and bring the old photo albums.",
]


@dataclass
class Turn:
    first_token_s: float
    turn_s: float
    reply_tokens: int
    non_llm_ms: float = 0.0
    nodes_ms: dict[str, float] = field(default_factory=dict)


class FirstToken:
    """Remembers when the first token was shown."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self, _token: str) -> None:
        if self.at is None:
            self.at = time.perf_counter()


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_session(agent: Agent, count: int, pause: float) -> list[Turn]:
    """One warm-up turn, then `count` timed turns of one session."""
    session = agent.context.store.new_session("bench")
    turns = []
    for i in range(count + 1):
        first = FirstToken()
        start = time.perf_counter()
        result = agent.run_turn("bench", session, MESSAGES[i % len(MESSAGES)], on_token=first)
        total = time.perf_counter() - start
        state = result.state
        calls = state.get("llm_calls", [])
        timings = state.get("timings", {})
        turns.append(Turn(
            first_token_s=(first.at or start + total) - start,
            turn_s=total,
            reply_tokens=sum(c.completion_tokens for c in calls if c.node == "generate_reply"),
            non_llm_ms=(sum(timings.values()) - sum(c.seconds for c in calls)) * 1000,
            nodes_ms={k: v * 1000 for k, v in timings.items()},
        ))  # fmt: skip
        if pause:
            time.sleep(pause)
    return turns[1:]


def run_baseline(context: Context, count: int) -> list[Turn]:
    """The same messages as a plain chat: one streamed call each, with its own history."""
    history: list[tuple[str, str]] = []
    turns = []
    for i in range(count + 1):
        message = MESSAGES[i % len(MESSAGES)]
        first = FirstToken()
        start = time.perf_counter()
        reply, call, _ = stream_reply(
            context.chat_model, plain_messages(message, history), node="baseline",
            model_name="", checking=False,
            emit=first,
        )  # fmt: skip
        total = time.perf_counter() - start
        turns.append(Turn((first.at or start + total) - start, total, call.completion_tokens))
        history += [("user", message), ("assistant", reply)]
    return turns[1:]


def bench(model: str, condition: str, turns: int, pause: float, root: Path) -> dict[str, Any]:
    settings = load_settings(model=model, data_dir=root / f"{model}-{condition}")
    context = Context(settings)
    context.warm_up()
    agent = Agent(context)
    if condition == "worker":
        context.start_memory_worker()
    timed = run_session(agent, turns, pause)
    context.finish_memory_work()
    base = run_baseline(context, turns)
    return summarise(timed, base)


def summarise(turns: list[Turn], base: list[Turn]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "first_token_s": median([t.first_token_s for t in turns]),
        "turn_s": median([t.turn_s for t in turns]),
        "reply_tokens": median([t.reply_tokens for t in turns]),
        "non_llm_ms": median([t.non_llm_ms for t in turns]),
        "base_first_token_s": median([t.first_token_s for t in base]),
        "base_turn_s": median([t.turn_s for t in base]),
        "base_reply_tokens": median([t.reply_tokens for t in base]),
        "nodes_ms": {
            node: median([t.nodes_ms.get(node, 0.0) for t in turns])
            for node in sorted({n for t in turns for n in t.nodes_ms})
        },
        "turns": [asdict(t) for t in turns],
        "baseline": [asdict(t) for t in base],
    }
    out["first_token_ratio"] = out["first_token_s"] / out["base_first_token_s"]
    out["turn_ratio"] = out["turn_s"] / out["base_turn_s"]
    # The same reply length: the turn's time less what its extra reply tokens cost the baseline.
    per_token = (out["base_turn_s"] - out["base_first_token_s"]) / max(out["base_reply_tokens"], 1)
    extra = (out["reply_tokens"] - out["base_reply_tokens"]) * per_token
    out["turn_ratio_same_length"] = (out["turn_s"] - extra) / out["base_turn_s"]
    return out


def render(results: dict[str, dict[str, Any]], turns: int) -> Table:
    table = Table(title=f"One turn vs one plain call, median of {turns} warm turns")
    table.add_column("measure")
    for name in results:
        table.add_column(name, justify="right")
    rows = [
        ("first reply token (s)", "first_token_s", "{:.2f}"),
        ("baseline first token (s)", "base_first_token_s", "{:.2f}"),
        ("first token / baseline", "first_token_ratio", "{:.1f}x"),
        ("whole turn (s)", "turn_s", "{:.2f}"),
        ("baseline whole call (s)", "base_turn_s", "{:.2f}"),
        ("reply tokens: turn / baseline", None, ""),
        ("whole turn / baseline", "turn_ratio", "{:.1f}x"),
        ("... at the baseline's reply length", "turn_ratio_same_length", "{:.1f}x"),
        ("non-LLM work per turn (ms)", "non_llm_ms", "{:.1f}"),
    ]
    for label, key, fmt in rows:
        if key is None:
            cells = [
                f"{r['reply_tokens']:.0f} / {r['base_reply_tokens']:.0f}" for r in results.values()
            ]
        else:
            cells = [fmt.format(r[key]) for r in results.values()]
        table.add_row(label, *cells)
    nodes = sorted({n for r in results.values() for n in r["nodes_ms"]})
    for node in nodes:
        table.add_row(
            f"  {node} (ms)", *[f"{r['nodes_ms'].get(node, 0):.1f}" for r in results.values()]
        )
    return table


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--conditions", default="idle,worker")
    parser.add_argument("--pause", type=float, default=8.0, help="seconds between messages")
    parser.add_argument("--out", type=Path, help="write the measurements here as JSON")
    args = parser.parse_args(argv)
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = set(conditions) - {"idle", "worker"}
    if unknown or not conditions:
        parser.error(f"--conditions takes idle and/or worker, not {sorted(unknown) or 'nothing'}")
    if args.turns < 1:
        parser.error("--turns must be at least 1")
    console = Console()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for condition in conditions:
            with console.status(f"{args.model}, {condition}: {args.turns} turns + baseline…"):
                results[f"{args.model} ({condition})"] = bench(
                    args.model, condition, args.turns, args.pause, Path(tmp)
                )
    console.print(render(results, args.turns))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
        console.print(f"written: {args.out}")


if __name__ == "__main__":
    main()
