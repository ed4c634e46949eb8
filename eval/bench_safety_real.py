"""False alarms of the crisis screen on messages real people wrote.

    python -m eval.bench_safety_real [--unreviewed FILE] [--show N]

Screens every ESConv seeker turn (validation split, halves "a" and "b") and every GoEmotions
train and dev comment, and counts per source: messages flagged as a crisis that we labelled real
crises, ambiguous ones, and false alarms (everything else flagged), plus how many land in
"uncertain" (the ordinary reply with one check-in line). GoEmotions dev and ESConv "b" were never
used to train or calibrate the screen; the other two were (their rows are in-sample).

A flagged message nobody has labelled counts as a false alarm; `--unreviewed FILE` writes those
(id, source, verdict, text) to be read and labelled in `eval/data/safety_real_labels.jsonl`.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from agent.safety import SafetyScreen, sentence_windows
from agent.schemas import SafetyAssessment
from eval.real_messages import Message, all_messages
from eval.safety_labels import load_labels

HELD_OUT = ("goemotions-dev", "esconv-b")


def screen_all(messages: Sequence[Message]) -> list[SafetyAssessment]:
    """Screen every message, embedding each message and sentence once (cached)."""
    from eval.embed_cache import Precomputed

    texts = [m.text for m in messages]
    embedder = Precomputed(texts + [w for text in texts for w in sentence_windows(text)])
    screen = SafetyScreen.load(embedder)
    return [screen.screen(text) for text in texts]


def tally(
    messages: Sequence[Message], verdicts: Sequence[SafetyAssessment]
) -> dict[str, Counter[str]]:
    """Count messages, crisis verdicts by our label, and "uncertain" verdicts per source."""
    labels = load_labels()
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for message, verdict in zip(messages, verdicts, strict=True):
        for key in (message.source, "all"):
            cell = counts[key]
            cell["n"] += 1
            cell["uncertain"] += verdict.band == "uncertain"
            if verdict.crisis:
                label = labels.get(message.id)
                cell[f"crisis/{label.label if label else 'unreviewed'}"] += 1
    return counts


def print_table(counts: dict[str, Counter[str]]) -> None:
    """Print flagged-and-real apart from false alarms, per source."""
    print(f"{'source':<18}{'n':>7}{'real':>6}{'ambig.':>8}{'false alarms':>18}{'uncertain':>16}")
    for source in [*sorted(k for k in counts if k != "all"), "all"]:
        c = counts[source]
        false = c["crisis/not_crisis"] + c["crisis/unreviewed"]
        held = " (held out)" if source in HELD_OUT else ""
        print(
            f"{source:<18}{c['n']:>7}{c['crisis/crisis']:>6}{c['crisis/ambiguous']:>8}"
            f"{false:>8} {false / c['n']:>7.2%}  {c['uncertain']:>6}"
            f" {c['uncertain'] / c['n']:>6.2%}{held}"
        )


def write_unreviewed(
    path: Path, messages: Sequence[Message], verdicts: Sequence[SafetyAssessment]
) -> int:
    """Write flagged messages without a label, for a person to read; return how many."""
    labels = load_labels()
    rows = [
        {"id": m.id, "source": m.source, "band": v.band, "category": v.category,
         "risk": round(v.risk, 3), "signals": v.signals, "text": m.text}
        for m, v in zip(messages, verdicts, strict=True)
        if v.crisis and m.id not in labels
    ]  # fmt: skip
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return len(rows)


def main(argv: Sequence[str] | None = None) -> None:
    """Screen the real sets and print the false-alarm table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--unreviewed", type=Path, help="write unlabelled crisis verdicts here")
    parser.add_argument("--show", type=int, default=0, help="print N false alarms")
    args = parser.parse_args(argv)
    messages = all_messages()
    verdicts = screen_all(messages)
    print_table(tally(messages, verdicts))
    if args.unreviewed:
        count = write_unreviewed(args.unreviewed, messages, verdicts)
        print(f"{count} unreviewed -> {args.unreviewed}")
    labels = load_labels()
    shown = 0
    for message, verdict in zip(messages, verdicts, strict=True):
        label = labels.get(message.id)
        if shown < args.show and verdict.crisis and (label is None or label.label == "not_crisis"):
            print(f"  {message.source:<17} {verdict.category:<17} {message.text[:110]!r}")
            shown += 1


if __name__ == "__main__":
    main()
