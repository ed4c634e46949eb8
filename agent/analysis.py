"""Keep the cause analysis honest and small: the cause is a quote of the user's own words.

Small models paraphrase when asked to quote; `ground_cause` snaps the span back to the closest
sentence of the message, and `fallback_analysis` gives the degraded path something truthful
when the model's structured output failed twice.

The compact note (the embedded model's analysis, on the reply's critical path) is three words,
"2 heard no": the number of the sentence that says what caused the feeling, what the person
wants, and whether it hints at a crisis. It costs three generated tokens instead of ~50 of JSON
free text; the cause is then the person's own sentence, exactly. `note_grammar` constrains the
decoding to it; `read_note` turns it into a `CauseAnalysis`.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from pydantic import BaseModel, Field

from agent.schemas import CauseAnalysis, EmotionReading, Need
from memory.stated import ASKS_COMPANY, stated_support
from memory.trace import TraitValue
from strategies.policy import Plan

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


MAX_SENTENCES = 9  # the note names the cause by one digit
NOTE_NEEDS = {
    "heard": Need.VENT, "validate": Need.VALIDATION, "advice": Need.ADVICE,
    "answer": Need.INFORMATION, "celebrate": Need.CELEBRATE, "distract": Need.DISTRACTION,
}  # fmt: skip
NOTE = re.compile(r"^\s*([1-9])\s+([a-z]+)\s+(yes|no)\b", re.I)


class Note(BaseModel):
    """The compact note as structured output (for endpoints without grammars)."""

    cause: int = Field(ge=1, le=MAX_SENTENCES, description="Number of the cause's sentence.")
    need: str = Field(json_schema_extra={"enum": list(NOTE_NEEDS)})
    risk: bool = False


def note_sentences(message: str) -> list[str]:
    """The message's sentences as the note numbers them (the rest joins the last one)."""
    found = sentences(message)
    if len(found) <= MAX_SENTENCES:
        return found
    return [*found[: MAX_SENTENCES - 1], " ".join(found[MAX_SENTENCES - 1 :])]


def note_grammar(count: int) -> str:
    """GBNF for the note of a message with `count` sentences."""
    needs = " | ".join(f'"{word}"' for word in NOTE_NEEDS)
    return (
        f'root ::= [1-{max(1, min(count, MAX_SENTENCES))}] " " need " " risk\n'
        f"need ::= {needs}\n"
        'risk ::= "yes" | "no"\n'
    )


def read_note(text: str, message: str) -> CauseAnalysis:
    """Turn a note ("2 heard no") into the analysis; ValueError if it is not one."""
    match = NOTE.match(text)
    if match is None or match.group(2).lower() not in NOTE_NEEDS:
        raise ValueError(f"not a note (sentence, need, yes/no): {text[:80]!r}")
    return note_analysis(
        Note(cause=int(match.group(1)), need=match.group(2).lower(),
             risk=match.group(3).lower() == "yes"),
        message,
    )  # fmt: skip


def note_analysis(note: Note, message: str) -> CauseAnalysis:
    """The analysis a note stands for: the cause is the numbered sentence, verbatim."""
    if note.need not in NOTE_NEEDS:
        raise ValueError(f"unknown need {note.need!r}; one of {', '.join(NOTE_NEEDS)}")
    parts = note_sentences(message)
    cause = parts[min(note.cause, len(parts)) - 1]
    return CauseAnalysis(
        cause_span=cause[:200], situation="", need=NOTE_NEEDS[note.need], thoughts="",
        risk=note.risk,
    )  # fmt: skip


MEMORY_QUESTION = re.compile(
    r"\b(do|did) you (still )?(remember|recall|know what)\b|\bwhat (did|do|was it) i (say|tell|"
    r"told|mention)|\bdid i (ever )?(tell|mention|say)\b|\bremind me (what|who|when|where|how)\b"
    r"|\bwhat was (the|that|his|her|their|my) .{1,40}\b(again|i (told|mentioned))\b"
    r"|\bi (told|mentioned to) you (about|before|last)\b.*\?",
    re.I,
)


def asks_about_own_past(message: str) -> bool:
    """True when the person asks what they told empathos before ("do you remember…", "what did
    I say about…"): answered from memory, never with an analogy."""
    return MEMORY_QUESTION.search(message) is not None


STATED_CONFIDENCE = 0.8
"""How sure a support preference the message states is ("I just need to vent"): said in so many
words, but about this conversation, not a standing trait."""


class Request(BaseModel):
    """How the message says they want to be supported, if it says so."""

    need: Need | None = None
    traits: dict[str, TraitValue] = Field(default_factory=dict)


def read_request(message: str) -> Request:
    """Read a stated support preference: asking what to do is a need for advice whatever the
    analysis guessed (it calls nearly every message "vent" on the small models); asking to be
    heard is venting; asking for easy company, not to be questioned, is light talk."""
    said = stated_support(message)
    traits = {name: TraitValue(value=value, confidence=STATED_CONFIDENCE, source="said")
              for name, (value, _) in said.items()}  # fmt: skip
    advice, heard = said.get("wants_advice"), said.get("wants_to_be_heard")
    need = None
    if advice is not None and advice[0] >= 0.5:
        need = Need.ADVICE
    elif heard is not None:
        need = Need.VENT if heard[0] >= 0.5 else Need.DISTRACTION
    elif advice is not None:  # no advice: company if they asked for it, else to be heard
        need = Need.DISTRACTION if ASKS_COMPANY.search(message) else Need.VENT
    return Request(need=need, traits=traits)


def as_planned(analysis: CauseAnalysis, plan: Plan | None) -> CauseAnalysis:
    """The analysis the reply is written from: with the need they stated, when they did (the
    plan was made for it), not the analysis's guess."""
    if plan is None or not plan.need_said:
        return analysis
    return analysis.model_copy(update={"need": Need(plan.need)})
