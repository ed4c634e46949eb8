"""Train the user model's trait head (`memory/trait_head.py`) and write `memory/trait_head.npz`.

    python -m eval.train_trait_head                      # ~1 min: train from the shipped statements
    python -m eval.train_trait_head --write-statements   # ~17 min: let the model write them again

Data:
- high and low: `eval/data/trait_statements.json`, short first-person statements the configured
  model (`Settings`; shipped: qwen2.5-coder-1.5b) wrote for each pole of each trait from the
  pole's description in `POLES` and one of ten everyday topics (`TOPICS`), six per call, at
  temperature 0.8 (`--write-statements`; about 17 minutes on 2 cores). The descriptions are
  generic adjectives, like the model's rating prompt (`agent.trait_llm.RATED`); none of the
  simulation's day events (`eval.simulate.population.DETAILS`) is shown to it. The prototype
  statements (`memory/trait_prototypes.toml`) are added to their poles.
- neither: real ESConv validation seekers' sentences from half "a" (`eval.real_messages`;
  `SEEKER_MESSAGES` messages drawn with seed 0, sentences of at least four words, at most
  `NEUTRAL_SENTENCES`), and the other traits' statements.
Half "b" of the seekers' messages is kept to measure: the share of their clauses the head reads
as showing each trait at all (P(high) + P(low) > 0.5), printed per trait — how often the head
fires on real words, which have no personality labels.

Method: per trait in `HEAD_TRAITS`, a multinomial logistic regression (scikit-learn, C=1,
balanced classes) on the frozen all-MiniLM-L6-v2 vectors. Errors: `TrainingDataError` when the
statements file or the shared data is missing or malformed.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np

from eval.errors import EvalError
from memory.sentences import clauses, sentences
from memory.trait_head import CLASSES, HEAD_FILE, HEAD_TRAITS, TraitHead
from memory.trait_signals import prototype_statements
from memory.traits import BIG_FIVE

STATEMENTS_FILE = Path(__file__).parent / "data" / "trait_statements.json"
FORMAT = "empathos-trait-statements/1"
POLES: dict[str, tuple[str, str]] = {
    "openness": ("open to new experiences, curious, imaginative, drawn to art, ideas and new "
                 "places", "preferring routine and the familiar, uninterested in new "
                 "experiences, art or abstract ideas"),
    "conscientiousness": ("organised, planning ahead, reliable, finishing things on time",
                          "disorganised, careless, putting things off, losing track of things"),
    "extraversion": ("outgoing, energised by other people, talkative, sociable",
                     "quiet, reserved, preferring to be alone, drained by socialising"),
    "agreeableness": ("warm, trusting, cooperative, forgiving, kind to others",
                      "blunt, critical, suspicious, unforgiving, quick to argue"),
    "neuroticism": ("anxious, moody, easily stressed and upset",
                    "calm, steady, relaxed, rarely upset"),
}  # fmt: skip
TOPICS = ["work", "home and chores", "friends", "family", "free time", "money", "this week",
          "the weekend", "a recent day", "habits"]  # fmt: skip
SEEKER_MESSAGES, NEUTRAL_SENTENCES, FIRES = 1200, 1500, 0.5


class TrainingDataError(EvalError):
    """The statements or the shared data are missing or malformed."""


def write_statements(out: Path = STATEMENTS_FILE) -> dict[str, Any]:
    """Let the configured model write the statements of every pole (see the module doc)."""
    from langchain_core.messages import HumanMessage, SystemMessage
    from rich.progress import track

    from agent.llm import model_label
    from agent.services import Services
    from agent.settings import Settings

    model = Services(Settings()).background_model
    found: dict[str, dict[str, list[str]]] = {}
    calls = [
        (trait, pole, descr, topic)
        for trait, poles in POLES.items()
        for pole, descr in zip(("high", "low"), poles, strict=True)
        for topic in TOPICS
    ]
    for trait, pole, descr, topic in track(calls, description="writing statements"):
        answer = model.invoke([
            SystemMessage("You write realistic example sentences."),
            HumanMessage(
                f"Write 6 different short sentences that a person who is {descr} might say "
                f"about {topic}: in the first person, about something they did or usually do, "
                "plain everyday words, without naming the trait. One sentence per line, no "
                "numbering."
            ),
        ], temperature=0.8, max_tokens=220)  # fmt: skip
        lines = (re.sub(r"^\s*(\d+[.)]|[-*•])\s*", "", line).strip().strip('"')
                 for line in str(answer.content).splitlines())  # fmt: skip
        found.setdefault(trait, {}).setdefault(pole, []).extend(
            line for line in lines if 3 <= len(line.split()) <= 30
        )
    doc = {"format": FORMAT, "model": model_label(model), "poles": POLES, "topics": TOPICS,
           "statements": found}  # fmt: skip
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return doc


def load_statements(path: Path = STATEMENTS_FILE) -> dict[str, dict[str, list[str]]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TrainingDataError(
            f"Cannot read {path}: {exc}. Write it with `python -m eval.train_trait_head "
            "--write-statements`."
        ) from exc
    if doc.get("format") != FORMAT or set(doc.get("statements", {})) != set(BIG_FIVE):
        raise TrainingDataError(f"{path} is not a trait statements file ({FORMAT}).")
    statements: dict[str, dict[str, list[str]]] = doc["statements"]
    return statements


def seeker_sentences(half: str) -> list[str]:
    """Real seekers' sentences (at least four words) from ESConv validation half `half`."""
    from eval.real_messages import esconv_seeker_turns

    messages = [m.text for m in esconv_seeker_turns() if m.source == f"esconv-{half}"]
    random.Random(0).shuffle(messages)
    return [s for text in messages[:SEEKER_MESSAGES] for s in sentences(text)
            if len(s.split()) >= 4][:NEUTRAL_SENTENCES]  # fmt: skip


def train(statements: dict[str, dict[str, list[str]]]) -> TraitHead:
    """Fit one three-way classifier per trait in `HEAD_TRAITS` (see the module doc)."""
    from sklearn.linear_model import LogisticRegression

    from memory.embeddings import Embedder

    embedder = Embedder()
    protos = prototype_statements()
    poles = {trait: {pole: embedder.embed(statements[trait][pole] + list(protos[trait][n]))
                     for n, pole in enumerate(("high", "low"))}
             for trait in BIG_FIVE}  # fmt: skip
    neutral = embedder.embed(seeker_sentences("a"))
    weights, biases = [], []
    for trait in HEAD_TRAITS:
        others = [poles[t][p] for t in BIG_FIVE if t != trait for p in ("high", "low")]
        x = np.vstack([poles[trait]["high"], poles[trait]["low"], neutral, *others])
        y = np.concatenate([np.full(len(poles[trait]["high"]), 0),
                            np.full(len(poles[trait]["low"]), 1),
                            np.full(len(x) - len(poles[trait]["high"]) - len(poles[trait]["low"]),
                                    2)])  # fmt: skip
        fitted = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced").fit(x, y)
        order = [list(fitted.classes_).index(k) for k in range(len(CLASSES))]
        weights.append(fitted.coef_[order])
        biases.append(fitted.intercept_[order])
    return TraitHead(HEAD_TRAITS, np.asarray(weights, np.float32), np.asarray(biases, np.float32))


def firing_on_real(head: TraitHead) -> dict[str, float]:
    """Per trait, the share of real seekers' clauses (half "b") the head reads as showing it."""
    from memory.embeddings import Embedder

    parts = [c for s in seeker_sentences("b") for c in clauses(s)]
    probs = head.probabilities(Embedder().embed(parts))
    return {trait: float(np.mean(p[:, 0] + p[:, 1] > FIRES))
            for trait, p in zip(head.traits, probs, strict=True)}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write-statements", action="store_true",
        help="Let the configured model write the statements again first.",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=HEAD_FILE)
    args = parser.parse_args(argv)
    try:
        if args.write_statements:
            write_statements()
        head = train(load_statements())
        head.save(args.out)
        fires = firing_on_real(head)
    except EvalError as exc:
        parser.exit(2, f"error: {exc}\n")
    print(f"trait head -> {args.out}")
    for trait, share in fires.items():
        print(f"  {trait}: fires on {share:.1%} of real seekers' clauses (ESConv half b)")


if __name__ == "__main__":
    main()
