"""How often replies break, with the reply check off and on, on real people's words.

    python -m eval.bench_replies --human                 # the check on 2,460 human replies
    python -m eval.bench_replies --model qwen2.5-coder-0.5b-instruct --dialogues 8 --turns 4

`--human` runs the check over the supporters' replies of ESConv's validation split (each with
the seeker's message before it and the supporter's earlier replies): what it flags there is a
false alarm, except the stock opener, which is a style rule.

Otherwise the person's side of `--dialogues` ESConv validation conversations (their first
`--turns` messages of at least four words, real words we did not write) is played through
empathos on the embedded `--model`, once with the check off and once on, each in a fresh data
dir (the memory worker does not run). Every ordinary reply is scored by `check_reply` against
the message, the session's earlier replies, the catalogue's exemplars and the message's
valence, and counted per 100 replies. With the check on, that detector is the check's own, so
its column counts what got past a rewrite and the fallback; rewrites and fallbacks are counted
apart.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from agent.prompts import shared_system
from agent.reply_check import Problem, check_reply
from eval.real_messages import shared_data_dir
from strategies.catalogue import load_catalogue

MIN_WORDS = 4


def exemplars() -> list[str]:
    return [e for strategy in load_catalogue().strategy for e in strategy.exemplars]


def esconv_rows(root: Path | None = None) -> list[dict[str, Any]]:
    path = (root or shared_data_dir()) / "esconv" / "dev.jsonl"
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def human_check() -> Counter[str]:
    """Count what the check flags on ESConv supporters' own replies."""
    counts: Counter[str] = Counter()
    examples = exemplars()
    for row in esconv_rows():
        context = row["context"]
        if not context or context[-1]["speaker"] != "seeker":
            continue
        earlier = [t["text"] for t in context if t["speaker"] == "supporter"]
        found = check_reply(
            row["response"], message=context[-1]["text"], earlier_replies=earlier,
            exemplars=examples, instructions=[shared_system()],
        )  # fmt: skip
        counts["replies"] += 1
        counts.update({f.problem.value for f in found})
    return counts


def dialogues(count: int, turns: int) -> list[list[str]]:
    """The seekers' messages of the first `count` ESConv conversations with enough of them."""
    seen: dict[str, list[str]] = {}
    for row in esconv_rows():
        seeker = [t["text"].strip() for t in row["context"] if t["speaker"] == "seeker"]
        if seeker:
            key = seeker[0]
            if len(seeker) > len(seen.get(key, [])):
                seen[key] = seeker
    picked = []
    for messages in seen.values():
        real = [m for m in dict.fromkeys(messages) if len(m.split()) >= MIN_WORDS][:turns]
        if len(real) == turns:
            picked.append(real)
        if len(picked) == count:
            break
    return picked


def play(
    model: str, check: bool, convs: list[list[str]], progress: Progress,
    repeat_penalty: float = 1.0,
) -> dict[str, Any]:  # fmt: skip
    """Play the conversations through empathos; return counts per problem and timings."""
    from agent.context import Context
    from agent.runner import Agent, TurnError
    from agent.settings import Settings

    counts: Counter[str] = Counter()
    seconds: list[float] = []
    examples = exemplars()
    task = progress.add_task(
        f"{model} check={'on' if check else 'off'}", total=sum(map(len, convs))
    )
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data", model=model, reply_check=check,
            repeat_penalty=repeat_penalty,
        )  # fmt: skip
        agent = Agent(Context(settings))
        for n, conv in enumerate(convs):
            user = f"person{n}"
            session = agent.context.store.new_session(user)
            earlier: list[str] = []
            for message in conv:
                start = time.perf_counter()
                try:
                    result = agent.run_turn(user, session, message)
                except TurnError:
                    counts["failed turns"] += 1
                    progress.advance(task)
                    continue
                seconds.append(time.perf_counter() - start)
                progress.advance(task)
                if result.crisis or result.rejected or not result.reply:
                    counts["crisis or rejected"] += 1
                    continue
                state = result.state
                valence = state["emotion"].valence if state.get("emotion") else None
                found = check_reply(
                    result.reply, message=message, earlier_replies=earlier,
                    exemplars=examples, valence=valence,
                )  # fmt: skip
                counts["replies"] += 1
                counts.update({f.problem.value for f in found})
                counts["any problem"] += bool(found)
                notes = state.get("reply_checks") or []
                counts["rewritten"] += any(n.startswith("rewritten") for n in notes)
                counts["opener dropped"] += any("opener" in n for n in notes)
                counts["loop cut"] += any("loop" in n for n in notes)
                counts["fell back"] += any("reply check failed" in d for d in state["degraded"])
                earlier.append(result.reply)
    return {"counts": dict(counts), "median_turn_s": sorted(seconds)[len(seconds) // 2]}


def per_100(counts: dict[str, int], key: str) -> str:
    replies = counts.get("replies", 0)
    return f"{100 * counts.get(key, 0) / replies:.1f}" if replies else "-"


ROWS = [p.value for p in Problem] + ["any problem", "rewritten", "opener dropped", "loop cut",
                                     "fell back"]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--human", action="store_true", help="the check on ESConv's human replies")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--dialogues", type=int, default=8)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--conditions", default="off,on", help="check off, on, or both")
    parser.add_argument("--out", type=Path, help="write the numbers as JSON here")
    parser.add_argument("--repeat-penalty", type=float, default=1.0, help="llama.cpp's, 1.0 = off")
    args = parser.parse_args(argv)
    console = Console()
    if args.human:
        counts = human_check()
        console.print(f"ESConv supporters' replies: {counts['replies']}")
        for problem in Problem:
            console.print(f"  {problem.value:<10}{counts[problem.value]:>5}  "
                          f"({per_100(counts, problem.value)} per 100)")  # fmt: skip
        return
    convs = dialogues(args.dialogues, args.turns)
    with Progress(console=console) as progress:
        wanted = [c == "on" for c in args.conditions.split(",")]
        results = {
            check: play(args.model, check, convs, progress, args.repeat_penalty) for check in wanted
        }
    table = Table(title=f"{args.model}: per 100 ordinary replies ({len(convs)} ESConv people)")
    table.add_column("")
    for check in results:
        table.add_column(f"check {'on' if check else 'off'}", justify="right")
    for row in ROWS:
        table.add_row(row, *(per_100(r["counts"], row) for r in results.values()))
    for key in ("replies", "failed turns", "crisis or rejected"):
        table.add_row(key, *(str(r["counts"].get(key, 0)) for r in results.values()))
    table.add_row("median turn s", *(f"{r['median_turn_s']:.1f}" for r in results.values()))
    console.print(table)
    if args.out:
        named = {("on" if check else "off"): r for check, r in results.items()}
        args.out.write_text(json.dumps({"model": args.model, **named}, indent=2))


if __name__ == "__main__":
    main()
