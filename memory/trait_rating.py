"""Traits read from the person's most telling passages, recalled per facet.

The design's user model: for every trait, the person's own words most like its high and its
low prototype statements (`trait_prototypes.toml`) are recalled — their remembered facts from
their own vector collection (`MemoryStore.similar`) and the sentences of their recent messages
(embedded here, one by one: `memory.sentences`).
Two readings of those passages become evidence, and one reading of every message:
- kind "recall" (no LLM; one row per person and support preference, `LEAN_TRAITS`, replaced by
  each reading, weighing more the more distinct passages it read): the mean, over the facet's
  most telling passages, of how much closer each is to the high than to the low statements
  ("lean"), placed against how real people's words lean: `trait_centres.json` holds, per trait,
  the median and spread of the same lean over ESConv validation seekers (one per conversation,
  the sentences of their own messages; made by `python -m eval.calibrate_traits`). Signal 0.5 +
  (lean - median) / (4 * spread): a person one spread above the typical seeker reads 0.75. One
  message rarely resembles a prototype closely (the per-turn "prototype" signal needs 0.4
  cosine), but which side a person's words lean to, over all of them, ranks people; the
  centring keeps "vent"-like words from pulling everyone the same way.
- kind "rating" (with a rater and `Settings.llm_trait_rating`, off by default since the sixth
  pass: README, user model; `agent.trait_llm`): the model rates each Big Five trait 1-5 from
  that trait's telling passages, as the probability-weighted mean of its one-digit answer. One
  row per person and trait ("rating:latest"), replaced by each reading and weighed like the
  recall row. Placed against real seekers' ratings by the same model (`trait_centres.json`,
  "ratings", made by `python -m eval.calibrate_traits --ratings`) like the recall signal; a
  model without centres gives (rating - 1) / 4.
- kind "asked" (with a rater and `Settings.llm_trait_asking`, on by default; `ask_traits`,
  after every message): the model is asked, about the message alone, whether anything the
  person did or felt shows the high side of openness, the low side, or neither (and the same
  for conscientiousness and agreeableness: `agent.trait_llm.ASKED`), one letter read from its
  log-probabilities. The signal is 0.5 + (P(high) - P(low) - median) / (4 * spread), centred on
  real seekers' messages like the ratings ("asked" in `trait_centres.json`, made by `python -m
  eval.calibrate_traits --asked`); the weight is `ASKED_WEIGHT` times P(high) + P(low), so
  "neither" counts for little. One row per message and trait. A rating reads a few telling
  sentences; this reads every message, where what people did is told as events ("I signed up
  for a pottery class on a whim") that resemble no prototype statement. Sentences saying how
  they want to be supported are left out, as for the other readings.
- kind "likelihood" (with a rater that can score a text and `Settings.llm_trait_weighing`, off
  by default: README, user model, twelfth pass; the traits of `agent.trait_llm.WEIGHED`, which
  are asked about too): how much likelier the model finds the message (without its support
  requests) written by someone at the trait's high pole than at its low pole, a
  log-probability ratio ("lean"). The signal is 0.5 + (lean - median) / (4 * spread), centred
  on the same ratio over real seekers' single messages ("likelihood" in `trait_centres.json`,
  made by `python -m eval.calibrate_traits --likelihood`; without centres, 0.5 + lean / 8);
  the weight is `LIKELIHOOD_WEIGHT`. Words either kind of person could have written score near
  the centre on average, though not one by one (README, user model, twelfth pass).

The recall and rating run in the memory worker, off the reply path, every `RATE_EVERY` turns
of a session; the asking and weighing after every turn.
Exceptions: the rater's own (a failed model call fails the job, which is retried).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from memory.sentences import sentences
from memory.stated import states_support
from memory.trait_signals import Signal
from memory.traits import PREFERENCES, TRAITS, TraitModel, reads_for

if TYPE_CHECKING:
    from memory.memories import MemoryStore
    from memory.store import ConversationStore, Turn

RATE_EVERY = 3  # turns 1, 4, 7, ... of a session are followed by a rating
TELLING = 4  # passages per facet the rater reads
LEANING = 8  # passages per facet the recall signal averages over
PER_FACET, RECENT_MESSAGES = TELLING, 40
PASSAGE_CHARS = 240
RECALL_WEIGHT, RECALL_SCALE = 3.0, 8.0
"""The recall reading is one evidence row per person, replaced by every reading (a reading
covers their recent messages and memories, so reading the same words again is no new
evidence); its weight grows with how many distinct passages it drew on: 3 * (1 - exp(-n / 8)),
0.35 from one message, 2.5 from fifteen passages."""
RECALL_SOURCE, RATING_SOURCE = "recall:latest", "rating:latest"
LEAN_TRAITS = PREFERENCES
"""The traits the lean of the telling passages is evidence of: the support preferences only.
For the Big Five it was the weakest reading on three fresh words-only seeds (6, 7, 8: mean rho
of the lean alone 0.23, 0.28, 0.34) and, weighing as much as a whole history, it pulled the
combination down (pooled over their 60 people: 0.45 with it, 0.51 without it and without the
rating; confirmed on fresh seed 9: README, user model, sixth pass)."""
ASKED_WEIGHT = 1.0
"""An answer about one message weighs at most this (times the model's probability that the
message shows either side): five telling messages weigh about as much as a full recall reading."""
LIKELIHOOD_WEIGHT = 1.0
"""A message's likelihood ratio weighs this much, whatever it says (its signal says how much)."""
LIKELIHOOD_SPREAD = 2.0  # without real seekers' centres: a ratio of e^2 reads 0.75
CENTRES_FILE = Path(__file__).with_name("trait_centres.json")


Centre = dict[str, float]  # {"median": ..., "spread": ...}


@cache
def centres_file() -> dict[str, Any]:
    if not CENTRES_FILE.exists():
        return {}
    found: dict[str, Any] = json.loads(CENTRES_FILE.read_text(encoding="utf-8"))
    return found


def centres() -> dict[str, Centre]:
    """Per trait, the median and spread of real seekers' lean (see the module docstring)."""
    found: dict[str, Centre] = centres_file().get("traits", {})
    return found


def model_centres(reading: str, model: str) -> dict[str, Centre]:
    """Per trait, the median and spread of `model`'s `reading` of real seekers ("ratings": their
    ratings; "asked": each person's mean high - low answer; "likelihood": single messages'
    likelihood ratios); {} for a model or reading without centres."""
    found: dict[str, Centre] = centres_file().get(reading, {}).get(model, {}).get("traits", {})
    return found


def centred(value: float, centre: Centre | None, default: float) -> float:
    """0.5 + (value - median) / (4 * spread), within [0, 1]; `default` without a centre."""
    if centre is None:
        return min(1.0, max(0.0, default))
    spread = max(centre["spread"], 1e-3)  # a degenerate centres file cannot divide by zero
    return min(1.0, max(0.0, 0.5 + (value - centre["median"]) / (4 * spread)))


def most_telling(ups: Sequence[float], downs: Sequence[float], top: int = TELLING) -> list[int]:
    """The indices of the `top` passages most like either side, most telling first."""
    return sorted(range(len(ups)), key=lambda i: -max(ups[i], downs[i]))[:top]


def lean_of(ups: Sequence[float], downs: Sequence[float]) -> tuple[float, int]:
    """The mean high-minus-low similarity of the `LEANING` passages most like either side."""
    best = most_telling(ups, downs, LEANING)
    return (float(np.mean([ups[i] - downs[i] for i in best])), len(best)) if best else (0.0, 0)


def lean_signal(name: str, lean: float) -> float:
    return centred(lean, centres().get(name, {"median": 0.0, "spread": 0.05}), 0.5)


@dataclass(frozen=True)
class Passage:
    id: str  # a turn id or a memory id
    text: str
    memory: bool = False


@dataclass(frozen=True)
class Answer:
    """The model's answer about one message and trait: the probability it said the message
    shows the trait's high side, and its low side (the rest: neither, or it does not say)."""

    trait: str
    high: float
    low: float


@dataclass(frozen=True)
class Lean:
    """How much likelier the model finds one message written by someone at the trait's high
    pole than at its low pole: the log-probability ratio (0: no more one than the other)."""

    trait: str
    ratio: float


@dataclass(frozen=True)
class Rating:
    trait: str
    rating: float  # 0 = cannot tell, else 1..5 (a probability-weighted mean)
    passage: int  # 1-based number of the passage it rests on most, 0 for none


class TraitRater(Protocol):
    @property
    def label(self) -> str:
        """The model's name (real seekers' ratings are kept per model)."""
        ...

    def rate(self, passages: Sequence[Passage], facets: dict[str, list[int]]) -> list[Rating]:
        """Rate every trait from the numbered passages (`facets`: trait -> its passages)."""
        ...

    def weigh(self, text: str) -> list[Lean]:
        """For each trait it weighs, the message's likelihood ratio (none: cannot score)."""
        ...

    def ask(self, text: str) -> list[Answer]:
        """Ask, for each trait it asks about, whether the message shows its high or low side."""
        ...


def should_rate(turn_index: int) -> bool:
    """Whether a rating follows the turn with this 0-based index in its session."""
    return turn_index % RATE_EVERY == 0


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / (np.linalg.norm(vector) or 1.0)


@dataclass(frozen=True)
class Recalled:
    """The passages recalled for every facet, and each facet's embedding reading."""

    passages: list[Passage]
    facets: dict[str, list[int]]  # trait -> numbers (1-based) of its passages in `passages`
    leaning: dict[str, tuple[float, int]]  # trait -> (mean high-minus-low similarity, count)
    read: int = 0  # distinct passages (messages and memories) the reading drew on
    memories: tuple[str, ...] = ()  # ids of the memories it drew on


def turn_passages(turn: Turn) -> list[Passage]:
    """A message's sentences as passages (ids "<turn id>#<n>"), each read on its own."""
    return [Passage(f"{turn.id}#{n}", part) for n, part in enumerate(sentences(turn.user_text))]


def telling_passages(
    traits: TraitModel, memories: MemoryStore, store: ConversationStore, user_id: str
) -> Recalled:
    """The person's passages most telling for each trait: recalled from their memories (their
    vector collection) and recent messages by similarity to the trait's high and low sides."""
    recent = [t for t in store.recent_turns(user_id, RECENT_MESSAGES) if t.user_text.strip()]
    said = [part for turn in recent for part in turn_passages(turn)]
    turn_vectors = traits.embedder.embed([p.text for p in said]) if said else None
    passages: list[Passage] = []
    facets: dict[str, list[int]] = {}
    leaning: dict[str, tuple[float, int]] = {}
    seen: dict[str, np.ndarray] = {}
    for name, (high, low) in traits.prototypes().items():
        probes = unit(high.mean(axis=0)), unit(low.mean(axis=0))
        scored: list[tuple[float, float, Passage]] = []  # (similarity to high, to low, passage)
        for probe in probes:
            for memory, _ in memories.similar(user_id, probe, PER_FACET):
                if memory.id not in seen:  # each memory embedded once per reading
                    seen[memory.id] = traits.embedder.embed([memory.text])[0]
                vector = seen[memory.id]
                scored.append((float(vector @ probes[0]), float(vector @ probes[1]),
                               Passage(memory.id, memory.text, True)))  # fmt: skip
        if turn_vectors is not None:
            ups, downs = turn_vectors @ probes[0], turn_vectors @ probes[1]
            scored += [(float(ups[i]), float(downs[i]), part) for i, part in enumerate(said)
                       if reads_for(name, part.text)]  # fmt: skip
        scored = sorted({p.id: (u, d, p) for u, d, p in scored}.values(),
                        key=lambda x: -max(x[0], x[1]))  # fmt: skip
        if scored:
            leaning[name] = lean_of([u for u, _, _ in scored], [d for _, d, _ in scored])
        chosen: list[int] = []
        for _, _, passage in scored:
            if len(chosen) == PER_FACET:
                break
            known = next((n for n, p in enumerate(passages, 1) if p.id == passage.id), None)
            if known is None:
                passages.append(passage)
                known = len(passages)
            if known not in chosen:
                chosen.append(known)
        facets[name] = chosen
    read = len(seen) + len({" ".join(t.user_text.lower().split()) for t in recent})
    return Recalled(passages, facets, leaning, read, tuple(seen))


def reading_weight(recalled: Recalled) -> float:
    """A reading weighs more the more distinct passages it drew on (see `RECALL_WEIGHT`)."""
    return RECALL_WEIGHT * (1.0 - math.exp(-recalled.read / RECALL_SCALE))


def recall_signals(recalled: Recalled) -> list[Signal]:
    """One signal per support preference from which side its most telling passages lean to
    (`LEAN_TRAITS`)."""
    return [
        Signal(name, lean_signal(name, lean), reading_weight(recalled),
               f"{count} telling passages lean {lean:+.3f} (real seekers' median "
               f"{centres().get(name, {}).get('median', 0.0):+.3f})",
               "recall")
        for name, (lean, count) in recalled.leaning.items() if name in LEAN_TRAITS
    ]  # fmt: skip


def rating_signals(
    ratings: Sequence[Rating], passages: Sequence[Passage], model: str = "", weight: float = 1.5
) -> list[Signal]:
    """Evidence rows from `model`'s ratings (0 = cannot tell: no row), centred on real
    seekers' ratings by the same model where `trait_centres.json` has them."""
    found = []
    ours = model_centres("ratings", model)
    for rating in ratings:
        if rating.trait not in TRAITS or not 1 <= rating.rating <= 5:
            continue
        basis = passages[rating.passage - 1] if 1 <= rating.passage <= len(passages) else None
        centre = ours.get(rating.trait)
        found.append(Signal(
            rating.trait, centred(rating.rating, centre, (rating.rating - 1) / 4), weight,
            f"rated {rating.rating:.2f}/5"
            + (f" (real seekers' median {centre['median']:.2f})" if centre else "")
            + (f" from {basis.id}" if basis else ""), "rating",
            basis.id if basis is not None and basis.memory else None,
        ))  # fmt: skip
    return found


def asked_signals(answers: Sequence[Answer], model: str = "") -> list[Signal]:
    """Evidence rows from the model's answers about one message: signal 0.5 + (high - low -
    median) / (4 * spread), with the median and spread of real seekers' mean answer by the
    same model (`trait_centres.json`, "asked"; without centres 0.5 + (high - low) / 2), within
    [0, 1]; weight `ASKED_WEIGHT` times how sure the model was that it shows either side."""
    ours = model_centres("asked", model)
    found = []
    for answer in answers:
        if answer.trait not in TRAITS:
            continue
        lean = answer.high - answer.low
        centre = ours.get(answer.trait)
        found.append(Signal(
            answer.trait, centred(lean, centre, 0.5 + lean / 2),
            ASKED_WEIGHT * (answer.high + answer.low),
            f"the model read {answer.trait} {'high' if lean > 0 else 'low'} "
            f"({answer.high:.2f} high, {answer.low:.2f} low)", "asked",
        ))  # fmt: skip
    return found


def likelihood_signals(leans: Sequence[Lean], model: str = "") -> list[Signal]:
    """Evidence rows from the likelihood ratios of one message: signal 0.5 + (ratio - median)
    / (4 * spread) with real seekers' median and spread by the same model (without centres,
    0.5 + ratio / (4 * `LIKELIHOOD_SPREAD`)), within [0, 1]; weight `LIKELIHOOD_WEIGHT`."""
    ours = model_centres("likelihood", model)
    default: Centre = {"median": 0.0, "spread": LIKELIHOOD_SPREAD}
    return [
        Signal(lean.trait, centred(lean.ratio, ours.get(lean.trait, default), 0.5),
               LIKELIHOOD_WEIGHT,
               f"the model finds it likelier from someone {'high' if lean.ratio > 0 else 'low'}"
               f" in {lean.trait} (log ratio {lean.ratio:+.1f})",
               "likelihood")
        for lean in leans if lean.trait in TRAITS
    ]  # fmt: skip


def asked_text(text: str) -> str:
    """What the model is asked about: the message without the sentences that say how the
    person wants to be supported (they tell of the request, not the person)."""
    return " ".join(part for part in sentences(text) if not states_support(part)).strip()


def ask_traits(
    traits: TraitModel, rater: TraitRater, user_id: str, turn: Turn, ask: bool = True,
    weigh: bool = False,
) -> int:  # fmt: skip
    """Ask the model what one of the user's messages shows (`asked_text`), and with `weigh`
    weigh it for the traits the rater weighs; record both and return how many evidence rows
    were written."""
    said = asked_text(turn.user_text)
    if not said or not (ask or weigh):
        return 0
    signals = likelihood_signals(rater.weigh(said), rater.label) if weigh else []
    signals += asked_signals(rater.ask(said), rater.label) if ask else []
    return traits.observe_answers(user_id, turn, signals)


def rate_traits(
    traits: TraitModel,
    memories: MemoryStore,
    store: ConversationStore,
    rater: TraitRater | None,
    user_id: str,
    session_id: str,
) -> int:
    """Recall the telling passages and record what they show (and the rater's ratings, with a
    rater); return how many evidence rows were written."""
    recalled = telling_passages(traits, memories, store, user_id)
    if not recalled.passages:
        return 0
    drew_on = recalled.memories
    written = traits.observe_ratings(
        user_id, session_id, recall_signals(recalled), RECALL_SOURCE, drew_on
    )
    if rater is not None:
        ratings = rater.rate(recalled.passages, recalled.facets)
        signals = rating_signals(ratings, recalled.passages, rater.label, reading_weight(recalled))
        written += traits.observe_ratings(user_id, session_id, signals, RATING_SOURCE, drew_on)
    return written
