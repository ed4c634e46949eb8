"""What each metric of the offline evaluation is: its task, how one item's value is read from
a system's output (a 0/1 hit, a span F1, a judge score, or a (gold, prediction) pair for corpus
metrics), and how the values aggregate. `eval.offline.results` computes them with intervals and
tests; the definitions are in `eval.offline.metrics`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any, cast

from eval.offline import metrics
from eval.offline.items import ESCONV_STRATEGIES, AnyItem, MemoryItem, ReplyItem, StrategyItem

Value = Any
Extract = Callable[[AnyItem, dict[str, Any], "Lookup"], Value | None]
Aggregate = Callable[[Sequence[Value]], float]
RECALL_K = 3
JUDGE_DIMENSIONS = {
    "likert": ("overall", "affective", "cognitive"),
    "epitome": ("emotional_reactions", "interpretations", "explorations"),
    "personaemp": ("resonation", "expression", "reception"),
}


@dataclass(frozen=True)
class Lookup:
    """The records of a run by what they belong to."""

    outputs: dict[tuple[str, str], dict[str, Any]]
    verdicts: dict[tuple[str, str, str], dict[str, Any]]
    pasts: dict[str, dict[str, Any]]
    foreign: dict[str, list[str]]


@dataclass(frozen=True)
class Metric:
    name: str
    task: str
    extract: Extract
    aggregate: Aggregate = fmean
    higher_is_better: bool = True
    description: str = ""
    interval: bool = True  # False where resampling items biases the value (distinct-n)


# --- per-item values -------------------------------------------------------------------------
def emotion_hit(item: AnyItem, out: dict[str, Any], _: Lookup) -> float | None:
    gold = item.gold.emotions if isinstance(item, ReplyItem) else getattr(item, "labels", [])
    if not gold or not out.get("emotion"):
        return None
    return float(out["emotion"] in gold)


def emotion_pair(item: AnyItem, out: dict[str, Any], _: Lookup) -> Value | None:
    gold = item.gold.emotions if isinstance(item, ReplyItem) else getattr(item, "labels", [])
    if not gold or not out.get("emotion"):
        return None
    return (list(gold), out["emotion"])


def emotion_macro_f1(pairs: Sequence[Value]) -> float:
    return float(metrics.emotion_scores([g for g, _ in pairs], [p for _, p in pairs])["macro_f1"])


def cause_f1(item: AnyItem, out: dict[str, Any], _: Lookup) -> float | None:
    if not isinstance(item, ReplyItem) or item.gold.cause_span is None:
        return None
    if out.get("cause_span") is None:
        return None
    return metrics.span_f1(item.gold.cause_span, out["cause_span"])


def strategy_in(field_name: str) -> Extract:
    def extract(item: AnyItem, out: dict[str, Any], _: Lookup) -> float | None:
        wanted = getattr(item.gold, field_name, []) if isinstance(item, ReplyItem) else []
        if not wanted or not out.get("strategy"):
            return None
        return float(out["strategy"] in wanted)

    return extract


def uses_memory(item: AnyItem, out: dict[str, Any], _: Lookup) -> float | None:
    if not isinstance(item, ReplyItem) or not item.gold.memory_words or not out.get("reply"):
        return None
    return float(metrics.mentions_any(out["reply"], item.gold.memory_words))


def foreign_mention(item: AnyItem, out: dict[str, Any], lookup: Lookup) -> float | None:
    """Whether the reply names another person's remembered words that this item never said."""
    words = lookup.foreign.get(item.id, [])
    if not words or not out.get("reply"):
        return None
    return float(metrics.mentions_any(out["reply"], words))


def leaked(item: AnyItem, out: dict[str, Any], _: Lookup) -> float | None:
    return float(bool(out.get("leaks"))) if "leaks" in out else None


def crisis_reply(item: AnyItem, out: dict[str, Any], _: Lookup) -> float | None:
    return float(bool(out.get("crisis"))) if "reply" in out else None


def reply_text(item: AnyItem, out: dict[str, Any], _: Lookup) -> str | None:
    return out.get("reply") or None


def distinct(n: int) -> Aggregate:
    return lambda texts: metrics.distinct_n(list(texts), n)


def seconds(item: AnyItem, out: dict[str, Any], _: Lookup) -> float | None:
    return out.get("seconds") if "reply" in out else None


def llm_calls(item: AnyItem, out: dict[str, Any], _: Lookup) -> float | None:
    return out.get("llm_calls") if "reply" in out else None


def judge_score(rubric: str, dimension: str) -> Extract:
    def extract(item: AnyItem, out: dict[str, Any], lookup: Lookup) -> float | None:
        verdict = lookup.verdicts.get((item.id, out.get("system", ""), rubric))
        if verdict is None or "scores" not in verdict:
            return None
        value = verdict["scores"].get(dimension)
        return float(value) if value is not None else None

    return extract


def strategy_pair(item: AnyItem, out: dict[str, Any], _: Lookup) -> Value | None:
    if not isinstance(item, StrategyItem) or not out.get("strategy"):
        return None
    return (item.gold, out["strategy"])


def strategy_score(name: str) -> Aggregate:
    def aggregate(pairs: Sequence[Value]) -> float:
        found = metrics.strategy_scores(
            [g for g, _ in pairs], [p for _, p in pairs], ESCONV_STRATEGIES
        )  # ESConv's eight: another prediction (the analogy) is a miss, not a ninth class
        return float(cast(dict[str, Any], found)[name])

    return aggregate


def answer_hit(item: AnyItem, out: dict[str, Any], _: Lookup) -> float | None:
    if not isinstance(item, MemoryItem) or "reply" not in out:
        return None
    return float(metrics.mentions_any(out.get("reply") or "", item.answer))


def recalled_answer(item: AnyItem, out: dict[str, Any], _: Lookup) -> float | None:
    if not isinstance(item, MemoryItem) or "memories" not in out:
        return None
    recalled = " ".join(m["text"] for m in out["memories"])
    return float(metrics.mentions_any(recalled, item.answer))


def evidence_recall(item: AnyItem, out: dict[str, Any], lookup: Lookup) -> float | None:
    """Share of evidence lines with a memory of theirs among the top-k recalled (a line whose
    words extraction kept nothing of counts as missed: that is a memory failure too)."""
    if not isinstance(item, MemoryItem) or not item.evidence or "memories" not in out:
        return None
    past = lookup.pasts.get(item.id)
    if past is None:
        return None
    ranked = [m["id"] for m in out["memories"]]
    lines = [past["line_memories"][i] for i in item.evidence if i < len(past["line_memories"])]
    hits = [bool(metrics.recall_at_k(ranked, ids, RECALL_K)) for ids in lines]  # None: missed
    return fmean(map(float, hits)) if hits else None


METRICS: list[Metric] = [
    Metric("emotion accuracy", "reply", emotion_hit,
           description="the emotion read is one of the gold emotions"),
    Metric("emotion macro-F1", "reply", emotion_pair, emotion_macro_f1,
           description="macro-F1 over the emotions in gold or predicted"),
    Metric("cause-span F1", "reply", cause_f1,
           description="token F1 of the analysed cause against the gold cause span (RECCON)"),
    Metric("acceptable strategy", "reply", strategy_in("acceptable"),
           description="the chosen strategy is one the item accepts"),
    Metric("preferred strategy", "reply", strategy_in("preferred"),
           description="the chosen strategy is one this person prefers"),
    Metric("disliked strategy", "reply", strategy_in("disliked"), higher_is_better=False,
           description="the chosen strategy is one this person dislikes"),
    Metric("uses own memory", "reply", uses_memory,
           description="the reply names something from this person's own history"),
    Metric("names another's memory", "reply", foreign_mention, higher_is_better=False,
           description="the reply names words only another person's history holds"),
    Metric("recalled another's memory", "reply", leaked, higher_is_better=False,
           description="a memory of another user was recalled (must be 0)"),
    Metric("crisis reply", "reply", crisis_reply, higher_is_better=False,
           description="answered with the crisis reply (a false alarm unless the item is a "
                       "crisis; the shipped items hold none)"),
    Metric("distinct-1", "reply", reply_text, distinct(1), interval=False,
           description="distinct unigrams / all unigrams over the replies (no interval: "
                       "resampled replies repeat, which lowers it)"),
    Metric("distinct-2", "reply", reply_text, distinct(2), interval=False,
           description="distinct bigrams / all bigrams over the replies (no interval)"),
    *[
        Metric(f"judge {rubric}: {dim}", "reply", judge_score(rubric, dim),
               description=f"the judge's {rubric} score for {dim.replace('_', ' ')}")
        for rubric, dims in JUDGE_DIMENSIONS.items()
        for dim in dims
    ],
    Metric("seconds per turn", "reply", seconds, higher_is_better=False,
           description="wall time of the turn on this machine"),
    Metric("LLM calls per turn", "reply", llm_calls, higher_is_better=False,
           description="model calls the turn made"),
    Metric("strategy accuracy", "strategy", strategy_pair, strategy_score("accuracy"),
           description="predicted next strategy equals the human supporter's"),
    Metric("strategy macro-F1 (Q)", "strategy", strategy_pair, strategy_score("macro_f1"),
           description="proficiency Q of Kang et al. (ACL 2024)"),
    Metric("strategy weighted F1", "strategy", strategy_pair, strategy_score("weighted_f1"),
           description="F1 weighted by gold support"),
    Metric("strategy preference bias B", "strategy", strategy_pair, strategy_score("bias"),
           higher_is_better=False,
           description="spread of Bradley-Terry strategy preferences (Kang et al. 2024)"),
    Metric("answer correct", "memory", answer_hit,
           description="the reply contains a gold answer (whole word)"),
    Metric("answer among recalled memories", "memory", recalled_answer,
           description="a recalled memory contains a gold answer"),
    Metric(f"evidence recall@{RECALL_K}", "memory", evidence_recall,
           description=f"evidence lines with a memory of theirs in the top {RECALL_K} recalled"),
    Metric("emotion accuracy", "emotion", emotion_hit,
           description="the plug-in's top emotion is one of the gold labels"),
    Metric("emotion macro-F1", "emotion", emotion_pair, emotion_macro_f1,
           description="macro-F1 over the labels in gold or predicted"),
]  # fmt: skip
