"""Keep the cause analysis honest: the cause is a quote of the user's own words.

Small models paraphrase when asked to quote; `ground_cause` snaps the span back to the closest
sentence of the message, and `fallback_analysis` gives the degraded path something truthful
when the model's structured output failed twice.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from agent.schemas import CauseAnalysis, EmotionReading, Need

SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
NEGATIVE_NEED, POSITIVE_NEED = Need.VENT, Need.CELEBRATE


def sentences(text: str) -> list[str]:
    """Split text into trimmed sentences (the whole text if it has no sentence ends)."""
    found = [s.strip() for s in SENTENCE.findall(text) if s.strip()]
    return found or [text.strip()]


def closest_sentence(span: str, text: str) -> str:
    """Return the sentence of `text` most similar to `span`."""
    return max(
        sentences(text),
        key=lambda s: SequenceMatcher(None, span.lower(), s.lower()).ratio(),
    )


def ground_cause(analysis: CauseAnalysis, message: str) -> CauseAnalysis:
    """Return the analysis with a cause span that really occurs in the message."""
    span = analysis.cause_span.strip().strip('"').strip()
    if span and span.lower() in message.lower():
        start = message.lower().index(span.lower())
        return analysis.model_copy(update={"cause_span": message[start : start + len(span)]})
    return analysis.model_copy(update={"cause_span": closest_sentence(span, message)[:200]})


UNAVAILABLE = "(analysis unavailable: the model's output could not be used)"


def fallback_analysis(
    message: str, emotion: EmotionReading, situation: str = UNAVAILABLE
) -> CauseAnalysis:
    """Build a minimal analysis without the LLM (the degraded path, or a variant without it)."""
    need = POSITIVE_NEED if emotion.valence > 0.3 else NEGATIVE_NEED
    return CauseAnalysis(
        cause_span=sentences(message)[0][:200],
        situation=situation,
        need=need,
        thoughts="(unknown)",
        risk=False,
    )
