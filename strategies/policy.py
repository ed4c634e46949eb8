"""Choose a lens and a support strategy from the structured analysis and the person's traits.

Small LLMs pick "Reflection of feelings" almost always when asked (DESIGN.md), so the choice is
made here, as a transparent additive score over data weights (`policy.toml`); the LLM then writes
the reply *in* the chosen strategy. Traits come in as arguments: this layer never reads a store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Protocol

from pydantic import BaseModel, Field

from strategies.catalogue import Stage, Weights, load_catalogue, load_policy

HIGH_INTENSITY = 0.6
POSITIVE_VALENCE = 0.3


class Signals(BaseModel):
    """What the policy conditions on for one turn."""

    need: str
    emotion: str
    emotion_probability: float = 1.0
    valence: float = 0.0
    intensity: float = 0.0
    turn_index: int = 0
    grounding_memory_id: str | None = None
    grounding_relevance: float = Field(default=0.0, description="How well the memory fits, 0..1.")
    grounding_judged: float | None = Field(
        default=None,
        description="How much more the model reads the analogy's experience as related than a "
        "neutral one, when it was below the similarity floor and judged (agent.analogy_judge).",
    )
    memory_question: bool = Field(
        default=False, description="They ask what they told empathos before."
    )
    understanding_other: bool = Field(
        default=False, description="They struggle to understand someone else's feelings."
    )
    other_person: str = Field(default="", description="Whose feelings ('my sister'), if said.")
    need_said: bool = Field(
        default=False, description="The need is what they said they want, not the analysis's guess."
    )


GROUNDING_MIN_RELEVANCE, GROUNDING_MAX_RELEVANCE = 0.35, 0.85
"""A memory answers a question about the past only if it is at least this similar to it; a
memory this similar or more is a restatement (an analogy to what they just said is no analogy)."""

ANALOGY_MIN_RELEVANCE = 0.38
"""An own experience grounds a personal analogy only if it is at least this similar to the
other person's situation worded as a memory ("the user is so upset about the move"; see
agent.understanding.experience_query). On eval/data/analogy_cases.jsonl related experiences
score 0.24-0.70 (19 of 22 at 0.38 or more), the best unrelated own experience 0.35."""

ANALOGY_JUDGED_MIN_RELEVANCE, ANALOGY_JUDGE_MIN = 0.22, 0.04
"""Below the floor, the best own experience at least this similar is put to the model
(agent.analogy_judge), and grounds the analogy if the model reads it as related by at least
ANALOGY_JUDGE_MIN more than a neutral experience; it then counts as related as the floor. On
the grey-band pairs of five earlier case sets 0.04 accepted 29 of 38 related experiences and 4
of 30 unrelated ones."""

UNDERSTANDING_BONUS = 1.3
"""Added to the personal analogy when they struggle to understand someone else's feelings and
an own experience relates: the situation the analogy exists for (EmoSync). With it the analogy
(>= 2.45 at relevance 0.38) wins over the need's usual strategy even for people whose confident
traits favour another (a listener's reflection on "vent" scores ~2.4 with policy.toml of
2026-12-06); what has not worked for this person (outcome evidence, up to -1) can still
overturn it."""


class Trait(Protocol):
    """A trait estimate in [0, 1] (0.5 is neutral) with a confidence in [0, 1]."""

    @property
    def value(self) -> float: ...

    @property
    def confidence(self) -> float: ...


class Plan(BaseModel):
    """The chosen lens and strategy, the reasons, and every candidate's score."""

    lens: str
    strategy: str
    stage: Stage
    why: list[str]
    scores: dict[str, float] = Field(default_factory=dict)
    trait_scores: dict[str, float] = Field(
        default_factory=dict,
        description="The part of each score that came from traits (scores minus these = the "
        "choice without traits, for ablations replayed on the same turn).",
    )
    grounding_memory_id: str | None = None
    other_person: str = Field(
        default="", description="Whose feelings the analogy helps them understand."
    )
    traits_used: list[str] = Field(default_factory=list)
    answer_from_memory: bool = Field(
        default=False, description="Answer their question about the past from memory."
    )
    need: str = Field(default="", description="The need the plan was made for.")
    need_said: bool = Field(default=False, description="The message stated that need.")

    def without_grounding(self) -> Plan:
        """Return this plan with no memory to cite: a personal analogy falls back to the best
        strategy that needs no memory."""
        if self.grounding_memory_id is None:
            return self
        catalogue = load_catalogue()
        strategy = self.strategy
        if catalogue.strategy_named(strategy).requires_memory:
            free = [s.name for s in catalogue.strategy if not s.requires_memory]
            strategy = max(free, key=lambda name: (self.scores.get(name, 0.0), name))
        return self.model_copy(update={
            "strategy": strategy, "stage": catalogue.strategy_named(strategy).stage,
            "grounding_memory_id": None, "other_person": "",
            "why": [*self.why, "strategy: the memory to cite is gone; fell back"],
        })  # fmt: skip


class _Tally:
    """Scores per candidate with the named contributions behind them."""

    def __init__(self, candidates: list[str]) -> None:
        self.score: dict[str, float] = dict.fromkeys(candidates, 0.0)
        self.reasons: dict[str, list[tuple[float, str]]] = defaultdict(list)

    def add(self, weights: Weights, scale: float, source: str) -> None:
        for name, weight in weights.items():
            if name in self.score and weight * scale != 0.0:
                self.score[name] += weight * scale
                self.reasons[name].append((weight * scale, source))

    def best(self) -> str:
        return max(self.score, key=lambda name: (self.score[name], name))

    def from_traits(self) -> dict[str, float]:
        """Each candidate's score contributed by traits."""
        return {name: sum(v for v, src in self.reasons[name] if src.startswith("trait "))
                for name in self.score}  # fmt: skip

    def why(self, name: str, limit: int = 3) -> list[str]:
        top = sorted(self.reasons[name], key=lambda item: -abs(item[0]))[:limit]
        return [f"{source} ({value:+.2f})" for value, source in top]


def _trait_scale(trait: Trait) -> float:
    return (trait.value - 0.5) * 2.0 * trait.confidence


def _need_scale(signals: Signals) -> float:
    return 1.0 if signals.need_said else load_policy().guessed_need


SAID = " (they said so)"  # after the need in a plan's reasons when the message stated it


def _need(signals: Signals) -> str:
    return f"need '{signals.need}'" + (SAID if signals.need_said else "")


def _add_context(tally: _Tally, signals: Signals, lens: bool) -> None:
    policy = load_policy()
    if lens:
        tally.add(policy.need_lens.get(signals.need, {}), _need_scale(signals), _need(signals))
        emotion_weights = policy.emotion_lens.get(signals.emotion, {})
        tally.add(emotion_weights, signals.emotion_probability, f"emotion '{signals.emotion}'")
    else:
        tally.add(policy.need.get(signals.need, {}), _need_scale(signals), _need(signals))
        stage = policy.stage.first_turn if signals.turn_index == 0 else policy.stage.later_turn
        turn = "first turn of session" if signals.turn_index == 0 else "later turn"
        tally.add(stage, 1.0, turn)
    if signals.intensity >= HIGH_INTENSITY and signals.valence < 0:
        tally.add(
            policy.stage.high_intensity, 1.0, f"strong negative feeling ({signals.intensity:.2f})"
        )
    if signals.valence >= POSITIVE_VALENCE:
        tally.add(policy.stage.positive_valence, 1.0, f"positive feeling ({signals.valence:+.2f})")


def _add_traits(tally: _Tally, traits: Mapping[str, Trait], label: str = "trait") -> None:
    for name, trait in traits.items():
        weights = load_policy().traits.get(name)
        if weights:
            tally.add(weights, _trait_scale(trait), f"{label} {name}={trait.value:.2f}")


def _whose(signals: Signals) -> str:
    return f"{signals.other_person}'s" if signals.other_person else "someone else's"


def _add_analogy(tally: _Tally, signals: Signals) -> None:
    """The personal analogy's score: the base bonus, more for a closer experience, and the
    understanding bonus (only ever called when both the struggle and the experience are there).
    An experience the model judged related below the floor counts as related as the floor."""
    policy = load_policy()
    relevance, said = signals.grounding_relevance, f"{signals.grounding_relevance:.2f}"
    if signals.grounding_judged is not None:
        relevance = max(relevance, ANALOGY_MIN_RELEVANCE)
        said += f", judged related {signals.grounding_judged:+.2f}"
    above = max(0.0, relevance - GROUNDING_MIN_RELEVANCE)
    bonus = policy.analogy_bonus + policy.analogy_per_relevance * above / (
        1 - GROUNDING_MIN_RELEVANCE
    )
    tally.add({"Personal Analogy": bonus}, 1.0, f"an own experience like theirs (relevance {said})")
    tally.add({"Personal Analogy": UNDERSTANDING_BONUS}, 1.0,
              f"they struggle to understand {_whose(signals)} feelings")  # fmt: skip


MEMORY_ANSWER = ("Information", "Person-centred")


def memory_answer_plan(signals: Signals) -> Plan:
    """A question about what they told before is answered from memory: Information, with no
    analogy (an analogy is for understanding someone else's feelings, never an answer)."""
    strategy, lens = MEMORY_ANSWER
    return Plan(
        lens=lens, strategy=strategy, stage=load_catalogue().strategy_named(strategy).stage,
        why=["strategy: a question about what they told you before: answered from memory",
             f"lens: {lens} (the answer, without a technique)"],
        answer_from_memory=True,
    )  # fmt: skip


def select_plan(
    signals: Signals,
    traits: Mapping[str, Trait] | None = None,
    evidence: Mapping[str, float] | None = None,
    stated: Mapping[str, Trait] | None = None,
) -> Plan:
    """Score every lens and strategy and return the best of each with the reasons.

    `evidence` holds per-candidate bonuses learnt from this person's outcomes (name -> bonus).
    `stated` holds the support preferences this message states ("what should I do?"), weighted
    like traits but reported as "said", not as traits: they are the message, not the user model
    (a no-traits replay keeps them).
    """
    catalogue = load_catalogue()
    if signals.memory_question:
        return memory_answer_plan(signals)
    traits = traits or {}
    analogy = signals.understanding_other and signals.grounding_memory_id is not None
    usable = [s.name for s in catalogue.strategy if analogy or not s.requires_memory]
    strategies, lenses = _Tally(usable), _Tally([lens.name for lens in catalogue.lens])
    _add_context(strategies, signals, lens=False)
    _add_context(lenses, signals, lens=True)
    if analogy:
        _add_analogy(strategies, signals)
    for tally in (strategies, lenses):
        _add_traits(tally, traits)
        _add_traits(tally, stated or {}, label="said")
        tally.add(dict(evidence or {}), 1.0, "what has worked for this person")
    strategy, lens = strategies.best(), lenses.best()
    used = {src for _, src in strategies.reasons[strategy] + lenses.reasons[lens]}
    analogy_note = []
    if signals.understanding_other and not analogy:
        analogy_note = [f"analogy: they struggle to understand {_whose(signals)} feelings, but "
                        "no related experience of their own is remembered"]  # fmt: skip
    return Plan(
        lens=lens,
        strategy=strategy,
        stage=catalogue.strategy_named(strategy).stage,
        why=[f"strategy: {r}" for r in strategies.why(strategy)]
        + [f"lens: {r}" for r in lenses.why(lens)]
        + analogy_note,
        scores={**strategies.score, **lenses.score},
        trait_scores={**strategies.from_traits(), **lenses.from_traits()},
        grounding_memory_id=signals.grounding_memory_id if strategy == "Personal Analogy" else None,
        other_person=signals.other_person if strategy == "Personal Analogy" else "",
        traits_used=sorted(
            s.split("=")[0].removeprefix("trait ") for s in used if s.startswith("trait ")
        ),
        need=signals.need,
        need_said=signals.need_said,
    )
