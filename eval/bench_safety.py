"""Measure the crisis screen on our crisis sets and on messages real people wrote.

    python -m eval.bench_safety                    # eval/safety_set.jsonl (ours, held out)
    python -m eval.bench_safety --set eval/safety_fresh.jsonl   # written after the freeze
    python -m eval.bench_safety --real             # ESConv seeker turns, GoEmotions comments
    python -m eval.bench_safety --train            # re-fit the head first (eval.train_safety)

On our sets the benchmark prints recall on explicit and indirect crisis messages, the
false-alarm rate on non-crisis messages (overall and per kind: figurative, third party, past,
info, ordinary), how many land in "uncertain", and the mean time of one screen call with the
embedding excluded.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.safety import SafetyScreen, sentence_windows
from eval.embed_cache import Precomputed, read_jsonl

EVAL_PATH = Path(__file__).resolve().parent / "safety_set.jsonl"


def _group(row: dict[str, Any]) -> str:
    return str(row["group"]) if row["group"] != "none" else f"none/{row['kind']}"


def bench(path: Path = EVAL_PATH, show_misses: bool = False, batch: str | None = None) -> None:
    """Screen every held-out message and print the recall / false-alarm table."""
    rows = [r for r in read_jsonl(path) if batch is None or r.get("batch") == batch]
    texts = [r["text"] for r in rows]
    embedder = Precomputed(texts + [w for text in texts for w in sentence_windows(text)])
    screen = SafetyScreen.load(embedder)
    start = time.perf_counter()
    results = [screen.screen(text) for text in texts]
    per_call_ms = (time.perf_counter() - start) * 1000 / len(rows)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row, result in zip(rows, results, strict=True):
        for key in {_group(row), "none" if row["group"] == "none" else "crisis (all)"}:
            cell = counts[key]
            cell[0] += 1
            cell[1] += result.crisis
            cell[2] += result.band == "uncertain"
            cell[3] += result.crisis and result.category == row["category"]
        if show_misses and result.crisis != (row["group"] != "none"):
            print(f"  MISS {row['group']:>8} {result.band:>9} {result.category:<17} {row['text']}")
    _print_table(counts)
    print(f"\nscreen() per call, embedding excluded: {per_call_ms:.2f} ms")


def bench_llm(model: str, path: Path = EVAL_PATH, batch: str | None = None) -> None:
    """Measure what the LLM's risk flag (from the real analysis call) adds to the screen.

    Only messages the screen does not already call a crisis are asked (the flag never
    downgrades). Prints recall and false alarms for: the screen alone; the LLM upgrading
    "uncertain" (the shipped rule); the LLM upgrading any band.
    """
    from rich.progress import track

    from agent.context import Context
    from agent.llm import LLMError, invoke_structured
    from agent.prompts import analysis_messages
    from agent.schemas import CauseAnalysis
    from agent.settings import load_settings

    rows = [r for r in read_jsonl(path) if batch is None or r.get("batch") == batch]
    context = Context(load_settings(model=model))
    screen = SafetyScreen.load(context.embedder)
    tally = {rule: [0, 0, 0, 0] for rule in ("screen alone", "+ LLM on uncertain", "+ LLM on any")}
    for row in track(rows, description=f"asking {model}…"):
        text, is_crisis = row["text"], row["group"] != "none"
        result = screen.screen(text)
        flag = False
        if not result.crisis:
            messages = analysis_messages(text, context.emotion.classify(text), [], [])
            try:
                analysis, _ = invoke_structured(
                    context.chat_model, messages, CauseAnalysis,
                    method=context.structured_method, node="analyze_cause", max_tokens=256,
                )  # fmt: skip
                flag = analysis.risk
            except LLMError:
                flag = False
        verdicts = {
            "screen alone": result.crisis,
            "+ LLM on uncertain": screen.combine(result, flag).crisis,
            "+ LLM on any": result.crisis or flag,
        }
        for rule, crisis in verdicts.items():
            cell = tally[rule]
            cell[0 if is_crisis else 2] += 1
            cell[1 if is_crisis else 3] += crisis
    print(f"{'rule':<22}{'crisis recall':>16}{'false alarms':>16}")
    for rule, (n_pos, hit, n_neg, alarm) in tally.items():
        recall, alarms = f"{hit}/{n_pos} {hit / n_pos:.2f}", f"{alarm}/{n_neg} {alarm / n_neg:.2f}"
        print(f"{rule:<22}{recall:>16}{alarms:>16}")


def _print_table(counts: dict[str, list[int]]) -> None:
    print(f"{'group':<22}{'n':>4}{'crisis':>8}{'rate':>7}{'uncertain':>11}{'category ok':>13}")
    order = ["explicit", "indirect", "crisis (all)", "none"]
    keys = order + sorted(k for k in counts if k not in order)
    for key in keys:
        if key not in counts:
            continue  # a set of ordinary messages only has no recall rows
        n, flagged, uncertain, right = counts[key]
        label = "recall" if key in order[:3] else "false alarm"
        extra = f"{right:>13}" if key in order[:3] else f"{'':>13}"
        print(f"{key:<22}{n:>4}{flagged:>8}{flagged / n:>7.2f}{uncertain:>11}{extra}  {label}")


def main(argv: Sequence[str] | None = None) -> None:
    """Train the head or run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--train", action="store_true", help="re-fit the head (eval.train_safety)")
    parser.add_argument("--real", action="store_true", help="false alarms on real messages")
    parser.add_argument("--set", type=Path, default=EVAL_PATH, help="held-out JSONL to measure")
    parser.add_argument("--misses", action="store_true", help="print every misclassified message")
    parser.add_argument(
        "--batch",
        help='only rows of one batch ("a": written before the '
        'patterns, "b": after they were frozen)',
    )
    parser.add_argument("--llm", metavar="MODEL", help="also measure the LLM's risk flag")
    args = parser.parse_args(argv)
    if args.train:
        from eval.train_safety import main as train

        train([])
    if args.real:
        from eval.bench_safety_real import main as bench_real

        bench_real([])
        return
    bench(args.set, args.misses, args.batch)
    if args.llm:
        bench_llm(args.llm, args.set, args.batch)


if __name__ == "__main__":
    main()
