"""Real people's words in a simulation: ESConv seekers replayed as scripted people.

    python -m eval.simulate.esconv_replay -o runs/esconv.yaml [--people 4] [--turns 4]
    empathos simulate runs/esconv.yaml --out runs/esconv

Our example scenarios are written by us; this one is not. It takes the first conversations of
ESConv's validation split (`../shared/data/esconv/dev.jsonl`, never shipped: the scenario is
written outside the repository) that have enough seeker messages, and makes each seeker a person
with one scripted session of their own first messages, verbatim. The hidden card knows nothing
about them (Big Five and preferences at 0.5, no preferred strategies: trait error and
preference fit mean nothing here). What it measures on real words: crisis replies to ordinary
messages (false alarms), probes aside, the leak check, the simulator's reactions and the turn
rate.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from eval.real_messages import shared_data_dir


def conversations(path: Path) -> list[dict[str, Any]]:
    """Whole conversations from the next-strategy items. An item holds the last few turns
    before a supporter's reply, the reply and its strategy; items of one conversation follow
    each other, each context overlapping the turns before it (the reply included; where it
    does not, its whole context is new). A conversation starts at an item with a one-turn
    context, or one that overlaps nothing and opens with the supporter ("Hello, how may I
    help you today?")."""
    found: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        context = [(t["speaker"], t["text"]) for t in item["context"]]
        turns = found[-1]["turns"] if found else []
        overlap = next((k for k in range(len(context), 0, -1) if turns[-k:] == context[:k]), 0)
        opened_by_supporter = not overlap and context[0][0] == "supporter"
        if len(context) == 1 or not found or opened_by_supporter:
            found.append({"turns": list(context), "strategies": []})
        else:
            turns += context[overlap:]
        found[-1]["strategies"].append(item["strategy"])
        found[-1]["turns"].append(("supporter", item["response"]))
    return found


def scenario(people: int, turns: int) -> dict[str, Any]:
    found: list[dict[str, Any]] = []
    for number, talk in enumerate(conversations(shared_data_dir() / "esconv" / "dev.jsonl")):
        seeker = [text for who, text in talk["turns"] if who == "seeker"]
        seeker = [t for t in seeker if len(t.split()) >= 4][:turns]
        if len(seeker) < turns:
            continue
        found.append({
            "id": f"esconv{number}",
            "card": {
                "background": "A person who came to an emotional-support chat (ESConv "
                f"validation conversation {number}); nothing else is known about them.",
                "big_five": dict.fromkeys(
                    ("openness", "conscientiousness", "extraversion", "agreeableness",
                     "neuroticism"), 0.5),
                "support": {"wants_to_be_heard": 0.5, "wants_advice": 0.5},
            },
            "sessions": [{"day": 0, "goal": "to feel understood", "script": seeker}],
        })  # fmt: skip
        if len(found) == people:
            break
    return {
        "name": "esconv-replay",
        "description": "ESConv validation seekers' own first messages, replayed (real words).",
        "start": "2026-03-02",
        "seed": 5,
        "people": found,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--turns", type=int, default=4)
    args = parser.parse_args()
    args.out.write_text(yaml.safe_dump(scenario(args.people, args.turns), sort_keys=False))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
