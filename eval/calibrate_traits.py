"""Where real people's words lean on each trait: the centre of the user model's recall signal.

    python -m eval.calibrate_traits [--limit N]   # writes memory/trait_centres.json

Each ESConv validation conversation (`../shared/data/esconv/dev.jsonl`; real help-seekers'
own messages, rebuilt by `eval.simulate.esconv_replay.conversations`) is one person. For every
trait, their lean is computed exactly as `memory.trait_rating` does for a user (the mean
high-minus-low prototype similarity of the `TELLING` most telling sentences of their
messages); the file keeps
the median and the spread (median absolute deviation x 1.4826, scipy) per trait, and how many
people. Only these numbers are shipped, never the words.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
from scipy.stats import median_abs_deviation

from eval.real_messages import shared_data_dir
from eval.simulate.esconv_replay import conversations
from memory.sentences import sentences
from memory.trait_rating import CENTRES_FILE, lean_of, unit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=0, help="Use only the first N people.")
    args = parser.parse_args()
    from rich.progress import track

    from memory.embeddings import Embedder, model_dir
    from memory.traits import prototype_statements

    path = shared_data_dir() / "esconv" / "dev.jsonl"
    people = [c for c in conversations(path) if len(seeker_lines(c)) >= 3]
    if args.limit:
        people = people[: args.limit]
    embedder = Embedder(model_dir())
    probes = {
        name: (unit(embedder.embed(high).mean(axis=0)), unit(embedder.embed(low).mean(axis=0)))
        for name, (high, low) in prototype_statements().items()
    }
    leans: dict[str, list[float]] = {name: [] for name in probes}
    for person in track(people, description="ESConv seekers"):
        vectors = embedder.embed([s for line in seeker_lines(person) for s in sentences(line)])
        for name, (high, low) in probes.items():
            leans[name].append(lean_of(list(vectors @ high), list(vectors @ low))[0])
    traits = {
        name: {"median": round(float(np.median(v)), 5),
               "spread": round(float(median_abs_deviation(v, scale="normal")), 5)}
        for name, v in leans.items()
    }  # fmt: skip
    CENTRES_FILE.write_text(json.dumps({
        "source": "ESConv validation split, seekers' own messages, one person per conversation",
        "people": len(people), "made": f"{datetime.now(UTC):%Y-%m-%d}",
        "traits": traits,
    }, indent=1) + "\n", encoding="utf-8")  # fmt: skip
    print(f"{len(people)} people -> {CENTRES_FILE}")
    for name, row in traits.items():
        print(f"  {name:<24} median {row['median']:+.4f}  spread {row['spread']:.4f}")


def seeker_lines(conversation: dict[str, Any]) -> list[str]:
    return [text for speaker, text in conversation["turns"] if speaker == "seeker"]


if __name__ == "__main__":
    main()
