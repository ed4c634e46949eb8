"""Where real people's words lean on each trait: the centres of the user model's readings.

    python -m eval.calibrate_traits [--limit N]             # the recall lean
    python -m eval.calibrate_traits --ratings [--rate N]    # and the model's ratings
    python -m eval.calibrate_traits --asked [--rate N]      # and the model's per-message answers
    python -m eval.calibrate_traits --likelihood [--rate N] # and its per-message likelihood ratios

Both write `memory/trait_centres.json`. Each ESConv validation conversation
(`../shared/data/esconv/dev.jsonl`; real help-seekers' own messages, rebuilt by
`eval.simulate.esconv_replay.conversations`) is one person. For every trait, their lean is
computed exactly as `memory.trait_rating` does for a user (the mean high-minus-low prototype
similarity of the `LEANING` most telling sentences of their messages, not counting sentences
that say how they want to be supported for the Big Five); the file keeps the median
and the spread (median absolute deviation x 1.4826, scipy) per trait, and how many people.
With `--ratings`, the configured model (`Settings`, the memory worker's) also rates the first
`--rate` people's (default 60) most telling sentences per trait as `agent.trait_llm` does, and
the same median and spread of those ratings are kept under "ratings" -> the model's name (a
model's ratings are only comparable with its own). That runs the model five times per person
(about 10 s a person on this machine's 1.5b model, so about ten minutes). Only these numbers
are shipped, never the words.
With `--asked`, the model answers `agent.trait_llm.ASKED`'s question about each of the first
`--rate` people's first `ASK_LINES` messages (leaving out sentences that ask for support, as
the memory worker does); each person's lean is the mean P(high) - P(low) over their messages,
and the median and spread of that are kept under "asked" -> the model's name (about two
seconds a message).
With `--likelihood`, the model weighs the same messages (`agent.trait_llm.WEIGHED`, a model
that can score a text); the median and spread are of the single messages' ratios, as the
memory worker uses them on single messages, kept under "likelihood" -> the model's name
(about four seconds a message).
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
from memory.trait_rating import (
    CENTRES_FILE,
    Passage,
    asked_text,
    lean_of,
    most_telling,
    unit,
)

ASK_LINES = 8  # messages per person the model is asked about


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=0, help="Use only the first N people.")
    parser.add_argument(
        "--ratings", action="store_true", help="Also centre the model's ratings (slow)."
    )
    parser.add_argument(
        "--asked", action="store_true", help="Also centre the model's per-message answers (slow)."
    )
    parser.add_argument(
        "--likelihood", action="store_true",
        help="Also centre the model's per-message likelihood ratios (slow).",
    )  # fmt: skip
    parser.add_argument("--rate", type=int, default=60, help="People the model reads.")
    args = parser.parse_args()
    from rich.progress import track

    from memory.embeddings import Embedder, model_dir
    from memory.trait_signals import prototype_statements
    from memory.traits import reads_for

    path = shared_data_dir() / "esconv" / "dev.jsonl"
    people = [c for c in conversations(path) if len(seeker_lines(c)) >= 3]
    if args.limit:
        people = people[: args.limit]
    embedder = Embedder(model_dir())
    probes = {
        name: (unit(embedder.embed(high).mean(axis=0)), unit(embedder.embed(low).mean(axis=0)))
        for name, (high, low) in prototype_statements().items()
    }
    rater = build_rater() if args.ratings or args.asked or args.likelihood else None
    leans: dict[str, list[float]] = {name: [] for name in probes}
    ratings: dict[str, list[float]] = {}
    asked: dict[str, list[float]] = {}
    weighed: dict[str, list[float]] = {}
    rated = 0
    for person in track(people, description="ESConv seekers"):
        said = [s for line in seeker_lines(person) for s in sentences(line)]
        vectors = embedder.embed(said)
        telling: dict[str, list[int]] = {}
        for name, (high, low) in probes.items():
            read = [i for i, text in enumerate(said) if reads_for(name, text)]
            if not read:
                continue
            ups, downs = list(vectors[read] @ high), list(vectors[read] @ low)
            leans[name].append(lean_of(ups, downs)[0])
            telling[name] = [read[i] + 1 for i in most_telling(ups, downs)]
        if rater is None or rated >= args.rate:
            continue
        rated += 1
        if args.ratings:
            passages = [Passage(f"s{n}", text) for n, text in enumerate(said, start=1)]
            for rating in rater.rate(passages, telling):
                if rating.rating:
                    ratings.setdefault(rating.trait, []).append(rating.rating)
        if args.asked:
            answers: dict[str, list[float]] = {}
            for line in seeker_lines(person)[:ASK_LINES]:
                kept = asked_text(line)
                for answer in rater.ask(kept) if kept else []:
                    answers.setdefault(answer.trait, []).append(answer.high - answer.low)
            for trait, values in answers.items():
                asked.setdefault(trait, []).append(float(np.mean(values)))
        if args.likelihood:
            for line in seeker_lines(person)[:ASK_LINES]:
                for lean in rater.weigh(asked_text(line)):
                    weighed.setdefault(lean.trait, []).append(lean.ratio)
    found = json.loads(CENTRES_FILE.read_text(encoding="utf-8")) if CENTRES_FILE.exists() else {}
    found |= {
        "source": "ESConv validation split, seekers' own messages, one person per conversation",
        "people": len(people), "made": f"{datetime.now(UTC):%Y-%m-%d}",
        "traits": centre_of(leans, 5),
    }  # fmt: skip
    label = rater.label if rater is not None else ""
    if args.ratings:
        found.setdefault("ratings", {})[label] = {
            "people": rated, "traits": centre_of(ratings, 3)
        }  # fmt: skip
    if args.asked:
        found.setdefault("asked", {})[label] = {
            "people": rated, "messages": ASK_LINES, "traits": centre_of(asked, 3)
        }  # fmt: skip
    if args.likelihood:
        if not weighed:
            raise SystemExit(f"The model {label} cannot score a text: nothing to centre.")
        found.setdefault("likelihood", {})[label] = {
            "people": rated, "messages": sum(map(len, weighed.values())) // len(weighed),
            "traits": centre_of(weighed, 3),
        }  # fmt: skip
    CENTRES_FILE.write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")
    print(f"{len(people)} people -> {CENTRES_FILE}")
    for name, row in found["traits"].items():
        print(f"  {name:<24} median {row['median']:+.4f}  spread {row['spread']:.4f}")
    for key in ("ratings", "asked", "likelihood") if rater is not None else ():
        for name, row in found.get(key, {}).get(label, {}).get("traits", {}).items():
            print(f"  {key} {name:<17} median {row['median']:+.3f}  spread {row['spread']:.3f}")


def centre_of(values: dict[str, list[float]], digits: int) -> dict[str, Any]:
    return {
        name: {"median": round(float(np.median(v)), digits),
               "spread": round(float(median_abs_deviation(v, scale="normal")), digits)}
        for name, v in values.items() if v
    }  # fmt: skip


def build_rater() -> Any:
    """The memory worker's rater over the configured model (`EMPATHOS_*` settings)."""
    from agent.services import Services
    from agent.settings import Settings
    from agent.trait_llm import LLMTraitRater

    services = Services(Settings())
    return LLMTraitRater(lambda: services.background_model)


def seeker_lines(conversation: dict[str, Any]) -> list[str]:
    return [text for speaker, text in conversation["turns"] if speaker == "seeker"]


if __name__ == "__main__":
    main()
